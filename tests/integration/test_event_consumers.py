"""Consumer groups run in-process on real PostgreSQL: exactly-once effects, failures,
dead letters, replay and control, events to jobs, monitoring, dump/restore."""

from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection, transaction

import eventjobs
from eventjobs import eventstore
from eventjobs.grouprunner import PAUSED, ClusterMismatch
from eventjobs.models import ConsumerGroup, DeadLetter, Delivery, Job
from eventjobs.monitoring import groups_status
from tests.integration.event_helpers import drain, runner_fixture  # noqa: F401
from tests.testapp import consumers
from tests.testapp.models import EventLedger

pytestmark = pytest.mark.django_db(transaction=True)


def handled(group: str) -> Counter:
    return Counter(EventLedger.objects.filter(group=group).values_list("event_id", flat=True))


def test_dead_letters_are_exactly_the_failing_events_then_reprocessed(runner, monkeypatch):
    events = eventjobs.publish_many(
        [{"type": "t", "key": f"k{i % 5}",
          "data": {"seq": i, **({"fail_in": ["flaky"]} if i % 7 == 0 else {})}}
         for i in range(60)])
    failing = {e.id for e in events if e.data["seq"] % 7 == 0}
    flaky = runner("flaky")
    drain(flaky)
    counts = handled("flaky")
    assert set(counts) == {e.id for e in events} - failing
    assert set(counts.values()) == {1}  # the others handled exactly once
    open_letters = DeadLetter.objects.filter(group="flaky", status="open")
    assert {d.event_id for d in open_letters} == failing
    letter = open_letters.first()
    assert letter.attempts == 3 and "ValueError" in letter.error and "Traceback" in letter.traceback
    assert letter.event_type == "t" and letter.event_data["seq"] % 7 == 0
    assert not Delivery.objects.exists()  # retry counters are gone once decided
    status = groups_status()["flaky"]
    assert status["dead_letters"] == len(failing) and status["lag"] == 0
    assert status["recent_errors"] and status["recent_errors"][0]["type"] == "t"

    monkeypatch.setattr(consumers, "FIXED", True)
    ids = list(open_letters.values_list("id", flat=True))
    assert len(eventjobs.reprocess_dead_letters(ids)["resolved"]) == len(failing)
    assert eventjobs.reprocess_dead_letters(ids) == {"resolved": [], "failed": []}  # idempotent
    counts = handled("flaky")
    assert set(counts) == {e.id for e in events} and set(counts.values()) == {1}
    assert not DeadLetter.objects.filter(status="open").exists()


def test_reprocess_failure_keeps_it_open_and_discard(runner):
    eventjobs.publish("t", {"fail_in": ["flaky"]})
    flaky = runner("flaky")
    drain(flaky)
    letter = DeadLetter.objects.get()
    assert eventjobs.reprocess_dead_letters(group="flaky")["failed"] == [letter.id]
    letter.refresh_from_db()
    assert letter.status == "open" and letter.attempts == 4
    call_command("deadletters", "discard", str(letter.id))
    letter.refresh_from_db()
    assert letter.status == "discarded"
    assert eventjobs.discard_dead_letters([letter.id]) == 0


def test_replay_resolves_an_open_dead_letter_in_the_same_transaction(runner, monkeypatch):
    event = eventjobs.publish("t", {"fail_in": ["flaky"]})
    flaky = runner("flaky")
    drain(flaky)
    assert DeadLetter.objects.get().status == "open"
    monkeypatch.setattr(consumers, "FIXED", True)
    call_command("consumer_group", "reset", "flaky", "--to-event", str(event.id))
    drain(flaky)
    assert DeadLetter.objects.get().status == "resolved"
    assert handled("flaky") == {event.id: 1}


def test_a_retry_commits_what_came_before_and_recovers(runner, monkeypatch):
    events = eventjobs.publish_many([{"type": "t", "data": {"seq": i}} for i in range(5)])
    calls = []
    original = consumers._handle

    def fail_twice(group, event):
        if event.id == events[2].id and len(calls) < 2:
            calls.append(event.id)
            raise RuntimeError("transient")
        original(group, event)

    monkeypatch.setattr(consumers, "_handle", fail_twice)
    flaky = runner("flaky")
    flaky.run_once()  # fails on events[2]: events[0..1] are committed before backing off
    assert sorted(handled("flaky")) == [events[0].id, events[1].id]
    assert Delivery.objects.get().attempts == 1
    drain(flaky)
    assert handled("flaky") == {e.id: 1 for e in events}
    assert not DeadLetter.objects.exists() and not Delivery.objects.exists()


