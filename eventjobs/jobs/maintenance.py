"""Periodic upkeep of the job table, run by every `runworker` supervisor.

Each step is safe to run from many processes at once (SKIP LOCKED, idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg

from eventjobs.exceptions import WorkerLost
from eventjobs.jobs import store as jobstore
from eventjobs.jobs.completer import Attempt, Completer
from eventjobs.jobs.limits import promote_keys
from eventjobs.jobs.statuses import JobStatus
from eventjobs.jobs.tasks import LONGEST_RATE_WINDOW

logger = logging.getLogger("eventjobs.maintenance")


class JobMaintenance:
    """Rescues expired leases, promotes due scheduled jobs and limited jobs that have room,
    forgets silent workers and starts that no rate counts any more.

    Every `runworker` runs it (about once per POLL_SECONDS); each step is safe from many
    processes at once (SKIP LOCKED, idempotent), so no leader is needed.
    """

    def __init__(self, conn: psycopg.Connection, lease_seconds: float):
        self.conn = conn
        self.lease_seconds = lease_seconds

    def run_once(self) -> dict[str, int]:
        rescued = self.rescue()
        promoted, _keys = jobstore.promote_due(self.conn)
        admitted = promote_keys(self.conn)  # every key: also slots freed by a rescue
        pruned = jobstore.prune_workers(self.conn, silence_seconds=self.lease_seconds * 10)
        forgotten = jobstore.prune_rate_starts(self.conn, LONGEST_RATE_WINDOW)
        return {"rescued": rescued, "promoted": promoted, "admitted": admitted,
                "pruned_workers": pruned, "pruned_rate_starts": forgotten}

    def rescue(self) -> int:
        """Charge WorkerLost to jobs whose lease expired with nobody left to report them.
        One transaction: the expired rows stay locked until their outcome is recorded."""
        with self.conn.transaction():
            expired = jobstore.expired_leases(self.conn)
            if not expired:
                return 0
            completer = Completer(promote_freed=False)  # run_once promotes after the commit
            for row in expired:
                attempt = Attempt.from_row(row, row["worker_id"] or "?")
                completer.interrupted(attempt, WorkerLost(
                    f"worker {attempt.worker_id} stopped renewing its lease, which expired at "
                    f"{row['lease_expires_at'].isoformat()}"), backoff=False)
            completer.flush(self.conn)  # logs each job's new status
        return len(expired)


def prune_jobs(status: str, age_seconds: float, batch: int = 5000,
               progress: Callable[[int], object] | None = None) -> int:
    """Delete finished jobs of `status` older than `age_seconds`, batch by batch.

    Only SUCCESSFUL and FAILED are accepted: READY, RUNNING and waiting retries are work
    not yet done, and are never pruned.
    """
    from django.db import connections, transaction

    from eventjobs.conf import database_alias

    if status not in (JobStatus.SUCCESSFUL, JobStatus.FAILED):
        raise ValueError("only SUCCESSFUL or FAILED jobs can be pruned")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a whole number of at least 1, got {batch!r}")
    alias = database_alias()
    total = 0
    while True:
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            deleted = jobstore.prune_finished(cursor, status, age_seconds, batch)
        total += deleted
        if progress and deleted:
            progress(total)
        if deleted < batch:
            return total
