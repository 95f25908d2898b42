"""Runs one task attempt and captures its outcome. No SQL here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.signals import task_finished, task_started
from django.utils.json import normalize_json

from eventjobs.exceptions import describe
from eventjobs.payload import dumps


@dataclass
class Outcome:
    """What one attempt produced: a JSON return value, or an error record."""

    ok: bool
    return_json: str | None = None
    error: dict[str, Any] | None = None


def error_record(exc: BaseException) -> dict[str, Any]:
    """The stored form of an exception: Django's TaskError fields plus the message."""
    return describe(exc)


def execute(task: Task, task_result: TaskResult, sender: type) -> Outcome:
    """Run the task function for `task_result` (status RUNNING), sending task_started."""
    task_started.send(sender=sender, task_result=task_result)
    try:
        if task.takes_context:
            value = task.call(TaskContext(task_result=task_result), *task_result.args,
                              **task_result.kwargs)
        else:
            value = task.call(*task_result.args, **task_result.kwargs)
        value = normalize_json(value)
        return Outcome(ok=True, return_json=dumps(value, "return value"))
    except BaseException as exc:  # noqa: BLE001 - a task's SystemExit must not stop the worker
        # Includes a return value JSON cannot hold (normalize_json's TypeError,
        # InvalidPayload): the attempt failed, and says why.
        return Outcome(ok=False, error=error_record(exc))


def send_finished(task_result: TaskResult, status: TaskResultStatus, sender: type,
                  return_value: Any = None, error: dict | None = None) -> None:
    """Mark `task_result` finished for good and send task_finished."""
    if error is not None:
        task_result.errors.append(TaskError(exception_class_path=error["exception_class_path"],
                                            traceback=error["traceback"]))
    object.__setattr__(task_result, "status", status)
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(task_result, "_return_value", return_value)
    task_finished.send(sender=sender, task_result=task_result)
