"""Exceptions raised by eventjobs; each has a one-line meaning."""

from __future__ import annotations

import math
from datetime import timedelta


class InvalidPayload(ValueError):
    """An argument or event data cannot be stored as JSON exactly as given."""


class WorkerLost(Exception):
    """The worker running this attempt died or lost its lease before finishing."""


class JobTimeout(Exception):
    """The attempt ran longer than its timeout and its process was killed."""


class JobCancelled(Exception):
    """The job was cancelled by hand before it finished."""


class TaskNotFound(Exception):
    """The job's task path no longer imports (e.g. a rolling deploy removed it)."""


class JobNotFound(LookupError):
    """No job has one of the ids given (`ids` lists them); nothing was changed."""

    def __init__(self, ids: list[int]):
        self.ids = list(ids)
        if len(self.ids) == 1:
            super().__init__(f"no job with id {self.ids[0]}")
        else:
            super().__init__(f"no jobs with ids {', '.join(map(str, self.ids))}")


class Snooze(Exception):  # noqa: N818 - a request, not an error: `raise Snooze(60)`
    """Raised by a task: run this job again after `seconds`, without charging an attempt or
    recording an error (each snooze is kept in the job's `snoozes`)."""

    def __init__(self, seconds: float | timedelta = 0):
        value = seconds.total_seconds() if isinstance(seconds, timedelta) else seconds
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or value < 0:
            raise ValueError(f"Snooze(seconds) needs 0 or more seconds (a number or a "
                             f"timedelta), got {seconds!r}")
        self.seconds = float(value)
        super().__init__(f"snoozed for {self.seconds:g}s")


class GroupNotFound(LookupError):
    """No consumer group of that name exists in the database (it is created when `consume`
    first runs it)."""


def describe(exc: BaseException) -> dict[str, str]:
    """The stored form of an exception: its class path, message and traceback, as text
    PostgreSQL accepts (NUL and lone surrogates, e.g. from undecodable file names, would
    make it refuse the record and hide the real error)."""
    import traceback

    cls = type(exc)
    return {
        "exception_class_path": f"{cls.__module__}.{cls.__qualname__}",
        "message": _storable(str(exc)[:2000]),
        "traceback": _storable("".join(traceback.format_exception(exc))),
    }


def one_line(exc: BaseException) -> str:
    """`module.Class: message`, for logs and dead letters."""
    cls = type(exc)
    return _storable(f"{cls.__module__}.{cls.__qualname__}: {exc}"[:2000])


def first_line(exc: BaseException) -> str:
    """`Class: first line of the message`, for one-line logs (an outage, a lost link)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _storable(text: str) -> str:
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
