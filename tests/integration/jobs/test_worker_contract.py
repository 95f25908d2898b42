"""Django's Tasks contract as run by the worker loop (in this process, real PostgreSQL)."""

from datetime import timedelta

import pytest
from django.tasks import TaskResultStatus
from django.tasks.signals import task_finished, task_started
from django.utils import timezone

import eventjobs
from eventjobs.models import Job
from tests.testapp.models import Ledger
from tests.testapp.tasks import (
    add,
    always_fails,
    async_add,
    fails_then_succeeds,
    record,
    record_high,
    returns_set,
    with_context,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_sync_async_and_context_tasks_run_and_keep_results(run_worker):
    r1 = add.enqueue(2, 3)
    r2 = async_add.enqueue(4, 5)
    r3 = with_context.enqueue("ctx")
    worker = run_worker()
    for result, value in [(r1, 5), (r2, 9)]:
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.return_value == value
        assert result.worker_ids == [worker.worker_id]
        assert result.started_at and result.finished_at and result.last_attempted_at
        assert result.finished_at >= result.started_at
    r3.refresh()
    assert r3.return_value == {"attempt": 1, "id": r3.id}


def test_priority_then_enqueue_order(run_worker):
    low = [record.enqueue(f"low{i}") for i in range(3)]
    high = [record_high.enqueue(f"high{i}") for i in range(3)]
    mid = record.using(priority=5).enqueue("mid")
    assert low and high and mid
    run_worker()
    order = list(Ledger.objects.order_by("id").values_list("job_key", flat=True))
    assert order == ["high0", "high1", "high2", "mid", "low0", "low1", "low2"]


def test_run_after_is_respected(run_worker):
    later = record.using(run_after=timezone.now() + timedelta(seconds=1.5)).enqueue("later")
    record.enqueue("now")
    run_worker()
    assert list(Ledger.objects.values_list("job_key", flat=True)) == ["now"]
    assert Job.objects.get(pk=later.id).status == "SCHEDULED"
    run_worker(max_wait=10)
    ran = Ledger.objects.get(job_key="later")
    assert ran.at >= Job.objects.get(pk=later.id).run_after


def test_retry_with_backoff_then_failed_with_every_error(run_worker):
    result = always_fails.enqueue("x")
    run_worker(max_wait=20)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 3 and len(result.errors) == 3
    assert {e.exception_class_path for e in result.errors} == {"builtins.ValueError"}
    assert all("boom x" in e.traceback for e in result.errors)
    with pytest.raises(ValueError, match="Task failed"):
        _ = result.return_value
    # Attempts were spaced by at least the backoff (0.2 s, then 0.4 s).
    times = list(Ledger.objects.order_by("id").values_list("at", flat=True))
    assert times[1] - times[0] >= timedelta(seconds=0.2)
    assert times[2] - times[1] >= timedelta(seconds=0.4)


def test_fails_then_succeeds_keeps_the_earlier_errors(run_worker):
    result = fails_then_succeeds.enqueue("y", 2)
    run_worker(max_wait=20)
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 3 and result.attempts == 3 and len(result.errors) == 2


def test_manual_retry_of_a_failed_job(run_worker):
    result = always_fails.enqueue("z")
    run_worker(max_wait=20)
    assert eventjobs.retry_job(result.id) == [result.id]
    assert eventjobs.retry_job(result.id) == []  # not FAILED any more: a double click is a no-op
    assert add.get_backend().get_result(result.id).status == TaskResultStatus.READY
    run_worker(max_wait=20)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 4 and len(result.errors) == 4


def test_cancel_a_waiting_job(run_worker):
    result = record.enqueue("never")
    assert eventjobs.cancel_job(result.id) == [result.id]
    run_worker()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class_path == "eventjobs.exceptions.JobCancelled"
    assert not Ledger.objects.exists()


def test_non_json_return_value_fails_the_attempt_with_a_clear_error(run_worker):
    result = returns_set.enqueue()
    run_worker(max_wait=30)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert "set" in result.errors[0].traceback


def test_signals_started_each_attempt_finished_once(run_worker):
    started, finished = [], []

    def on_started(sender, task_result, **kwargs):
        started.append((task_result.id, task_result.status, task_result.attempts))

    def on_finished(sender, task_result, **kwargs):
        finished.append((task_result.id, task_result.status))

    task_started.connect(on_started)
    task_finished.connect(on_finished)
    try:
        ok = add.enqueue(1, 1)
        bad = fails_then_succeeds.enqueue("s", 1)
        run_worker(max_wait=20)
    finally:
        task_started.disconnect(on_started)
        task_finished.disconnect(on_finished)
    assert (ok.id, TaskResultStatus.RUNNING, 1) in started
    assert [s for s in started if s[0] == bad.id] == [
        (bad.id, TaskResultStatus.RUNNING, 1), (bad.id, TaskResultStatus.RUNNING, 2)]
    assert sorted(finished) == sorted([(ok.id, TaskResultStatus.SUCCESSFUL),
                                       (bad.id, TaskResultStatus.SUCCESSFUL)])


def test_a_task_path_that_does_not_import_is_released_without_charge(run_worker):
    job = Job.objects.create(task_path="tests.testapp.tasks.gone", args=[], kwargs={})
    record.enqueue("ok")
    run_worker()
    job.refresh_from_db()
    assert job.status == "SCHEDULED" and job.attempt == 0 and job.worker_ids == []
    assert Ledger.objects.filter(job_key="ok").count() == 1


def test_a_task_path_that_stays_missing_fails_after_the_grace(run_worker):
    job = Job.objects.create(task_path="tests.testapp.tasks.gone", args=[], kwargs={},
                             enqueued_at=timezone.now() - timedelta(hours=2))
    run_worker()
    job.refresh_from_db()
    assert job.status == "FAILED"
    assert job.errors[0]["exception_class_path"] == "eventjobs.exceptions.TaskNotFound"
