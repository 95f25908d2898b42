"""S1 and S6: SIGKILL of worker children and of `consume` processes, at random moments.

S1: two `runworker --concurrency 2` run 5,000 short jobs (half with max_attempts=1)
while 20 random worker children are SIGKILLed. Each job marks its start and end in a
run log (an O_APPEND file, so a mark survives the kill). The verdict is per killed
child: of the attempts it had claimed, at most one (the job it was running) may be
left without a recorded success; every other claimed job must come back uncharged.

S6: two `consume` processes handle a stream (a backlog plus racing publishers) with a
DB-side handler while one of them is SIGKILLed and restarted, 20 times: no event
skipped, none handled twice (ledger rows and counter increments), per-key order kept,
and no partition's position ever moves backwards (sampled every 50 ms).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict

import pytest

import eventjobs
from eventjobs.models import Job
from tests.acceptance.jobs.helpers import pid_of
from tests.conftest import wait_until
from tests.reliability import procs as ptree
from tests.reliability.clients import Client, Outcomes, event_writer, publish_backlog
from tests.reliability.oracle import PositionSampler, check_events, read_marks, sample
from tests.reliability.scenario import still_running, verdict, wait_ready
from tests.testapp.tasks import rel_marked, rel_marked_once

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(300)]

KILLS = 20
JOBS = 5000
JOB_MS = 5


def _enqueue_interleaved() -> dict[int, str]:
    """JOBS jobs, alternating chunks of rel_marked (3 attempts) and rel_marked_once (1)."""
    ids = {}
    for chunk in range(0, JOBS, 100):
        task, prefix = (rel_marked, "r") if chunk % 200 == 0 else (rel_marked_once, "o")
        keys = [f"{prefix}-{n}" for n in range(chunk, chunk + 100)]
        results = eventjobs.enqueue_many(task, [((key, JOB_MS), {}) for key in keys])
        ids.update({int(r.id): key for r, key in zip(results, keys, strict=True)})
    return ids


def _kill_children(supervisors: list[int], done) -> list[tuple[int, float]]:
    """SIGKILL KILLS random worker children, each one that has been up for a while, at
    random moments; [(pid, time.time())]."""
    first_seen: dict[int, float] = {}
    kills = []
    while len(kills) < KILLS and not done():
        time.sleep(random.uniform(0.2, 0.6))
        now = time.monotonic()
        children = [pid for sup in supervisors for pid in ptree.worker_children(sup)]
        for pid in children:
            first_seen.setdefault(pid, now)
        # Up for a second: started, registered and running jobs, not still importing.
        ready = [pid for pid in children if now - first_seen[pid] > 1.0]
        if ready:
            victim = random.choice(ready)
            if ptree.sigkill(victim):
                kills.append((victim, time.time()))
    return kills


def _attempts_left_unfinished(jobs: list[dict]) -> dict[int, list[tuple[int, int]]]:
    """{child pid: [(job id, attempt)]} for every attempt a child claimed (the job's
    worker_ids keep one entry per charged attempt) that did not end in that child's
    recorded success."""
    left = defaultdict(list)
    for job in jobs:
        for attempt, worker_id in enumerate(job["worker_ids"], start=1):
            last = attempt == len(job["worker_ids"])
            if not (last and job["status"] == "SUCCESSFUL"):
                left[pid_of(worker_id)].append((job["id"], attempt))
    return left


def test_s1_sigkill_of_worker_children_charges_only_the_running_job(pg_cluster, start, runlog):
    supervisors = [start("runworker", "--concurrency", "2") for _ in range(2)]
    wait_ready(pg_cluster, supervisors, 2)
    keys = _enqueue_interleaved()
    unfinished = Job.objects.filter(pk__in=list(keys)).exclude(status__in=("SUCCESSFUL",
                                                                          "FAILED"))
    kills = _kill_children([p.pid for p in supervisors], lambda: not unfinished.exists())
    problems = [] if len(kills) == KILLS else [
        f"harness: only {len(kills)} of {KILLS} kills landed before the jobs were done"]
    try:
        wait_until(lambda: not unfinished.exists(), timeout=60, interval=0.5)
    except AssertionError:
        problems.append(f"lost: jobs still not SUCCESSFUL or FAILED 60s after the last kill, "
                        f"e.g. {list(unfinished.values_list('id', 'status')[:10])}")
    jobs = list(Job.objects.filter(pk__in=list(keys)).values("id", "status", "attempt",
                                                              "worker_ids"))
    started = {(m.key, m.attempt) for m in read_marks(runlog) if m.phase == "start"}
    problems += _per_child(jobs, keys, started, {pid for pid, _ in kills})
    problems += _per_job(jobs, keys, started, len(kills))
    charged = sum(j["attempt"] - sum((keys[j["id"]], a) in started
                                     for a in range(1, j["attempt"] + 1)) for j in jobs)
    verdict(f"S1 {len(kills)} SIGKILLs of worker children over {JOBS} jobs", problems,
            context=f"statuses: {dict(Counter(j['status'] for j in jobs))}; attempts "
                    f"charged without a run: {charged}; killed: {[pid for pid, _ in kills]}")


def _per_child(jobs: list[dict], keys: dict[int, str], started: set, killed: set[int]
               ) -> list[str]:
    """Each killed child may leave one attempt unfinished (its running job); a child
    never killed leaves none."""
    problems = []
    for pid, attempts in sorted(_attempts_left_unfinished(jobs).items()):
        if pid not in killed:
            problems.append(f"child {pid} was never killed but left {len(attempts)} attempt(s) "
                            f"unfinished: {attempts[:10]}")
        elif len(attempts) > 1:
            never_ran = [(j, a) for j, a in attempts if (keys[j], a) not in started]
            problems.append(
                f"killed child {pid} left {len(attempts)} attempts unfinished (at most its "
                f"running job may be): {attempts[:8]}; {len(never_ran)} of them never started "
                "(charged for a neighbour's death)")
    return problems


def _per_job(jobs: list[dict], keys: dict[int, str], started: set, kills: int) -> list[str]:
    """No job with attempts to spare FAILED; a max_attempts=1 job FAILED only for a kill
    while it ran; at most one re-run per kill."""
    problems = []
    failed = [j for j in jobs if j["status"] == "FAILED"]
    retryable = [j["id"] for j in failed if keys[j["id"]].startswith("r-")]
    if retryable:
        problems.append(f"{len(retryable)} job(s) with 3 attempts FAILED: {sample(retryable)}")
    never_ran = [j["id"] for j in failed
                 if not any((keys[j["id"]], a) in started for a in range(1, j["attempt"] + 1))]
    if len(never_ran) > kills:
        problems.append(f"{len(never_ran)} job(s) with max_attempts=1 ended FAILED without "
                        f"ever running, e.g. {sample(never_ran)}")
    reruns = sum(max(0, j["attempt"] - 1) for j in jobs)
    if reruns > kills:
        problems.append(f"{reruns} re-runs for {kills} kills (at most one per kill)")
    return problems


def _kill_and_restart(consumers: list, start, count: int) -> int:
    kills = 0
    for _ in range(count):
        time.sleep(random.uniform(0.6, 1.2))
        n = random.randrange(len(consumers))
        consumers[n].kill_group()
        kills += 1
        consumers[n] = start("consume", "exactly-once")
    return kills


def test_s6_sigkill_of_consume_never_doubles_an_effect_or_moves_back(pg_cluster, start,
                                                                     db_url):
    outcomes = Outcomes()
    publish_backlog(800, outcomes, sleep_ms=1)
    consumers = [start("consume", "exactly-once") for _ in range(2)]
    wait_ready(pg_cluster, consumers=2)
    sampler = PositionSampler(db_url)
    sampler.start()
    stop = threading.Event()
    publishers = [Client(f"publisher-{n}", stop, outcomes, event_writer(n, sleep_ms=1),
                         seed=n, pause=0.1) for n in range(2)]
    for publisher in publishers:
        publisher.start()
    t0 = time.monotonic()
    kills = _kill_and_restart(consumers, start, KILLS)
    stop.set()
    for publisher in publishers:
        publisher.join(timeout=30)
    t1 = time.monotonic()
    wait_until(lambda: check_events(outcomes).done(), timeout=90, interval=0.5,
               message="every committed event handled")
    t2 = time.monotonic()
    time.sleep(0.5)  # a late double would show now
    report = check_events(outcomes)
    problems = report.problems() + sampler.finish() + still_running(consumers)
    if sampler.samples < 100:
        problems.append(f"harness: only {sampler.samples} position samples")
    verdict(f"S6 {kills} SIGKILLs of consume", problems,
            context=f"events: {outcomes.summary()}; handled {len(report.handled)}; "
                    f"kills took {t1 - t0:.0f}s, the drain after them {t2 - t1:.0f}s")
