"""The Task class of eventjobs backends: Django's Task plus per-task retry options."""

from __future__ import annotations

from dataclasses import dataclass

from django.tasks import Task
from django.tasks.exceptions import InvalidTask


@dataclass(frozen=True, slots=True, kw_only=True)
class EventjobsTask(Task):
    """A Task that also carries `max_attempts`, `retry_backoff` (seconds) and `timeout`.

    None means "use the backend's OPTIONS". Used through `@task(max_attempts=5)`.
    """

    max_attempts: int | None = None
    retry_backoff: float | None = None
    timeout: float | None = None


def validate_task_options(task: Task) -> None:
    """Raise InvalidTask for retry options that cannot work."""
    max_attempts = getattr(task, "max_attempts", None)
    if max_attempts is not None and (
        isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1
    ):
        raise InvalidTask(
            f"max_attempts must be a whole number >= 1 (it counts the first run), "
            f"not {max_attempts!r}."
        )
    for name in ("retry_backoff", "timeout"):
        value = getattr(task, name, None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (
            name == "timeout" and value == 0
        ):
            raise InvalidTask(f"{name} must be a positive number of seconds, not {value!r}.")