def test_two_groups_are_independent(runner):
    events = eventjobs.publish_many([
        {"type": "order.created", "data": {"fail_in": ["flaky"]}},
        {"type": "user.created"},
        {"type": "invoice.paid"},
    ])
    flaky, second = runner("flaky"), runner("second")
    drain(second)
    assert set(handled("second")) == {events[0].id, events[2].id}  # its types only
    assert not handled("flaky")
    drain(flaky)
    assert set(handled("flaky")) == {events[1].id, events[2].id}
    assert DeadLetter.objects.get().group == "flaky"
    assert set(handled("second")) == {events[0].id, events[2].id}
    status = groups_status()
    assert status["flaky"]["dead_letters"] == 1 and status["second"]["dead_letters"] == 0


def test_handler_enqueued_jobs_commit_with_the_position(runner):
    ok = eventjobs.publish("t", {"enqueue": True})
    bad = eventjobs.publish("t", {"enqueue": True, "fail_in": ["flaky"]})
    flaky = runner("flaky")
    drain(flaky)
    assert list(Job.objects.values_list("args", flat=True)) == [[f"event-{ok.id}"]]
    assert DeadLetter.objects.get().event_id == bad.id


def test_reset_and_pause_take_effect(runner):
    first = eventjobs.publish_many([{"type": "t", "data": {"seq": i}} for i in range(3)])
    ledger = runner("ledger")
    drain(ledger)
    assert handled("ledger") == {e.id: 1 for e in first}

    call_command("consumer_group", "reset", "ledger", "--to-event", str(first[1].id))
    drain(ledger)
    assert handled("ledger") == {first[0].id: 1, first[1].id: 2, first[2].id: 2}

    call_command("consumer_group", "reset", "ledger", "--to-beginning")
    drain(ledger)
    assert set(handled("ledger").values()) == {3, 2}

    call_command("consumer_group", "pause", "ledger")
    later = eventjobs.publish("t")
    assert ledger.run_once() == PAUSED
    assert later.id not in handled("ledger")
    assert groups_status()["ledger"]["paused"] is True
    call_command("consumer_group", "resume", "ledger")
    drain(ledger)
    assert handled("ledger")[later.id] == 1

    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        before = cursor.fetchone()[0]
    newest = eventjobs.publish("t")
    call_command("consumer_group", "reset", "ledger", "--to-time", before.isoformat())
    drain(ledger)
    assert handled("ledger")[newest.id] == 2 or handled("ledger")[newest.id] == 1
    # never skips: the event created after T is handled again (or first) after the reset
    assert handled("ledger")[newest.id] >= 1


def test_latest_start_skips_the_past(runner):
    eventjobs.publish("t")
    tail = runner("tail")
    after = eventjobs.publish("t")
    drain(tail)
    assert set(handled("tail")) == {after.id}


def test_lag_counts_matching_events_up_to_a_cap(runner, settings):
    runner("second")
    runner("ledger")
    eventjobs.publish_many([{"type": "order.x"}] * 3 + [{"type": "user.x"}] * 5)
    status = groups_status()
    assert status["second"]["lag"] == 3 and status["ledger"]["lag"] == 8
    settings.EVENTJOBS = {**settings.EVENTJOBS, "LAG_CAP": 5}
    status = groups_status()
    assert status["ledger"]["lag"] == 5 and status["ledger"]["lag_capped"] is True
    assert status["second"]["position"] == {"txid": "0", "event_id": 0}


def test_cursors_of_another_cluster_are_refused_until_translated(runner):
    # A restore copies txids of the old cluster: here far ahead of this one's counter.
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO eventjobs_event (type, data, txid) VALUES "
                       "('t', '{\"seq\": 1}', '900000000001'), ('t', '{\"seq\": 2}', "
                       "'900000000002') RETURNING id")
        copied = [row[0] for row in cursor.fetchall()]
    ledger = runner("ledger")
    with transaction.atomic():
        eventstore.reset_group(eventstore.raw_connection("default"), group="ledger",
                               position=(900000000001, copied[0]))  # handled the first
    ledger.leave()  # the process stops; a restored cluster starts new ones
    ConsumerGroup.objects.filter(name="ledger").update(system_identifier=12345)
    with pytest.raises(ClusterMismatch, match="translate"):
        runner("ledger")
    new = eventjobs.publish("t", {"seq": 3})
    call_command("consumer_group", "translate")
    assert ConsumerGroup.objects.get(name="ledger").system_identifier != 12345
    again = runner("ledger")
    drain(again)
    assert handled("ledger") == {copied[1]: 1, new.id: 1}
