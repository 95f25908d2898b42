"""The only module of the event half that runs SQL: thin functions over sql/events.sql.

`publish*` run on a Django cursor (so they join the caller's transaction and show in
Django's query logging). Consumers run on the raw psycopg connection under their Django
connection (`raw_connection()`), inside `transaction.atomic()` for batches so handlers'
ORM writes share the transaction, or on a separate autocommit control connection for
leases, membership and retry counters. Txids travel as text and are bound as
`%s::text::xid8`; Python compares them as ints.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from eventjobs.sql import query

Position = tuple[int, int]  # (txid, event_id), compared as ints


def _sql(name: str) -> str:
    return query("events.sql", name)


def _one(conn, name: str, params: dict | None = None, prepare: bool | None = None):
    return conn.execute(_sql(name), params, prepare=prepare).fetchone()


def _all(conn, name: str, params: dict | None = None, prepare: bool | None = None) -> list:
    return conn.execute(_sql(name), params, prepare=prepare).fetchall()


# -- publishing (the caller's session and transaction: db.session_cursor) --------------------
def insert_event(cursor, params: dict[str, Any]) -> tuple:
    """(id, created_at, txid text)."""
    cursor.execute(_sql("publish"), params)
    return cursor.fetchone()[:3]


def insert_events(cursor, params: dict[str, Any]) -> list[tuple]:
    cursor.execute(_sql("publish_many"), params)
    return [row[:3] for row in cursor.fetchall()]


def listen(conn) -> None:
    """Subscribe `conn` to event wake-ups."""
    conn.execute(_sql("listen"))


# -- cluster --------------------------------------------------------------------------------
def system_identifier(conn) -> int | None:
    """pg_control_system().system_identifier, or None when not allowed to read it."""
    try:
        with conn.transaction():
            return int(_one(conn, "system_identifier")[0])
    except psycopg.errors.InsufficientPrivilege:
        return None


def horizon(conn) -> int:
    return int(_one(conn, "horizon")[0])


def horizon_holder(conn) -> dict | None:
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


# -- groups, members, leases (control connection, autocommit) -------------------------------
def create_group(conn, *, group: str, partitions: int, start: str,
                 system_id: int | None) -> Position | None:
    """Create the group at its start position; returns that position if we created it."""
    with conn.transaction():
        if _one(conn, "create_group", {"group": group, "partitions": partitions,
                                       "system_identifier": system_id}) is None:
            return None
        if start == "latest":
            position = (horizon(conn), 0)
        else:
            position = (0, 0)
        conn.execute(_sql("create_cursors"), {"group": group, "partitions": partitions,
                                              "txid": str(position[0]),
                                              "event_id": position[1]})
        return position


def load_group(conn, group: str) -> tuple[int, int | None] | None:
    """(partitions, system_identifier) or None."""
    return _one(conn, "load_group", {"group": group})


def first_event(conn) -> tuple[int, int] | None:
    row = _one(conn, "first_event")
    return (row[0], int(row[1])) if row else None


def join_group(conn, *, member: str, group: str, host: str, pid: int) -> None:
    conn.execute(_sql("join_group"), {"member": member, "group": group, "host": host,
                                      "pid": pid})


def leave_group(conn, member: str) -> None:
    conn.execute(_sql("leave_group"), {"member": member})


def live_members(conn, *, group: str, member: str, lease: float) -> int:
    return _one(conn, "live_members", {"group": group, "member": member, "lease": lease})[0]


def renew_leases(conn, *, group: str, member: str, lease: float) -> set[int]:
    return {row[0] for row in _all(conn, "renew_leases",
                                   {"group": group, "member": member, "lease": lease})}


def claim_partitions(conn, *, group: str, member: str, lease: float,
                     limit: int) -> list[tuple[int, str | None]]:
    """[(partition, previous owner)]; a previous owner means it did not hand over cleanly."""
    if limit <= 0:
        return []
    return _all(conn, "claim_partitions", {"group": group, "member": member, "lease": lease,
                                           "limit": limit})


def release_partitions(conn, *, group: str, member: str, partitions: Sequence[int]) -> None:
    if partitions:
        conn.execute(_sql("release_partitions"), {"group": group, "member": member,
                                                  "partitions": list(partitions)})


# -- the batch (raw Django connection inside atomic) ----------------------------------------
# `prepare`: True prepares these hot queries server-side at once; False never does (the
# PREPARE_STATEMENTS setting, off behind transaction-mode poolers).
def lock_cursors(conn, *, group: str, member: str,
                 prepare: bool = True) -> list[tuple[int, int, int, int, bool]]:
    """[(partition, txid, event_id, generation, paused)] of our partitions, locked."""
    return [(p, int(t), e, g, paused) for p, t, e, g, paused in
            _all(conn, "lock_cursors", {"group": group, "member": member},
                 prepare=bool(prepare))]


def read_events(conn, *, after: Position, limit: int, partitions: Sequence[int] | None,
                n: int, prepare: bool = True) -> list[tuple]:
    """Raw rows (id, type, key, data text, source, created_at, txid text, key_hash)."""
    params = {"txid": str(after[0]), "event_id": after[1], "limit": limit}
    if partitions is None:
        return _all(conn, "read_events", params, prepare=bool(prepare))
    params.update(n=n, partitions=list(partitions))
    return _all(conn, "read_events_partitions", params, prepare=bool(prepare))


def advance(conn, *, group: str, member: str, generation: int, partitions: Sequence[int],
            position: Position, lease: float, prepare: bool = True) -> int:
    """Move our partitions to `position`; returns the number of rows moved."""
    cur = conn.execute(_sql("advance"), {
        "group": group, "member": member, "generation": generation,
        "partitions": list(partitions), "txid": str(position[0]), "event_id": position[1],
        "lease": lease}, prepare=bool(prepare))
    return cur.rowcount


def resolve_dead_letters(conn, *, group: str, event_ids: Sequence[int]) -> int:
    if not event_ids:
        return 0
    return conn.execute(_sql("resolve_dead_letters"),
                        {"group": group, "event_ids": list(event_ids)}).rowcount


def has_open_dead_letters(conn, group: str) -> bool:
    return _one(conn, "has_open_dead_letters", {"group": group})[0]


# -- failures ---------------------------------------------------------------------------------
def delivery_attempts(conn, *, group: str, event_id: int) -> int:
    row = _one(conn, "delivery_attempts", {"group": group, "event_id": event_id})
    return row[0] if row else 0


def count_delivery(conn, *, group: str, event_id: int) -> int:
    """Add one to the event's delivery count (commit before running it); returns it."""
    return _one(conn, "count_delivery", {"group": group, "event_id": event_id})[0]


