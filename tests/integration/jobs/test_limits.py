"""Concurrency and rate limits: LIMITED jobs wait outside the claim index and the
promoter admits them only while their key has room (real PostgreSQL, in-process)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection

import eventjobs
from eventjobs.db import connect, connection_params
from eventjobs.jobs import store as jobstore
from eventjobs.jobs.limits import promote_keys
from eventjobs.models import Job, RateStart
from tests.testapp.models import Ledger
from tests.testapp.tasks import limited_fails, limited_slow, per_account, rate_limited

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def conn():
    c = connect(connection_params("default"), "eventjobs test limits")
    yield c
    c.close()


def statuses(task) -> list[str]:
    return sorted(Job.objects.filter(task_path=task.module_path).values_list("status", flat=True))


def test_limited_jobs_wait_outside_the_claim_and_show_as_ready(conn):
    result = limited_slow.enqueue("a", 0)
    assert Job.objects.get(pk=result.id).status == "LIMITED"
    assert limited_slow.get_result(result.id).status == "READY"
    assert jobstore.claim(conn, queues=["default"], limit=10, lease=30, worker_id="w") == []


def test_the_promoter_admits_up_to_the_concurrency_and_a_finish_frees_a_slot(conn):
    for i in range(5):
        limited_slow.enqueue(f"c{i}", 0)
    assert promote_keys(conn) == 2
    assert promote_keys(conn) == 0  # READY ones count against the limit too
    claimed = jobstore.claim(conn, queues=["default"], limit=10, lease=30, worker_id="w")
    assert len(claimed) == 2
    assert promote_keys(conn) == 0  # ... and so do RUNNING ones
    job = claimed[0]
    jobstore.finish_successes(conn, [(job["id"], job["lease_token"], "null", 0.0, 0.0)])
    assert promote_keys(conn) == 1
    assert statuses(limited_slow) == ["LIMITED", "LIMITED", "READY", "RUNNING", "SUCCESSFUL"]


def test_a_concurrency_key_limits_each_key_on_its_own(conn):
    for account in (1, 1, 2, 2, 3):
        per_account.enqueue("k", account=account)
    assert promote_keys(conn) == 3  # one per account
    assert sorted(Job.objects.filter(status="READY").values_list("limit_key", flat=True)) == [
        f"{per_account.module_path}:{n}" for n in (1, 2, 3)]


def test_a_rate_counts_recent_starts_and_admitted_jobs(conn):
    for i in range(8):
        rate_limited.enqueue(f"r{i}")
    assert promote_keys(conn) == 5  # 5/s
    claimed = jobstore.claim(conn, queues=["default"], limit=10, lease=30, worker_id="w")
    for job in claimed:
        jobstore.finish_successes(conn, [(job["id"], job["lease_token"], "null", 0.0, 0.0)])
    # The finish stamps last_attempted_at with the start it reports (0.0 here: long ago),
    # so put the starts back to "just now" as a real run would.
    Job.objects.filter(status="SUCCESSFUL").update(last_attempted_at=_db_now())
    assert promote_keys(conn) == 0  # five starts within the last second
    Job.objects.filter(status="SUCCESSFUL").update(
        last_attempted_at=_db_now().replace(year=2000))
    assert promote_keys(conn) == 3  # the window moved on


def _fail_and_retry(conn, job) -> None:
    """Record a claimed job's attempt as failed, retried at once (back to LIMITED)."""
    rows = jobstore.record_failures(conn, [{
        "id": job["id"], "token": job["lease_token"], "status": "READY", "delay": 0,
        "error": {"message": "the API is down"}, "started_at": None}])
    assert [row[1] for row in rows] == ["LIMITED"]


def test_a_rate_counts_every_start_of_a_job_retried_within_the_window(conn):
    """The rate-limited API is down: a job that fails and is retried within the window
    starts again, and each start counts, not only its latest one."""
    job_id = int(rate_limited.enqueue("down").id)
    Job.objects.filter(pk=job_id).update(rate_window=60)  # 5/m: no start leaves the window
    starts = 0
    while starts < 10 and promote_keys(conn):
        [job] = jobstore.claim(conn, queues=["default"], limit=10, lease=30, worker_id="w")
        starts += 1
        _fail_and_retry(conn, job)
    assert starts == 5
    assert RateStart.objects.filter(job_id=job_id).count() == 4  # the latest is on its row
    # A second job of the key finds no room either: five starts are within the window.
    other = int(rate_limited.enqueue("other").id)
    Job.objects.filter(pk=other).update(rate_window=60)
    assert promote_keys(conn) == 0
    # Once the window is short enough to have moved past them, there is room again.
    Job.objects.filter(pk__in=[job_id, other]).update(rate_window=0.2)
    time.sleep(0.3)
    assert promote_keys(conn) == 2
    assert not RateStart.objects.exists()  # the promoter forgot the starts past the window


