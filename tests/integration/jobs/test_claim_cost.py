"""Jobs part 2 costs the plain claim one primary-key probe, and nothing else (issue 13).

Limits, schedules and unique keys stay off the claim path: LIMITED and SCHEDULED jobs are
outside the ready index, and the only addition to the claim statements is the paused-queue
probe, evaluated once per statement (not once per row or per job).
"""

from __future__ import annotations

import pytest

from eventjobs import enqueue_many
from eventjobs.db import django_connection
from tests.integration.jobs.plans import explain, indexes_of, nodes
from tests.testapp.tasks import add, limited_slow

pytestmark = pytest.mark.django_db(transaction=True)








@pytest.mark.parametrize("analyzed", [False, True], ids=["never-analyzed", "analyzed"])
@pytest.mark.parametrize("name,params", [
    ("claim_queue", {"queue": "default"}),
    ("claim_queues", {"queues": ["default", "other"]}),
])
def test_the_paused_queue_probe_runs_once_per_queue_and_limited_jobs_are_not_read(
        name, params, analyzed):
    # A table at the scale where the plan matters: a few ready jobs behind thousands of
    # LIMITED ones. (On a 40-row table the planner may rightly hash-join a sequential scan,
    # which says nothing about the claim's cost.)
    for i in range(20):
        add.enqueue(i, i)
    enqueue_many(limited_slow, [((f"l{i}", 0), {}) for i in range(5000)])
    if analyzed:
        django_connection("default").execute("ANALYZE eventjobs_job")
    plan = explain(name, {"limit": 10, "lease": 30, "worker_id": "t", **params})["Plan"]
    found = list(nodes(plan))
    probes = [n for n in found if n.get("Relation Name") == "eventjobs_queue"
              or "eventjobs_queue" in (n.get("Index Name") or "")]
    assert probes, [n["Node Type"] for n in found]
    queues = len(params.get("queues", [params.get("queue")]))
    assert all(n["Actual Loops"] <= queues and "Index" in n["Node Type"] for n in probes), probes
    job_scans = [n for n in found
                 if n.get("Relation Name") == "eventjobs_job" and "Scan" in n["Node Type"]]
    read = set().union(*(indexes_of(n) for n in job_scans))
    assert read <= {"eventjobs_job_ready_by_queue", "eventjobs_job_pkey"}, \
        [(n["Node Type"], indexes_of(n)) for n in job_scans]
    assert plan["Actual Rows"] == 10
