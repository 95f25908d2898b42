"""factory-boy factories for eventjobs' rows, for tests that need state the public API
would take many steps (or much time) to build: a FAILED job with its errors, a dead
letter, a consumer group at a given position. Prefer the public API where it is quick."""

from __future__ import annotations

import factory
from django.db.models.functions import Now
from factory.django import DjangoModelFactory

from eventjobs.jobs.statuses import JobStatus
from eventjobs.models import ConsumerGroup, Cursor, DeadLetter, DeadLetterStatus, Event, Job


class JobFactory(DjangoModelFactory):
    """A job row; `JobFactory(failed=True)` is a FAILED job with one recorded error."""

    class Meta:
        model = Job

    task_path = "tests.testapp.tasks.add"
    queue = "default"
    args = factory.LazyFunction(lambda: [1, 2])
    kwargs = factory.LazyFunction(dict)
    status = JobStatus.READY
    max_attempts = 3

    class Params:
        failed = factory.Trait(
            status=JobStatus.FAILED,
            attempt=1,
            finished_at=factory.LazyFunction(Now),
            worker_ids=factory.LazyFunction(lambda: ["host:1:abcd"]),
            errors=factory.LazyFunction(lambda: [{
                "exception_class_path": "builtins.ValueError",
                "traceback": "Traceback (most recent call last):\nValueError: boom",
                "message": "boom", "attempt": 1, "worker_id": "host:1:abcd"}]),
        )
        successful = factory.Trait(
            status=JobStatus.SUCCESSFUL,
            attempt=1,
            return_value=3,
            started_at=factory.LazyFunction(Now),
            finished_at=factory.LazyFunction(Now),
            worker_ids=factory.LazyFunction(lambda: ["host:1:abcd"]),
        )


class EventFactory(DjangoModelFactory):
    """An event row written as publish() writes it (txid and created_at from the database).
    Prefer eventjobs.publish() when the test is about publishing."""

    class Meta:
        model = Event

    type = "post.published"
    key = factory.Sequence(lambda n: f"post-{n}")
    data = factory.Sequence(lambda n: {"seq": n})

    @factory.lazy_attribute
    def key_hash(self):
        from eventjobs.events.partitions import key_hash

        return key_hash(self.key)


class ConsumerGroupFactory(DjangoModelFactory):
    """A consumer group with `partitions` cursors at the start of the log."""

    class Meta:
        model = ConsumerGroup
        django_get_or_create = ("name",)
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"group-{n}")
    partitions = 1

    @factory.post_generation
    def cursors(group, create, extracted, **kwargs):
        """`cursors__at=(txid, event_id)`: every partition at that position (default: the
        start of the log). A group that dead-lettered an event has moved past it."""
        if create:
            txid, event_id = kwargs.get("at", (0, 0))
            Cursor.objects.bulk_create(
                Cursor(group=group, partition=p, txid=txid, event_id=event_id)
                for p in range(group.partitions))


class DeadLetterFactory(DjangoModelFactory):
    """An open dead letter holding a copy of `event` (an EventFactory by default)."""

    class Meta:
        model = DeadLetter
        exclude = ("event",)

    event = factory.SubFactory(EventFactory)
    group = "counter"
    event_id = factory.SelfAttribute("event.id")
    event_type = factory.SelfAttribute("event.type")
    event_key = factory.SelfAttribute("event.key")
    event_data = factory.SelfAttribute("event.data")
    event_source = None
    event_created_at = factory.LazyFunction(Now)
    event_txid = factory.LazyAttribute(lambda o: o.event.txid)
    error = "builtins.ValueError: boom"
    traceback = "Traceback (most recent call last):\nValueError: boom"
    attempts = 3
    status = DeadLetterStatus.OPEN
