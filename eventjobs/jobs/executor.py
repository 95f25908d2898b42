"""Runs one task attempt and captures its outcome. No SQL here.

Everything user code can do wrong is caught and becomes the attempt's outcome, never a
dead worker: a task that raises (SystemExit and KeyboardInterrupt included), a
`task_started` receiver that raises, a return value JSON cannot hold, a module that fails
to import for a reason other than being absent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.signals import task_finished, task_started
from django.utils.json import normalize_json
from django.utils.module_loading import import_string

from eventjobs.exceptions import Snooze, describe
from eventjobs.payload import dumps

logger = logging.getLogger("eventjobs.worker")


class TaskMissing(ImportError):
    """The task path does not resolve (not deployed yet, or removed)."""


@dataclass
class Outcome:
    """What one attempt produced: a JSON return value, an error record, or a snooze."""

    ok: bool
    return_json: str | None = None
    error: dict[str, Any] | None = None
    exception: BaseException | None = None  # for in-process runners that re-raise it
    snooze: float | None = None  # seconds: the task raised eventjobs.Snooze
    # An atomic task recorded its own outcome in its transaction (ok: SUCCESSFUL; not ok:
    # its lease was lost and it rolled back); limit_key of the job, to promote its key.
    recorded: bool = False
    limit_key: str | None = None


def import_task(task_path: str) -> Task[..., Any]:
    """The Task at `task_path`. TaskMissing when a module or name does not exist (a rolling
    deploy may bring it); any other exception the module raises at import (a SyntaxError,
    a NameError, an error of its own) is the real error and propagates."""
    try:
        obj = import_string(task_path)
    except (ImportError, AttributeError) as exc:  # a module, a name or a dependency missing
        raise TaskMissing(f"task {task_path!r} does not import: {exc}") from exc
    if not isinstance(obj, Task):
        raise TaskMissing(f"{task_path!r} is a {type(obj).__name__}, not a Task (use @task)")
    return obj


def execute(task: Task, task_result: TaskResult, sender: type) -> Outcome:
    """Run the task function for `task_result` (status RUNNING), sending task_started."""
    try:
        task_started.send(sender=sender, task_result=task_result)
        if task.takes_context:
            value = task.call(TaskContext(task_result=task_result), *task_result.args,
                              **task_result.kwargs)
        else:
            value = task.call(*task_result.args, **task_result.kwargs)
        return Outcome(ok=True, return_json=return_json(value))
    except Snooze as exc:  # not a failure: run again later, uncharged
        return Outcome(ok=False, snooze=exc.seconds)
    except BaseException as exc:  # noqa: BLE001 - a task's SystemExit must not stop the worker
        # Includes a return value JSON cannot hold (normalize_json's TypeError,
        # InvalidPayload) and a task_started receiver's error: the attempt failed, and says why.
        return Outcome(ok=False, error=describe(exc), exception=exc)


def return_json(value: Any) -> str:
    """A return value as stored JSON: Django's normalisation, then eventjobs' validation.
    The common results (None, a bool, an int) skip both: they are JSON as they are."""
    if value is None or type(value) in (bool, int):
        return "null" if value is None else ("true" if value is True else
                                             "false" if value is False else str(value))
    return dumps(normalize_json(value), "return value")


def send_finished(task_result: TaskResult, status: TaskResultStatus, sender: type,
                  return_value: Any = None, error: dict | None = None) -> None:
    """Mark `task_result` finished for good and send task_finished. A receiver's error is
    logged: the outcome is already recorded, and user code must not stop the worker."""
    if error is not None:
        task_result.errors.append(TaskError(exception_class_path=error["exception_class_path"],
                                            traceback=error["traceback"]))
    object.__setattr__(task_result, "status", status)
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(task_result, "_return_value", return_value)
    for receiver, response in task_finished.send_robust(sender=sender, task_result=task_result):
        if isinstance(response, BaseException):
            logger.error("a task_finished receiver (%s) raised for job %s", receiver,
                         task_result.id, exc_info=response)
