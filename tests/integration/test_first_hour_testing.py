"""Testing with eventjobs: commands that cannot work inside a test's open transaction say so
at once, and `eventjobs.testing` is the public home of the in-process helpers."""

from __future__ import annotations

import sys
import time
import types

import pytest
from django.core.management import CommandError, call_command

import eventjobs


@pytest.mark.timeout(30)
@pytest.mark.django_db
@pytest.mark.parametrize("command", [("consume", "ledger", "--burst", "--max-wait", "5"),
                                     ("runworker", "--burst", "--concurrency", "1")])
def test_a_command_inside_an_open_transaction_says_so_at_once(command):
    eventjobs.publish("t", {"seq": 1})
    started = time.monotonic()
    with pytest.raises(CommandError, match="inside an open transaction") as raised:
        call_command(*command)
    assert "eventjobs.testing.run_" in str(raised.value)
    assert time.monotonic() - started < 10


def test_eventjobs_testing_imports_and_delegates(monkeypatch):
    import eventjobs.testing

    calls = []
    events = types.ModuleType("eventjobs.events.testing")
    events.run_consumers = lambda *groups, raise_errors: calls.append(("c", groups,
                                                                       raise_errors)) or 2
    jobs = types.ModuleType("eventjobs.jobs.testing")
    jobs.run_jobs = lambda *, queue, raise_errors: calls.append(("j", queue, raise_errors)) or 3
    monkeypatch.setitem(sys.modules, "eventjobs.events.testing", events)
    monkeypatch.setitem(sys.modules, "eventjobs.jobs.testing", jobs)
    assert eventjobs.testing.run_consumers("ledger", "audit", raise_errors=False) == 2
    assert eventjobs.testing.run_jobs(queue="emails") == 3
    assert calls == [("c", ("ledger", "audit"), False), ("j", "emails", True)]


@pytest.mark.django_db
def test_run_jobs_of_a_backend_that_is_not_eventjobs_names_the_setting(settings):
    # Before: AttributeError: 'ImmediateBackend' object has no attribute 'database'.
    import eventjobs.testing

    settings.TASKS = {**settings.TASKS,
                      "immediate": {"BACKEND": "eventjobs.backends.ImmediateBackend"}}
    with pytest.raises(TypeError, match=r"TASKS\['immediate'\] is ImmediateBackend, not "
                                        r"eventjobs.backends.PostgresBackend"):
        eventjobs.testing.run_jobs(backend="immediate")