def test_a_rate_counts_the_earlier_starts_of_an_admitted_job_and_its_next_one(conn):
    """A retried job admitted again holds two starts of the room: the one it made and the
    one it is about to make (READY, not claimed yet)."""
    first = int(rate_limited.enqueue("a").id)
    Job.objects.filter(pk=first).update(rate_window=60)
    assert promote_keys(conn) == 1
    [job] = jobstore.claim(conn, queues=["default"], limit=10, lease=30, worker_id="w")
    _fail_and_retry(conn, job)
    assert promote_keys(conn) == 1  # admitted again: 1 start + 1 coming
    others = [int(rate_limited.enqueue(f"b{i}").id) for i in range(5)]
    Job.objects.filter(pk__in=others).update(rate_window=60)
    assert promote_keys(conn) == 3  # 5/m: 2 taken
    assert promote_keys(conn) == 0


def test_maintenance_forgets_starts_older_than_any_window(conn):
    """Starts of keys nobody promotes any more are deleted once no rate counts them."""
    from eventjobs.jobs.maintenance import JobMaintenance

    now = _db_now()
    RateStart.objects.create(limit_key="gone", started_at=now - timedelta(hours=2), job_id=1)
    RateStart.objects.create(limit_key="gone", started_at=now - timedelta(minutes=5), job_id=1)
    stats = JobMaintenance(conn, lease_seconds=30).run_once()
    assert stats["pruned_rate_starts"] == 1
    assert list(RateStart.objects.values_list("started_at", flat=True)) == [
        now - timedelta(minutes=5)]


def test_a_limited_jobs_retry_goes_back_through_the_limit(run_worker):
    result = limited_fails.enqueue("f")
    run_worker(max_wait=5)
    row = Job.objects.get(pk=result.id)
    assert row.status == "FAILED" and row.attempt == 3
    assert Ledger.objects.filter(job_key="f").count() == 3
    eventjobs.retry_job(result.id)
    assert Job.objects.get(pk=result.id).status == "LIMITED"


def test_the_worker_runs_limited_jobs_to_the_end(run_worker):
    ids = [limited_slow.enqueue(f"w{i}", 0).id for i in range(5)]
    run_worker()
    assert set(Job.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"SUCCESSFUL"}


def _db_now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def test_a_crashed_workers_slot_comes_back_with_its_lease(conn):
    """A job whose worker died keeps its slot until its lease expires; the rescue sends it
    back through the limit, and the same maintenance pass admits a job again."""
    from eventjobs.jobs.maintenance import JobMaintenance

    first, second = (int(limited_slow.enqueue(f"crash{i}", 0).id) for i in range(2))
    Job.objects.filter(pk=second).update(priority=-1)  # so `first` is admitted first
    per_key = Job.objects.filter(pk__in=[first, second])
    per_key.update(concurrency=1)
    assert promote_keys(conn) == 1
    claimed = jobstore.claim(conn, queues=["default"], limit=10, lease=30, worker_id="dead")
    assert [j["id"] for j in claimed] == [first]
    assert promote_keys(conn) == 0  # the slot is held while the lease lasts
    Job.objects.filter(pk=first).update(lease_expires_at=_db_now().replace(year=2000))
    stats = JobMaintenance(conn, lease_seconds=30).run_once()
    assert stats["rescued"] == 1 and stats["admitted"] == 1
    # The rescued job goes back through the limit and, first in priority, gets the slot.
    assert dict(per_key.values_list("id", "status")) == {first: "READY", second: "LIMITED"}
    errors = Job.objects.get(pk=first).errors
    assert [e["exception_class_path"] for e in errors] == ["eventjobs.exceptions.WorkerLost"]


def test_enqueue_many_stores_each_calls_limit_key(conn):
    eventjobs.enqueue_many(per_account, [(("a",), {"account": n}) for n in (1, 2, 2)])
    keys = sorted(Job.objects.filter(status="LIMITED").values_list("limit_key", flat=True))
    assert keys == [f"{per_account.module_path}:{n}" for n in (1, 2, 2)]
    assert promote_keys(conn) == 2
