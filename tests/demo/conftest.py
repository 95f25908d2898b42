"""The demo blog's tests run under their own settings (tests.demo.settings: the demo's
apps and tables). Under any other settings module, e.g. the library suite's, only
test_suite_runs.py is collected, and it runs this folder in a pytest of its own."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from eventjobs.conf import eventjobs_settings
from eventjobs.db import connect, connection_params
from eventjobs.events import store as eventstore
from eventjobs.events.registry import get_group
from eventjobs.events.runner import GroupRunner

DEMO_SETTINGS = "tests.demo.settings"

if settings.SETTINGS_MODULE != DEMO_SETTINGS:
    collect_ignore = [p.name for p in Path(__file__).parent.glob("test_*.py")
                      if p.name != "test_suite_runs.py"]
else:
    collect_ignore = ["test_suite_runs.py"]


@pytest.fixture
def runner(transactional_db):
    """runner(group) -> a started in-process GroupRunner (what `consume` runs per group)."""
    made: list[GroupRunner] = []

    def make(name: str) -> GroupRunner:
        control = connect(connection_params("default"), "demo test runner")
        r = GroupRunner(get_group(name), opts=eventjobs_settings(), alias="default",
                        control=control, member=f"test:{uuid.uuid4().hex[:8]}", host="test",
                        pid=os.getpid())
        r.start(eventstore.system_identifier(control))
        made.append(r)
        return r

    yield make
    for r in made:
        r.leave()
        r.control.close()


@pytest.fixture
def consume_all(runner):
    """consume_all(*groups): handle every event committed so far, in-process."""
    from tests.integration.events.helpers import drain

    runners: dict[str, GroupRunner] = {}

    def run(*groups: str) -> None:
        for name in groups or ("post-counter", "search-index", "activity", "notifications"):
            if name not in runners:
                runners[name] = runner(name)
            drain(runners[name], max_seconds=90)  # another session of the shared
            # cluster may hold the visibility horizon for a while: a delay, never a loss

    return run
