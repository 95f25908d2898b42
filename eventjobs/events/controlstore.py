"""SQL of the event half's cold paths: control (reset, pause, reprocess), monitoring,
retention and the in-process test runner. Thin functions over sql/events.sql; with
store.py (the consume path) the only modules of the event half that run SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from eventjobs.events.event import Event
from eventjobs.events.partitions import Position
from eventjobs.events.store import _all, _one, _sql, _value


# -- control (consumer_group command, admin, dead letters) -------------------------------------
def lock_group(conn: psycopg.Connection, group: str) -> None:
    """Lock the group's cursor rows for this transaction (waits for a running batch)."""
    conn.execute(_sql("lock_group"), {"group": group})


def reset_group(conn: psycopg.Connection, *, group: str, position: Position) -> list[int]:
    """Move every partition to `position`; returns the partitions that moved."""
    rows = _all(conn, "reset_group", {"group": group, "txid": str(position[0]),
                                      "event_id": position[1]})
    if rows:
        conn.execute(_sql("forget_group_deliveries"), {"group": group})
    return [row[0] for row in rows]


def count_redeliveries(conn: psycopg.Connection, *, group: str, position: Position, n: int, cap: int
                       ) -> int:
    """How many events a reset of `group` to `position` delivers again (up to `cap`)."""
    return _value(conn, "count_redeliveries", {"group": group, "txid": str(position[0]),
                                               "event_id": position[1], "n": n, "cap": cap})


def pause_group(conn: psycopg.Connection, *, group: str, paused: bool) -> list[int]:
    return [row[0] for row in _all(conn, "pause_group", {"group": group, "paused": paused})]


def event_position(conn: psycopg.Connection, event_id: int) -> Position | None:
    row = _one(conn, "event_position", {"event_id": event_id})
    return (int(row[0]), row[1]) if row else None


def position_at_time(conn: psycopg.Connection, at: datetime) -> Position | None:
    row = _one(conn, "position_at_time", {"at": at})
    return (int(row[0]), row[1]) if row else None


def replay_pending(conn: psycopg.Connection, *, group: str, event_id: int) -> bool:
    """Under lock_group: the event lies ahead of its partition's position (a replay)."""
    return _value(conn, "replay_pending", {"group": group, "event_id": event_id})


# -- monitoring -------------------------------------------------------------------------------
def horizon_holder(conn: psycopg.Connection) -> dict[str, Any] | None:
    """Who holds the horizon back: the oldest transaction with an xid (or a prepared one)."""
    row = _one(conn, "horizon_holder")
    prepared = _one(conn, "prepared_holder")
    if prepared and (row is None or prepared[3] > (row[8] or 0)):
        return {"pid": None, "since": prepared[1].isoformat(), "xid": prepared[2],
                "prepared_gid": prepared[0], "seconds": round(prepared[3], 3)}
    if row is None:
        return None
    pid, since, xid, state, user, app, db, sql, seconds = row
    return {"pid": pid, "since": since.isoformat() if since else None, "xid": xid,
            "state": state, "user": user, "application_name": app, "database": db,
            "query": sql, "seconds": round(seconds or 0.0, 3)}


def group_lag(conn: psycopg.Connection, *, group: str, after: Position, n: int,
              types: Sequence[str] | None, cap: int) -> int:
    exact = [t for t in types or () if not t.endswith("*")]
    prefixes = [_like_prefix(t[:-1]) for t in types or () if t.endswith("*")]
    return _value(conn, "group_lag", {
        "group": group, "txid": str(after[0]), "event_id": after[1], "n": n,
        "all_types": types is None, "types": exact, "prefixes": prefixes, "cap": cap})


def pending_for_new_group(conn: psycopg.Connection, *, types: Sequence[str] | None, cap: int
                          ) -> tuple[int, bool]:
    """(events a group that never ran will handle among the log's first `cap`, capped)."""
    exact = [t for t in types or () if not t.endswith("*")]
    prefixes = [_like_prefix(t[:-1]) for t in types or () if t.endswith("*")]
    row = _one(conn, "pending_for_new_group", {
        "all_types": types is None, "types": exact, "prefixes": prefixes, "cap": cap})
    assert row is not None  # an aggregate without GROUP BY returns one row
    matching, read = row
    return matching, read >= cap


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# -- retention --------------------------------------------------------------------------------
def slowest_cursor(conn: psycopg.Connection) -> tuple[str, Position] | None:
    row = _one(conn, "slowest_cursor")
    return (row[0], (int(row[1]), row[2])) if row else None


def prune_batch(conn: psycopg.Connection, *, cutoff: datetime, force: bool, limit: int) -> int:
    """Delete one batch in its own transaction (the trigger's flag is transaction-local),
    never past the slowest group's position (read in the same statement) unless `force`."""
    with conn.transaction():
        conn.execute(_sql("allow_prune"))
        return conn.execute(_sql("prune_batch"), {
            "cutoff": cutoff, "force": force, "limit": limit}).rowcount


def count_blocked(conn: psycopg.Connection, *, cutoff: datetime, after: Position) -> int:
    return _value(conn, "count_blocked", {"cutoff": cutoff, "txid": str(after[0]),
                                          "event_id": after[1]})


# -- eventjobs.testing.run_consumers (the caller's transaction) ---------------------------------
def read_events_unbounded(conn: psycopg.Connection, after: Position) -> list[Event]:
    """Every event after `after` this session sees, its own uncommitted ones included."""
    return [Event(i, t, k, d, s, c, int(x), h) for i, x, h, t, k, d, s, c in
            _all(conn, "read_events_unbounded", {"txid": str(after[0]), "event_id": after[1]})]


def move_cursors(conn: psycopg.Connection, *, group: str, partitions: Sequence[int],
                 position: Position) -> None:
    if partitions:
        conn.execute(_sql("move_cursors"), {"group": group, "partitions": list(partitions),
                                            "txid": str(position[0]), "event_id": position[1]})
