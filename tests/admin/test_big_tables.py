"""With 1,000,000 jobs and 1,000,000 events (filled in SQL), every list page, filter and
the overview: a pinned number of queries (no N+1), and no query that reads more than a
tenth of a table in one scan (no full COUNT(*), no scan for a filter). Each query is re-run under
EXPLAIN ANALYZE to count the rows it really reads. Wall times are printed, not asserted
(timing on a shared machine is noise)."""

from __future__ import annotations

import json
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.admin.bulk import fill_events, fill_jobs
from tests.factories import ConsumerGroupFactory, DeadLetterFactory

N = 1_000_000
MAX_ROWS_READ = N // 10
BIG = ("eventjobs_job", "eventjobs_event")


@pytest.fixture(scope="module")
def million_rows(django_db_setup, django_db_blocker):
    """Committed once for the module (each test still runs in its own transaction)."""
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        fill_jobs(cursor, N)
        fill_events(cursor, N)
        # What autovacuum does for a production table: statistics and the visibility map.
        cursor.execute("VACUUM (ANALYZE) eventjobs_job")
        cursor.execute("VACUUM (ANALYZE) eventjobs_event")
    yield
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE eventjobs_job, eventjobs_event")


def rows_read(plan: dict) -> int:
    """The most rows one scan of a big table read (kept or filtered out), from EXPLAIN
    ANALYZE."""
    most = 0
    if plan.get("Relation Name") in BIG:
        most = (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)
                + plan.get("Rows Removed by Index Recheck", 0)) * plan.get("Actual Loops", 1)
    return max([most, *(rows_read(child) for child in plan.get("Plans", []))])


def heaviest_reads(queries: list[dict]) -> list[tuple[int, str]]:
    heavy = []
    with connection.cursor() as cursor:
        for query in queries:
            sql = query["sql"]
            if not sql.lstrip("( ").upper().startswith("SELECT") or not any(
                    t in sql for t in BIG):
                continue
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
            raw = cursor.fetchone()[0]
            plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
            heavy.append((rows_read(plan), sql[:300]))
    return sorted(heavy, reverse=True)


PAGES = [
    # (url, most queries allowed: session + user + the page's own)
    ("/admin/eventjobs/job/", 7),
    ("/admin/eventjobs/job/?status=READY", 7),
    ("/admin/eventjobs/job/?status=RUNNING", 7),
    ("/admin/eventjobs/job/?status=FAILED", 7),
    ("/admin/eventjobs/job/?status=SUCCESSFUL", 7),
    ("/admin/eventjobs/job/?queue=other&status=FAILED", 7),
    ("/admin/eventjobs/job/?task=tests.testapp.tasks.task_3", 7),
    ("/admin/eventjobs/job/?status=FAILED&task=tests.testapp.tasks.task_3", 7),
    ("/admin/eventjobs/job/?q=123456", 7),
    ("/admin/eventjobs/job/?p=3", 7),
    ("/admin/eventjobs/job/999000/change/", 5),
    ("/admin/eventjobs/event/", 8),
    ("/admin/eventjobs/event/?type=type.7", 8),
    ("/admin/eventjobs/event/?source=web", 8),
    ("/admin/eventjobs/event/?created_at__gte=2000-01-01+00:00:00%2B00:00", 8),
    ("/admin/eventjobs/event/?q=654321", 8),
    ("/admin/eventjobs/event/999000/change/", 7),
    ("/admin/eventjobs/deadletter/", 8),
    ("/admin/eventjobs/consumergroup/", 10),
    ("/admin/eventjobs/consumergroup/search-index/change/", 10),
    ("/admin/eventjobs/worker/", 7),
    # + one count per distinct set of types among groups that never ran (lag "not started")
    ("/admin/eventjobs/overview/", 16),
]


@pytest.mark.parametrize(("url", "max_queries"), PAGES, ids=[u for u, _ in PAGES])
def test_pages_at_a_million_rows_read_little_in_few_queries(million_rows, as_user, url,
                                                            max_queries,
                                                            django_assert_max_num_queries):
    ConsumerGroupFactory(name="search-index", partitions=4)
    DeadLetterFactory.create_batch(3, group="search-index")
    client = as_user(superuser=True)
    with CaptureQueriesContext(connection) as captured:
        with django_assert_max_num_queries(max_queries):
            start = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - start
    assert response.status_code == 200
    heavy = heaviest_reads(captured.captured_queries)
    print(f"\n{url}: {elapsed:.3f} s, {len(captured.captured_queries)} queries, "
          f"most rows read by one query: {heavy[0][0] if heavy else 0}")
    assert not heavy or heavy[0][0] <= MAX_ROWS_READ, heavy[:3]


@pytest.mark.urls("tests.admin.urls")
def test_metrics_scrape_at_a_million_rows(million_rows, db, client,
                                          django_assert_max_num_queries):
    ConsumerGroupFactory(name="search-index", partitions=4)
    with CaptureQueriesContext(connection) as captured:
        with django_assert_max_num_queries(10):
            start = time.perf_counter()
            response = client.get("/metrics/")
            elapsed = time.perf_counter() - start
    assert response.status_code == 200 and b"eventjobs_jobs{" in response.content
    heavy = heaviest_reads(captured.captured_queries)
    print(f"\n/metrics/: {elapsed:.3f} s, {len(captured.captured_queries)} queries")
    assert not heavy or heavy[0][0] <= MAX_ROWS_READ, heavy[:3]
