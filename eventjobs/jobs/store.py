"""The only module of the job half that runs SQL: thin functions over sql/jobs.sql.

Enqueue runs on the caller's Django connection (so it joins their transaction). The
runtime's functions take an eventjobs connection in autocommit mode (eventjobs.db.connect),
so that each statement commits at once and psycopg can prepare the hot ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from eventjobs.conf import eventjobs_settings
from eventjobs.jobs.statuses import JobStatus
from eventjobs.sql import query


def _sql(name: str) -> str:
    return query("jobs.sql", name)


# -- enqueue (the caller's session) ---------------------------------------------------------
def insert_job(cursor: Any, params: dict[str, Any]) -> tuple | None:
    """Insert one job on the caller's session; returns (id, status, enqueued_at, run_after),
    or None when a unique job (params["unique_key"] set) collided with a waiting one."""
    cursor.execute(_sql("enqueue_unique" if params["unique_key"] else "enqueue"), params)
    return cursor.fetchone()


_RESULT_COLUMNS = ("id", "status", "queue", "priority", "args", "kwargs", "enqueued_at",
                   "started_at", "finished_at", "last_attempted_at", "errors", "worker_ids",
                   "return_value")


def unique_job(cursor: Any, unique_key: str, succeeded_within: float | None = None
               ) -> dict[str, Any] | None:
    """The waiting or running job of `unique_key` (or, with `succeeded_within` seconds, the
    newest one that succeeded that recently), as a dict of its columns."""
    if succeeded_within is None:
        cursor.execute(_sql("unique_waiting"), {"unique_key": unique_key})
    else:
        cursor.execute(_sql("unique_recent"), {"unique_key": unique_key,
                                               "seconds": succeeded_within})
    found = cursor.fetchone()
    if found is None:
        return None
    row = dict(zip(_RESULT_COLUMNS, found, strict=True))
    for column in ("args", "kwargs", "errors", "worker_ids", "return_value"):
        if isinstance(row[column], str):  # Django's connection returns jsonb as text
            row[column] = json.loads(row[column])
    return row


def insert_jobs(cursor: Any, params: dict[str, Any]) -> tuple[list[int], datetime]:
    """Insert many jobs of one task in one statement; params["items"] is a JSON array of
    [args, kwargs] pairs (one parameter, cheaper to send than two typed arrays).
    Returns the new ids in order and their enqueue time."""
    cursor.execute(_sql("enqueue_many"), params)
    ids, enqueued_at, _ = cursor.fetchone()
    return ids, enqueued_at


# -- claiming (a worker child's connection) -------------------------------------------------
def claim(conn: psycopg.Connection, *, queues: Sequence[str], limit: int, lease: float,
          worker_id: str) -> list[dict[str, Any]]:
    """Claim up to `limit` due jobs of `queues`, in the order they should run."""
    params: dict[str, Any] = {"limit": limit, "lease": lease, "worker_id": worker_id}
    if len(queues) == 1:
        name, params["queue"] = "claim_queue", queues[0]
    else:
        name, params["queues"] = "claim_queues", list(queues)
    with prepared_cursor(conn) as cur:
        cur.execute(_sql(name), params)
        rows = cur.fetchall()
    for row in rows:
        for column in _JSON_COLUMNS:
            # Django's own connection loads jsonb as text (JSONField decodes it itself).
            if isinstance(row[column], str):
                row[column] = json.loads(row[column])
    rows.sort(key=lambda row: (-row["priority"], row["id"]))
    return rows


_JSON_COLUMNS = ("args", "kwargs", "worker_ids", "errors")


@contextmanager
def prepared_cursor(conn: psycopg.Connection[Any]
                    ) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
    """A server-side-binding cursor whose statements are prepared on first use, also on
    Django's own connection (client-side binding, prepare_threshold None): planning the
    claim costs twice its execution on a table with this many partial indexes (measured:
    5.3 ms to plan, 2.6 ms to run a 100-row claim)."""
    saved = conn.prepare_threshold
    if eventjobs_settings().prepare_statements:
        conn.prepare_threshold = 0
    try:
        with psycopg.Cursor(conn, row_factory=dict_row) as cur:
            yield cur
    finally:
        conn.prepare_threshold = saved


def ready_queues(conn: psycopg.Connection) -> list[str]:
    """Queues that have ready jobs now (for a worker of every queue)."""
    with conn.cursor() as cur:
        cur.execute(_sql("ready_queues"))
        return [row[0] for row in cur.fetchall()]


def name_session(conn: psycopg.Connection, name: str) -> None:
    """Name the session in pg_stat_activity (application_name), so operators can tell it."""
    conn.execute(_sql("name_session"), {"name": name[:63]})


def listen(conn: psycopg.Connection) -> None:
    """Subscribe `conn` to job wake-ups (the payload is a queue name)."""
    conn.execute(_sql("listen"))


def notify_queue(conn: psycopg.Connection, queue: str) -> None:
    conn.execute(_sql("notify_queue"), {"queue": queue})


# -- outcomes (the completer's connection) --------------------------------------------------
def finish_successes(conn: psycopg.Connection,
                     done: Sequence[tuple[int, UUID, str, float, float]]) -> dict[int, str | None]:
    """done: (id, token, return JSON, started, finished: epoch seconds); returns
    {id: limit_key} for the jobs whose lease still held."""
    if not done:
        return {}
    # The return values are JSON text already: splice them in rather than re-encoding.
    document = "[" + ",".join(
        f'{{"id":{job_id},"token":"{token.hex}","return_value":{value},'
        f'"started_at":{started!r},"finished_at":{finished!r}}}'
        for job_id, token, value, started, finished in done
    ) + "]"
    with conn.cursor() as cur:
        cur.execute(_sql("finish_successes"), {"done": document})
        return dict(cur.fetchall())


def record_failures(conn: psycopg.Connection, failed: Sequence[dict[str, Any]]
                    ) -> list[tuple[int, str, str, str | None]]:
    """failed: {id, token, status, error, delay, started_at (epoch seconds or None)};
    returns (id, status, queue, limit_key) of the rows whose lease still held. Retries due
    at once wake their queue."""
    if not failed:
        return []
    document = json.dumps([{**f, "token": str(f["token"])} for f in failed])
    with conn.cursor() as cur:
        cur.execute(_sql("record_failures"), {"failed": document})
        rows = cur.fetchall()
    _wake(conn, rows)
    return rows


def _wake(conn: psycopg.Connection, rows: Iterable[tuple]) -> None:
    """NOTIFY the queues of (id, status, queue, ...) rows that are claimable now."""
    for queue in {row[2] for row in rows if row[1] == JobStatus.READY}:
        notify_queue(conn, queue)


def release(conn: psycopg.Connection, held: Iterable[tuple[int, UUID, float]]
            ) -> list[tuple[int, str, str, str | None]]:
    """Undo claims without charging an attempt; held: (id, token, delay seconds).
    Returns (id, status, queue, limit_key) of the jobs given back."""
    held = list(held)
    if not held:
        return []
    ids, tokens, delays = (list(column) for column in zip(*held, strict=True))
    with conn.cursor() as cur:
        cur.execute(_sql("release"), {"ids": ids, "tokens": tokens, "delays": delays})
        rows = cur.fetchall()
    _wake(conn, rows)
    return rows


def release_unreported(conn: psycopg.Connection, worker_id: str, known: Iterable[int]
                       ) -> list[tuple[int, str, str, str | None]]:
    """Give back, uncharged, the jobs a dead child claimed without reporting the claim."""
    with conn.cursor() as cur:
        cur.execute(_sql("release_unreported"), {"worker_id": worker_id, "known": list(known)})
        rows = cur.fetchall()
    _wake(conn, rows)
    return rows


def snooze(conn: psycopg.Connection, snoozed: Iterable[tuple[int, UUID, float, float]]
           ) -> list[tuple[int, str, str, str | None]]:
    """snoozed: (id, token, delay seconds, at: epoch seconds). Returns (id, status, queue,
    limit_key) of the rows whose lease still held."""
    document = json.dumps([{"id": job_id, "token": str(token), "delay": delay, "at": at}
                           for job_id, token, delay, at in snoozed])
    with conn.cursor() as cur:
        cur.execute(_sql("snooze"), {"snoozed": document})
        rows = cur.fetchall()
    _wake(conn, rows)
    return rows


# -- leases and maintenance (the supervisor's heartbeat connection) -------------------------
def renew_leases(conn: psycopg.Connection, held: Iterable[tuple[int, UUID]], lease: float
                 ) -> set[int]:
    held = list(held)
    if not held:
        return set()
    ids, tokens = (list(column) for column in zip(*held, strict=True))
    with conn.cursor() as cur:
        cur.execute(_sql("renew_leases"), {"ids": ids, "tokens": tokens, "lease": lease})
        return {row[0] for row in cur.fetchall()}


def expired_leases(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Jobs whose lease expired, locked until the caller's transaction ends."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_sql("expired_leases"))
        return cur.fetchall()


def promote_due(conn: psycopg.Connection) -> tuple[int, set[str]]:
    """Move due SCHEDULED jobs on; returns how many, and the limit keys of those that went
    to LIMITED (for the caller to promote)."""
    with conn.cursor() as cur:
        cur.execute(_sql("promote_due"))
        rows = cur.fetchall()
    for queue in {queue for queue, key in rows if key is None}:
        notify_queue(conn, queue)
    return len(rows), {key for _, key in rows if key is not None}


def limited_keys(conn: psycopg.Connection, limit: int | None = None) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(_sql("limited_keys"), {"limit": limit})
        return [row[0] for row in cur.fetchall()]


def promote_limited(conn: psycopg.Connection, key: str) -> int:
    """Admit LIMITED jobs of `key` up to its room; returns how many became READY."""
    # One short transaction per key: the advisory lock makes promoters of a key take
    # turns, and ends with the commit that makes the promotion visible to the next one.
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_sql("lock_limit_key"), {"key": key})
        cur.execute(_sql("promote_limited"), {"key": key})  # a fresh snapshot: see the SQL
        queues = {row[0] for row in cur.fetchall()}
        promoted = cur.rowcount
        for queue in queues:
            notify_queue(conn, queue)  # sent at commit
    return promoted


def seconds_until_next_due(conn: psycopg.Connection, queues: Sequence[str] | None
                           ) -> float | None:
    with conn.cursor() as cur:
        cur.execute(_sql("seconds_until_next_due"),
                    {"queues": list(queues) if queues is not None else None})
        row = cur.fetchone()
        assert row is not None  # an aggregate without GROUP BY returns one row
        return row[0]


def register_worker(conn: psycopg.Connection, *, worker_id: str, host: str, pid: int,
                    queues: Sequence[str] | None) -> None:
    conn.execute(_sql("register_worker"), {"id": worker_id, "host": host, "pid": pid,
                                           "queues": list(queues or [])})


def touch_worker(conn: psycopg.Connection, *, worker_id: str, host: str, pid: int,
                 queues: Sequence[str] | None, running: int) -> None:
    conn.execute(_sql("touch_worker"), {"id": worker_id, "host": host, "pid": pid,
                                        "queues": list(queues or []), "running": running})


def deregister_worker(conn: psycopg.Connection, worker_id: str) -> None:
    conn.execute(_sql("deregister_worker"), {"id": worker_id})


def prune_workers(conn: psycopg.Connection, silence_seconds: float) -> int:
    with conn.cursor() as cur:
        cur.execute(_sql("prune_workers"), {"silence": silence_seconds})
        return cur.rowcount


def prune_rate_starts(conn: psycopg.Connection, age_seconds: float) -> int:
    """Forget the earlier starts of rate-limited jobs older than `age_seconds`."""
    with conn.cursor() as cur:
        cur.execute(_sql("prune_rate_starts"), {"age": age_seconds})
        return cur.rowcount



def pending_counts(conn: psycopg.Connection, queues: Sequence[str] | None) -> dict[str, int]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_sql("pending_counts"),
                    {"queues": list(queues) if queues is not None else None})
        counts = cur.fetchone()
        assert counts is not None  # an aggregate without GROUP BY returns one row
        return counts


# -- manual control (the caller's session) --------------------------------------------------
def retry_failed(cursor: Any, ids: list[int], extra: int, notify: bool) -> list[int]:
    cursor.execute(_sql("retry_failed"), {"ids": ids, "extra": extra, "notify": notify})
    return [row[0] for row in cursor.fetchall()]


def retry_blocked(cursor: Any, ids: list[int]) -> list[tuple[int, int]]:
    """(id, waiting duplicate's id) for FAILED unique jobs a retry would duplicate."""
    cursor.execute(_sql("retry_blocked"), {"ids": ids})
    return [tuple(row) for row in cursor.fetchall()]


def set_queue_paused(cursor: Any, name: str, paused: bool, notify: bool = False) -> None:
    cursor.execute(_sql("set_queue_paused"), {"name": name, "paused": paused})
    if notify:
        cursor.execute(_sql("notify_queue"), {"queue": name})  # sent at commit


def queue_states(cursor: Any) -> list[tuple[str, bool, datetime]]:
    cursor.execute(_sql("queue_states"))
    return [tuple(row) for row in cursor.fetchall()]


def schedules(cursor: Any) -> list[dict[str, Any]]:
    cursor.execute(_sql("schedules"))
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# -- periodic schedules (the supervisor's heartbeat connection) ---------------------------
def sync_schedule(conn: psycopg.Connection, params: dict[str, Any]) -> None:
    conn.execute(_sql("sync_schedule"), params)


def claim_tick(conn: psycopg.Connection, name: str, tick: datetime, next_tick: datetime
               ) -> bool:
    """Move the schedule's last tick forward to `tick`; True for the one caller that did."""
    with conn.cursor() as cur:
        cur.execute(_sql("claim_tick"), {"name": name, "tick": tick, "next_tick": next_tick})
        return cur.fetchone() is not None


def record_tick_job(conn: psycopg.Connection, name: str, job_id: int) -> None:
    conn.execute(_sql("record_tick_job"), {"name": name, "job_id": job_id})


def cancel_waiting(cursor: Any, ids: list[int], reason: str) -> list[int]:
    cursor.execute(_sql("cancel_waiting"), {"ids": ids, "reason": reason})
    return [row[0] for row in cursor.fetchall()]


def prune_finished(cursor: Any, status: str, age_seconds: float, batch: int) -> int:
    cursor.execute(_sql("prune_finished"), {"status": status, "age": age_seconds, "batch": batch})
    return cursor.rowcount
