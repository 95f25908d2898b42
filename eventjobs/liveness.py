"""Which `runworker` children and `consume` members are alive, and what workers run now.

Both kinds of process refresh `last_seen` several times per lease (their heartbeat);
one unseen for STALE_LEASES leases is reported stale: dead, frozen or cut off. Used by
the admin and /metrics; jobs are rescued by their own leases, never by these rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models.fields.json import KT
from django.tasks import task_backends
from django.utils import timezone

from eventjobs.conf import database_alias, eventjobs_settings

STALE_LEASES = 2  # unseen for this many leases: ~6 missed heartbeats


def job_lease_seconds() -> float:
    """The first eventjobs backend's LEASE_SECONDS (what worker staleness is measured in)."""
    from eventjobs.backends import PostgresBackend

    for backend in task_backends.all():
        if isinstance(backend, PostgresBackend):
            return backend.job_options.lease_seconds
    return 30.0


def worker_stale_before(now: datetime | None = None) -> datetime:
    """runworker children last seen before this are stale."""
    return (now or timezone.now()) - timedelta(seconds=job_lease_seconds() * STALE_LEASES)


def member_stale_before(now: datetime | None = None) -> datetime:
    """consume members last seen before this are stale."""
    lease = eventjobs_settings().consumer_lease_seconds
    return (now or timezone.now()) - timedelta(seconds=lease * STALE_LEASES)


def running_by_worker(worker_ids: list[str]) -> dict[str, list]:
    """The RUNNING jobs each worker holds now: those whose latest attempt is the worker's
    (the last entry of `worker_ids`). One query, through the RUNNING partial index."""
    from eventjobs.models import Job, JobStatus

    if not worker_ids:
        return {}
    jobs = (Job.objects.using(database_alias()).filter(status=JobStatus.RUNNING)
            .annotate(current_worker=KT("worker_ids__-1"))
            .filter(current_worker__in=worker_ids)
            .only("id", "task_path", "queue", "last_attempted_at", "lease_expires_at")
            .order_by("id"))
    found: dict[str, list] = {}
    for job in jobs:
        found.setdefault(job.current_worker, []).append(job)
    return found
