"""Acceptance: worker processes that die, freeze, hog the CPU or run poison (S1, S3, S8, S19a).

Real `runworker` processes, real signals, real PostgreSQL. The Ledger (one row per task
execution phase, written in the task's own transaction) is the oracle for what really ran.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from datetime import timedelta

import pytest

import eventjobs
from eventjobs.models import Job
from tests.acceptance.jobs.helpers import alive, db_now, pid_of, row
from tests.conftest import wait_until
from tests.testapp.models import Ledger
from tests.testapp.tasks import (
    cpu_bound,
    exits_process,
    raises_system_exit,
    record,
    slow_record_db,
    too_slow,
)

pytestmark = [pytest.mark.acceptance, pytest.mark.django_db(transaction=True)]

LEASE = 2.0
POLL = 0.5
SHORT_LEASE = {"EVENTJOBS_LEASE_SECONDS": str(LEASE), "EVENTJOBS_POLL_SECONDS": str(POLL)}
WORKER_LOST = "eventjobs.exceptions.WorkerLost"






def phases(prefix: str) -> list[tuple[str, int, int]]:
    """(job_key, attempt, pid) ledger rows whose key starts with `prefix`, in order."""
    return list(Ledger.objects.filter(job_key__startswith=prefix).order_by("id")
                .values_list("job_key", "attempt", "pid"))






def all_status(ids, status) -> bool:
    return Job.objects.filter(pk__in=ids, status=status).count() == len(ids)


# -- S1: SIGKILL mid-job ------------------------------------------------------------------------

def test_sigkill_mid_job_is_rescued_with_worker_lost_and_nothing_is_lost(spawn):
    keys = [f"kill{i}" for i in range(4)]
    ids = [int(r.id) for r in eventjobs.enqueue_many(
        slow_record_db, [((key, 3), {}) for key in keys])]
    a = spawn("runworker", "--concurrency", "2", env=SHORT_LEASE)

    def in_flight():
        started = {k.removesuffix(":start") for k, *_ in phases("kill") if k.endswith(":start")}
        ended = {k.removesuffix(":end") for k, *_ in phases("kill") if k.endswith(":end")}
        return started - ended

    wait_until(lambda: len(in_flight()) >= 2, timeout=30, message="2 jobs running on worker A")
    a.kill_group()
    killed_at = db_now()
    # Re-read after the kill: a job that ended just before the kill is not a killed one.
    killed = in_flight()
    assert killed, "no job was in flight at kill time"
    assert Job.objects.filter(pk__in=ids, status="RUNNING").count() >= len(killed)

    b = spawn("runworker", "--concurrency", "2", env=SHORT_LEASE)
    wait_until(lambda: all_status(ids, "SUCCESSFUL"), timeout=40,
               message=f"all jobs SUCCESSFUL after the kill\n{b.output()[-2000:]}")

    ledger = phases("kill")
    for job_id, key in zip(ids, keys, strict=True):
        job = row(job_id)
        ends = [(k, att) for k, att, _ in ledger if k == f"{key}:end"]
        assert len(ends) == 1, f"{key}: lost or duplicated: {ends}"  # lost = 0, dup = 0
        if key in killed:
            assert job["attempt"] == 2 and len(job["worker_ids"]) == 2, job
            assert pid_of(job["worker_ids"][0]) != pid_of(job["worker_ids"][1])
            lost = [e for e in job["errors"] if e["exception_class_path"] == WORKER_LOST]
            assert len(lost) == 1 and len(job["errors"]) == 1, job["errors"]
            assert lost[0]["attempt"] == 1
            assert ends == [(f"{key}:end", 2)]
            # S1: the second attempt starts within L + R + 2 s (+1 s for B's start-up) of the kill.
            second = Ledger.objects.get(job_key=f"{key}:start", attempt=2).at
            assert second - killed_at <= timedelta(seconds=LEASE + POLL + 3), (
                f"{key} restarted {second - killed_at} after the kill")
        else:
            assert len(job["worker_ids"]) == 1 and job["errors"] == [], job
    assert not Job.objects.filter(status="RUNNING").exists()


# -- S19a: a CPU-bound job longer than its lease keeps it ---------------------------------------

def test_cpu_bound_job_three_times_its_lease_runs_exactly_once(spawn):
    result = cpu_bound.enqueue("cpu", LEASE * 3)
    proc = spawn("runworker", "--concurrency", "1", env=SHORT_LEASE)
    wait_until(lambda: row(result.id)["status"] in ("SUCCESSFUL", "FAILED"), timeout=30,
               message="cpu_bound finished")
    job = row(result.id)
    assert job["status"] == "SUCCESSFUL", job
    assert job["attempt"] == 1 and len(job["worker_ids"]) == 1, job
    assert job["errors"] == [], job["errors"]
    assert job["return_value"] is True
    assert Counter(k for k, *_ in phases("cpu")) == {"cpu:start": 1, "cpu:end": 1}
    out = proc.output()
    assert "lease lost" not in out and "worker lost" not in out, out[-2000:]


# -- S8: poison at execution ------------------------------------------------------------------

def test_task_that_exits_the_process_fails_after_max_attempts_and_others_complete(spawn):
    poison = exits_process.enqueue("poison")
    good = [int(r.id) for r in eventjobs.enqueue_many(
        record, [((f"good{i}",), {}) for i in range(20)])]
    proc = spawn("runworker", "--concurrency", "1", env=SHORT_LEASE)

    wait_until(lambda: row(poison.id)["status"] == "FAILED" and all_status(good, "SUCCESSFUL"),
               timeout=40, message=f"poison FAILED and good jobs done\n{proc.output()[-2000:]}")
    job = row(poison.id)
    assert job["attempt"] == 2 and len(job["worker_ids"]) == 2, job
    assert [e["exception_class_path"] for e in job["errors"]] == [WORKER_LOST, WORKER_LOST]
    assert [e["attempt"] for e in job["errors"]] == [1, 2]
    assert job["finished_at"] is not None
    # No crash loop: exactly max_attempts executions, and it stays FAILED.
    assert Ledger.objects.filter(job_key="poison").count() == 2
    assert Counter(Ledger.objects.filter(job_key__startswith="good")
                   .values_list("job_key", flat=True)) == {f"good{i}": 1 for i in range(20)}
    assert proc.popen.poll() is None, "the supervisor itself died"


def test_task_raising_system_exit_is_retried_then_failed_and_worker_keeps_going(spawn):
    bad = raises_system_exit.enqueue("sysexit")
    proc = spawn("runworker", "--concurrency", "1", env=SHORT_LEASE)
    wait_until(lambda: row(bad.id)["status"] == "FAILED", timeout=30,
               message=f"SystemExit job FAILED\n{proc.output()[-2000:]}")
    job = row(bad.id)
    assert job["attempt"] == 2, job
    assert [e["exception_class_path"] for e in job["errors"]] == ["builtins.SystemExit"] * 2
    assert all("SystemExit" in e["traceback"] for e in job["errors"])
    assert Ledger.objects.filter(job_key="sysexit").count() == 2

    # The same child process (not a restarted one) goes on running jobs.
    after = record.enqueue("after-sysexit")
    wait_until(lambda: row(after.id)["status"] == "SUCCESSFUL", timeout=15,
               message="a job enqueued after the SystemExit job")
    assert row(after.id)["worker_ids"] == [job["worker_ids"][-1]]
    assert "exited with code" not in proc.output()


def test_task_path_that_does_not_import_is_released_uncharged_and_does_not_block(spawn):
    missing = Job.objects.create(task_path="tests.testapp.tasks.nope", priority=10,
                                 args=[], kwargs={})
    good = [int(r.id) for r in eventjobs.enqueue_many(
        record, [((f"g{i}",), {}) for i in range(5)])]
    proc = spawn("runworker", "--concurrency", "1", env=SHORT_LEASE)

    wait_until(lambda: all_status(good, "SUCCESSFUL"), timeout=30,
               message=f"good jobs done despite the missing task\n{proc.output()[-2000:]}")
    # It was claimed (highest priority) and given back with a backoff, not failed.
    wait_until(lambda: f"job {missing.pk}:" in proc.output(), timeout=10,
               message="the release of the missing task to be logged")
    job = row(missing.pk)
    assert job["status"] in ("SCHEDULED", "READY"), job
    assert job["attempt"] == 0 and job["worker_ids"] == [] and job["errors"] == [], job
    assert job["lease_token"] is None and job["started_at"] is None, job
    assert proc.popen.poll() is None


# -- Timeouts --------------------------------------------------------------------------------------

def test_timeout_kills_the_job_records_job_timeout_and_worker_goes_on(spawn):
    slow = too_slow.enqueue("slow")
    good = [int(r.id) for r in eventjobs.enqueue_many(
        record, [((f"after-timeout{i}",), {}) for i in range(5)])]
    proc = spawn("runworker", "--concurrency", "1", env=SHORT_LEASE)

    wait_until(lambda: row(slow.id)["status"] == "FAILED", timeout=20,
               message=f"too_slow FAILED\n{proc.output()[-2000:]}")
    job = row(slow.id)
    assert [e["exception_class_path"] for e in job["errors"]] == [
        "eventjobs.exceptions.JobTimeout"], job["errors"]
    assert job["attempt"] == 1
    # Killed about 1 s in, not after its 30 s sleep.
    assert job["finished_at"] - job["last_attempted_at"] < timedelta(seconds=6), job
    killed_pid = pid_of(job["worker_ids"][0])
    assert not alive(killed_pid), "the timed-out child still runs"

    wait_until(lambda: all_status(good, "SUCCESSFUL"), timeout=20,
               message="jobs after the timed-out one")
    assert Ledger.objects.filter(job_key="slow").count() == 1
    later = {pid_of(w[0]) for w in Job.objects.filter(pk__in=good)
             .values_list("worker_ids", flat=True)}
    assert killed_pid not in later
    assert proc.popen.poll() is None


# -- S3: zombie worker and fencing -----------------------------------------------------------

def test_frozen_worker_is_fenced_and_cannot_overwrite_the_rescuers_outcome(spawn):
    result = slow_record_db.enqueue("zombie", 4)
    a = spawn("runworker", "--concurrency", "1", env=SHORT_LEASE)
    wait_until(lambda: Ledger.objects.filter(job_key="zombie:start").exists(), timeout=30,
               message="the job started on worker A")
    a_worker_id = row(result.id)["worker_ids"][0]
    a_pid = pid_of(a_worker_id)
    os.kill(a_pid, signal.SIGSTOP)
    stopped_at = db_now()
    try:
        b = spawn("runworker", "--concurrency", "1", env=SHORT_LEASE)
        wait_until(lambda: row(result.id)["status"] == "SUCCESSFUL", timeout=30,
                   message=f"B rescued and completed the job\n{b.output()[-2000:]}")
        by_b = row(result.id)
    finally:
        os.kill(a_pid, signal.SIGCONT)

    # B's outcome: the second attempt, WorkerLost recorded for A's.
    assert by_b["attempt"] == 2 and len(by_b["worker_ids"]) == 2, by_b
    assert by_b["worker_ids"][0] == a_worker_id
    b_pid = pid_of(by_b["worker_ids"][1])
    assert b_pid != a_pid
    assert by_b["return_value"] == {"key": "zombie", "pid": b_pid, "attempt": 2}
    assert [e["exception_class_path"] for e in by_b["errors"]] == [WORKER_LOST]
    assert by_b["errors"][0]["worker_id"] == a_worker_id
    b_start = Ledger.objects.get(job_key="zombie:start", attempt=2).at
    assert b_start - stopped_at <= timedelta(seconds=LEASE + POLL + 3)

    # A wakes up, finishes its (stale) run, and its finish must match no row.
    wait_until(lambda: Ledger.objects.filter(job_key="zombie:end", pid=a_pid).exists(),
               timeout=20, message="the zombie finished its run")
    wait_until(lambda: "lost its lease" in a.output() or "lease lost" in a.output(), timeout=10,
               message=f"the zombie to notice its lost lease\n{a.output()[-2000:]}")
    # Let the zombie's finish reach the database (it logs after its UPDATE matched nothing).
    wait_until(lambda: f"job {result.id} lost its lease" in a.output(), timeout=10,
               message=f"the zombie's fenced finish\n{a.output()[-2000:]}")
    assert row(result.id) == by_b, "the zombie overwrote the rescuer's outcome"
    # dup <= 1: one extra execution (the unavoidable side effect), never a third.
    assert Counter(k for k, *_ in phases("zombie")) == {"zombie:start": 2, "zombie:end": 2}
    assert a.popen.poll() is None and b.popen.poll() is None


# -- S1 variant: one child killed (OOM killer), its supervisor alive -----------------------------

def test_killed_child_is_recorded_worker_lost_at_once_and_restarted(spawn):
    # A 60 s lease: a recovery within seconds can only come from the supervisor noticing
    # the death, not from lease expiry.
    env = {"EVENTJOBS_LEASE_SECONDS": "60", "EVENTJOBS_POLL_SECONDS": str(POLL)}
    result = slow_record_db.enqueue("oom", 1)
    proc = spawn("runworker", "--concurrency", "1", env=env)
    wait_until(lambda: Ledger.objects.filter(job_key="oom:start").exists(), timeout=30,
               message="the job running")
    first = row(result.id)["worker_ids"][0]
    os.kill(pid_of(first), signal.SIGKILL)

    wait_until(lambda: row(result.id)["status"] == "SUCCESSFUL", timeout=20,
               message=f"the job re-run by a restarted child\n{proc.output()[-2000:]}")
    job = row(result.id)
    assert job["attempt"] == 2 and job["worker_ids"][0] == first, job
    assert pid_of(job["worker_ids"][1]) != pid_of(first)
    assert [e["exception_class_path"] for e in job["errors"]] == [WORKER_LOST]
    assert "-9" in job["errors"][0]["message"], job["errors"][0]
    assert list(Ledger.objects.filter(job_key="oom:end").values_list("attempt", flat=True)) == [2]
    assert proc.popen.poll() is None


# -- §1b: children exit if the supervisor dies -------------------------------------------------

def test_children_finish_their_job_and_exit_when_the_supervisor_is_killed(spawn):
    result = slow_record_db.enqueue("orphan", 2)
    proc = spawn("runworker", "--concurrency", "1",
                 env={**SHORT_LEASE, "EVENTJOBS_GRACE_SECONDS": "10"})
    wait_until(lambda: Ledger.objects.filter(job_key="orphan:start").exists(), timeout=30,
               message="the job running")
    child_pid = pid_of(row(result.id)["worker_ids"][0])
    os.kill(proc.pid, signal.SIGKILL)  # the supervisor only, not its group
    proc.wait(timeout=5)

    # The orphaned child stops claiming, finishes its job (a graceful stop) and exits.
    wait_until(lambda: not alive(child_pid), timeout=15, message="the orphaned child to exit")
    job = row(result.id)
    # The job ran to its end; its outcome must be recorded, not left RUNNING (to be
    # rescued as WorkerLost and run a second time).
    assert phases("orphan") == [("orphan:start", 1, child_pid), ("orphan:end", 1, child_pid)]
    assert job["status"] == "SUCCESSFUL", (job, proc.output()[-3000:])
    assert job["attempt"] == 1 and job["errors"] == [], job
    assert not Job.objects.filter(status="RUNNING").exists()
