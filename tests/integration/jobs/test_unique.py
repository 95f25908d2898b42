"""@task(unique=True): one waiting job per (task, queue, args, kwargs), enforced by a
partial unique index, never by read-then-insert (real PostgreSQL, two connections)."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction

import eventjobs
from eventjobs.models import Job
from tests.conftest import wait_until
from tests.testapp.models import Ledger
from tests.testapp.tasks import unique_for_record, unique_record

pytestmark = pytest.mark.django_db(transaction=True)


def _someone_waits_for_a_lock() -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # fresh within a transaction
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                       "AND datname = current_database()")
        return cursor.fetchone()[0] > 0


def test_two_concurrent_enqueues_yield_one_row_and_one_run(run_worker):
    """Thread A enqueues and holds its transaction open; thread B enqueues the same job on
    its own connection meanwhile (it waits on the unique index), then A commits: B gets
    A's job."""
    a_inserted, b_started = threading.Event(), threading.Event()
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def first():
        try:
            with transaction.atomic():
                results["a"] = unique_record.enqueue("same").id
                a_inserted.set()
                b_started.wait(10)
                wait_until(_someone_waits_for_a_lock, timeout=10,
                           message="B's enqueue waiting on A's uncommitted row")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            a_inserted.set()
            connections.close_all()

    def second():
        try:
            a_inserted.wait(10)
            b_started.set()
            with transaction.atomic():
                results["b"] = unique_record.enqueue("same").id
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert results["a"] == results["b"]
    assert Job.objects.filter(task_path=unique_record.module_path).count() == 1
    run_worker()
    assert Ledger.objects.filter(job_key="same").count() == 1
    assert Job.objects.get().status == "SUCCESSFUL"


def test_a_duplicate_returns_the_waiting_job_and_a_finished_one_does_not_count(run_worker):
    first = unique_record.enqueue("k")
    again = unique_record.enqueue("k")
    other_args = unique_record.enqueue("other")
    other_queue = unique_record.using(queue_name="other").enqueue("k")
    assert again.id == first.id
    assert len({first.id, other_args.id, other_queue.id}) == 3
    run_worker()
    assert unique_record.enqueue("k").id != first.id  # the first one finished


def test_unique_for_returns_a_job_that_succeeded_recently(run_worker):
    first = unique_for_record.enqueue("recent")
    run_worker()
    again = unique_for_record.enqueue("recent")
    assert again.id == first.id
    assert again.status == "SUCCESSFUL"
    assert again.return_value == "recent"
    Job.objects.filter(pk=first.id).update(
        finished_at=Job.objects.get(pk=first.id).finished_at.replace(year=2000))
    assert unique_for_record.enqueue("recent").id != first.id


def test_retry_of_a_failed_unique_job_whose_duplicate_waits_does_not_raise(caplog):
    failed = unique_record.enqueue("dup")
    Job.objects.filter(pk=failed.id).update(status="FAILED")
    waiting = unique_record.enqueue("dup")
    assert waiting.id != failed.id
    with transaction.atomic():
        assert eventjobs.retry_job(failed.id) == []
        assert Job.objects.count() == 2  # the caller's transaction is still usable
    assert Job.objects.get(pk=failed.id).status == "FAILED"
    assert f"job {failed.id} not retried" in caplog.text and waiting.id in caplog.text
    Job.objects.filter(pk=waiting.id).update(status="SUCCESSFUL")
    assert eventjobs.retry_job(failed.id) == [failed.id]


def test_enqueue_many_of_a_unique_task_collapses_duplicates():
    results = eventjobs.enqueue_many(unique_record, [(("m",), {}), (("m",), {}), (("n",), {})])
    assert results[0].id == results[1].id != results[2].id
    assert Job.objects.count() == 2
