"""Building a job row for an enqueue, and inserting it (unique jobs included). No SQL here.

Used by PostgresBackend.enqueue (on the caller's session, in their transaction) and by the
periodic scheduler (on the heartbeat's connection, in the tick's transaction).

Unique jobs: the key is the sha256 of the task path, the queue and the canonical JSON of
args and kwargs (keys sorted, no spaces), so two calls are equal exactly when those are
equal as JSON (1 and 1.0 differ; a tuple equals a list). A partial unique index over the
statuses of a waiting or running job does the enforcing: the insert is
`ON CONFLICT DO NOTHING`, and then the existing job is read.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from django.tasks import Task

from eventjobs.jobs import store as jobstore
from eventjobs.jobs.tasks import limit_key_of, limits_of
from eventjobs.payload import dumps

if TYPE_CHECKING:
    from eventjobs.backends import PostgresBackend

# The other job of a unique pair can finish (or fail for good) between our insert and our
# read; we then insert again. Each round needs another job to change state in between.
UNIQUE_ROUNDS = 10


def unique_key(task: Task, args: list[Any], kwargs: dict[str, Any]) -> str:
    canonical = json.dumps([task.module_path, task.queue_name, args, kwargs], sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def job_params(backend: PostgresBackend, task: Task, args: Any, kwargs: Any) -> dict[str, Any]:
    """The enqueue statement's parameters. Validates everything before any SQL runs, so bad
    data never breaks the caller's transaction."""
    args, kwargs = list(args), dict(kwargs)
    params = {
        "task_path": task.module_path,
        "backend": backend.alias,
        "queue": task.queue_name,
        "priority": task.priority,
        "takes_context": task.takes_context,
        "args": dumps(args, "args", limit_size=True),
        "kwargs": dumps(kwargs, "kwargs", limit_size=True),
        "run_after": task.run_after,
        "notify": backend.job_options.listen,
        "unique_key": unique_key(task, args, kwargs) if getattr(task, "unique", False) else None,
        "limit_key": limit_key_of(task, args, kwargs),
        **limits_of(task),
        **backend.effective_options(task),
    }
    return params


def insert(cursor: Any, task: Task, params: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Insert the job, or find the unique job it duplicates. Returns (row, created): row has
    id, status, enqueued_at (and, for an existing job, all its result columns)."""
    key = params["unique_key"]
    unique_for = getattr(task, "unique_for", None)
    if key is not None and unique_for:
        recent = jobstore.unique_job(cursor, key, succeeded_within=unique_for)
        if recent is not None:
            return recent, False
    for _ in range(UNIQUE_ROUNDS):
        inserted = jobstore.insert_job(cursor, params)
        if inserted is not None:
            job_id, status, enqueued_at, _run_after, _ = inserted
            return {"id": job_id, "status": status, "enqueued_at": enqueued_at}, True
        # Another enqueue of the same job committed first (ON CONFLICT waited for it).
        existing = jobstore.unique_job(cursor, key)
        if existing is not None:
            return existing, False
    raise RuntimeError(f"unique job {task.module_path} changed state {UNIQUE_ROUNDS} times "
                       "while being enqueued; try again")
