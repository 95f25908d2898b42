"""/metrics: the overview's figures in Prometheus' text format, read through indexes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from eventjobs.events import control
from eventjobs.models import Worker
from tests.factories import ConsumerGroupFactory, DeadLetterFactory, EventFactory, JobFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.admin.urls")]


def scrape(**headers) -> dict[tuple[str, tuple], float]:
    response = Client().get("/metrics/", headers=headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.content.decode())
            for s in family.samples}


def test_metrics_report_jobs_groups_and_workers():
    now = timezone.now()
    JobFactory.create_batch(2)
    JobFactory(run_after=now - timedelta(seconds=120))
    JobFactory(status="SCHEDULED", run_after=now + timedelta(hours=1))
    JobFactory(failed=True, queue="other")
    JobFactory(successful=True)
    for _ in range(3):
        EventFactory()
    ConsumerGroupFactory(name="ledger")
    DeadLetterFactory(group="ledger")
    control.pause("ledger")
    Worker.objects.create(id="a:1:x", host="a", pid=1, queues=["default"])
    Worker.objects.create(id="b:2:y", host="b", pid=2, queues=["default"],
                          last_seen=now - timedelta(hours=1))
    m = scrape()
    assert m[("eventjobs_jobs", (("queue", "default"), ("status", "READY")))] == 4
    assert m[("eventjobs_jobs_due", (("queue", "default"),))] == 3
    assert m[("eventjobs_jobs", (("queue", "other"), ("status", "FAILED")))] == 1
    assert m[("eventjobs_jobs_finished_last_5m", (("queue", "default"),
                                                  ("status", "SUCCESSFUL")))] == 1
    assert m[("eventjobs_oldest_ready_age_seconds", (("queue", "default"),))] >= 115
    assert m[("eventjobs_oldest_ready_age_seconds", (("queue", "other"),))] == 0
    assert m[("eventjobs_group_lag", (("group", "ledger"),))] == 4
    assert m[("eventjobs_group_dead_letters", (("group", "ledger"),))] == 1
    assert m[("eventjobs_group_paused", (("group", "ledger"),))] == 1
    assert m[("eventjobs_workers", (("state", "alive"),))] == 1
    assert m[("eventjobs_workers", (("state", "stale"),))] == 1


def test_metrics_can_require_a_bearer_token(settings):
    settings.EVENTJOBS = {"METRICS_TOKEN": "s3cret-token-0123456789"}
    assert Client().get("/metrics/").status_code == 401
    wrong = Client().get("/metrics/", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert scrape(Authorization="Bearer s3cret-token-0123456789")


def test_a_short_token_is_refused_with_the_settings_name(settings):
    from django.core.exceptions import ImproperlyConfigured

    from eventjobs.conf import eventjobs_settings

    settings.EVENTJOBS = {"METRICS_TOKEN": "short"}
    with pytest.raises(ImproperlyConfigured, match="METRICS_TOKEN"):
        eventjobs_settings()


def test_jobs_waiting_under_a_limit_are_due_ready_jobs_as_eventjobs_status_counts_them():
    from eventjobs.status import jobs_status
    from tests.testapp.tasks import per_account

    for n in range(5):
        per_account.enqueue(n, account="acct-1")  # concurrency 1 per account: they wait LIMITED
    JobFactory(status="LIMITED", queue="other", limit_key="k", concurrency=1,
               run_after=timezone.now() - timedelta(seconds=120))
    JobFactory(status="SCHEDULED", run_after=timezone.now() + timedelta(hours=1))
    JobFactory(status="RUNNING")
    JobFactory(failed=True)
    m = scrape()
    assert m[("eventjobs_jobs_due", (("queue", "default"),))] == 5
    assert m[("eventjobs_jobs_limited", (("queue", "default"),))] == 5
    assert m[("eventjobs_oldest_ready_age_seconds", (("queue", "other"),))] >= 115
    for queue, counts in jobs_status().items():
        for status in ("READY", "RUNNING", "FAILED"):
            assert m[("eventjobs_jobs", (("queue", queue), ("status", status)))] \
                == counts[status], (queue, status)
    assert jobs_status()["default"]["READY"] == 6
