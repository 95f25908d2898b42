"""Enqueue through Django's Tasks API: validation, transactions, stored options."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.tasks import TaskResultStatus
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils import timezone

import eventjobs
from eventjobs.exceptions import InvalidPayload
from eventjobs.models import Job
from tests.testapp.tasks import add, always_fails, record, record_high

pytestmark = pytest.mark.django_db(transaction=True)


def test_enqueue_returns_a_ready_result_readable_by_id():
    result = add.enqueue(2, 3)
    assert result.status == TaskResultStatus.READY
    again = add.get_result(result.id)
    assert again.args == [2, 3] and again.status == TaskResultStatus.READY
    assert again.enqueued_at is not None and again.worker_ids == [] and again.errors == []


def test_unknown_result_id_raises_does_not_exist():
    with pytest.raises(TaskResultDoesNotExist):
        add.get_result("999999")
    with pytest.raises(TaskResultDoesNotExist):
        add.get_result("not-a-number")


def test_rolled_back_enqueue_leaves_no_row():
    with pytest.raises(RuntimeError), transaction.atomic():
        add.enqueue(1, 1)
        raise RuntimeError("roll back")
    assert Job.objects.count() == 0


def test_enqueue_in_open_transaction_is_invisible_to_others_until_commit():
    import psycopg

    from eventjobs.db import connection_params

    other = psycopg.connect(**connection_params("default"), autocommit=True)
    with transaction.atomic():
        add.enqueue(1, 1)
        assert other.execute("SELECT count(*) FROM eventjobs_job").fetchone()[0] == 0
    assert other.execute("SELECT count(*) FROM eventjobs_job WHERE status = 'READY'"
                         ).fetchone()[0] == 1
    other.close()


@pytest.mark.parametrize(
    "bad",
    [{1, 2}, object(), b"bytes", float("nan"), "nul\x00", "\udc80", {1: "x"}],
)
def test_bad_arguments_raise_invalid_payload_and_keep_the_transaction_usable(bad):
    with transaction.atomic():
        with pytest.raises(InvalidPayload):
            add.enqueue(bad, 1)
        with pytest.raises(InvalidPayload):
            add.enqueue(1, b=bad)
        # The transaction is still usable: no SQL error happened.
        add.enqueue(1, 2)
    assert Job.objects.count() == 1


def test_unknown_queue_and_bad_priority_get_djangos_errors():
    with pytest.raises(InvalidTask, match="Queue 'nope' is not valid"):
        add.using(queue_name="nope").enqueue(1, 2)
    with pytest.raises(InvalidTask, match="priority must be a whole number"):
        add.using(priority=500).enqueue(1, 2)
    assert Job.objects.count() == 0


def test_bad_task_options_are_refused_at_decoration():
    from django.tasks import task

    with pytest.raises(InvalidTask, match="max_attempts"):
        task(max_attempts=0)(_module_level)
    with pytest.raises(InvalidTask, match="retry_backoff"):
        task(retry_backoff=-1)(_module_level)


def _module_level():
    pass


def test_effective_options_are_stored_on_the_row():
    always_fails.enqueue("x")
    add.enqueue(1, 2)
    failing = Job.objects.get(task_path__endswith="always_fails")
    plain = Job.objects.get(task_path__endswith=".add")
    assert (failing.max_attempts, failing.retry_backoff) == (3, 0.2)
    assert (plain.max_attempts, plain.retry_backoff, plain.timeout) == (3, 2.0, None)


def test_deferred_job_is_scheduled_but_reads_as_ready():
    result = add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 2)
    assert Job.objects.get(pk=result.id).status == "SCHEDULED"
    assert add.get_result(result.id).status == TaskResultStatus.READY


def test_naive_run_after_is_refused():
    from datetime import datetime

    with pytest.raises(InvalidTask, match="aware"):
        add.using(run_after=datetime(2030, 1, 1)).enqueue(1, 2)


def test_task_enqueued_signal_is_sent_inside_the_transaction():
    seen = []

    def receiver(sender, task_result, **kwargs):
        seen.append((task_result.id, connection.in_atomic_block))

    task_enqueued.connect(receiver)
    try:
        with transaction.atomic():
            result = record.enqueue("k")
    finally:
        task_enqueued.disconnect(receiver)
    assert seen == [(result.id, True)]


def test_enqueue_many_validates_everything_first():
    with pytest.raises(InvalidPayload, match=r"calls\[2\]\[0\]\[0\]: sets are not JSON"):
        eventjobs.enqueue_many(record, [(("a",), {}), (("b",), {}), (({1},), {})])
    assert Job.objects.count() == 0
    results = eventjobs.enqueue_many(record_high, [((f"k{i}",), {}) for i in range(50)])
    assert len(results) == 50
    rows = list(Job.objects.order_by("id").values_list("args", "priority"))
    assert rows == [([f"k{i}"], 10) for i in range(50)]


def test_aenqueue_and_aget_result():
    from asgiref.sync import async_to_sync

    async def roundtrip():
        result = await add.aenqueue(4, 5)
        return result, await add.aget_result(result.id)

    result, fetched = async_to_sync(roundtrip)()
    assert fetched.id == result.id and fetched.args == [4, 5]
