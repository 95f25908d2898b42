"""Double submissions (two clicks, two admins) do the work once, say so, and log once."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

import eventjobs
from eventjobs.models import Cursor, DeadLetter, Job
from tests.factories import ConsumerGroupFactory, DeadLetterFactory, EventFactory, JobFactory
from tests.testapp.models import EventLedger

pytestmark = pytest.mark.django_db


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_retrying_twice_schedules_one_new_attempt(as_user):
    job = JobFactory(failed=True, max_attempts=1)
    client = as_user("eventjobs.view_job", "eventjobs.retry_job")
    first = client.action("job", "retry_jobs", [job.pk])
    second = client.action("job", "retry_jobs", [job.pk])
    job.refresh_from_db()
    assert job.status == "READY" and job.max_attempts == 2  # one more attempt, not two
    assert "Retried 1 job." in _messages(first)
    assert any(m.startswith("Skipped 1 job: only FAILED") for m in _messages(second))
    assert LogEntry.objects.count() == 1


def test_cancelling_a_running_job_is_refused_and_says_why(as_user):
    running = JobFactory(status="RUNNING", attempt=1, worker_ids=["h:1:a"])
    waiting = JobFactory()
    client = as_user("eventjobs.view_job", "eventjobs.cancel_job")
    response = client.action("job", "cancel_jobs", [running.pk, waiting.pk])
    assert Job.objects.get(pk=running.pk).status == "RUNNING"
    cancelled = Job.objects.get(pk=waiting.pk)
    assert cancelled.status == "FAILED"
    assert cancelled.errors[-1]["exception_class_path"] == "eventjobs.exceptions.JobCancelled"
    assert "Cancelled 1 job." in _messages(response)
    assert any("running or finished cannot be cancelled" in m for m in _messages(response))


def test_reprocessing_twice_handles_the_event_once(as_user):
    event = EventFactory(data={"seq": 7})
    dead = DeadLetterFactory(event=event, group="ledger")
    client = as_user("eventjobs.view_deadletter", "eventjobs.reprocess_deadletter")
    first = client.action("deadletter", "reprocess_dead_letters", [dead.pk])
    second = client.action("deadletter", "reprocess_dead_letters", [dead.pk])
    assert DeadLetter.objects.get(pk=dead.pk).status == "RESOLVED"
    assert EventLedger.objects.filter(group="ledger", event_id=event.pk).count() == 1
    assert "Reprocessed and resolved 1 dead letter." in _messages(first)
    assert any(m.startswith("Skipped 1 dead letter: not open") for m in _messages(second))
    assert LogEntry.objects.count() == 1


def test_a_reprocess_that_fails_again_stays_open_and_says_so(as_user):
    dead = DeadLetterFactory(event=EventFactory(data={"fail_in": ["ledger"]}), group="ledger",
                             attempts=3)
    client = as_user("eventjobs.view_deadletter", "eventjobs.reprocess_deadletter")
    response = client.action("deadletter", "reprocess_dead_letters", [dead.pk])
    dead.refresh_from_db()
    assert dead.status == "OPEN" and dead.attempts == 4 and "fails in ledger" in dead.error
    assert any("failed again" in m for m in _messages(response))


def test_discarding_twice_discards_once(as_user):
    dead = DeadLetterFactory()
    client = as_user("eventjobs.view_deadletter", "eventjobs.discard_deadletter")
    client.action("deadletter", "discard_dead_letters", [dead.pk])
    second = client.action("deadletter", "discard_dead_letters", [dead.pk])
    assert DeadLetter.objects.get(pk=dead.pk).status == "DISCARDED"
    assert any(m.startswith("Skipped 1 dead letter") for m in _messages(second))
    assert LogEntry.objects.count() == 1


def test_pausing_twice_changes_nothing_the_second_time(as_user):
    ConsumerGroupFactory(name="ledger", partitions=2)
    client = as_user("eventjobs.view_consumergroup", "eventjobs.pause_consumergroup")
    client.action("consumergroup", "pause_groups", ["ledger"])
    generations = list(Cursor.objects.order_by("partition").values_list("generation", flat=True))
    second = client.action("consumergroup", "pause_groups", ["ledger"])
    assert list(Cursor.objects.order_by("partition").values_list(
        "generation", flat=True)) == generations
    assert any("already paused" in m for m in _messages(second))
    assert LogEntry.objects.count() == 1


def test_reset_shows_the_redeliveries_first_and_twice_changes_nothing(as_user):
    events = eventjobs.publish_many([{"type": "t", "key": f"k{i}"} for i in range(5)])
    ConsumerGroupFactory(name="ledger", partitions=1)
    last = events[-1]
    Cursor.objects.filter(group="ledger").update(txid=last.txid, event_id=last.id)
    client = as_user("eventjobs.view_consumergroup", "eventjobs.reset_consumergroup")
    url = "/admin/eventjobs/consumergroup/ledger/reset/"
    plan = client.post_form(url, {"to": "event", "event_id": events[2].id})
    assert plan.status_code == 200
    assert plan.context["plan"].redeliveries == 3  # events 2, 3 and 4 come again
    assert "3\n     events the group has already handled" in plan.content.decode()
    assert Cursor.objects.get(group="ledger").event_id == last.id  # nothing moved yet
    done = client.post_form(url, {"to": "event", "event_id": events[2].id, "confirm": "1"},
                            follow=True)
    cursor = Cursor.objects.get(group="ledger")
    assert cursor.event_id == events[2].id - 1
    assert any("3 handled event(s) delivered again" in m for m in _messages(done))
    again = client.post_form(url, {"to": "event", "event_id": events[2].id, "confirm": "1"},
                             follow=True)
    assert Cursor.objects.get(group="ledger").generation == cursor.generation
    assert any("already at" in m and "nothing changed" in m for m in _messages(again))
    assert LogEntry.objects.count() == 2  # both submissions are on record, saying what happened


def test_reset_form_explains_a_bad_target(as_user):
    ConsumerGroupFactory(name="ledger")
    client = as_user("eventjobs.view_consumergroup", "eventjobs.reset_consumergroup")
    url = "/admin/eventjobs/consumergroup/ledger/reset/"
    missing = client.post_form(url, {"to": "event", "event_id": 999999})
    assert "event 999999 does not exist" in missing.content.decode()
    bad_time = client.post_form(url, {"to": "time", "at": "yesterday-ish"})
    assert "neither an ISO 8601 time" in bad_time.content.decode()
    assert client.post_form(url, {"to": "time", "at": "2h"}).context["plan"] is not None


def test_jobs_of_a_backend_no_longer_configured_are_left_alone_with_a_message(as_user):
    job = JobFactory(failed=True, backend="retired")
    client = as_user("eventjobs.view_job", "eventjobs.retry_job")
    response = client.action("job", "retry_jobs", [job.pk])
    assert Job.objects.get(pk=job.pk).status == "FAILED"
    assert any("task backend 'retired' left alone" in m for m in _messages(response))


def test_reprocessing_a_group_without_consumers_in_this_code_says_so(as_user):
    dead = DeadLetterFactory(group="retired-group")
    client = as_user("eventjobs.view_deadletter", "eventjobs.reprocess_deadletter")
    response = client.action("deadletter", "reprocess_dead_letters", [dead.pk])
    assert DeadLetter.objects.get(pk=dead.pk).status == "OPEN"
    assert any("no consumer registered for group 'retired-group'" in m
               for m in _messages(response))
    assert not any("Skipped" in m for m in _messages(response))
