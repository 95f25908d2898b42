"""Acceptance: periodic ticks, concurrency and rate limits across several real `runworker`
processes (issue 13). Each task writes DB-clock ledger rows: the oracle for what ran when."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import timedelta

import pytest

import eventjobs
from eventjobs.models import Job
from tests.conftest import wait_until
from tests.testapp.models import Ledger
from tests.testapp.tasks import limited_slow, rate_limited, rate_limited_fails, ticked

pytestmark = [pytest.mark.acceptance, pytest.mark.django_db(transaction=True)]

FAST = {"EVENTJOBS_POLL_SECONDS": "0.5", "EVENTJOBS_LEASE_SECONDS": "5"}


def stop(*procs) -> None:
    """Graceful stop: running jobs finish."""
    for proc in procs:
        proc.signal(signal.SIGTERM)
    for proc in procs:
        assert proc.wait(timeout=40) == 0, proc.output()[-3000:]


def test_a_periodic_task_under_two_runworkers_runs_once_per_tick(spawn):
    env = {**FAST, "EVENTJOBS_TEST_PERIODIC": "1"}
    workers = [spawn("runworker", "--concurrency", "1", env=env) for _ in range(2)]
    jobs = Job.objects.filter(task_path=ticked.module_path)
    wait_until(lambda: jobs.count() >= 11, timeout=40,
               message=f"11 ticks enqueued\n{workers[0].output()[-2000:]}")
    stop(*workers)
    for proc in workers:
        assert "periodic schedules: tests.testapp.tasks.ticked (every:1)" in proc.output()
    ticks = sorted(jobs.values_list("run_after", flat=True))
    assert len(ticks) == len(set(ticks)), "a tick was enqueued twice"
    # None missed: consecutive whole seconds from the first tick to the last.
    assert ticks == [ticks[0] + timedelta(seconds=i) for i in range(len(ticks))], ticks
    assert all(t.microsecond == 0 for t in ticks)
    # Each tick ran once (jobs left READY when the workers stopped have not run yet).
    done = list(jobs.filter(status="SUCCESSFUL").values_list("id", flat=True))
    assert len(done) >= 10
    runs = Counter(Ledger.objects.filter(job_key__startswith="tick:")
                   .values_list("job_key", flat=True))
    assert runs == {f"tick:{job_id}": 1 for job_id in done}


def _intervals(prefix: str) -> list[tuple]:
    rows = Ledger.objects.filter(job_key__startswith=prefix).values_list("job_key", "at")
    starts = {k.removesuffix(":start"): at for k, at in rows if k.endswith(":start")}
    ends = {k.removesuffix(":end"): at for k, at in rows if k.endswith(":end")}
    return [(starts[k], ends[k]) for k in starts]


def _max_overlap(intervals: list[tuple]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                    key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_two_workers_never_run_more_than_the_concurrency_at_once(spawn):
    ids = [int(r.id) for r in eventjobs.enqueue_many(
        limited_slow, [((f"lim{i}", 0.4), {}) for i in range(10)])]
    workers = [spawn("runworker", "--concurrency", "2", env=FAST) for _ in range(2)]
    wait_until(lambda: Job.objects.filter(pk__in=ids, status="SUCCESSFUL").count() == 10,
               timeout=60, message=f"all limited jobs done\n{workers[0].output()[-2000:]}")
    stop(*workers)
    intervals = _intervals("lim")
    assert len(intervals) == 10
    assert _max_overlap(intervals) == 2  # concurrency=2: reached, never passed


def test_a_rate_limit_holds_over_every_one_second_window(spawn):
    ids = [int(r.id) for r in eventjobs.enqueue_many(
        rate_limited, [((f"rate{i}",), {}) for i in range(16)])]
    workers = [spawn("runworker", "--concurrency", "2", env=FAST) for _ in range(2)]
    wait_until(lambda: Job.objects.filter(pk__in=ids, status="SUCCESSFUL").count() == 16,
               timeout=60, message=f"all rate-limited jobs done\n{workers[0].output()[-2000:]}")
    stop(*workers)
    starts = sorted(Ledger.objects.filter(job_key__startswith="rate")
                    .values_list("at", flat=True))
    assert len(starts) == 16
    window = timedelta(seconds=1)
    busiest = max(sum(1 for t in starts if s <= t < s + window) for s in starts)
    # 5/s; one more allowed for a claim that waited a few ms in a child's batch.
    assert busiest <= 6, busiest
    assert starts[-1] - starts[0] >= timedelta(seconds=2)  # 16 starts need 3 windows


def test_a_failing_rate_limited_task_retried_quickly_stays_within_the_rate(spawn):
    """The rate-limited API is down: rate_limit="3/s", each job retried 50 ms to 1 s after
    its failure. Every attempt is a start, so no window holds more than 3 of them, however
    many times each job is retried within it."""
    ids = [int(r.id) for r in eventjobs.enqueue_many(
        rate_limited_fails, [((f"down{i}",), {}) for i in range(2)])]
    workers = [spawn("runworker", "--concurrency", "2", env=FAST) for _ in range(2)]
    wait_until(lambda: Job.objects.filter(pk__in=ids, status="FAILED").count() == 2,
               timeout=60, message=f"both jobs failed for good\n{workers[0].output()[-2000:]}")
    stop(*workers)
    starts = sorted(Ledger.objects.filter(job_key__startswith="down")
                    .values_list("at", flat=True))
    assert len(starts) == 12  # 2 jobs x max_attempts=6
    # A start is counted from when the attempt began and stamped here a few ms later: a
    # window shorter than the rate's by more than that holds at most 3 (it held 8 when a
    # job's retries made it forget its earlier starts).
    window = timedelta(seconds=0.95)
    busiest = max(sum(1 for t in starts if s <= t < s + window) for s in starts)
    assert busiest <= 3, [t - starts[0] for t in starts]
    assert starts[-1] - starts[0] >= 3 * window  # 12 starts need 4 windows
