"""In-process consumer group runners for the event integration tests."""

import os
import time
import uuid

import pytest

from eventjobs.conf import eventjobs_settings
from eventjobs.db import connect, connection_params
from eventjobs.events import store as eventstore
from eventjobs.events.registry import get_group
from eventjobs.events.runner import EMPTY, NOTHING_OWNED, PAUSED, WAIT, GroupRunner
from tests.conftest import wait_until  # noqa: F401  (re-exported)


@pytest.fixture(name="runner")
def runner_fixture(transactional_db, settings):
    """runner(group) -> a started GroupRunner on this process's Django connection."""
    settings.EVENTJOBS = {"PARTITIONS": 4, "CONSUMER_LEASE_SECONDS": 5, "BATCH_SIZE": 100,
                          "HELD_BACK_AFTER_SECONDS": 0.2}
    made = []

    def make(name: str) -> GroupRunner:
        control = connect(connection_params("default"), "eventjobs test runner")
        r = GroupRunner(get_group(name), opts=eventjobs_settings(), alias="default",
                        control=control, member=f"test:{uuid.uuid4().hex[:8]}", host="test",
                        pid=os.getpid())
        made.append(r)
        r.start(eventstore.system_identifier(control))
        return r

    yield make
    for r in made:
        r.leave()
        r.control.close()


def wait_final(*events, timeout: float = 30) -> None:
    """Wait until `events` are below the horizon (final: readable by a batch). Other
    sessions of the shared cluster may hold the horizon back for a while."""
    from eventjobs.db import django_connection

    newest = max(e.txid for e in events)
    wait_until(lambda: eventstore.horizon(django_connection("default")) > newest,
               timeout=timeout, message="the events to be final (below the horizon)")


def drain(r: GroupRunner, max_seconds: float = 20, wait: bool = True) -> None:
    """Run batches until the group has handled every event committed before the call
    (sleeping through retry backoffs, and through horizon holds by other sessions of the
    cluster). wait=False: stop at the first batch that finds nothing to do."""
    r.burst_target = eventstore.last_event(r.control)
    deadline = time.monotonic() + max_seconds
    while True:
        outcome = r.run_once()
        if outcome == WAIT:
            time.sleep(max(0.0, r.wait_until - time.monotonic()))
            continue
        if outcome in (EMPTY, PAUSED, NOTHING_OWNED):
            if not wait or outcome != EMPTY or r.burst_done():
                return
            time.sleep(0.02)
        assert time.monotonic() < deadline, "drain did not finish"
