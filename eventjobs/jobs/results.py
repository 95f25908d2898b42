"""Turning job rows into Django TaskResult objects (no SQL here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.tasks import Task, TaskResult, TaskResultStatus
from django.tasks.base import TaskError

from eventjobs.jobs.statuses import WAITING, JobStatus


def display_status(status: str) -> TaskResultStatus:
    """SCHEDULED and LIMITED are READY to Django (the one place that says so)."""
    return TaskResultStatus.READY if status in WAITING else TaskResultStatus(status)


def build_result[**P, R](task: Task[P, R], row: Mapping[str, Any], alias: str
                        ) -> TaskResult[P, R]:
    """A TaskResult for a job row (a dict of the job's columns)."""
    if task.priority != row["priority"] or task.queue_name != row["queue"]:
        task = task.using(priority=row["priority"], queue_name=row["queue"])
    result = TaskResult(
        task=task,
        id=str(row["id"]),
        status=display_status(row["status"]),
        enqueued_at=row["enqueued_at"],
        started_at=row.get("started_at"),
        finished_at=row.get("finished_at"),
        last_attempted_at=row.get("last_attempted_at"),
        args=row["args"],
        kwargs=row["kwargs"],
        backend=alias,
        errors=[
            TaskError(exception_class_path=e["exception_class_path"], traceback=e["traceback"])
            for e in row.get("errors") or []
        ],
        worker_ids=list(row.get("worker_ids") or []),
    )
    if row.get("status") == JobStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", row.get("return_value"))
    return result
