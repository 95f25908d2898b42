"""The Task class of eventjobs backends: Django's Task plus per-task options.

Every option is validated when the task is decorated (Django's Task.__post_init__ asks
the backend), so a typo fails at import with the option's name, not in a worker at 3 a.m.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.tasks import Task
from django.tasks.exceptions import InvalidTask

from eventjobs.conf import count, positive_seconds, seconds_or_zero

KeyOption = str | Callable[..., Any] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventjobsTask(Task):
    """A Task with eventjobs' options, used through `@task(max_attempts=5, ...)`.

    None means "use the backend's OPTIONS" (retry options) or "off" (the others).
    """

    max_attempts: int | None = None
    retry_backoff: float | None = None
    timeout: float | None = None
    # One waiting or running job per (task, queue, args, kwargs); see jobs/enqueue.py.
    unique: bool = False
    unique_for: float | None = None
    # At most N attempts at once / starts per window, across every worker.
    concurrency: int | None = None
    concurrency_key: KeyOption = None
    rate_limit: str | None = None
    rate_limit_key: KeyOption = None
    # Run the body and record its success in one transaction (exactly once for DB work).
    atomic: bool = False


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be True or False, got {value!r}")
    return value


def _key(value: Any) -> KeyOption:
    if not (isinstance(value, str) and value) and not callable(value):
        raise ValueError(f"must be a keyword argument's name or a callable of the task's "
                         f"arguments, got {value!r}")
    return value


_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_WINDOWS = {"s": 1.0, "m": 60.0, "h": 3600.0}
# No start older than this counts under any rate (maintenance forgets them).
LONGEST_RATE_WINDOW = max(_WINDOWS.values())


def parse_rate(value: Any) -> tuple[int, float]:
    """"10/s" -> (10, 1.0); also "/m" and "/h". ValueError saying what is accepted."""
    match = _RATE.match(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f'must look like "10/s", "100/m" or "1000/h", got {value!r}')
    return int(match.group(1)), _WINDOWS[match.group(2)[0]]


# Per-task options: how each is validated and what it means (for the error message).
_OPTION_RULES: dict[str, tuple[Callable[[Any], Any], str]] = {
    "max_attempts": (count(1), "it counts the first run"),
    "retry_backoff": (seconds_or_zero, "base of the exponential backoff, in seconds"),
    "timeout": (positive_seconds, "seconds before the attempt is killed"),
    "unique": (_boolean, "one waiting job per task, queue, args and kwargs"),
    "unique_for": (positive_seconds, "also return a job that succeeded this many seconds ago"),
    "concurrency": (count(1), "attempts of this task running at once, across all workers"),
    "concurrency_key": (_key, "makes the concurrency limit per key"),
    "rate_limit": (parse_rate, "starts of this task per second, minute or hour"),
    "rate_limit_key": (_key, "makes the rate limit per key"),
    "atomic": (_boolean, "run the task and record its success in one transaction"),
}


def validate_task_options(task: Task) -> None:
    """Raise InvalidTask for options that cannot work (at decoration and enqueue)."""
    for name, (parse, meaning) in _OPTION_RULES.items():
        value = getattr(task, name, None)
        if value is None:
            continue
        try:
            parse(value)
        except ValueError as exc:
            raise InvalidTask(f"@task({name}={value!r}): {name} {exc} ({meaning})") from None
    _validate_combinations(task)


def _validate_combinations(task: Task) -> None:
    get = lambda name: getattr(task, name, None)  # noqa: E731 - ImmediateBackend tasks too
    for key, limit in (("unique_for", "unique"), ("concurrency_key", "concurrency"),
                       ("rate_limit_key", "rate_limit")):
        if get(key) is not None and not get(limit):
            raise InvalidTask(f"@task({key}=...) needs {limit}= as well")
    if get("concurrency") and get("rate_limit") and get("concurrency_key") != get("rate_limit_key"):
        raise InvalidTask("@task(concurrency_key=..., rate_limit_key=...): with both limits "
                          "set, both keys must be the same (a job counts under one key); "
                          "pass the same name or callable to both, or neither")
    if get("atomic") and inspect.iscoroutinefunction(task.func):
        raise InvalidTask("@task(atomic=True) needs a plain (def) function: an async task's "
                          "queries run on other threads, outside the job's transaction")


def limits_of(task: Task) -> dict[str, Any]:
    """The limit columns of a job row for `task` (the key itself is added at enqueue)."""
    rate = getattr(task, "rate_limit", None)
    rate_count, rate_window = parse_rate(rate) if rate else (None, None)
    return {"concurrency": getattr(task, "concurrency", None), "rate_count": rate_count,
            "rate_window": rate_window}


def limit_key_of(task: Task, args: list[Any], kwargs: dict[str, Any]) -> str | None:
    """The key a limited task's job counts under: the task path, plus ":" and the value of
    concurrency_key / rate_limit_key for this call. None for a task without limits."""
    if not (getattr(task, "concurrency", None) or getattr(task, "rate_limit", None)):
        return None
    key = getattr(task, "concurrency_key", None) or getattr(task, "rate_limit_key", None)
    if key is None:
        return task.module_path
    if callable(key):
        value = key(*args, **kwargs)
    elif key in kwargs:
        value = kwargs[key]
    else:
        raise InvalidTask(f"{task.module_path}: its limit key {key!r} is not among this call's "
                          f"keyword arguments {sorted(kwargs)}; pass {key}=... by keyword")
    return f"{task.module_path}:{value}"
