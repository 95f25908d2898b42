"""Acceptance: losing the LISTEN connection delays nothing (S21, part of S4).

A worker child's one connection (application_name 'eventjobs worker ...') claims jobs and
carries LISTEN. Killing it while the child waits must not stop jobs from starting
(polling), and the listener must come back (reconnect and LISTEN again).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from eventjobs.models import Job
from tests.conftest import wait_until
from tests.testapp.tasks import record

pytestmark = [pytest.mark.acceptance, pytest.mark.django_db(transaction=True)]


def heartbeat_backends() -> list[int]:
    """Backend pids of the worker children's claim/LISTEN connections to the test database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name LIKE 'eventjobs worker%%' ORDER BY pid")
        return [pid for (pid,) in cursor.fetchall()]


def terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert cursor.fetchone()[0] is True


def row(job_id) -> dict:
    return Job.objects.filter(pk=job_id).values().get()


def start_delay(job: dict) -> timedelta:
    """Enqueue -> claim, both stamped by the database."""
    return job["started_at"] - job["enqueued_at"]


def test_polling_starts_jobs_while_the_listen_connection_is_dead(spawn):
    poll = 0.5
    proc = spawn("runworker", "--concurrency", "1", env={"EVENTJOBS_POLL_SECONDS": str(poll)})
    old = wait_until(heartbeat_backends, timeout=30, message="a heartbeat/LISTEN connection")
    assert len(old) == 1
    terminate(old[0])
    wait_until(lambda: old[0] not in heartbeat_backends(), timeout=5,
               message="the LISTEN backend gone")

    result = record.enqueue("after-listen-killed")
    wait_until(lambda: row(result.id)["status"] == "SUCCESSFUL", timeout=15,
               message=f"the job run by polling\n{proc.output()[-2000:]}")
    # S21: started within P + 1 s of the enqueue.
    assert start_delay(row(result.id)) <= timedelta(seconds=poll + 1), row(result.id)

    # The listener reconnects (a new backend, not the killed one) within 10 s.
    new = wait_until(lambda: [p for p in heartbeat_backends() if p != old[0]], timeout=10,
                     message="the heartbeat/LISTEN connection re-established")
    assert new and old[0] not in new
    assert proc.popen.poll() is None, proc.output()[-2000:]


def test_listen_is_reestablished_after_the_connection_is_killed(spawn):
    # Polling so slow that only a NOTIFY can start the job quickly: after the listener
    # reconnects, wake-ups must work again.
    proc = spawn("runworker", "--concurrency", "1",
                 env={"EVENTJOBS_POLL_SECONDS": "30", "EVENTJOBS_LEASE_SECONDS": "30"})
    old = wait_until(heartbeat_backends, timeout=30, message="a heartbeat/LISTEN connection")
    # Sanity: NOTIFY wakes the idle worker well before the 30 s poll.
    first = record.enqueue("before-kill")
    wait_until(lambda: row(first.id)["status"] == "SUCCESSFUL", timeout=10,
               message="a job started by NOTIFY before the kill")
    assert start_delay(row(first.id)) <= timedelta(seconds=1.5)

    terminate(old[0])
    wait_until(lambda: [p for p in heartbeat_backends() if p != old[0]], timeout=10,
               message="the heartbeat/LISTEN connection re-established")
    # The new connection must have run LISTEN before the NOTIFY is sent. LISTEN is its
    # first statement: wait until it has run one and is idle again.
    def listen_done():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name LIKE 'eventjobs worker%%' AND state = 'idle' "
                "AND query <> ''")
            return cursor.fetchall()

    wait_until(listen_done, timeout=10, message="the new heartbeat connection's first statement")

    second = record.enqueue("after-reconnect")
    wait_until(lambda: row(second.id)["status"] == "SUCCESSFUL", timeout=40,
               message="a job enqueued after the reconnect")
    assert start_delay(row(second.id)) <= timedelta(seconds=1.5), (
        "the job waited for polling: LISTEN was not re-established", row(second.id))
    assert proc.popen.poll() is None
