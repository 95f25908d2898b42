"""Claims may skip the WAL flush; recorded outcomes may not."""

import json

import pytest

from eventjobs.db import connect, connection_params, database_now
from eventjobs.jobs import store as jobstore
from tests.testapp.tasks import add

pytestmark = pytest.mark.django_db(transaction=True)


def _setting(conn) -> str:
    return conn.execute("SHOW synchronous_commit").fetchone()[0]


@pytest.mark.parametrize("outcome", ["success", "failure"])
def test_outcomes_commit_with_synchronous_commit_on(outcome):
    add.enqueue(1, 2)
    conn = connect(connection_params("default"), "durability test", synchronous_commit=False)
    try:
        assert _setting(conn) == "off"  # claims, heartbeats: a lost commit is re-claimed
        [job] = jobstore.claim(conn, queues=["default"], limit=1, lease=30, worker_id="w")
        # Look inside the outcome's own transaction: the statement must have turned the
        # flush wait on for its commit.
        with conn.transaction(force_rollback=True):
            if outcome == "success":
                now = database_now(conn).timestamp()
                kept = jobstore.finish_successes(
                    conn, [(job["id"], job["lease_token"], json.dumps(3), now, now)])
                assert set(kept) == {job["id"]}
            else:
                assert jobstore.record_failures(conn, [{
                    "id": job["id"], "token": job["lease_token"], "status": "FAILED",
                    "error": {"exception_class_path": "x.Y", "traceback": "t"}, "delay": 0,
                    "started_at": None}])
            assert _setting(conn) == "on"
        assert _setting(conn) == "off"  # only that transaction
    finally:
        conn.close()
