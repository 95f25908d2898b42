"""Event retention (`prune_events`) and the age/time arguments of the event commands."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from eventjobs.db import database_now
from eventjobs.events import controlstore
from eventjobs.events.partitions import Position, position_in_words

logger = logging.getLogger("eventjobs.retention")


@dataclass
class PruneResult:
    deleted: int
    blocking_group: str | None  # the slowest group, when it kept old events
    blocking_position: Position | None
    kept: int  # old events kept because of it


def prune(conn: psycopg.Connection, *, older_than: timedelta, force: bool = False,
          batch_size: int = 5000, progress: Callable[[int], None] | None = None) -> PruneResult:
    """Delete events older than `older_than`, in batches of their own transactions, never
    past the slowest group's position unless `force`. Every group with cursors holds
    retention back, paused ones too; `consumer_group forget` a retired group.
    `conn` is a raw autocommit connection."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number of at least 1, got {batch_size!r}")
    cutoff = database_now(conn) - older_than
    deleted = 0
    while True:
        # Each batch reads the slowest position again: a reset or a new group meanwhile
        # holds retention back from the next batch on.
        n = controlstore.prune_batch(conn, cutoff=cutoff, force=force, limit=batch_size)
        deleted += n
        if progress is not None and n:
            progress(deleted)
        if n < batch_size:
            break
    slowest = controlstore.slowest_cursor(conn)
    if slowest is None or force:
        return PruneResult(deleted, None, None, 0)
    kept = controlstore.count_blocked(conn, cutoff=cutoff, after=slowest[1])
    if kept:
        logger.warning("prune_events: kept %s event(s) older than %s: group %s has not handled "
                       "them yet (it is at %s); --force deletes them anyway", kept, cutoff,
                       slowest[0], position_in_words(slowest[1]))
    return PruneResult(deleted, slowest[0] if kept else None, slowest[1] if kept else None, kept)
