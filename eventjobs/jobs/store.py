"""The only module of the job half that runs SQL: thin functions over sql/jobs.sql.

Enqueue runs on the caller's Django connection (so it joins their transaction);
the worker's functions take a raw psycopg connection in autocommit mode, so that each
statement commits at once and psycopg can prepare the hot ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row

from eventjobs.sql import query


def _sql(name: str) -> str:
    return query("jobs.sql", name)


def insert_job(cursor, params: dict[str, Any]) -> tuple:
    """Insert one job on the caller's session; returns (id, status, enqueued_at, run_after)."""
    cursor.execute(_sql("enqueue"), params)
    return cursor.fetchone()


def insert_jobs(cursor, params: dict[str, Any]) -> tuple[list[int], datetime]:
    """Insert many jobs of one task in one statement; params["items"] is a JSON array of
    [args, kwargs] pairs (one parameter, cheaper to send than two typed arrays).
    Returns the new ids in order and their enqueue time."""
    cursor.execute(_sql("enqueue_many"), params)
    ids, enqueued_at, _ = cursor.fetchone()
    return ids, enqueued_at


def claim(conn, *, queues: list[str], limit: int, lease: float, worker_id: str) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            _sql("claim"),
            {"queues": queues, "limit": limit, "lease": lease, "worker_id": worker_id},
        )
        rows = cur.fetchall()
    rows.sort(key=lambda row: (-row["priority"], row["id"]))
    return rows


def finish_successes(conn, done: Sequence[tuple[int, UUID, str, datetime, datetime]]) -> set[int]:
    """done: (id, token, return JSON, started, finished); returns ids whose lease still held."""
    if not done:
        return set()
    # The return values are JSON text already: splice them in rather than re-encoding.
    document = "[" + ",".join(
        f'{{"id":{job_id},"token":"{token}","return_value":{value},'
        f'"started_at":"{started.isoformat()}","finished_at":"{finished.isoformat()}"}}'
        for job_id, token, value, started, finished in done
    ) + "]"
    with conn.cursor() as cur:
        cur.execute(_sql("finish_successes"), {"done": document})
        return {row[0] for row in cur.fetchall()}


def finish_failure(conn, *, job_id: int, token: UUID, status: str, error: dict, delay: float,
                   started: datetime | None) -> bool:
    """Record one failed attempt; False when the lease was lost (the row is not ours)."""
    with conn.cursor() as cur:
        cur.execute(
            _sql("finish_failure"),
            {"id": job_id, "token": token, "status": status, "error": json.dumps(error),
             "delay": delay, "started": started},
        )
        return cur.fetchone() is not None


def release(conn, held: Sequence[tuple[int, UUID, float]]) -> list[tuple[int, str]]:
    """Undo claims without charging an attempt; held: (id, token, delay seconds)."""
    if not held:
        return []
    ids, tokens, delays = (list(column) for column in zip(*held, strict=True))
    with conn.cursor() as cur:
        cur.execute(_sql("release"), {"ids": ids, "tokens": tokens, "delays": delays})
        rows = cur.fetchall()
    for queue in {queue for _, queue in rows}:
        notify_queue(conn, queue)
    return rows


def extend_leases(conn, held: Sequence[tuple[int, UUID]], lease: float) -> set[int]:
    if not held:
        return set()
    ids, tokens = (list(column) for column in zip(*held, strict=True))
    with conn.cursor() as cur:
        cur.execute(_sql("extend_leases"), {"ids": ids, "tokens": tokens, "lease": lease})
        return {row[0] for row in cur.fetchall()}


def rescue_expired(conn) -> list[tuple[int, str, str, str]]:
    """Returns (id, new status, queue, task_path) of rescued jobs."""
    with conn.cursor() as cur:
        cur.execute(_sql("rescue_expired"))
        rows = cur.fetchall()
    for queue in {row[2] for row in rows if row[1] == "READY"}:
        notify_queue(conn, queue)
    return rows


def promote_due(conn) -> int:
    with conn.cursor() as cur:
        cur.execute(_sql("promote_due"))
        queues = {row[0] for row in cur.fetchall()}
        count = cur.rowcount
    for queue in queues:
        notify_queue(conn, queue)
    return count


def seconds_until_next_due(conn, queues: list[str]) -> float | None:
    with conn.cursor() as cur:
        cur.execute(_sql("seconds_until_next_due"), {"queues": queues})
        return cur.fetchone()[0]


def listen(conn) -> None:
    """Subscribe `conn` to job wake-ups (the payload is a queue name)."""
    conn.execute(_sql("listen"))


def notify_queue(conn, queue: str) -> None:
    with conn.cursor() as cur:
        cur.execute(_sql("notify_queue"), {"queue": queue})


def register_worker(conn, *, worker_id: str, host: str, pid: int, queues: list[str]) -> None:
    with conn.cursor() as cur:
        cur.execute(_sql("register_worker"),
                    {"id": worker_id, "host": host, "pid": pid, "queues": queues})


def touch_worker(conn, *, worker_id: str, host: str, pid: int, queues: list[str],
                 running: int) -> None:
    with conn.cursor() as cur:
        cur.execute(_sql("touch_worker"), {"id": worker_id, "host": host, "pid": pid,
                                           "queues": queues, "running": running})


def deregister_worker(conn, worker_id: str) -> None:
    with conn.cursor() as cur:
        cur.execute(_sql("deregister_worker"), {"id": worker_id})


def prune_workers(conn, silence_seconds: float) -> int:
    with conn.cursor() as cur:
        cur.execute(_sql("prune_workers"), {"silence": silence_seconds})
        return cur.rowcount


def database_now(conn) -> datetime:
    with conn.cursor() as cur:
        cur.execute(_sql("clock"))
        return cur.fetchone()[0]


def pending_counts(conn, queues: list[str]) -> dict[str, int]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_sql("pending_counts"), {"queues": queues})
        return cur.fetchone()


def retry_failed(cursor, ids: list[int], extra: int, notify: bool) -> list[int]:
    cursor.execute(_sql("retry_failed"), {"ids": ids, "extra": extra, "notify": notify})
    return [row[0] for row in cursor.fetchall()]


def cancel_waiting(cursor, ids: list[int], reason: str) -> list[int]:
    cursor.execute(_sql("cancel_waiting"), {"ids": ids, "reason": reason})
    return [row[0] for row in cursor.fetchall()]


def prune_finished(cursor, status: str, age_seconds: float, batch: int) -> int:
    cursor.execute(_sql("prune_finished"), {"status": status, "age": age_seconds, "batch": batch})
    return cursor.rowcount
