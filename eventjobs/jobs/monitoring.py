"""What the job half looks like right now, for the admin overview and /metrics.

Every figure is read through an index, so it stays cheap on a table of millions:
waiting (READY, LIMITED, SCHEDULED), running and failed jobs are counted through their
partial indexes, and finished jobs only within a recent window (through the finished_at
index), never by a full COUNT(*). All times come from the database clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q, Value
from django.db.models.functions import Trunc
from django.tasks import task_backends

from eventjobs.conf import database_alias
from eventjobs.models import Job, JobStatus
from eventjobs.sql import query

# Counted exactly, each through its own partial index (FAILED: eventjobs_job_failed,
# LIMITED: eventjobs_job_limited). Every status but SUCCESSFUL: a waiting job left out
# would make its queue look empty.
INDEXED_STATUSES = (JobStatus.READY, JobStatus.LIMITED, JobStatus.SCHEDULED,
                    JobStatus.RUNNING, JobStatus.FAILED)


@dataclass
class QueueFigures:
    """One queue: jobs by state, the oldest due job and the last window's outcomes."""

    queue: str
    ready: int = 0  # due now, waiting for a worker or for room under a limit (READY to users)
    limited: int = 0  # of those, the LIMITED ones: waiting for room under a task's limit
    scheduled: int = 0  # READY later: deferred, or waiting for a retry's backoff
    running: int = 0
    failed: int = 0  # all FAILED jobs kept (the jobs' dead-letter queue)
    succeeded_recently: int = 0  # SUCCESSFUL within the window
    failed_recently: int = 0  # FAILED within the window
    oldest_ready_since: datetime | None = None  # run_after of the longest-waiting due job
    next_scheduled_at: datetime | None = None


@dataclass
class JobFigures:
    """Every queue's figures, finished jobs per minute, and the database's clock."""

    now: datetime
    window: timedelta
    queues: dict[str, QueueFigures] = field(default_factory=dict)
    # [(minute, successful, failed)] for each minute of the window, oldest first.
    per_minute: list[tuple[datetime, int, int]] = field(default_factory=list)

    def oldest_ready_seconds(self, queue: str) -> float | None:
        since = self.queues[queue].oldest_ready_since
        return None if since is None else max(0.0, (self.now - since).total_seconds())


def configured_queues() -> set[str]:
    """The queues of every eventjobs task backend (shown even while empty)."""
    from eventjobs.backends import PostgresBackend

    queues: set[str] = set()
    for backend in task_backends.all():
        if isinstance(backend, PostgresBackend):
            queues |= set(backend.queues)
    return queues


def database_now(alias: str) -> datetime:
    """The database's clock (worker and job times are written by it, not by this host),
    read through Django's cursor (the admin's query counts and logging include it)."""
    from django.db import connections

    with connections[alias].cursor() as cursor:
        cursor.execute(query("common.sql", "clock"))
        return cursor.fetchone()[0]


def _state_counts(alias: str) -> Iterable[tuple[str, str, int, datetime | None]]:
    """(queue, status, count, min run_after) for the indexed statuses: one UNION ALL query,
    each arm matching one partial index."""
    arms = [Job.objects.using(alias).filter(status=status).order_by().values("queue")
            .annotate(state=Value(str(status)), n=Count("id"), first=Min("run_after"))
            .values_list("queue", "state", "n", "first") for status in INDEXED_STATUSES]
    return arms[0].union(*arms[1:], all=True)


def job_figures(window: timedelta = timedelta(hours=1)) -> JobFigures:
    """Per-queue state counts, oldest due job, and per-minute outcomes over `window`."""
    alias = database_alias()
    now = database_now(alias)
    figures = JobFigures(now=now, window=window)
    for queue in sorted(configured_queues()):
        figures.queues[queue] = QueueFigures(queue)
    for queue, state, n, first in _state_counts(alias):
        q = figures.queues.setdefault(queue, QueueFigures(queue))
        if state in (JobStatus.READY, JobStatus.LIMITED):
            # Both are due and waiting; users see both as READY (as eventjobs_status does).
            q.ready += n
            if state == JobStatus.LIMITED:
                q.limited = n
            if first is not None and (q.oldest_ready_since is None
                                      or first < q.oldest_ready_since):
                q.oldest_ready_since = first
        elif state == JobStatus.SCHEDULED:
            q.scheduled, q.next_scheduled_at = n, first
        elif state == JobStatus.RUNNING:
            q.running = n
        else:
            q.failed = n
    start = now - window
    # The finished_at partial index covers exactly these two statuses.
    finished = (Job.objects.using(alias).order_by()
                .filter(status__in=[JobStatus.SUCCESSFUL, JobStatus.FAILED], finished_at__gte=start)
                .annotate(minute=Trunc("finished_at", "minute"))
                .values("queue", "minute")
                .annotate(ok=Count("id", filter=Q(status=JobStatus.SUCCESSFUL)),
                          bad=Count("id", filter=Q(status=JobStatus.FAILED))))
    minutes: dict[datetime, list[int]] = {}
    for row in finished:
        q = figures.queues.setdefault(row["queue"], QueueFigures(row["queue"]))
        q.succeeded_recently += row["ok"]
        q.failed_recently += row["bad"]
        tally = minutes.setdefault(row["minute"], [0, 0])
        tally[0] += row["ok"]
        tally[1] += row["bad"]
    figures.per_minute = [(minute, *minutes.get(minute, (0, 0)))
                          for minute in minute_range(now, window)]
    return figures


def minute_range(now: datetime, window: timedelta) -> list[datetime]:
    """The whole minutes of the window ending at `now`, oldest first."""
    last = now.replace(second=0, microsecond=0)
    count = int(window.total_seconds() // 60)
    return [last - timedelta(minutes=i) for i in range(count - 1, -1, -1)]
