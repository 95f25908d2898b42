"""Acceptance: what a child's crash, a long job or misbehaving user code must not cost.

Issue 8's job findings, each reproduced with real `runworker` processes:
2. jobs claimed in a batch but not started never pay for a neighbour's crash, and a
   finished job's outcome never dies with its process;
3. a slow job does not hold the jobs claimed after it hostage;
4. user code (task_finished receivers) cannot stop lease renewal, and a task can learn
   that its lease is lost (`eventjobs.lease_lost()`);
5. a task module that raises at import, or a task_started receiver that raises, records
   the real error on the job and the child survives.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

import pytest
from django.db import transaction

import eventjobs
from eventjobs.models import Job
from tests.acceptance.jobs.helpers import pid_of, row
from tests.conftest import wait_until
from tests.factories import JobFactory
from tests.testapp.models import Ledger
from tests.testapp.tasks import exits_once, record, record_once, slow_record, watches_lease

pytestmark = [pytest.mark.acceptance, pytest.mark.django_db(transaction=True)]


def ran(prefix: str) -> Counter:
    return Counter(Ledger.objects.filter(job_key__startswith=prefix)
                   .values_list("job_key", flat=True))


def test_a_crash_costs_only_the_running_job_and_loses_no_finished_outcome(spawn):
    # 200 quick jobs allowed one attempt each; the 120th kills its process. With a default
    # lease of 30 s, everything must be settled long before any lease could expire.
    calls = [((f"n{i}",), {}) for i in range(200)]
    jobs = eventjobs.enqueue_many(record_once, calls[:120])
    crasher = exits_once.enqueue("crasher")
    jobs += eventjobs.enqueue_many(record_once, calls[120:])
    proc = spawn("runworker", "--concurrency", "1")
    ids = [int(j.id) for j in jobs]
    wait_until(lambda: Job.objects.filter(pk__in=ids, status="SUCCESSFUL").count() == 200,
               timeout=20, message=f"all 200 neighbours SUCCESSFUL\n{proc.output()[-3000:]}")
    assert row(crasher.id)["status"] == "FAILED"
    assert [e["exception_class_path"] for e in row(crasher.id)["errors"]] == [
        "eventjobs.exceptions.WorkerLost"]
    # Every neighbour ran exactly once: none was charged for the crash, none re-ran
    # because its recorded success died with the process.
    assert ran("n") == {f"n{i}": 1 for i in range(200)}
    assert not Job.objects.filter(pk__in=ids).exclude(attempt=1).exists()
    assert proc.popen.poll() is None


def test_a_slow_job_does_not_hold_the_jobs_claimed_after_it(spawn):
    a = spawn("runworker", "--concurrency", "1")
    # Warm the child up with quick jobs so it claims in batches...
    warm = eventjobs.enqueue_many(record, [((f"warm{i}",), {}) for i in range(200)])
    wait_until(lambda: Job.objects.filter(pk__in=[int(j.id) for j in warm],
                                          status="SUCCESSFUL").count() == 200, timeout=30,
               message="the warm-up jobs done")
    # ...then a 6 s job with quick ones behind it, enqueued together: one claim takes them.
    with transaction.atomic():
        slow = slow_record.enqueue("hostage-slow", 6)
        quick = eventjobs.enqueue_many(record, [((f"hostage{i}",), {}) for i in range(20)])
    wait_until(lambda: Ledger.objects.filter(job_key="hostage-slow:start").exists(),
               timeout=10, message="the slow job started")
    b = spawn("runworker", "--concurrency", "1")
    quick_ids = [int(j.id) for j in quick]
    wait_until(lambda: Job.objects.filter(pk__in=quick_ids, status="SUCCESSFUL").count() == 20,
               timeout=10, message=f"the quick jobs done while the slow one runs\n"
                                   f"{a.output()[-2000:]}\n{b.output()[-2000:]}")
    assert not Ledger.objects.filter(job_key="hostage-slow:end").exists(), \
        "the quick jobs waited for the slow one"
    assert not Job.objects.filter(pk__in=quick_ids).exclude(attempt=1).exists()
    wait_until(lambda: row(slow.id)["status"] == "SUCCESSFUL", timeout=15,
               message="the slow job done")


def test_a_raising_task_finished_receiver_cannot_stop_lease_renewal(spawn):
    env = {"EVENTJOBS_TEST_RECEIVERS_RAISE": "1", "EVENTJOBS_LEASE_SECONDS": "3"}
    proc = spawn("runworker", "--concurrency", "1", env=env)
    first = record.enqueue("raise-in-finished-1")
    wait_until(lambda: row(first.id)["status"] == "SUCCESSFUL", timeout=30,
               message="the job whose receiver raises")
    long = slow_record.enqueue("after-raising-receiver", 10)  # > 3 leases
    b = spawn("runworker", "--concurrency", "1", env=env)  # would take it over if renewal died
    wait_until(lambda: row(long.id)["status"] == "SUCCESSFUL", timeout=30,
               message=f"the long job done\n{proc.output()[-2000:]}")
    job = row(long.id)
    assert job["attempt"] == 1 and job["errors"] == [], job
    assert ran("after-raising-receiver") == {"after-raising-receiver:start": 1,
                                             "after-raising-receiver:end": 1}
    assert "task_finished receiver" in proc.output()
    assert proc.popen.poll() is None and b.popen.poll() is None


def test_a_task_learns_that_its_lease_is_lost(spawn):
    env = {"EVENTJOBS_LEASE_SECONDS": "2", "EVENTJOBS_POLL_SECONDS": "0.5"}
    a = spawn("runworker", "--concurrency", "1", env=env)
    job = watches_lease.enqueue("watcher", 20)
    wait_until(lambda: Ledger.objects.filter(job_key="watcher:start").exists(), timeout=30,
               message="the job running")
    # Freeze the supervisor only: nobody renews the lease; another worker rescues the job.
    os.kill(a.pid, signal.SIGSTOP)
    try:
        b = spawn("runworker", "--concurrency", "1", env=env)
        wait_until(lambda: Ledger.objects.filter(job_key="watcher:start", attempt=2).exists(),
                   timeout=20, message=f"the job rescued and re-run\n{b.output()[-2000:]}")
    finally:
        os.kill(a.pid, signal.SIGCONT)
    # The first run hears that its lease is gone, and stops.
    wait_until(lambda: Ledger.objects.filter(job_key="watcher:lost", attempt=1).exists(),
               timeout=10, message=f"the first run told its lease is lost\n{a.output()[-2000:]}")
    assert not Ledger.objects.filter(job_key="watcher:end", attempt=1).exists()
    assert pid_of(row(job.id)["worker_ids"][1]) != pid_of(row(job.id)["worker_ids"][0])


def test_import_time_errors_and_raising_task_started_receivers_are_the_jobs_errors(spawn):
    env = {"EVENTJOBS_TEST_RECEIVERS_RAISE": "1"}
    broken = JobFactory(task_path="tests.testapp.broken_at_import.anything", max_attempts=1)
    started_raises = record.enqueue("raise-in-started-1")
    after = record.enqueue("after-both")
    proc = spawn("runworker", "--concurrency", "1", env=env)
    wait_until(lambda: row(after.id)["status"] == "SUCCESSFUL", timeout=30,
               message=f"the job after the failures\n{proc.output()[-3000:]}")
    for job_id, expected in ((broken.id, "RuntimeError"), (started_raises.id, "RuntimeError")):
        job = row(job_id)
        assert job["status"] == "FAILED" or job["status"] == "SCHEDULED", job
        assert job["errors"][0]["exception_class_path"] == f"builtins.{expected}", job
    assert "broken_at_import" in row(broken.id)["errors"][0]["traceback"]
    assert "started receiver raised" in row(started_raises.id)["errors"][0]["message"]
    # One child did all three: nothing crashed it.
    pids = {pid_of(row(j)["worker_ids"][0]) for j in (broken.id, started_raises.id, after.id)}
    assert len(pids) == 1, pids
    assert proc.popen.poll() is None
