"""Set-up guard for `@task(max_attempts=...)` with a task backend that is not eventjobs'.

Django resolves `@task(...)` through the configured backend's `task_class` when the tasks
module is imported. With TASKS unset (Django's default ImmediateBackend) or another
backend, eventjobs' options then fail deep inside Django with `TypeError:
Task.__init__() got an unexpected keyword argument 'max_attempts'`. The guard turns that
into an error naming the setting to fix.

Installed from `EventjobsConfig.__init__`, before any app's models or tasks are
imported, so this module imports nothing of eventjobs at import time (no models).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from django.tasks import Task
    from django.tasks.backends.base import BaseTaskBackend

TASK_OPTIONS = ("max_attempts", "retry_backoff", "timeout")


class TaskClassGuard:
    """Stands in for the task class of a backend that is not eventjobs': builds the same
    Task, and turns Django's `TypeError: ... unexpected keyword argument 'max_attempts'`
    into an error naming the setting to fix (Django calls it for every `@task`)."""

    def __init__(self, task_class: type[Task[..., Any]], alias: str, backend_path: str):
        self.task_class = task_class
        self.alias = alias
        self.backend_path = backend_path

    def __call__(self, **kwargs: Any) -> Task[..., Any]:
        try:
            return self.task_class(**kwargs)
        except TypeError as exc:
            used = [name for name in TASK_OPTIONS if name in kwargs and name in str(exc)]
            if not used:
                raise
            raise ImproperlyConfigured(self.message(used[0])) from exc

    def message(self, option: str) -> str:
        # LazySettings hands is_overridden to the wrapped Settings; the plugin takes it for
        # a setting's name.
        unset = ("" if settings.is_overridden("TASKS")  # type: ignore[misc]
                 else " (TASKS is not set, so Django's default applies)")
        return (f"@task({option}=...) is an eventjobs option, but TASKS[{self.alias!r}] uses "
                f"{self.backend_path}{unset}. Set TASKS = {{{self.alias!r}: {{\"BACKEND\": "
                "\"eventjobs.backends.PostgresBackend\"}}, or "
                "eventjobs.backends.ImmediateBackend in test settings")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task_class, name)


def install_task_class_guard() -> None:
    """Give every task backend Django creates that is not eventjobs' a TaskClassGuard
    (called once, when the eventjobs app is loaded: before any models or tasks import)."""
    from django.tasks import task_backends

    if getattr(task_backends, "eventjobs_guarded", False):
        return
    create = task_backends.create_connection

    def create_connection(alias: str) -> BaseTaskBackend:
        from eventjobs.jobs.tasks import EventjobsTask

        backend = create(alias)
        task_class = backend.task_class
        if isinstance(task_class, type) and not issubclass(task_class, EventjobsTask):
            path = f"{type(backend).__module__}.{type(backend).__name__}"
            # A stand-in callable, not a Task subclass: it builds the backend's own Task.
            backend.task_class = TaskClassGuard(task_class, alias, path)  # type: ignore[assignment]
        return backend

    # Wrapping the handler's factory on the one instance Django uses (its attributes are
    # not in the stubs).
    task_backends.create_connection = create_connection  # type: ignore[method-assign]
    task_backends.eventjobs_guarded = True  # type: ignore[attr-defined]