def delivery_error(conn, *, group: str, event_id: int, error: str) -> None:
    conn.execute(_sql("delivery_error"), {"group": group, "event_id": event_id, "error": error})


def forget_deliveries(conn, *, group: str, event_ids: Sequence[int]) -> None:
    if event_ids:
        conn.execute(_sql("forget_deliveries"), {"group": group, "event_ids": list(event_ids)})


def dead_letter(conn, *, group: str, event_id: int, error: str, traceback: str,
                attempts: int) -> int | None:
    row = _one(conn, "dead_letter", {"group": group, "event_id": event_id, "error": error,
                                     "traceback": traceback, "attempts": attempts})
    return row[0] if row else None


def record_error(conn, *, group: str, error: dict) -> None:
    conn.execute(_sql("record_error"), {"group": group, "error": json.dumps(error)})


# -- burst --------------------------------------------------------------------------------------
def last_event(conn) -> Position | None:
    row = _one(conn, "last_event")
    return (int(row[0]), row[1]) if row else None


def pending_partitions(conn, *, group: str, upto: Position, n: int) -> list[int]:
    return [row[0] for row in _all(conn, "pending_partitions", {
        "group": group, "txid": str(upto[0]), "event_id": upto[1], "n": n})]


# -- monitoring -------------------------------------------------------------------------------
def cursors_of_group(conn, group: str) -> list[dict]:
    return [{"partition": p, "txid": int(t), "event_id": e, "generation": g, "paused": paused,
             "owner": owner, "lease_expires_at": lease}
            for p, t, e, g, paused, owner, lease in _all(conn, "cursors_of_group",
                                                        {"group": group})]


def group_lag(conn, *, group: str, after: Position, n: int, types: Sequence[str] | None,
              cap: int) -> int:
    exact = [t for t in types or () if not t.endswith("*")]
    prefixes = [_like_prefix(t[:-1]) for t in types or () if t.endswith("*")]
    return _one(conn, "group_lag", {
        "group": group, "txid": str(after[0]), "event_id": after[1], "n": n,
        "all_types": types is None, "types": exact, "prefixes": prefixes, "cap": cap})[0]


