"""Snooze (uncharged, recorded in `snoozes`), atomic jobs (the body and its success in one
transaction) and the periodic scheduler's compare-and-set (real PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.tasks import task_backends

from eventjobs.db import connect, connection_params, database_now
from eventjobs.jobs.periodic import Schedule
from eventjobs.jobs.scheduler import Scheduler
from eventjobs.models import Job
from eventjobs.models import Schedule as ScheduleRow
from eventjobs.status import collect
from tests.testapp.models import Ledger
from tests.testapp.tasks import add, atomic_fails, atomic_record, snoozes_then_records

pytestmark = pytest.mark.django_db(transaction=True)


# -- snooze -----------------------------------------------------------------------------
def test_snooze_charges_no_attempt_records_no_error_and_keeps_each_snooze(run_worker):
    result = snoozes_then_records.enqueue("s", 2)  # max_attempts=1: a charge would fail it
    run_worker()
    row = Job.objects.get(pk=result.id)
    assert row.status == "SUCCESSFUL", row.errors
    assert row.attempt == 1 and len(row.worker_ids) == 1 and row.errors == []
    assert row.return_value == {"attempt": 1}  # every run was attempt 1
    assert len(row.snoozes) == 2
    assert all(s["seconds"] == 0 and s["worker_id"] and s["at"] for s in row.snoozes)


def test_a_snooze_for_later_waits_as_scheduled(run_worker):
    result = snoozes_then_records.enqueue("later", 1, seconds=60)
    run_worker()
    row = Job.objects.get(pk=result.id)
    assert row.status == "SCHEDULED" and row.attempt == 0 and row.worker_ids == []
    assert row.snoozes[0]["seconds"] == 60
    with connect(connection_params("default"), "clock") as conn:
        due_in = (row.run_after - database_now(conn)).total_seconds()
    assert 50 < due_in <= 60
    assert snoozes_then_records.get_result(result.id).status == "READY"


# -- atomic -----------------------------------------------------------------------------
def test_an_atomic_success_commits_the_body_and_the_outcome_together(run_worker):
    result = atomic_record.enqueue("ok")
    run_worker()
    assert Job.objects.get(pk=result.id).status == "SUCCESSFUL"
    assert Ledger.objects.filter(job_key="ok").count() == 1


def test_an_atomic_task_that_raises_leaves_nothing_behind(run_worker):
    result = atomic_fails.enqueue("bad")
    run_worker(max_wait=3)
    row = Job.objects.get(pk=result.id)
    assert row.status == "FAILED" and row.attempt == 2
    assert Ledger.objects.filter(job_key="bad").count() == 0  # both attempts rolled back


def test_an_atomic_task_whose_lease_was_lost_rolls_back(run_worker, monkeypatch):
    """The job was rescued while it ran (its token changed): its work is undone too."""
    from eventjobs.jobs import atomic

    real = atomic.execute

    def execute_then_lose_lease(*args, **kwargs):
        outcome = real(*args, **kwargs)
        with connect(connection_params("default"), "thief") as other:
            other.execute("UPDATE eventjobs_job SET lease_token = gen_random_uuid() "
                          "WHERE status = 'RUNNING'")
        return outcome

    monkeypatch.setattr(atomic, "execute", execute_then_lose_lease)
    result = atomic_record.enqueue("lost")
    run_worker()
    assert Ledger.objects.filter(job_key="lost").count() == 0
    assert Job.objects.get(pk=result.id).status == "RUNNING"  # the rescuer's now


# -- the scheduler's compare-and-set ----------------------------------------------------
@pytest.fixture
def two_connections():
    conns = [connect(connection_params("default"), f"scheduler {i}") for i in range(2)]
    yield conns
    for c in conns:
        c.close()


def test_each_tick_is_enqueued_once_by_however_many_schedulers(two_connections):
    a, b = two_connections
    schedule = Schedule(name="every10", task=add, every=10, args=[1, 2])
    schedulers = [Scheduler([schedule]), Scheduler([schedule])]
    start = database_now(a).replace(microsecond=0)
    start -= timedelta(seconds=start.second % 10)
    for scheduler, conn in zip(schedulers, two_connections, strict=True):
        scheduler.run_once(conn, now=start + timedelta(seconds=1))
    assert Job.objects.count() == 0  # a new schedule starts at its next tick
    for step in range(1, 4):
        for scheduler, conn in zip(schedulers, two_connections, strict=True):
            scheduler.run_once(conn, now=start + timedelta(seconds=10 * step + 2))
    ticks = sorted(Job.objects.values_list("run_after", flat=True))
    assert ticks == [start + timedelta(seconds=10 * s) for s in (1, 2, 3)]
    row = ScheduleRow.objects.get()
    assert row.last_tick == ticks[-1] and row.next_tick == ticks[-1] + timedelta(seconds=10)
    assert row.last_job_id == Job.objects.latest("run_after").id
    shown = collect()["schedules"]["every10"]
    assert shown["spec"] == "every:10" and shown["task"] == add.module_path
    assert shown["last_tick"] == ticks[-1].isoformat().replace("+00:00", "Z")
    assert shown["last_job"] == row.last_job_id
    # Nothing ran for ten ticks: they collapse into the newest one.
    schedulers[0].run_once(a, now=start + timedelta(seconds=135))
    assert Job.objects.count() == 4
    assert Job.objects.latest("run_after").run_after == start + timedelta(seconds=130)


def test_a_backend_without_schedules_gets_no_scheduler():
    assert Scheduler.for_backend("default") is None  # the test app registers none by default
    assert task_backends["default"]
