"""Prometheus metrics: the overview's figures for the rest of the stack.

Needs the optional extra: `pip install eventjobs[prometheus]` (prometheus-client). Mount
one URL pattern in the project's urls.py:

    from eventjobs.metrics import metrics_view
    urlpatterns += [path("metrics/", metrics_view)]

Figures are read at each scrape, through the same indexed queries as the admin overview
(no full table scans), from the eventjobs database. Set EVENTJOBS["METRICS_TOKEN"] to
require `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImproperlyConfigured("eventjobs.metrics needs prometheus-client: "
                               "pip install 'eventjobs[prometheus]'") from exc

FINISHED_WINDOW = timedelta(minutes=5)


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"eventjobs_{name}", doc, labels=labels or [])


def job_metrics() -> Iterator[GaugeMetricFamily]:
    from eventjobs.jobs.monitoring import job_figures

    figures = job_figures(FINISHED_WINDOW)
    jobs = _gauge("jobs", "Jobs by queue and status (READY includes deferred and retrying "
                          "jobs and jobs waiting under a limit; SUCCESSFUL jobs are history "
                          "and are not counted).", ["queue", "status"])
    due = _gauge("jobs_due", "READY jobs due now, waiting for a worker or for room under "
                             "their task's concurrency or rate limit.", ["queue"])
    limited = _gauge("jobs_limited", "Of the due jobs, those waiting for room under their "
                                     "task's concurrency or rate limit.", ["queue"])
    oldest = _gauge("oldest_ready_age_seconds", "How long the longest-waiting due job has "
                    "waited, under a limit or not (0 when none waits).", ["queue"])
    finished = _gauge("jobs_finished_last_5m", "Jobs that finished in the last 5 minutes, by "
                      "outcome.", ["queue", "status"])
    for name, q in figures.queues.items():
        jobs.add_metric([name, "READY"], q.ready + q.scheduled)
        jobs.add_metric([name, "RUNNING"], q.running)
        jobs.add_metric([name, "FAILED"], q.failed)
        due.add_metric([name], q.ready)
        limited.add_metric([name], q.limited)
        oldest.add_metric([name], figures.oldest_ready_seconds(name) or 0.0)
        finished.add_metric([name, "SUCCESSFUL"], q.succeeded_recently)
        finished.add_metric([name, "FAILED"], q.failed_recently)
    yield from (jobs, due, limited, oldest, finished)


def group_metrics() -> Iterator[GaugeMetricFamily]:
    from eventjobs.events.monitoring import groups_status

    lag = _gauge("group_lag", "Events a consumer group has still to handle (counted exactly "
                              "up to LAG_CAP).", ["group"])
    dead = _gauge("group_dead_letters", "Open dead letters of a consumer group.", ["group"])
    paused = _gauge("group_paused", "1 while a consumer group is paused.", ["group"])
    members = _gauge("group_members", "consume processes taking part in a group.", ["group"])
    held = _gauge("group_held_back_seconds", "How long an open transaction has held the "
                  "group's committed events back (0 when none does).", ["group"])
    for name, status in groups_status().items():
        lag.add_metric([name], status["lag"])
        dead.add_metric([name], status["dead_letters"])
        paused.add_metric([name], 1 if status["paused"] else 0)
        members.add_metric([name], status["members"])
        held.add_metric([name], (status["held_back_by"] or {}).get("seconds", 0.0))
    yield from (lag, dead, paused, members, held)


def worker_metrics() -> Iterator[GaugeMetricFamily]:
    from eventjobs.conf import database_alias
    from eventjobs.liveness import member_stale_before, worker_stale_before
    from eventjobs.models import GroupMember, Worker

    alias = database_alias()
    cutoff = worker_stale_before()
    seen = list(Worker.objects.using(alias).values_list("last_seen", flat=True))
    workers = _gauge("workers", "runworker child processes by state (stale: not seen for "
                                "2 leases).", ["state"])
    workers.add_metric(["alive"], sum(s >= cutoff for s in seen))
    workers.add_metric(["stale"], sum(s < cutoff for s in seen))
    member_cutoff = member_stale_before()
    seen = list(GroupMember.objects.using(alias).values_list("last_seen", flat=True))
    consumers = _gauge("consumers", "consume processes by state.", ["state"])
    consumers.add_metric(["alive"], sum(s >= member_cutoff for s in seen))
    consumers.add_metric(["stale"], sum(s < member_cutoff for s in seen))
    yield from (workers, consumers)


class EventjobsCollector:
    """Collects every eventjobs figure at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        start = time.perf_counter()
        yield from job_metrics()
        yield from group_metrics()
        yield from worker_metrics()
        took = _gauge("metrics_collect_seconds", "How long collecting these figures took.")
        took.add_metric([], time.perf_counter() - start)
        yield took


registry = CollectorRegistry(auto_describe=False)
registry.register(EventjobsCollector())


def _authorized(request: HttpRequest) -> bool:
    from eventjobs.conf import eventjobs_settings

    token = eventjobs_settings().metrics_token
    if token is None:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus text exposition of eventjobs' figures."""
    if not _authorized(request):
        return HttpResponse("missing or wrong bearer token\n", status=401,
                            content_type="text/plain")
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
