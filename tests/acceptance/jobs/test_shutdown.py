"""Acceptance: SIGTERM draining, grace expiry, second signal, and `runworker --burst` (S2).

Real `runworker` processes and real signals; all times compared are the database's.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

import eventjobs
from eventjobs.models import Job, Worker
from tests.acceptance.jobs.helpers import alive, db_now, pid_of, row
from tests.conftest import wait_until
from tests.testapp.models import Ledger
from tests.testapp.tasks import record, slow_record_db

pytestmark = [pytest.mark.acceptance, pytest.mark.django_db(transaction=True)]

WORKER_LOST = "eventjobs.exceptions.WorkerLost"










def untouched(job: dict) -> bool:
    """Never claimed (or every claim undone): no attempt charged, nothing recorded."""
    return (job["attempt"] == 0 and job["worker_ids"] == [] and job["errors"] == []
            and job["lease_token"] is None and job["started_at"] is None)


def test_sigterm_lets_running_jobs_finish_and_claims_nothing_new(spawn):
    grace = 10
    keys = [f"drain{i}" for i in range(6)]
    ids = [int(r.id) for r in eventjobs.enqueue_many(
        slow_record_db, [((key, 2), {}) for key in keys])]
    proc = spawn("runworker", "--concurrency", "2",
                 env={"EVENTJOBS_GRACE_SECONDS": str(grace), "EVENTJOBS_LEASE_SECONDS": "10",
                      "EVENTJOBS_POLL_SECONDS": "0.5"})
    wait_until(lambda: Ledger.objects.filter(job_key__endswith=":start").count() >= 2,
               timeout=30, message="2 jobs running")

    signalled_at = db_now()
    proc.signal(signal.SIGTERM)
    t0 = time.monotonic()
    code = proc.wait(timeout=grace + 5)
    elapsed = time.monotonic() - t0
    assert code == 0, proc.output()[-3000:]
    # The running jobs had at most 2 s left; exit soon after them, not at the grace deadline.
    assert elapsed < 2 + 3, f"exit took {elapsed:.1f}s"
    assert "SIGTERM received" in proc.output()

    starts = list(Ledger.objects.filter(job_key__endswith=":start").values_list("job_key", "at"))
    ran = {key.removesuffix(":start") for key, _ in starts}
    late = [(key, at) for key, at in starts if at >= signalled_at]
    assert not late, f"jobs started after SIGTERM at {signalled_at}: {late}"
    assert len(ran) >= 2

    for job_id, key in zip(ids, keys, strict=True):
        job = row(job_id)
        if key in ran:
            # In flight at the signal: finished, not abandoned.
            assert job["status"] == "SUCCESSFUL", job
            assert Ledger.objects.filter(job_key=f"{key}:end").count() == 1
            assert len(job["worker_ids"]) == 1 and job["errors"] == []
        else:
            # Queued, never started: left READY, no attempt charged.
            assert job["status"] == "READY" and untouched(job), job
    assert not Job.objects.filter(status="RUNNING").exists()
    assert not Worker.objects.exists(), "children did not deregister on a graceful stop"


def test_sigterm_during_a_fast_backlog_records_or_releases_every_prefetched_job(spawn):
    """Fast jobs are claimed in batches and their successes recorded in batches: a
    graceful stop must record what ran and give back (uncharged) what did not."""
    n = 3000
    ids = [int(r.id) for r in eventjobs.enqueue_many(record, [((f"f{i}",), {}) for i in range(n)])]
    proc = spawn("runworker", "--concurrency", "2",
                 env={"EVENTJOBS_GRACE_SECONDS": "10", "EVENTJOBS_POLL_SECONDS": "0.5"})
    wait_until(lambda: Job.objects.filter(status="SUCCESSFUL").count() >= 300, timeout=30,
               message="the backlog being drained")
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0, proc.output()[-3000:]

    ran = set(Ledger.objects.values_list("job_key", flat=True))
    assert Ledger.objects.count() == len(ran), "a job ran twice"
    rows = list(Job.objects.filter(pk__in=ids).values())
    done = {r["args"][0] for r in rows if r["status"] == "SUCCESSFUL"}
    assert done == ran, (f"ran but not recorded: {sorted(ran - done)[:10]}; "
                         f"recorded but never ran: {sorted(done - ran)[:10]}")
    rest = [r for r in rows if r["status"] != "SUCCESSFUL"]
    assert rest, "the whole backlog ran: the stop came too late to test anything"
    bad = [r for r in rest if r["status"] != "READY" or not untouched(r)]
    assert not bad, f"not SUCCESSFUL yet not cleanly READY: {bad[:3]}"
    assert not Worker.objects.exists()


def test_ctrl_c_to_the_process_group_is_one_graceful_stop(spawn):
    """Ctrl-C in a terminal sends SIGINT to the whole group (supervisor and children)."""
    result = slow_record_db.enqueue("ctrl-c", 2)
    queued = slow_record_db.enqueue("ctrl-c-queued", 2)
    proc = spawn("runworker", "--concurrency", "1",
                 env={"EVENTJOBS_GRACE_SECONDS": "10", "EVENTJOBS_POLL_SECONDS": "0.5"})
    wait_until(lambda: Ledger.objects.filter(job_key="ctrl-c:start").exists(), timeout=30,
               message="the job running")
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=10) == 0, proc.output()[-3000:]
    job = row(result.id)
    assert job["status"] == "SUCCESSFUL" and job["attempt"] == 1 and job["errors"] == [], job
    assert row(queued.id)["status"] == "READY" and untouched(row(queued.id))
    assert "KeyboardInterrupt" not in proc.output()


def test_grace_expiry_releases_the_running_job_without_charging_an_attempt(spawn):
    grace = 1
    result = slow_record_db.enqueue("long", 10)
    proc = spawn("runworker", "--concurrency", "1",
                 env={"EVENTJOBS_GRACE_SECONDS": str(grace), "EVENTJOBS_LEASE_SECONDS": "10",
                      "EVENTJOBS_POLL_SECONDS": "0.5"})
    wait_until(lambda: Ledger.objects.filter(job_key="long:start").exists(), timeout=30,
               message="the long job running")
    child_pid = pid_of(row(result.id)["worker_ids"][0])

    proc.signal(signal.SIGTERM)
    t0 = time.monotonic()
    code = proc.wait(timeout=grace + 5)
    elapsed = time.monotonic() - t0
    assert code == 0, proc.output()[-3000:]
    assert grace * 0.9 <= elapsed <= grace + 2, f"exit after {elapsed:.1f}s"  # S2: <= G + 2 s
    assert not alive(child_pid)

    job = row(result.id)
    assert job["status"] == "READY", job
    assert untouched(job), job
    assert not Ledger.objects.filter(job_key="long:end").exists()
    assert "grace period over" in proc.output()
    assert not Job.objects.filter(status="RUNNING").exists()


def test_second_sigterm_exits_at_once_and_the_lease_recovers_the_job(spawn):
    env = {"EVENTJOBS_GRACE_SECONDS": "30", "EVENTJOBS_LEASE_SECONDS": "2",
           "EVENTJOBS_POLL_SECONDS": "0.5"}
    result = slow_record_db.enqueue("twice", 3)
    proc = spawn("runworker", "--concurrency", "1", env=env)
    wait_until(lambda: Ledger.objects.filter(job_key="twice:start").exists(), timeout=30,
               message="the job running")
    first_worker = row(result.id)["worker_ids"][0]

    proc.signal(signal.SIGTERM)
    wait_until(lambda: "SIGTERM received" in proc.output(), timeout=5,
               message="the first SIGTERM handled")
    proc.signal(signal.SIGTERM)
    t0 = time.monotonic()
    proc.wait(timeout=3)  # non-zero is allowed
    assert time.monotonic() - t0 <= 1.5
    # SIGKILL is delivered asynchronously: allow the child a moment to be gone.
    wait_until(lambda: not alive(pid_of(first_worker)), timeout=1,
               message="the child to die with an immediate stop")
    assert not Ledger.objects.filter(job_key="twice:end").exists()
    assert row(result.id)["status"] == "RUNNING"  # left to its lease

    rescuer = spawn("runworker", "--concurrency", "1", env=env)
    wait_until(lambda: row(result.id)["status"] == "SUCCESSFUL", timeout=30,
               message=f"the job recovered by lease expiry\n{rescuer.output()[-2000:]}")
    job = row(result.id)
    assert job["attempt"] == 2 and len(job["worker_ids"]) == 2, job
    assert job["worker_ids"][0] == first_worker
    assert [e["exception_class_path"] for e in job["errors"]] == [WORKER_LOST]
    assert list(Ledger.objects.filter(job_key="twice:end").values_list("attempt", flat=True)) == [2]


def test_burst_runs_due_jobs_exits_0_and_leaves_deferred_jobs_counted(spawn):
    due = [int(r.id) for r in eventjobs.enqueue_many(record, [((f"due{i}",), {}) for i in range(3)])]
    later = timezone.now() + timedelta(hours=1)
    deferred = [int(record.using(run_after=later).enqueue(f"later{i}").id) for i in range(2)]
    # A retry waiting for its backoff, and a job leased by another (live) worker.
    retrying = Job.objects.create(task_path=record.module_path, args=["retrying"], kwargs={},
                                  status="SCHEDULED", run_after=later, attempt=1,
                                  worker_ids=["elsewhere:1:x"], errors=[{
                                      "exception_class_path": "builtins.ValueError",
                                      "traceback": "ValueError: earlier attempt"}])
    leased = Job.objects.create(task_path=record.module_path, args=["leased"], kwargs={},
                                status="RUNNING", attempt=1, worker_ids=["elsewhere:2:y"],
                                lease_token=uuid.uuid4(), lease_expires_at=later,
                                started_at=timezone.now(), last_attempted_at=timezone.now())
    left_alone = [*deferred, retrying.pk, leased.pk]
    before = {job_id: row(job_id) for job_id in left_alone}

    proc = spawn("runworker", "--burst", "--concurrency", "1")
    t0 = time.monotonic()
    code = proc.wait(timeout=30)
    assert code == 0, proc.output()[-3000:]
    assert time.monotonic() - t0 < 15  # it does not wait for the deferred jobs (1 h away)

    assert Job.objects.filter(pk__in=due, status="SUCCESSFUL").count() == 3
    for job_id in left_alone:
        assert row(job_id) == before[job_id], "a burst run touched a job that was not due"
    for job_id in deferred:
        assert untouched(row(job_id))
    assert not Ledger.objects.exclude(job_key__startswith="due").exists()

    lines = [line for line in proc.output().splitlines() if line.strip()]
    last = lines[-1]
    assert "runworker stopped" in last, lines[-5:]
    left = left_counts(last)
    assert left == {"deferred": 2, "retrying": 1, "leased": 1, "ready": 0}, left


def test_burst_on_an_empty_queue_exits_0_promptly_and_leaves_no_worker_behind(spawn):
    # Three short runs: a child's last heartbeat racing its deregistration is a timing
    # matter, so give it several chances to show.
    for run in range(3):
        proc = spawn("runworker", "--burst", "--concurrency", "2")
        t0 = time.monotonic()
        assert proc.wait(timeout=20) == 0, proc.output()[-3000:]
        assert time.monotonic() - t0 < 10
        last = [line for line in proc.output().splitlines() if line.strip()][-1]
        assert "runworker stopped" in last
        assert left_counts(last) == {"deferred": 0, "retrying": 0, "leased": 0, "ready": 0}
        # A clean exit deregisters every child: no ghost in eventjobs_status.
        ghosts = list(Worker.objects.values("id", "pid", "started_at", "last_seen"))
        assert not ghosts, f"run {run}: workers left registered after a clean exit: {ghosts}"


def left_counts(exit_line: str) -> dict[str, int]:
    """The counts of runworker's exit line: "... left: deferred 2, retrying 1, ..."."""
    words = exit_line.split("left: ", 1)[1].split(", ")
    return {name: int(n) for name, n in (w.rsplit(" ", 1) for w in words)}
