"""Steering groups through eventjobs.events.control: what the command and the admin use."""

import pytest

import eventjobs
from eventjobs.events import control
from eventjobs.exceptions import GroupNotFound
from eventjobs.models import Cursor
from tests.integration.events.helpers import drain, runner_fixture  # noqa: F401


def _generations(name):
    return sorted(Cursor.objects.filter(group=name).values_list("generation", flat=True))


def test_reset_counts_what_it_delivers_again_and_a_repeat_changes_nothing(runner):
    events = eventjobs.publish_many([{"type": "t", "key": f"k{i}"} for i in range(5)])
    drain(runner("ledger"))
    plan = control.plan_reset("ledger", events[2].id)
    assert plan.redeliveries == 3 and not plan.redeliveries_capped
    done = control.reset("ledger", events[2].id)
    assert done.position == plan.position and done.redeliveries == 3
    moved = _generations("ledger")
    again = control.reset("ledger", events[2].id)  # a double click
    assert again.redeliveries == 0
    assert _generations("ledger") == moved
    assert control.reset("ledger", "beginning").redeliveries == 2  # only 0 and 1 are handled


def test_pause_and_resume_are_idempotent(runner):
    runner("ledger")
    assert control.pause("ledger") is True
    generations = _generations("ledger")
    assert control.pause("ledger") is False
    assert _generations("ledger") == generations
    assert control.resume("ledger") is True
    assert control.resume("ledger") is False


@pytest.mark.django_db
def test_unknown_groups_and_events_are_named():
    with pytest.raises(GroupNotFound, match="no consumer group 'nosuch'"):
        control.pause("nosuch")
    with pytest.raises(GroupNotFound):
        control.reset("nosuch", "beginning")


def test_reset_to_a_missing_event_says_so(runner):
    runner("ledger")
    with pytest.raises(LookupError, match="event 999999 does not exist"):
        control.reset("ledger", 999999)
