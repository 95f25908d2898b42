"""The Task class of eventjobs backends: Django's Task plus per-task retry options."""

from __future__ import annotations

from dataclasses import dataclass

from django.tasks import Task
from django.tasks.exceptions import InvalidTask

from eventjobs.conf import count, positive_seconds, seconds_or_zero


@dataclass(frozen=True, slots=True, kw_only=True)
class EventjobsTask(Task):
    """A Task that also carries `max_attempts`, `retry_backoff` (seconds) and `timeout`.

    None means "use the backend's OPTIONS". Used through `@task(max_attempts=5)`.
    """

    max_attempts: int | None = None
    retry_backoff: float | None = None
    timeout: float | None = None


# Per-task options and how each is validated (the same rules as the backend's OPTIONS).
_OPTION_RULES = {
    "max_attempts": (count(1), "it counts the first run"),
    "retry_backoff": (seconds_or_zero, "base of the exponential backoff, in seconds"),
    "timeout": (positive_seconds, "seconds before the attempt is killed"),
}


def validate_task_options(task: Task) -> None:
    """Raise InvalidTask for retry options that cannot work (at decoration and enqueue)."""
    for name, (parse, meaning) in _OPTION_RULES.items():
        value = getattr(task, name, None)
        if value is None:
            continue
        try:
            parse(value)
        except ValueError as exc:
            raise InvalidTask(f"@task({name}={value!r}): {name} {exc} ({meaning})") from None
