"""Acceptance: several real `runworker` processes drain a backlog exactly once (S16-lite).

Real processes, real PostgreSQL: three separate `runworker --concurrency 1` supervisors
compete for 5,000 jobs through SKIP LOCKED. The Ledger (one row per execution, written
in the task's own transaction) is the oracle.
"""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection

import eventjobs
from eventjobs.models import Job, Worker
from tests.conftest import wait_until
from tests.testapp.models import Ledger
from tests.testapp.tasks import record, record_high

pytestmark = [pytest.mark.acceptance, pytest.mark.django_db(transaction=True)]

N_JOBS = 5000
ENV = {"EVENTJOBS_LEASE_SECONDS": "10", "EVENTJOBS_POLL_SECONDS": "0.5"}


def test_three_worker_processes_drain_5000_jobs_exactly_once(spawn):
    workers = [spawn("runworker", "--concurrency", "1", env=ENV) for _ in range(3)]
    # Enqueue only once all three children are registered, so all three compete.
    wait_until(lambda: Worker.objects.count() >= 3, timeout=30,
               message="3 worker children registered")

    results = eventjobs.enqueue_many(record, [((f"k{i}",), {}) for i in range(N_JOBS)])
    ids = [int(r.id) for r in results]
    assert len(set(ids)) == N_JOBS

    # Mid-drain, high-priority jobs overtake the backlog: no worker holds a big prefetch
    # of low-priority jobs in front of them (DESIGN §1b, S16).
    wait_until(lambda: Job.objects.filter(pk__in=ids, status="SUCCESSFUL").count() >= 1000,
               timeout=60, interval=0.1, message="the drain under way")
    high = [int(record_high.enqueue(f"high{i}").id) for i in range(10)]
    wait_until(lambda: Job.objects.filter(pk__in=high, status="SUCCESSFUL").count() == len(high),
               timeout=10, message="the high-priority jobs done")
    still_low = Job.objects.filter(pk__in=ids, status="READY").count()
    assert still_low > 0, "the backlog was gone before the high-priority jobs: nothing tested"
    wait_until(lambda: Job.objects.filter(pk__in=ids, status="SUCCESSFUL").count() == N_JOBS,
               timeout=90, interval=0.25, message=f"all {N_JOBS} jobs SUCCESSFUL")
    for job in Job.objects.filter(pk__in=high).values("id", "enqueued_at", "last_attempted_at"):
        waited = (job["last_attempted_at"] - job["enqueued_at"]).total_seconds()
        assert waited <= float(ENV["EVENTJOBS_POLL_SECONDS"]) + 1, (
            f"high-priority job {job['id']} waited {waited:.2f}s behind the backlog")
    for proc in workers:
        assert proc.popen.poll() is None, f"a runworker died:\n{proc.output()[-3000:]}"

    # Oracle: every key executed exactly once, and nothing else executed.
    counts = Counter(Ledger.objects.values_list("job_key", flat=True))
    expected = {f"k{i}" for i in range(N_JOBS)} | {f"high{i}" for i in range(len(high))}
    assert set(counts) == expected, (
        f"missing {sorted(expected - set(counts))[:10]}, extra {sorted(set(counts) - expected)[:10]}")
    dups = {key: n for key, n in counts.items() if n != 1}
    assert not dups, f"keys executed more than once: {list(dups.items())[:10]}"

    # Job rows: one attempt each, no errors, return value is the key.
    rows = list(Job.objects.filter(pk__in=ids).values("id", "status", "attempt", "worker_ids",
                                                      "errors", "return_value", "args"))
    assert Counter(r["status"] for r in rows) == {"SUCCESSFUL": N_JOBS}
    multi = [r for r in rows if len(r["worker_ids"]) != 1 or r["attempt"] != 1]
    assert not multi, f"jobs with more than one attempt/worker id: {multi[:5]}"
    assert not [r for r in rows if r["errors"]]
    assert all(r["return_value"] == r["args"][0] for r in rows)

    # All three processes took part (SKIP LOCKED lets them claim side by side).
    pids_by_worker = Counter(r["worker_ids"][0].split(":")[1] for r in rows)
    assert len(pids_by_worker) == 3, f"work split over worker pids: {dict(pids_by_worker)}"

    # Nothing left leased, and every execution's pid is one of the workers' children.
    assert not Job.objects.filter(status="RUNNING").exists()
    ledger_pids = {str(p) for p in Ledger.objects.values_list("pid", flat=True).distinct()}
    assert ledger_pids == set(pids_by_worker)

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM eventjobs_job WHERE lease_token IS NOT NULL")
        assert cursor.fetchone()[0] == 0
        # Throughput is for `make bench`; printed here for the record only.
        cursor.execute("SELECT extract(epoch FROM max(finished_at) - min(started_at)) "
                       "FROM eventjobs_job WHERE id = ANY(%s)", [ids])
        seconds = cursor.fetchone()[0]
    rate = N_JOBS / float(seconds)
    print(f"drained {N_JOBS} jobs in {seconds:.2f}s: {rate:.0f} jobs/s; "
          f"{still_low} low jobs were still READY when the high ones had run")
