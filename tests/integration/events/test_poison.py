"""Handlers that misbehave in every way a handler can (issue 8, items 6 and 7): each is a
failed delivery of its own event, retried and then dead-lettered; the events around it
are handled exactly once, and the runner keeps going."""

from collections import Counter

import pytest

import eventjobs
from eventjobs.models import DeadLetter, Delivery
from tests.integration.events.helpers import drain, runner_fixture  # noqa: F401
from tests.testapp.models import EventLedger

pytestmark = pytest.mark.django_db(transaction=True)


def handled(group: str) -> Counter:
    return Counter(EventLedger.objects.filter(group=group).values_list("event_id", flat=True))


@pytest.mark.parametrize(("poison", "error"), [
    ("exit", "SystemExit: 5"),
    ("interrupt", "KeyboardInterrupt"),
    ("base", "Poison: poison"),
    ("swallow", "left the batch's transaction aborted"),
    ("rollback", "marked the batch's transaction for rollback"),
    ("coroutine", "returned coroutine"),
    ("statement_timeout", "canceling statement due to statement timeout"),
    ("busy", "left the batch's connection busy (ACTIVE)"),
])
def test_a_misbehaving_handler_fails_its_own_event_and_nothing_else(runner, poison, error):
    before, bad, after = eventjobs.publish_many([
        {"type": "t", "data": {"seq": 1}},
        {"type": "t", "data": {"seq": 2, "poison": poison}},
        {"type": "t", "data": {"seq": 3}},
    ])
    poisoned = runner("poison")
    drain(poisoned)  # raises if anything escapes the runner
    assert handled("poison") == {before.id: 1, after.id: 1}  # the innocent: once each
    letter = DeadLetter.objects.get()
    assert letter.event_id == bad.id and letter.attempts == 2, letter.error
    assert error in letter.error
    assert not Delivery.objects.exists()
    assert not EventLedger.objects.filter(group="poison-coroutine").exists()
    assert poisoned.owned and min(poisoned.owned.values()) >= after.position


def test_a_handler_running_past_the_batch_time_bound_is_dead_lettered(runner, settings):
    # In-process there is no alarm to interrupt it (consume has one: see the acceptance
    # tests); the runner still charges the event whose handler crossed the bound.
    settings.EVENTJOBS = {**settings.EVENTJOBS, "HANDLER_TIMEOUT_SECONDS": 0.2}
    before, slow, after = eventjobs.publish_many([
        {"type": "t", "data": {"seq": 1}},
        {"type": "t", "data": {"seq": 2, "poison": "sleep:0.4"}},
        {"type": "t", "data": {"seq": 3}},
    ])
    drain(runner("poison"))
    assert handled("poison") == {before.id: 1, after.id: 1}  # the slow one's writes rolled back
    letter = DeadLetter.objects.get()
    assert letter.event_id == slow.id and letter.attempts == 2
    assert "HandlerTimeout" in letter.error and "HANDLER_TIMEOUT_SECONDS" in letter.error


def test_a_handler_that_failed_only_because_an_earlier_one_spoiled_the_transaction_is_not_blamed(
        runner):
    # Many events in one batch; the third swallows an error. Before the fix the fourth
    # (innocent) event failed with InFailedSqlTransaction and was charged instead.
    events = eventjobs.publish_many(
        [{"type": "t", "data": {"seq": i, **({"poison": "swallow"} if i == 3 else {})}}
         for i in range(8)])
    drain(runner("poison"))
    bad = events[3]
    assert handled("poison") == {e.id: 1 for e in events if e.id != bad.id}
    assert list(DeadLetter.objects.values_list("event_id", flat=True)) == [bad.id]
