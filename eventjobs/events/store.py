"""SQL of the consume path: thin functions over sql/events.sql (with controlstore.py, the
only modules of the event half that run SQL).

`publish*` run on a Django cursor (so they join the caller's transaction and show in
Django's query logging). A batch runs on the raw psycopg connection under the consumer's
Django connection, inside `transaction.atomic()` so handlers' ORM writes share its
transaction, through server-side-binding cursors (so PREPARE_STATEMENTS can prepare its
hot statements). Leases, membership and delivery counts run on the process's own
autocommit control connection. Txids travel as text, are bound as `%s::text::xid8` and
compared in Python as ints.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

from eventjobs.events.partitions import Position
from eventjobs.events.window import Read, Window
from eventjobs.sql import query

if TYPE_CHECKING:
    from django.db.backends.utils import CursorWrapper


def _sql(name: str) -> str:
    return query("events.sql", name)


def _one(conn: psycopg.Connection, name: str, params: dict[str, Any] | None = None
         ) -> tuple[Any, ...] | None:
    return conn.execute(_sql(name), params).fetchone()


def _value(conn: psycopg.Connection, name: str, params: dict[str, Any] | None = None) -> Any:
    """The first column of a statement that returns exactly one row (a SELECT without
    FROM, an aggregate, an upsert's RETURNING)."""
    row = _one(conn, name, params)
    assert row is not None, f"{name} returns one row"
    return row[0]


def _all(conn: psycopg.Connection, name: str, params: dict[str, Any] | None = None
         ) -> list[tuple[Any, ...]]:
    return conn.execute(_sql(name), params).fetchall()


def _batch(conn: psycopg.Connection, name: str, params: dict[str, Any], prepare: bool
           ) -> psycopg.Cursor:
    """A batch statement on the Django connection: server-side binding, prepared unless
    PREPARE_STATEMENTS is off (Django's own cursors bind client-side and never prepare)."""
    with _preparing(conn, prepare):
        return psycopg.Cursor(conn).execute(_sql(name), params, prepare=prepare)


@contextmanager
def _preparing(conn: psycopg.Connection, prepare: bool) -> Iterator[None]:
    """Django opens connections with prepare_threshold=None, which makes psycopg ignore
    `prepare`: lift it only while our statements run (as db.session_cursor does)."""
    saved = conn.prepare_threshold
    if prepare and saved is None:
        conn.prepare_threshold = 1 << 30
    try:
        yield
    finally:
        conn.prepare_threshold = saved


# -- publishing (the caller's session and transaction: db.session_cursor) --------------------
def insert_event(cursor: CursorWrapper, params: dict[str, Any]) -> tuple[int, datetime, str]:
    """(id, created_at, txid text)."""
    cursor.execute(_sql("publish"), params)
    return cursor.fetchone()[:3]


def insert_events(cursor: CursorWrapper, params: dict[str, Any]
                  ) -> list[tuple[int, datetime, str]]:
    cursor.execute(_sql("publish_many"), params)
    return [row[:3] for row in cursor.fetchall()]


def listen(conn: psycopg.Connection) -> None:
    """Subscribe `conn` to event wake-ups."""
    conn.execute(_sql("listen"))


# -- cluster --------------------------------------------------------------------------------
def system_identifier(conn: psycopg.Connection) -> int | None:
    """pg_control_system().system_identifier, or None when not allowed to read it."""
    try:
        with conn.transaction():  # a refusal must not abort the caller's transaction
            return int(_value(conn, "system_identifier"))
    except psycopg.errors.InsufficientPrivilege:
        return None


def horizon(conn: psycopg.Connection) -> int:
    return int(_value(conn, "horizon"))


# -- groups, members, leases (control connection, autocommit) -------------------------------
def create_group(conn: psycopg.Connection, *, group: str, partitions: int, start: str,
                 system_id: int | None) -> Position | None:
    """Create the group at its start position; returns that position if we created it."""
    # One transaction: a group row without its cursors would be a group nobody can run.
    with conn.transaction():
        if _one(conn, "create_group", {"group": group, "partitions": partitions,
                                       "system_identifier": system_id}) is None:
            return None
        position = (horizon(conn), 0) if start == "latest" else (0, 0)
        conn.execute(_sql("create_cursors"), {"group": group, "partitions": partitions,
                                              "txid": str(position[0]),
                                              "event_id": position[1]})
        return position


def load_group(conn: psycopg.Connection, group: str) -> tuple[int, int | None] | None:
    """(partitions, system_identifier) or None."""
    return _one(conn, "load_group", {"group": group})


def first_event(conn: psycopg.Connection) -> tuple[int, int] | None:
    row = _one(conn, "first_event")
    return (row[0], int(row[1])) if row else None


def register_member(conn: psycopg.Connection, *, member: str, group: str, host: str, pid: int
                    ) -> bool:
    """Record (or renew) a process's membership in `group`; False once the group is gone."""
    return _one(conn, "register_member", {"member": member, "group": group, "host": host,
                                          "pid": pid}) is not None


def deregister_member(conn: psycopg.Connection, member: str) -> None:
    conn.execute(_sql("deregister_member"), {"member": member})


def live_members(conn: psycopg.Connection, *, group: str, member: str, lease: float) -> int:
    return _value(conn, "live_members", {"group": group, "member": member, "lease": lease})


def renew_leases(conn: psycopg.Connection, *, group: str, member: str, lease: float) -> set[int]:
    return {row[0] for row in _all(conn, "renew_leases",
                                   {"group": group, "member": member, "lease": lease})}


def claim_partitions(conn: psycopg.Connection, *, group: str, member: str, lease: float,
                     limit: int) -> list[tuple[int, str | None]]:
    """[(partition, previous owner)]; a previous owner means it did not hand over cleanly."""
    if limit <= 0:
        return []
    return _all(conn, "claim_partitions", {"group": group, "member": member, "lease": lease,
                                           "limit": limit})


def release_partitions(conn: psycopg.Connection, *, group: str, member: str,
                       partitions: Sequence[int]) -> None:
    if partitions:
        conn.execute(_sql("release_partitions"), {"group": group, "member": member,
                                                  "partitions": list(partitions)})


def watch_horizon(conn: psycopg.Connection, *, group: str, after: Position
                  ) -> tuple[int, datetime, float] | None:
    """(horizon xid, first seen, seconds) when committed events past `after` wait behind
    the horizon (recorded on the group, kept while the horizon stays), else None."""
    row = _one(conn, "watch_horizon", {"group": group, "txid": str(after[0]),
                                       "event_id": after[1]})
    if row is None or row[0] is None:
        return None
    return int(row[0]), row[1], row[2] or 0.0


# -- the batch (raw Django connection inside atomic) ----------------------------------------
CursorRow = tuple[int, int, int, int, bool]  # (partition, txid, event_id, generation, paused)


def lock_cursors(conn: psycopg.Connection, *, group: str, member: str, prepare: bool = True,
                 asynchronous: bool = False) -> list[CursorRow]:
    """Lock our partitions' cursor rows: [(partition, txid, event_id, generation, paused)].
    `asynchronous`: the batch's commit does not wait for the WAL flush (see the SQL)."""
    params = {"group": group, "member": member, "asynchronous": asynchronous}
    return _cursor_rows(_batch(conn, "lock_cursors", params, prepare))


def _cursor_rows(cursor: psycopg.Cursor) -> list[CursorRow]:
    return [(p, int(t), e, g, paused) for p, t, e, g, paused in cursor.fetchall()]


def read_events(conn: psycopg.Connection, read: Read, prepare: bool = True) -> Window:
    """The next (at most read.limit) final events after read.after, in log order."""
    name, params = read.statement()
    return read.window(_batch(conn, name, params, prepare).fetchall())


def advance(conn: psycopg.Connection, *, group: str, member: str, generation: int,
            partitions: Sequence[int], position: Position, lease: float, prepare: bool = True
            ) -> int:
    """Move our partitions to `position`; returns the number of rows moved."""
    return _batch(conn, "advance", {
        "group": group, "member": member, "generation": generation,
        "partitions": list(partitions), "txid": str(position[0]), "event_id": position[1],
        "lease": lease}, prepare).rowcount


def resolve_dead_letters(conn: psycopg.Connection, *, group: str, event_ids: Sequence[int]) -> int:
    if not event_ids:
        return 0
    return conn.execute(_sql("resolve_dead_letters"),
                        {"group": group, "event_ids": list(event_ids)}).rowcount


def has_open_dead_letters(conn: psycopg.Connection, group: str) -> bool:
    return _value(conn, "has_open_dead_letters", {"group": group})


# -- failures ---------------------------------------------------------------------------------
def count_delivery(conn: psycopg.Connection, *, group: str, event_id: int) -> int:
    """Add one to the event's delivery count (commit before running it); returns it."""
    return _value(conn, "count_delivery", {"group": group, "event_id": event_id})


def delivery_error(conn: psycopg.Connection, *, group: str, event_id: int, error: str) -> None:
    conn.execute(_sql("delivery_error"), {"group": group, "event_id": event_id, "error": error})


def delivery_last_error(conn: psycopg.Connection, *, group: str, event_id: int) -> str:
    row = _one(conn, "delivery_last_error", {"group": group, "event_id": event_id})
    return row[0] if row else ""


def forget_deliveries(conn: psycopg.Connection, *, group: str, event_ids: Sequence[int]) -> None:
    if event_ids:
        conn.execute(_sql("forget_deliveries"), {"group": group, "event_ids": list(event_ids)})


def dead_letter(conn: psycopg.Connection, *, group: str, event_id: int, error: str, traceback: str,
                attempts: int) -> int | None:
    row = _one(conn, "dead_letter", {"group": group, "event_id": event_id, "error": error,
                                     "traceback": traceback, "attempts": attempts})
    return row[0] if row else None


def record_error(conn: psycopg.Connection, *, group: str, error: dict[str, Any]) -> None:
    conn.execute(_sql("record_error"), {"group": group, "error": json.dumps(error)})


# -- burst --------------------------------------------------------------------------------------
def last_event(conn: psycopg.Connection) -> Position | None:
    row = _one(conn, "last_event")
    return (int(row[0]), row[1]) if row else None


def pending_partitions(conn: psycopg.Connection, *, group: str, upto: Position, n: int
                       ) -> list[int]:
    return [row[0] for row in _all(conn, "pending_partitions", {
        "group": group, "txid": str(upto[0]), "event_id": upto[1], "n": n})]


# -- read by the consumer_group command and the system checks ------------------------------------
def cursors_of_group(conn: psycopg.Connection, group: str) -> list[dict[str, Any]]:
    return [{"partition": p, "txid": int(t), "event_id": e, "generation": g, "paused": paused,
             "owner": owner, "lease_expires_at": lease}
            for p, t, e, g, paused, owner, lease in _all(conn, "cursors_of_group",
                                                        {"group": group})]


def stuck_groups(conn: psycopg.Connection, seconds: float) -> list[tuple[str, int, datetime]]:
    """Groups held back by the same horizon for more than `seconds` (still now)."""
    return [(name, int(xid), since) for name, xid, since in
            _all(conn, "stuck_groups", {"seconds": seconds})]


def first_unhandled_id(conn: psycopg.Connection, position: Position) -> int:
    """The smallest event id after `position` (old txids: call before rebase_events)."""
    return _value(conn, "first_unhandled", {"txid": str(position[0]), "event_id": position[1]})


def translate_group(conn: psycopg.Connection, *, group: str, system_id: int | None,
                    first_ids: Sequence[int]) -> None:
    """Re-anchor a group's cursors by event id after a restore (after rebase_events):
    partition i continues at event id first_ids[i]; everything before it counts as handled."""
    for partition, first in enumerate(first_ids):
        conn.execute(_sql("translate_cursor"), {"group": group, "partition": partition,
                                                "event_id": first - 1})
    conn.execute(_sql("set_system_identifier"), {"group": group, "system_identifier": system_id})


def rebase_events(conn: psycopg.Connection) -> int:
    """Move txids copied from another cluster below this one's horizon (see translate)."""
    conn.execute(_sql("allow_rebase"))
    return conn.execute(_sql("rebase_events")).rowcount
