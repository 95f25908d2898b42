"""`@eventjobs.periodic`: schedules declared in code, above `@task`.

    @eventjobs.periodic(cron="*/5 * * * *")             # croniter syntax; timezone= for cron
    @eventjobs.periodic(every=30, kwargs={"full": False})  # seconds, or a timedelta
    @task
    def refresh_feeds(full=True): ...

A schedule only says when; `runworker` enqueues its ticks (eventjobs/jobs/scheduler.py).
Schedules are found by importing every installed app's `tasks` module when runworker
starts (`autodiscover`). No SQL here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from django.core.exceptions import ImproperlyConfigured
from django.tasks import Task
from django.utils.module_loading import autodiscover_modules

from eventjobs.payload import dumps

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Schedule:
    """When a task runs: a cron expression (in `timezone`) or every N seconds."""

    name: str
    task: Task
    cron: str | None = None
    every: float | None = None  # seconds; ticks are multiples of it since the Unix epoch
    timezone: str = "UTC"
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> str:
        return f"cron:{self.cron}" if self.cron is not None else f"every:{self.every:g}"

    def latest_tick(self, now: datetime) -> datetime:
        """The newest tick at or before `now` (an aware datetime), in UTC."""
        if self.every is not None:
            seconds = (now - _EPOCH).total_seconds()
            return _EPOCH + timedelta(seconds=math.floor(seconds / self.every) * self.every)
        local = now.astimezone(ZoneInfo(self.timezone)) + timedelta(microseconds=1)
        return croniter(self.cron, local).get_prev(datetime).astimezone(UTC)

    def next_tick(self, tick: datetime) -> datetime:
        """The first tick after `tick`, in UTC."""
        if self.every is not None:
            return tick + timedelta(seconds=self.every)
        local = tick.astimezone(ZoneInfo(self.timezone))
        return croniter(self.cron, local).get_next(datetime).astimezone(UTC)


_registry: dict[str, Schedule] = {}


def periodic(*, cron: str | None = None, every: float | timedelta | None = None,
             args: list[Any] | tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
             name: str | None = None, timezone: str | None = None
             ) -> Callable[[Task], Task]:
    """Run the task below on a schedule (see the module docstring); `name` defaults to the
    task's path and must be unique. Each tick is enqueued once, however many runworkers."""
    every_seconds = _check_when(cron, every, timezone)
    args, kwargs = list(args), dict(kwargs or {})
    dumps(args, "@periodic(args=...)")
    dumps(kwargs, "@periodic(kwargs=...)")

    def register(task: Task) -> Task:
        if not isinstance(task, Task):
            raise TypeError(f"@eventjobs.periodic goes above @task (it got "
                            f"{type(task).__name__} {getattr(task, '__name__', task)!r})")
        schedule = Schedule(name=name or task.module_path, task=task, cron=cron,
                            every=every_seconds, timezone=timezone or "UTC",
                            args=args, kwargs=kwargs)
        existing = _registry.get(schedule.name)
        if existing is not None and existing.task.module_path != task.module_path:
            raise ImproperlyConfigured(
                f"two periodic schedules are named {schedule.name!r} ({existing.task.module_path}"
                f" and {task.module_path}); give one of them another name=")
        _registry[schedule.name] = schedule  # a re-import replaces its own schedule
        return task

    return register


def _check_when(cron: str | None, every: float | timedelta | None, timezone: str | None
                ) -> float | None:
    """Validate the schedule's timing; returns `every` in seconds."""
    if (cron is None) == (every is None):
        raise TypeError("@eventjobs.periodic needs exactly one of cron=\"*/5 * * * *\" or "
                        "every=seconds")
    if cron is not None:
        if not isinstance(cron, str) or not croniter.is_valid(cron):
            raise ValueError(f"@eventjobs.periodic(cron={cron!r}): not a cron expression "
                             "(five fields, e.g. \"*/5 * * * *\"; a sixth is seconds)")
        try:
            ZoneInfo(timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"@eventjobs.periodic(timezone={timezone!r}): not a time zone "
                             "name (e.g. \"Europe/Paris\")") from None
        return None
    if timezone is not None:
        raise TypeError("@eventjobs.periodic(timezone=...) applies to cron= only (every= "
                        "counts seconds)")
    seconds = every.total_seconds() if isinstance(every, timedelta) else every
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) \
            or not math.isfinite(seconds) or seconds < 1:
        raise ValueError(f"@eventjobs.periodic(every={every!r}): needs at least 1 second (a "
                         "number of seconds or a timedelta)")
    return float(seconds)


def schedules() -> list[Schedule]:
    """Every registered schedule, by name."""
    return [_registry[name] for name in sorted(_registry)]


def autodiscover() -> list[Schedule]:
    """Import every installed app's `tasks` module (where @periodic tasks live)."""
    autodiscover_modules("tasks")
    return schedules()