def pending_for_new_group(conn, *, types: Sequence[str] | None, cap: int) -> tuple[int, bool]:
    """(events a group that never ran will handle among the log's first `cap`, capped)."""
    exact = [t for t in types or () if not t.endswith("*")]
    prefixes = [_like_prefix(t[:-1]) for t in types or () if t.endswith("*")]
    matching, read = _one(conn, "pending_for_new_group", {
        "all_types": types is None, "types": exact, "prefixes": prefixes, "cap": cap})
    return matching, read >= cap


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def waiting_above_horizon(conn, after: Position) -> bool:
    return _one(conn, "waiting_above_horizon", {"txid": str(after[0]), "event_id": after[1]})[0]


def watch_horizon(conn, *, group: str, after: Position) -> tuple[int, datetime, float] | None:
    """(horizon xid, first seen, seconds) when committed events past `after` wait behind
    the horizon (recorded on the group, kept while the horizon stays), else None."""
    row = _one(conn, "watch_horizon", {"group": group, "txid": str(after[0]),
                                       "event_id": after[1]})
    if row is None or row[0] is None:
        return None
    return int(row[0]), row[1], row[2] or 0.0


def stuck_groups(conn, seconds: float) -> list[tuple[str, int, datetime]]:
    """Groups held back by the same horizon for more than `seconds` (still now)."""
    return [(name, int(xid), since) for name, xid, since in
            _all(conn, "stuck_groups", {"seconds": seconds})]


# -- control (consumer_group command) ---------------------------------------------------------
def lock_group(conn, group: str) -> None:
    """Lock the group's cursor rows for this transaction (waits for a running batch)."""
    conn.execute(_sql("lock_group"), {"group": group})


def reset_group(conn, *, group: str, position: Position) -> list[int]:
    """Move every partition to `position`; returns the partitions that moved."""
    rows = _all(conn, "reset_group", {"group": group, "txid": str(position[0]),
                                      "event_id": position[1]})
    if rows:
        conn.execute(_sql("forget_group_deliveries"), {"group": group})
    return [row[0] for row in rows]


def count_redeliveries(conn, *, group: str, position: Position, n: int, cap: int) -> int:
    """How many events a reset of `group` to `position` delivers again (up to `cap`)."""
    return _one(conn, "count_redeliveries", {"group": group, "txid": str(position[0]),
                                             "event_id": position[1], "n": n, "cap": cap})[0]


def pause_group(conn, *, group: str, paused: bool) -> list[int]:
    return [row[0] for row in _all(conn, "pause_group", {"group": group, "paused": paused})]


def event_position(conn, event_id: int) -> Position | None:
    row = _one(conn, "event_position", {"event_id": event_id})
    return (int(row[0]), row[1]) if row else None


def position_at_time(conn, at: datetime) -> Position | None:
    row = _one(conn, "position_at_time", {"at": at})
    return (int(row[0]), row[1]) if row else None


def first_unhandled_id(conn, position: Position) -> int:
    """The smallest event id after `position` (old txids: call before rebase_events)."""
    return _one(conn, "first_unhandled", {"txid": str(position[0]), "event_id": position[1]})[0]


def translate_group(conn, *, group: str, system_id: int | None,
                    first_ids: Sequence[int]) -> None:
    """Re-anchor a group's cursors by event id after a restore (after rebase_events):
    partition i continues at event id first_ids[i]; everything before it counts as handled."""
    for partition, first in enumerate(first_ids):
        conn.execute(_sql("translate_cursor"), {"group": group, "partition": partition,
                                                "event_id": first - 1})
    conn.execute(_sql("set_system_identifier"), {"group": group, "system_identifier": system_id})


def rebase_events(conn) -> int:
    """Move txids copied from another cluster below this one's horizon (see translate)."""
    conn.execute(_sql("allow_rebase"))
    return conn.execute(_sql("rebase_events")).rowcount


# -- retention --------------------------------------------------------------------------------
def slowest_cursor(conn) -> tuple[str, Position] | None:
    row = _one(conn, "slowest_cursor")
    return (row[0], (int(row[1]), row[2])) if row else None


def prune_batch(conn, *, cutoff: datetime, force: bool, limit: int) -> int:
    """Delete one batch in its own transaction (the trigger's flag is transaction-local),
    never past the slowest group's position (read in the same statement) unless `force`."""
    with conn.transaction():
        conn.execute(_sql("allow_prune"))
        return conn.execute(_sql("prune_batch"), {
            "cutoff": cutoff, "force": force, "limit": limit}).rowcount


def count_blocked(conn, *, cutoff: datetime, after: Position) -> int:
    return _one(conn, "count_blocked", {"cutoff": cutoff, "txid": str(after[0]),
                                        "event_id": after[1]})[0]

