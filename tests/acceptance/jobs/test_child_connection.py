"""A worker child's Django connection (it claims, waits for NOTIFY and runs the tasks)
carries eventjobs' TCP keepalives, like every connection eventjobs opens itself: a server
that vanishes mid-claim fails the claim within seconds instead of hanging the child for the
kernel's retransmission timeout (issue 8, item 10). Real `runworker`, real PostgreSQL."""

from __future__ import annotations

import pytest

from eventjobs.models import Job
from tests.testapp.tasks import connection_link_options

pytestmark = [pytest.mark.acceptance, pytest.mark.django_db(transaction=True)]


def test_a_worker_childs_connection_has_keepalives(spawn):
    result = connection_link_options.enqueue()

    worker = spawn("runworker", "--burst", "--concurrency", "1",
                   env={"EVENTJOBS_LISTEN": "0"})
    assert worker.wait(timeout=60) == 0

    job = Job.objects.get(pk=result.id)
    assert job.status == "SUCCESSFUL", job.errors
    assert job.return_value["keepalives"] == "1"
    assert int(job.return_value["keepalives_idle"]) > 0
    assert int(job.return_value["tcp_user_timeout"]) > 0
