"""The only module of the job half that runs SQL: thin functions over sql/jobs.sql.

Enqueue runs on the caller's Django connection (so it joins their transaction). The
runtime's functions take an eventjobs connection in autocommit mode (eventjobs.db.connect),
so that each statement commits at once and psycopg can prepare the hot ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from eventjobs.jobs.statuses import JobStatus
from eventjobs.sql import query


def _sql(name: str) -> str:
    return query("jobs.sql", name)


# -- enqueue (the caller's session) ---------------------------------------------------------
def insert_job(cursor: Any, params: dict[str, Any]) -> tuple:
    """Insert one job on the caller's session; returns (id, status, enqueued_at, run_after)."""
    cursor.execute(_sql("enqueue"), params)
    return cursor.fetchone()


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
    with conn.cursor(row_factory=dict_row) as cur:
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
                     done: Sequence[tuple[int, UUID, str, float, float]]) -> set[int]:
    """done: (id, token, return JSON, started, finished: epoch seconds); returns the ids
    whose lease still held."""
    if not done:
        return set()
    # The return values are JSON text already: splice them in rather than re-encoding.
    document = "[" + ",".join(
        f'{{"id":{job_id},"token":"{token}","return_value":{value},'
        f'"started_at":{started!r},"finished_at":{finished!r}}}'
        for job_id, token, value, started, finished in done
    ) + "]"
    with conn.cursor() as cur:
        cur.execute(_sql("finish_successes"), {"done": document})
        return {row[0] for row in cur.fetchall()}


def record_failures(conn: psycopg.Connection, failed: Sequence[dict[str, Any]]
                    ) -> list[tuple[int, str, str]]:
    """failed: {id, token, status, error, delay, started_at (epoch seconds or None)};
    returns (id, status, queue)
    of the rows whose lease still held. Retries due at once wake their queue."""
    if not failed:
        return []
    document = json.dumps([{**f, "token": str(f["token"])} for f in failed])
    with conn.cursor() as cur:
        cur.execute(_sql("record_failures"), {"failed": document})
        rows = cur.fetchall()
    for queue in {queue for _, status, queue in rows if status == JobStatus.READY}:
        notify_queue(conn, queue)
    return rows


def release(conn: psycopg.Connection, held: Iterable[tuple[int, UUID, float]]
            ) -> list[tuple[int, str]]:
    """Undo claims without charging an attempt; held: (id, token, delay seconds)."""
    held = list(held)
    if not held:
        return []
    ids, tokens, delays = (list(column) for column in zip(*held, strict=True))
    with conn.cursor() as cur:
        cur.execute(_sql("release"), {"ids": ids, "tokens": tokens, "delays": delays})
        rows = cur.fetchall()
    for queue in {queue for _, queue in rows}:
        notify_queue(conn, queue)
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


def promote_due(conn: psycopg.Connection) -> int:
    with conn.cursor() as cur:
        cur.execute(_sql("promote_due"))
        queues = {row[0] for row in cur.fetchall()}
        count = cur.rowcount
    for queue in queues:
        notify_queue(conn, queue)
    return count


def seconds_until_next_due(conn: psycopg.Connection, queues: Sequence[str] | None
                           ) -> float | None:
    with conn.cursor() as cur:
        cur.execute(_sql("seconds_until_next_due"),
                    {"queues": list(queues) if queues is not None else None})
        return cur.fetchone()[0]


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



def pending_counts(conn: psycopg.Connection, queues: Sequence[str] | None) -> dict[str, int]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_sql("pending_counts"),
                    {"queues": list(queues) if queues is not None else None})
        return cur.fetchone()


# -- manual control (the caller's session) --------------------------------------------------
def retry_failed(cursor: Any, ids: list[int], extra: int, notify: bool) -> list[int]:
    cursor.execute(_sql("retry_failed"), {"ids": ids, "extra": extra, "notify": notify})
    return [row[0] for row in cursor.fetchall()]


def cancel_waiting(cursor: Any, ids: list[int], reason: str) -> list[int]:
    cursor.execute(_sql("cancel_waiting"), {"ids": ids, "reason": reason})
    return [row[0] for row in cursor.fetchall()]


def prune_finished(cursor: Any, status: str, age_seconds: float, batch: int) -> int:
    cursor.execute(_sql("prune_finished"), {"status": status, "age": age_seconds, "batch": batch})
    return cursor.rowcount
