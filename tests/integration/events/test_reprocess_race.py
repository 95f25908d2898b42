"""Reprocessing a dead letter while a replay delivers the same event (issue 8, item 8):
the two are exclusive, and the event is handled once."""

import threading
from collections import Counter

import pytest
from django.db import connection

import eventjobs
from eventjobs.events import control
from eventjobs.models import DeadLetter
from tests.integration.events.helpers import drain, runner_fixture, wait_final  # noqa: F401
from tests.testapp import consumers
from tests.testapp.models import EventLedger

pytestmark = pytest.mark.django_db(transaction=True)


def handled(group: str) -> Counter:
    return Counter(EventLedger.objects.filter(group=group).values_list("event_id", flat=True))


def test_a_reprocess_leaves_an_event_a_replay_will_deliver_to_that_replay(runner, monkeypatch):
    bad = eventjobs.publish("t", {"fail_in": ["flaky"]})
    flaky = runner("flaky")
    drain(flaky)
    letter = DeadLetter.objects.get()
    monkeypatch.setattr(consumers, "FIXED", True)
    control.reset("flaky", bad.id)  # the replay: the group will deliver it again
    result = eventjobs.reprocess_dead_letters([letter.id])
    assert result == {"resolved": [], "failed": [], "replaying": [letter.id], "not_found": []}
    assert not handled("flaky")  # the reprocess did not run it
    drain(flaky)
    assert handled("flaky") == {bad.id: 1}
    letter.refresh_from_db()
    assert letter.status == "RESOLVED"  # by the replay, in its batch's transaction
    assert eventjobs.reprocess_dead_letters([letter.id])["resolved"] == []


def test_a_reprocess_waits_for_a_batch_replaying_the_event_and_then_does_nothing(
        runner, monkeypatch):
    bad = eventjobs.publish("t", {"fail_in": ["flaky"], "sleep": 0.5})
    flaky = runner("flaky")
    drain(flaky)
    letter = DeadLetter.objects.get()
    monkeypatch.setattr(consumers, "FIXED", True)
    control.reset("flaky", bad.id)
    started = threading.Event()
    original = consumers._handle

    def signal_start(group, event):
        started.set()
        original(group, event)

    monkeypatch.setattr(consumers, "_handle", signal_start)

    def replay():
        try:
            drain(flaky)
        finally:
            connection.close()

    wait_final(bad)
    batch = threading.Thread(target=replay)
    batch.start()
    assert started.wait(10)  # the replaying batch is inside the handler (0.5 s)
    result = eventjobs.reprocess_dead_letters([letter.id])  # waits for the batch's locks
    batch.join(20)
    assert result == {"resolved": [], "failed": [], "replaying": [], "not_found": []}
    assert handled("flaky") == {bad.id: 1}
    assert DeadLetter.objects.get().status == "RESOLVED"
