"""A worker of every queue (no --queue) serves queues it has not seen before.

It learns the queues with ready jobs every few seconds and from NOTIFY; a job enqueued into
a queue that had no ready job at the last look must still be claimed, in a burst as in a loop.
"""

from __future__ import annotations

import pytest

from eventjobs.testing import run_jobs
from tests.testapp.models import Ledger
from tests.testapp.tasks import record_then_enqueue

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_job_enqueued_into_a_new_queue_mid_run_is_not_left_behind():
    record_then_enqueue.enqueue("first", "other")

    ran = run_jobs()

    assert ran == 2
    assert sorted(Ledger.objects.values_list("job_key", flat=True)) == ["first", "first-next"]
