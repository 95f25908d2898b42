"""No N+1: a list page runs the same number of queries for 2 rows as for 40."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from eventjobs.models import GroupMember, Worker
from tests.factories import ConsumerGroupFactory, DeadLetterFactory, EventFactory, JobFactory

pytestmark = pytest.mark.django_db


def _jobs(start, n):
    JobFactory.create_batch(n // 2, failed=True)
    JobFactory.create_batch(n // 4, status="RUNNING", attempt=1, worker_ids=["w:1:a"])
    # Their status text names their limit: read with the row, not per row.
    JobFactory.create_batch(n - n // 2 - n // 4, status="LIMITED", limit_key="k",
                            concurrency=1)


def _events(start, n):
    for event in EventFactory.create_batch(n):
        DeadLetterFactory(event=event, group="ledger")
    if not start:
        ConsumerGroupFactory(name="ledger")


def _groups(start, n):
    for i in range(start, start + n):
        group = ConsumerGroupFactory(name=f"g{i:03}", partitions=2)
        GroupMember.objects.create(id=f"m{i}", group=group, host="h", pid=i)


def _workers(start, n):
    for i in range(start, start + n):
        Worker.objects.create(id=f"h:{i}:x", host="h", pid=i, queues=["default"],
                              last_seen=timezone.now())
        JobFactory(status="RUNNING", attempt=1, worker_ids=[f"h:{i}:x"])


CASES = [(_jobs, "/admin/eventjobs/job/"), (_events, "/admin/eventjobs/event/"),
         (_events, "/admin/eventjobs/deadletter/"), (_groups, "/admin/eventjobs/consumergroup/"),
         (_workers, "/admin/eventjobs/worker/"), (_jobs, "/admin/eventjobs/overview/"),
         (_groups, "/admin/eventjobs/overview/")]


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize(("make", "url"), CASES, ids=[f"{m.__name__}:{u}" for m, u in CASES])
def test_queries_do_not_grow_with_rows(as_user, make, url):
    client = as_user(superuser=True)
    make(0, 2)
    few = _queries(client, url)
    make(2, 38)
    assert _queries(client, url) == few
