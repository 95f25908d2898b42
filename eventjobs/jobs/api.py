"""Job operations beyond Django's Tasks API: bulk enqueue, manual retry, cancel."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connections, transaction
from django.tasks import Task, TaskResult, TaskResultStatus
from django.tasks.signals import task_enqueued

from eventjobs.conf import count, eventjobs_settings
from eventjobs.db import session_cursor
from eventjobs.exceptions import JobNotFound
from eventjobs.jobs import store as jobstore
from eventjobs.jobs.tasks import limit_key_of, limits_of
from eventjobs.payload import check_size, dumps, fast_dumps_each, json_array, validate_json

if TYPE_CHECKING:
    from eventjobs.backends import PostgresBackend

logger = logging.getLogger("eventjobs.jobs")
MAX_EXTRA_ATTEMPTS = 1_000_000


def _backend(task: Task | None = None, alias: str = "default") -> PostgresBackend:
    from django.tasks import task_backends

    from eventjobs.backends import PostgresBackend

    backend = task.get_backend() if task is not None else task_backends[alias]
    if not isinstance(backend, PostgresBackend):
        raise TypeError(f"backend {backend.alias!r} is not eventjobs.backends.PostgresBackend")
    backend.ensure_usable()
    return backend


def _require_existing(database: str, ids: list[int]) -> None:
    """JobNotFound naming the ids no job has, before anything is changed."""
    from eventjobs.models import Job

    found = set(Job.objects.using(database).filter(pk__in=ids).values_list("pk", flat=True))
    missing = [i for i in dict.fromkeys(ids) if i not in found]
    if missing:
        raise JobNotFound(missing)


def _item_texts(rows: list[list[Any]], pairs: list[tuple[list[Any], dict[str, Any]]]
                ) -> list[str]:
    """Each job's [args, kwargs(, limit key)] as JSON text, validated in one pass over the
    batch; a bad item is reported as calls[i][0] (its args) or calls[i][1] (its kwargs).
    Each job's arguments must fit EVENTJOBS["MAX_PAYLOAD_BYTES"] (the batch may be bigger)."""
    texts = fast_dumps_each(rows)
    if texts is None:  # something is not plain JSON: find it, or accept it (tuples, say)
        for n, (args, kwargs) in enumerate(pairs):
            validate_json(args, f"calls[{n}][0]")
            validate_json(kwargs, f"calls[{n}][1]")
        texts = [json.dumps(row, separators=(",", ":"), ensure_ascii=False) for row in rows]
    max_bytes = eventjobs_settings().max_payload_bytes
    for n, text in enumerate(texts):
        if len(text) * 4 > max_bytes:  # may be too big: measure args and kwargs apart
            args, kwargs = pairs[n]
            check_size(dumps(args, "calls"), f"calls[{n}][0]")
            check_size(dumps(kwargs, "calls"), f"calls[{n}][1]")
    return texts


def enqueue_many[**P, R](task: Task[P, R], calls: Iterable[tuple[Iterable[Any], dict[str, Any]]]
                         ) -> list[TaskResult[P, R]]:
    """Enqueue `task` once per (args, kwargs) pair in one statement, in the caller's transaction.

    Every payload is validated first: one bad item raises InvalidPayload and nothing is written.
    """
    backend = _backend(task)
    backend.validate_task(task)
    pairs = [(list(args), dict(kwargs)) for args, kwargs in calls]
    if not pairs:
        return []
    if getattr(task, "unique", False):
        # Each call may collide with a waiting job: one enqueue each, in the caller's
        # transaction (an error in any leaves it to the caller to roll back).
        dumps(pairs, "calls")  # every item is valid before the first insert
        return [backend.enqueue(task, args, kwargs) for args, kwargs in pairs]
    limited = bool(getattr(task, "concurrency", None) or getattr(task, "rate_limit", None))
    rows: list[list[Any]] = [[args, kwargs, limit_key_of(task, args, kwargs)] if limited
                             else [args, kwargs] for args, kwargs in pairs]
    items = json_array(_item_texts(rows, pairs))
    params = {
        "task_path": task.module_path, "backend": backend.alias, "queue": task.queue_name,
        "priority": task.priority, "takes_context": task.takes_context, "items": items,
        "run_after": task.run_after, "notify": backend.job_options.listen,
        **limits_of(task), **backend.effective_options(task),
    }
    with session_cursor(backend.database) as cursor:
        ids, enqueued_at = jobstore.insert_jobs(cursor, params)
    results = []
    for job_id, (args, kwargs) in zip(ids, pairs, strict=True):
        result = TaskResult(task=task, id=str(job_id), status=TaskResultStatus.READY,
                            enqueued_at=enqueued_at, started_at=None, finished_at=None,
                            last_attempted_at=None, args=args, kwargs=kwargs,
                            backend=backend.alias, errors=[], worker_ids=[])
        task_enqueued.send(type(backend), task_result=result)
        results.append(result)
    return results


def retry_job(*result_ids: str | int, extra_attempts: int = 1, backend: str = "default"
              ) -> list[str]:
    """Put FAILED jobs back to READY with `extra_attempts` more attempts; returns retried ids.

    Jobs that are not FAILED (including one another caller just retried) are skipped, and
    so is a unique job whose duplicate is waiting or running (it would run twice): both are
    logged. Ids that no job has raise JobNotFound, and then nothing is retried.
    """
    try:  # bounded so that max_attempts (attempts so far + extra) fits its column
        count(1, MAX_EXTRA_ATTEMPTS)(extra_attempts)
    except ValueError as exc:
        raise ValueError(f"extra_attempts {exc}") from None
    tasks_backend = _backend(alias=backend)
    ids = [int(i) for i in result_ids]
    _require_existing(tasks_backend.database, ids)
    with connections[tasks_backend.database].cursor() as cursor:
        for job_id, duplicate in jobstore.retry_blocked(cursor, ids):
            logger.warning("job %s not retried: it is unique and its duplicate, job %s, is "
                           "waiting or running", job_id, duplicate)
        try:
            # A savepoint: a duplicate enqueued in the instant between the check and the
            # update makes it fail, and the caller's transaction must survive that.
            with transaction.atomic(using=tasks_backend.database):
                retried = jobstore.retry_failed(cursor, ids, extra_attempts,
                                                tasks_backend.job_options.listen)
        except IntegrityError:
            retried = []
            for job_id in ids:
                with contextlib.suppress(IntegrityError), \
                        transaction.atomic(using=tasks_backend.database):
                    retried += jobstore.retry_failed(cursor, [job_id], extra_attempts,
                                                     tasks_backend.job_options.listen)
    for job_id in set(ids) - set(retried):
        logger.info("job %s not retried (not FAILED, or a unique duplicate waits)", job_id)
    return [str(i) for i in retried]


def cancel_job(*result_ids: str | int, reason: str = "cancelled by hand",
               backend: str = "default") -> list[str]:
    """Cancel jobs that have not started (FAILED with JobCancelled); returns cancelled ids.

    Jobs already running or finished are skipped; ids that no job has raise JobNotFound,
    and then nothing is cancelled."""
    tasks_backend = _backend(alias=backend)
    ids = [int(i) for i in result_ids]
    _require_existing(tasks_backend.database, ids)
    with connections[tasks_backend.database].cursor() as cursor:
        cancelled = jobstore.cancel_waiting(cursor, ids, reason)
    return [str(i) for i in cancelled]
