"""A child killed while its claim is in flight (committed, not yet reported to its
supervisor) must not cost those jobs an attempt: the collector gives back every job still
RUNNING under the dead child's worker id that it did not know of (S1)."""

import pytest

from eventjobs.db import connect, connection_params
from eventjobs.jobs import store as jobstore
from eventjobs.jobs.completer import Attempt, Completer
from eventjobs.models import Job
from tests.testapp.tasks import add

pytestmark = pytest.mark.django_db(transaction=True)


def test_jobs_a_dead_child_claimed_without_reporting_go_back_uncharged():
    ids = [int(add.enqueue(i, i).id) for i in range(4)]
    conn = connect(connection_params("default"), "test")
    try:
        rows = jobstore.claim(conn, queues=["default"], limit=4, lease=30, worker_id="w:1:dead")
        assert {r["id"] for r in rows} == set(ids)
        running = Attempt.from_row(rows[0], "w:1:dead")  # the one it reported running
        completer = Completer()
        completer.interrupted(running, RuntimeError("died"))
        completer.release_unreported("w:1:dead", known=[running.job_id])
        completer.flush(conn)
    finally:
        conn.close()
    jobs = {j.id: j for j in Job.objects.filter(pk__in=ids)}
    assert jobs[running.job_id].attempt == 1 and jobs[running.job_id].errors
    for job_id in set(ids) - {running.job_id}:
        job = jobs[job_id]
        assert (job.status, job.attempt, job.worker_ids, job.errors) == ("READY", 0, [], []), job
