"""Periodic upkeep of the job table, run by every `runworker` supervisor.

Each step is safe to run from many processes at once (SKIP LOCKED, idempotent).
"""

from __future__ import annotations

import logging

from eventjobs.jobs import store as jobstore

logger = logging.getLogger("eventjobs.maintenance")


class JobMaintenance:
    """Rescues expired leases, promotes due scheduled jobs, forgets silent workers."""

    def __init__(self, conn, lease_seconds: float):
        self.conn = conn
        self.lease_seconds = lease_seconds

    def run_once(self) -> dict[str, int]:
        rescued = jobstore.rescue_expired(self.conn)
        for job_id, status, _queue, task_path in rescued:
            if status == "FAILED":
                logger.error("job %s %s: worker lost and attempts spent; FAILED", job_id,
                             task_path)
            else:
                logger.warning("job %s %s: worker lost (lease expired); back to READY", job_id,
                               task_path)
        promoted = jobstore.promote_due(self.conn)
        pruned = jobstore.prune_workers(self.conn, silence_seconds=self.lease_seconds * 10)
        return {"rescued": len(rescued), "promoted": promoted, "pruned_workers": pruned}


def prune_jobs(status: str, age_seconds: float, batch: int = 5000, progress=None) -> int:
    """Delete finished jobs of `status` older than `age_seconds`, batch by batch.

    Only SUCCESSFUL and FAILED are accepted: READY, RUNNING and waiting retries are work
    not yet done, and are never pruned.
    """
    from django.db import connections, transaction

    from eventjobs.conf import database_alias

    if status not in ("SUCCESSFUL", "FAILED"):
        raise ValueError("only SUCCESSFUL or FAILED jobs can be pruned")
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
