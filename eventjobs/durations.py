"""Human durations and times for commands: "30d", "12h", "90m", "45s", "2w", ISO 8601.

One parser for every command (`prune_jobs`, `prune_events`, `consumer_group reset`), so
the same text means the same thing and a mistake gets the same message everywhere.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

from django.utils.dateparse import parse_datetime

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """'30d' -> timedelta(days=30); ValueError with an example otherwise."""
    match = _PATTERN.match(text or "")
    if not match:
        raise ValueError(f"{text!r} is not a duration; use a number and a unit s, m, h, d "
                         "or w (e.g. 7d, 12h, 90m)")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (naive means UTC) or a duration ago ('2h'); ValueError otherwise."""
    if _PATTERN.match(text or ""):
        return (now or datetime.now(UTC)) - parse_duration(text)
    value = parse_datetime(text or "")
    if value is None:
        raise ValueError(f"{text!r} is neither an ISO 8601 time (2026-12-01T09:30) nor a "
                         "duration ago like 2h")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def in_words(delta: timedelta) -> str:
    """timedelta(days=7) -> '7 days'; for messages people read."""
    seconds = delta.total_seconds()
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    amount = round(seconds, 3)
    return f"{amount:g} second{'s' if amount != 1 else ''}"


def duration_argument(text: str) -> timedelta:
    """argparse `type=`: keeps the message (argparse hides a ValueError's)."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None

