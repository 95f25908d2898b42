"""Concurrency and rate limits: admitting LIMITED jobs while their key has room.

A limited task's jobs wait as LIMITED, outside the claim index, so the plain claim path
never looks at limits. This promoter moves them to READY while their key has room, one
short transaction per key under an advisory lock (see promote_limited in sql/jobs.sql).
It runs in every runworker's maintenance (every POLL_SECONDS), in an idle worker before it
sleeps, and right after an outcome of a limited job is recorded, so a freed slot is used
at once. Safe from any number of processes at once.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from eventjobs.jobs import store as jobstore

# An idle worker looks at this many keys at most (one short transaction each) before it
# sleeps; maintenance looks at every key each POLL_SECONDS.
IDLE_KEYS = 20


def promote_keys(conn: psycopg.Connection, keys: Iterable[str] | None = None,
                 most: int | None = None) -> int:
    """Admit waiting jobs of `keys` (None: of every key that has some, or of the first
    `most` of them); returns how many became READY."""
    keys = jobstore.limited_keys(conn, most) if keys is None else sorted(set(keys))
    return sum(jobstore.promote_limited(conn, key) for key in keys)
