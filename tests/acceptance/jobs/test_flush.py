"""Outcomes of fast jobs are recorded while a long job runs after them in the same batch."""

import pytest

import eventjobs
from eventjobs.models import Job
from tests.conftest import wait_until
from tests.testapp.models import Ledger
from tests.testapp.tasks import add, slow_record

pytestmark = [pytest.mark.acceptance, pytest.mark.django_db(transaction=True)]


def test_fast_successes_are_recorded_while_a_long_job_runs(spawn):
    # Many no-ops teach the worker to claim in batches; the long job comes last.
    fast = eventjobs.enqueue_many(add, [((i, i), {}) for i in range(300)])
    slow = slow_record.enqueue("long", 8)
    worker = spawn("runworker", "--concurrency", "1")
    wait_until(lambda: Ledger.objects.filter(job_key="long:start").exists(), timeout=30,
               message="the long job to start")
    wait_until(lambda: Job.objects.filter(pk__in=[r.id for r in fast],
                                          status="SUCCESSFUL").count() == len(fast),
               timeout=5, message="every fast job recorded while the long one runs")
    assert not Ledger.objects.filter(job_key="long:end").exists()
    assert Job.objects.get(pk=slow.id).status == "RUNNING"
    worker.kill_group()
