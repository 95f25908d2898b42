"""Event retention (`prune_events`) and the age/time arguments of the event commands."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils.dateparse import parse_datetime

from . import eventstore
from .partitions import Position, show_position

logger = logging.getLogger("eventjobs.retention")

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """'30d', '12h', '90m', '45s', '2w' -> timedelta; ValueError otherwise."""
    match = _AGE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an age like 30d, 12h, 90m, 45s or 2w")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def parse_when(text: str) -> datetime:
    """An ISO 8601 time (naive means UTC) or an age ago ('2h')."""
    try:
        return datetime.now(UTC) - parse_age(text)
    except ValueError:
        pass
    value = parse_datetime(text)
    if value is None:
        raise ValueError(f"{text!r} is neither an ISO 8601 time nor an age like 2h")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class PruneResult:
    deleted: int
    blocking_group: str | None  # the slowest group, when it kept old events
    blocking_position: Position | None
    kept: int  # old events kept because of it


def prune(conn, *, older_than: timedelta, force: bool = False, batch_size: int = 5000) -> PruneResult:
    """Delete events older than `older_than`, in batches of their own transactions, never
    past the slowest group's position unless `force`. Every group with cursors holds
    retention back, paused ones too; `consumer_group forget` a retired group.
    `conn` is a raw autocommit connection."""
    cutoff = eventstore.database_now(conn) - older_than
    deleted = 0
    while True:
        # Each batch reads the slowest position again: a reset or a new group meanwhile
        # holds retention back from the next batch on.
        n = eventstore.prune_batch(conn, cutoff=cutoff, force=force, limit=batch_size)
        deleted += n
        if n < batch_size:
            break
    slowest = eventstore.slowest_cursor(conn)
    kept = 0
    if slowest is not None and not force:
        kept = eventstore.count_blocked(conn, cutoff=cutoff, after=slowest[1])
    if kept:
        logger.warning("prune_events: kept %s event(s) older than %s: group %s has not handled "
                       "them yet (position %s); --force deletes them anyway", kept, cutoff,
                       slowest[0], show_position(slowest[1]))
    return PruneResult(deleted, slowest[0] if kept else None, slowest[1] if kept else None, kept)
