"""Queue pause: the claim statements themselves skip a paused queue; `manage.py queue`;
the status JSON shows paused queues and schedules (real PostgreSQL)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from eventjobs.db import connect, connection_params
from eventjobs.jobs import store as jobstore
from eventjobs.models import Queue
from tests.testapp.tasks import add

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def conn():
    c = connect(connection_params("default"), "eventjobs test pause")
    c.execute("LISTEN eventjobs_job")
    yield c
    c.close()


def claim(conn, queues):
    return jobstore.claim(conn, queues=queues, limit=10, lease=30, worker_id="w")


def run(*args) -> str:
    out = StringIO()
    call_command("queue", *args, stdout=out)
    return out.getvalue()


def test_a_paused_queue_is_not_claimed_by_either_claim_statement(conn):
    add.enqueue(1, 1)
    add.using(queue_name="other").enqueue(2, 2)
    assert "Paused: default" in run("pause", "default")
    assert claim(conn, ["default"]) == []
    assert [j["queue"] for j in claim(conn, ["default", "other"])] == ["other"]
    list(conn.notifies(timeout=0))  # forget wake-ups so far
    assert "Resumed: default" in run("resume", "default")
    assert [n.payload for n in conn.notifies(timeout=1, stop_after=1)] == ["default"]
    assert [j["queue"] for j in claim(conn, ["default"])] == ["default"]


def test_queue_list_and_unknown_queues():
    run("pause", "other")
    lines = run("list").splitlines()
    assert lines[0].startswith("default") and lines[0].split()[1] == "active"
    assert lines[1].startswith("other") and lines[1].split()[1] == "paused"
    with pytest.raises(CommandError, match=r"unknown queue\(s\) \['nope'\]"):
        run("pause", "nope")
    assert Queue.objects.get(name="other").paused


def test_status_json_shows_paused_queues_and_schedules_and_keeps_its_keys():
    run("pause", "other")
    out = StringIO()
    call_command("eventjobs_status", "--json", stdout=out)
    state = json.loads(out.getvalue())
    assert {"version", "jobs", "workers", "groups", "schedules", "paused_queues"} <= set(state)
    assert state["paused_queues"] == ["other"]
    assert state["schedules"] == {}
    text = StringIO()
    call_command("eventjobs_status", stdout=text)
    assert "PAUSED" in text.getvalue()


def test_a_paused_queue_removed_from_settings_can_be_resumed_but_not_paused_again():
    Queue.objects.create(name="gone", paused=True)  # paused, then taken out of QUEUES
    assert "Resumed: gone" in run("resume", "gone")
    assert not Queue.objects.get(name="gone").paused
    with pytest.raises(CommandError, match=r"unknown queue\(s\) \['gone'\]"):
        run("pause", "gone")  # a typo-like name: still refused
    with pytest.raises(CommandError, match=r"unknown queue\(s\) \['gone'\]"):
        run("resume", "gone")  # not paused any more: unknown again
