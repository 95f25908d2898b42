"""`eventjobs_status` shows each limit key's waiting, admitted and running jobs (issue 13:
every limit is visible in `eventjobs_status --json`)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from eventjobs.db import connect, connection_params
from eventjobs.jobs import store as jobstore
from eventjobs.jobs.limits import promote_keys
from tests.testapp.tasks import limited_slow, per_account, rate_limited

pytestmark = pytest.mark.django_db(transaction=True)


def _status() -> tuple[dict, str]:
    out, text = StringIO(), StringIO()
    call_command("eventjobs_status", "--json", stdout=out)
    call_command("eventjobs_status", stdout=text)
    return json.loads(out.getvalue()), text.getvalue()


def test_status_shows_each_limit_key_with_its_waiting_admitted_and_running_jobs():
    for i in range(5):
        limited_slow.enqueue(f"c{i}", 0)
    per_account.enqueue("k", account=7)
    rate_limited.enqueue("r")
    conn = connect(connection_params("default"), "eventjobs test limits status")
    try:
        promote_keys(conn)  # limited_slow: 2 admitted (concurrency=2); one of each other key
        jobstore.claim(conn, queues=["default"], limit=1, lease=30, worker_id="w")
    finally:
        conn.close()

    state, text = _status()

    slow = state["limits"][limited_slow.module_path]
    assert slow["task"] == limited_slow.module_path and slow["concurrency"] == 2
    assert (slow["waiting"], slow["ready"] + slow["running"]) == (3, 2)
    assert state["limits"][f"{per_account.module_path}:7"]["waiting"] == 0
    assert state["limits"][rate_limited.module_path]["rate"] == "5/1s"
    assert sum(key["running"] for key in state["limits"].values()) == 1
    assert state["jobs"]["default"]["READY"] == 6  # waiting under a limit counts as READY
    assert "Limited tasks" in text and f"{limited_slow.module_path}" in text
    assert "waiting 3" in text


def test_status_has_no_limits_when_no_limited_job_waits():
    state, text = _status()
    assert state["limits"] == {}
    assert "Limited tasks" not in text
