"""Django Tasks backends: PostgresBackend (the real one) and a test-mode ImmediateBackend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.tasks import Task, TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.backends.immediate import ImmediateBackend as DjangoImmediateBackend
from django.tasks.exceptions import TaskResultDoesNotExist
from django.tasks.signals import task_enqueued

from eventjobs.conf import JobOptions, database_alias
from eventjobs.db import session_cursor
from eventjobs.jobs.enqueue import insert, job_params
from eventjobs.jobs.results import build_result
from eventjobs.jobs.tasks import EventjobsTask, validate_task_options
from eventjobs.payload import dumps


class PostgresBackend(BaseTaskBackend):
    """Stores jobs in PostgreSQL; `manage.py runworker` runs them."""

    task_class = EventjobsTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.params = params  # for the system check of its keys (a misspelt one is ignored)
        self.options_setting = f"TASKS[{alias!r}]['OPTIONS']"
        # A bad setting is kept and raised on use, so `manage.py check` can report it
        # (Django builds every backend to check it) instead of crashing.
        self.options_error: ImproperlyConfigured | None = None
        try:
            self._job_options: JobOptions | None = JobOptions.from_options(
                self.options, self.options_setting)
        except ImproperlyConfigured as exc:
            self.options_error, self._job_options = exc, None
        # The backend's own "DATABASE" (None: EVENTJOBS["DATABASE"]).
        self.database_setting: str | None = params.get("DATABASE") or None
        self._usable = False

    @property
    def job_options(self) -> JobOptions:
        if self._job_options is None:
            raise ImproperlyConfigured(str(self.options_error))
        return self._job_options

    @property
    def database(self) -> str:
        """The DATABASES alias of the job table (EVENTJOBS["DATABASE"] unless given)."""
        return self.database_setting or database_alias()

    def ensure_usable(self) -> None:
        """ImproperlyConfigured, saying what to fix, when jobs cannot be stored."""
        if self._usable:
            return
        if not apps.is_installed("eventjobs"):
            raise ImproperlyConfigured(
                f"TASKS[{self.alias!r}] uses eventjobs.backends.PostgresBackend, but "
                "'eventjobs' is not in INSTALLED_APPS: add it there and run "
                "`manage.py migrate`")
        self.job_options  # noqa: B018 - raises the settings error, if any
        self._usable = True

    def validate_task(self, task: Task[..., Any]) -> None:
        super().validate_task(task)
        validate_task_options(task)

    def effective_options(self, task: Task[..., Any]) -> dict[str, Any]:
        """The retry/timeout policy stored on the job row: the task's, else OPTIONS."""
        opts = self.job_options
        max_attempts = getattr(task, "max_attempts", None)
        retry_backoff = getattr(task, "retry_backoff", None)
        timeout = getattr(task, "timeout", None)
        return {
            "max_attempts": max_attempts if max_attempts is not None else opts.max_attempts,
            "retry_backoff": float(
                retry_backoff if retry_backoff is not None else opts.retry_backoff_seconds
            ),
            "timeout": float(timeout) if timeout is not None else opts.timeout_seconds,
        }

    def enqueue[**P, R](self, task: Task[P, R], args: Sequence[Any], kwargs: dict[str, Any]
                        ) -> TaskResult[P, R]:
        """Insert the job in the caller's transaction; it is claimable once that commits.
        A unique task's duplicate returns the waiting job's result instead."""
        self.ensure_usable()
        self.validate_task(task)
        params = job_params(self, task, args, kwargs)  # validates before any SQL
        with session_cursor(self.database, prepare=True) as cursor:
            row, created = insert(cursor, task, params)
        if not created:
            return build_result(task, row, self.alias)
        result = TaskResult(
            task=task,
            id=str(row["id"]),
            status=TaskResultStatus.READY,
            enqueued_at=row["enqueued_at"],
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=list(args),
            kwargs=dict(kwargs),
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        # Sent inside the caller's transaction: the job exists only if it commits.
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult[..., Any]:
        """Read a job's current state from the database, from any process."""
        # Imported here: this module must import without the app registry (a project
        # without "eventjobs" in INSTALLED_APPS gets E006, not a model import error).
        from eventjobs.jobs.executor import import_task
        from eventjobs.jobs.results import build_result
        from eventjobs.models import Job

        try:
            job_id = int(result_id)
        except (TypeError, ValueError):
            raise TaskResultDoesNotExist(result_id) from None
        row = Job.objects.using(self.database).filter(pk=job_id).values().first()
        if row is None:
            raise TaskResultDoesNotExist(result_id)
        try:
            task = import_task(row["task_path"])
        except ImportError as exc:
            raise TaskResultDoesNotExist(f"{result_id}: {exc}") from exc
        return build_result(task, row, self.alias)

    def check(self, **kwargs: Any) -> list[Any]:
        if not apps.is_installed("eventjobs"):
            from django.core.checks import Error

            return [Error(f"TASKS[{self.alias!r}] uses eventjobs.backends.PostgresBackend, but "
                          "'eventjobs' is not in INSTALLED_APPS, so its tables do not exist",
                          hint="Add 'eventjobs' to INSTALLED_APPS and run `manage.py migrate`.",
                          id="eventjobs.E006")]
        from eventjobs.checks import check_backend

        return check_backend(self)


class ImmediateBackend(DjangoImmediateBackend):
    """Django's ImmediateBackend with eventjobs' task class, for test settings.

    `@task(max_attempts=...)` is resolved through the configured backend's task class at
    import time, so projects whose tests use Django's ImmediateBackend would get a
    TypeError. This backend accepts the same options (and ignores retries: it runs once).
    """

    task_class = EventjobsTask
    supports_defer = True

    def validate_task(self, task: Task[..., Any]) -> None:
        super().validate_task(task)
        validate_task_options(task)

    def enqueue[**P, R](self, task: Task[P, R], args: Sequence[Any], kwargs: dict[str, Any]
                        ) -> TaskResult[P, R]:
        dumps(list(args), "args", limit_size=True)
        dumps(dict(kwargs), "kwargs", limit_size=True)
        # Django passes Task.enqueue's *args, a tuple, through; its stub says list.
        return super().enqueue(task, args, kwargs)  # type: ignore[arg-type]
