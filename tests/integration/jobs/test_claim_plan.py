"""A backlog in one queue costs another queue's claims nothing (issue 9).

The claim walks `eventjobs_job_ready_by_queue` (queue, priority DESC, id) WHERE READY, one
short index scan per queue, whatever the table statistics say: these tables are filled
in SQL and never analyzed, as after a burst of enqueues.
"""

import pytest
from django.db import connection

from tests.integration.jobs.plans import explain, indexes_of, nodes
from tests.testapp.tasks import add

# Committed rows (and a TRUNCATE after each test): rolled-back rows of another test would
# leave dead index entries that inflate the pages a claim touches.
pytestmark = pytest.mark.django_db(transaction=True)


def _fill(queue: str, n: int, status: str = "READY", priority: int = 100) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO eventjobs_job (task_path, backend, queue, priority, takes_context, "
            "args, kwargs, status, run_after, enqueued_at, max_attempts, retry_backoff, "
            "attempt, worker_ids, errors) "
            "SELECT 'tests.testapp.tasks.add', 'default', %s, %s, false, '[1, 2]', '{}', %s, "
            "now(), now(), 3, 2, 0, '[]', '[]' FROM generate_series(1, %s)",
            [queue, priority, status, n])








def _claim_params(**extra) -> dict:
    return {"limit": 10, "lease": 30, "worker_id": "test", **extra}


@pytest.mark.parametrize("name,params", [
    ("claim_queue", {"queue": "default"}),
    ("claim_queues", {"queues": ["default", "other"]}),
])
def test_a_claim_reads_only_its_own_queue_whatever_waits_in_others(name, params):
    _fill("slow", 150_000)  # higher priority than default's jobs: sorted first by a global index
    for i in range(5):
        add.enqueue(i, i)
    plan = explain(name, _claim_params(**params))
    scans = [n for n in nodes(plan["Plan"]) if n.get("Relation Name") == "eventjobs_job"
             and "Scan" in n["Node Type"] and n.get("Index Name") != "eventjobs_job_pkey"]
    # An index scan, or (as statistics left by autovacuum may choose) a bitmap heap scan
    # over the same per-queue index.
    assert scans and all(indexes_of(n) == {"eventjobs_job_ready_by_queue"} for n in scans), \
        [(n["Node Type"], indexes_of(n)) for n in scans]
    assert sum(n["Actual Rows"] for n in scans) <= 5 * len(scans), scans
    # A handful of pages, not the 150,000-row backlog of 'slow'.
    touched = plan["Plan"]["Shared Hit Blocks"] + plan["Plan"]["Shared Read Blocks"]
    assert touched < 200, touched


def test_finished_and_future_jobs_stay_out_of_the_claim():
    _fill("default", 100_000, status="SUCCESSFUL")
    _fill("default", 100_000, status="SCHEDULED")
    add.enqueue(1, 1)
    plan = explain("claim_queue", _claim_params(queue="default"))
    touched = plan["Plan"]["Shared Hit Blocks"] + plan["Plan"]["Shared Read Blocks"]
    assert touched < 100, touched
