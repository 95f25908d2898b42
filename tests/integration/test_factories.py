"""The factories build rows the product reads back correctly."""

import pytest
from django.tasks import default_task_backend

import eventjobs
from eventjobs.models import DeadLetter, Event
from tests.factories import ConsumerGroupFactory, DeadLetterFactory, EventFactory, JobFactory

pytestmark = pytest.mark.django_db


def test_a_failed_job_reads_as_failed_with_its_error():
    job = JobFactory(failed=True)
    result = default_task_backend.get_result(job.id)
    assert result.status == "FAILED"
    assert result.errors[0].exception_class_path == "builtins.ValueError"
    assert result.attempts == 1


def test_events_and_dead_letters_carry_database_positions():
    event = EventFactory()
    event.refresh_from_db()
    assert event.txid > 0 and event.created_at is not None
    letter = DeadLetterFactory(event=event)
    letter.refresh_from_db()
    assert letter.event_txid == event.txid
    assert eventjobs.discard_dead_letters([letter.id]) == 1
    assert DeadLetter.objects.get().status == "DISCARDED"
    assert Event.objects.count() == 1


def test_a_group_gets_a_cursor_per_partition():
    group = ConsumerGroupFactory(partitions=4)
    assert group.cursors.count() == 4
