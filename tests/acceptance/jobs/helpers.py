"""Helpers shared by the worker acceptance tests."""

from __future__ import annotations

from django.db import connection

from eventjobs.models import Job


def db_now():
    """The database's clock (clock_timestamp, not the transaction's now())."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def row(job_id) -> dict:
    return Job.objects.filter(pk=job_id).values().get()


def pid_of(worker_id: str) -> int:
    """Worker ids are host:pid:nonce."""
    return int(worker_id.split(":")[1])


def alive(pid: int) -> bool:
    """True unless the process is gone or a zombie (PID 1 here may not reap orphans)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")
