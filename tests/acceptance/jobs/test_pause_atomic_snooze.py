"""Acceptance: queue pause and resume, exactly-once atomic jobs under repeated SIGKILL, and
snooze, with real `runworker` processes (issue 13)."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest
from django.core.management import call_command

import eventjobs
from eventjobs.models import Job
from tests.acceptance.jobs.helpers import db_now, pid_of, row
from tests.conftest import wait_until
from tests.testapp.models import Ledger
from tests.testapp.tasks import atomic_record, record, slow_record_db, snoozes_then_records

pytestmark = [pytest.mark.acceptance, pytest.mark.django_db(transaction=True)]

WORKER_LOST = "eventjobs.exceptions.WorkerLost"


def claimed(ids) -> int:
    return Job.objects.filter(pk__in=ids, attempt__gt=0).count()


def test_a_paused_queue_claims_nothing_and_resume_wakes_workers_at_once(spawn):
    poll = 5.0  # resume must not wait for a poll
    ids = [int(r.id) for r in eventjobs.enqueue_many(
        slow_record_db, [((f"p{i}", 0.2), {}) for i in range(40)])]
    proc = spawn("runworker", "--concurrency", "2", env={"EVENTJOBS_POLL_SECONDS": str(poll)})
    wait_until(lambda: Job.objects.filter(pk__in=ids, status="SUCCESSFUL").count() >= 3,
               timeout=30, message=f"some jobs done\n{proc.output()[-2000:]}")
    call_command("queue", "pause", "default")
    at_pause = claimed(ids)
    wait_until(lambda: not Job.objects.filter(pk__in=ids, status="RUNNING").exists(),
               timeout=10, message="jobs running at the pause finished")
    drained = claimed(ids)
    assert drained - at_pause <= 2  # claims racing the pause's commit (one per child)
    # The worker stays busy with another queue meanwhile: it claims, just not from default.
    for i in range(3):
        other = record.using(queue_name="other").enqueue(f"other{i}")
        wait_until(lambda o=other: row(o.id)["status"] == "SUCCESSFUL", timeout=15,
                   message="a job of the unpaused queue")
    assert claimed(ids) == drained, "a job of the paused queue was claimed"
    resumed_at = time.monotonic()
    call_command("queue", "resume", "default")
    wait_until(lambda: claimed(ids) > drained, timeout=poll, interval=0.02,
               message="a claim after resume")
    assert time.monotonic() - resumed_at < poll / 2  # the NOTIFY, not the next poll
    wait_until(lambda: Job.objects.filter(pk__in=ids, status="SUCCESSFUL").count() == 40,
               timeout=60, message="every job done after resume")


def test_an_atomic_task_killed_repeatedly_mid_run_leaves_one_ledger_row_per_job(spawn):
    keys = [f"atomic{i}" for i in range(8)]
    ids = [int(r.id) for r in eventjobs.enqueue_many(
        atomic_record, [((key, 0.6), {}) for key in keys])]
    proc = spawn("runworker", "--concurrency", "2", env={"EVENTJOBS_LEASE_SECONDS": "3"})
    kills = 0

    def running_long():
        """A job running for 0.2 s already (mid-sleep: its ledger row is written)."""
        found = Job.objects.filter(pk__in=ids, status="RUNNING",
                                   last_attempted_at__lt=db_now() - _ms(200)).first()
        return found

    for _ in range(5):
        job = wait_until(running_long, timeout=30,
                         message=f"an atomic job mid-run\n{proc.output()[-2000:]}")
        os.kill(pid_of(job.worker_ids[-1]), signal.SIGKILL)
        kills += 1
        # Its supervisor records the lost attempt at once (the child's pipe closes).
        wait_until(lambda j=job: row(j.id)["lease_token"] != j.lease_token, timeout=10,
                   message="the killed attempt recorded")
    wait_until(lambda: Job.objects.filter(pk__in=ids, status="SUCCESSFUL").count() == 8,
               timeout=90, message=f"every atomic job done\n{proc.output()[-3000:]}")
    assert Counter(Ledger.objects.filter(job_key__startswith="atomic")
                   .values_list("job_key", flat=True)) == dict.fromkeys(keys, 1)
    # Every kill landed mid-run (after the ledger insert) and was rolled back.
    lost = [e for job_id in ids for e in row(job_id)["errors"]
            if e["exception_class_path"] == WORKER_LOST]
    assert len(lost) == kills == 5


def test_snoozes_under_runworker_charge_nothing_and_show_in_the_history(spawn):
    result = snoozes_then_records.enqueue("rs", 3)
    proc = spawn("runworker", "--concurrency", "1")
    wait_until(lambda: row(result.id)["status"] == "SUCCESSFUL", timeout=30,
               message=f"the snoozing job done\n{proc.output()[-2000:]}")
    job = row(result.id)
    assert job["attempt"] == 1 and len(job["worker_ids"]) == 1 and job["errors"] == []
    assert [s["seconds"] for s in job["snoozes"]] == [0, 0, 0]
    assert Ledger.objects.filter(job_key="rs:snoozed").count() == 3


def _ms(n: int):
    from datetime import timedelta

    return timedelta(milliseconds=n)
