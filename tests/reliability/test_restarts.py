"""S4 and S20: the database restarts, or its backends are killed, under load.

Two `runworker --concurrency 2` drain a backlog of jobs (and jobs enqueued meanwhile),
two `consume` processes read the "exactly-once" group while racing publishers write, and
then the server is restarted (`pg_ctl restart -m fast`, then `-m immediate`: crash
recovery), or for 30 s a random backend of those processes is terminated every 200 ms.
The oracle (tests/reliability/oracle.py) then demands: no acked job lost, no committed
event skipped, no doubled effect of the DB-side handler, no phantom, per-key order,
positions never backwards, every process still running, all work done within 30 s of
the fault, and LISTEN restored (probe jobs start far sooner than POLL_SECONDS).
"""

from __future__ import annotations

import random
import time

import pytest

from tests.reliability import procs as ptree
from tests.reliability.clients import enqueue_backlog, publish_backlog
from tests.reliability.scenario import (
    Load,
    probe_listen,
    still_running,
    verdict,
    wait_all_done,
    wait_ready,
)
from tests.testapp.models import Ledger
from tests.testapp.tasks import rel_job

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(300)]

# Long polls: only a NOTIFY can start a probe job within PROBE_BOUND.
LONG_POLL = {"EVENTJOBS_POLL_SECONDS": "30"}
PROBE_BOUND = 3.0
BACKLOG = 1500
RECOVERY = 30.0  # all work done within this long after the fault ends


def _start_processes(cluster, start) -> list:
    procs = [start("runworker", "--concurrency", "2", env=LONG_POLL) for _ in range(2)]
    procs += [start("consume", "exactly-once", env=LONG_POLL) for _ in range(2)]
    wait_ready(cluster, procs[:2], 2, consumers=2)
    return procs


def _start_load(db_url: str) -> Load:
    load = Load(db_url)
    enqueue_backlog(rel_job, "jb", BACKLOG, load.jobs, ms=5)
    publish_backlog(500, load.events)
    load.start()
    return load


def _judge(title: str, load: Load, procs: list, fault_end: float, *, max_duplicates: int,
           extra: list[str] | None = None) -> None:
    problems = wait_all_done(load, fault_end + RECOVERY, f"within {RECOVERY:.0f}s of the fault")
    problems += probe_listen(3, PROBE_BOUND, spacing=lambda: random.uniform(0.5, 1.0))
    time.sleep(0.5)  # a late double or phantom would show now
    jobs, events = load.figures()
    problems += jobs.problems(max_duplicates=max_duplicates)
    problems += events.problems()
    problems += load.sampler.finish()
    problems += still_running(procs)
    problems += extra or []
    verdict(title, problems, context=f"jobs: {load.jobs.summary()}; events: "
                                     f"{load.events.summary()}")


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_s4_restart_under_load_loses_skips_and_doubles_nothing(mode, pg_cluster, start, db_url):
    procs = _start_processes(pg_cluster, start)
    load = _start_load(db_url)
    wait_until_progress = time.monotonic() + 60
    while Ledger.objects.filter(job_key__startswith="jb-").count() < BACKLOG * 0.3:
        assert time.monotonic() < wait_until_progress, "the backlog did not start draining"
        time.sleep(0.05)
    log_offset = pg_cluster.log_size()
    restarted = pg_cluster.restart(mode)
    time.sleep(3)  # clients keep writing through and after the restart
    load.stop_clients()
    recovered = "automatic recovery in progress" in pg_cluster.log_since(log_offset)
    harness = [] if recovered == (mode == "immediate") else [
        f"harness: crash recovery {'did not run' if not recovered else 'ran'} after -m {mode}"]
    _judge(f"S4 pg_ctl restart -m {mode}", load, procs, restarted,
           max_duplicates=4,  # at most the job each of the 4 children had in flight
           extra=harness)


def test_s20_random_backend_kills_every_200ms_for_30s(pg_cluster, start, db_url):
    procs = _start_processes(pg_cluster, start)
    load = _start_load(db_url)
    sessions = [p.pid for p in procs]
    kills: list[str] = []
    began = time.monotonic()
    for tick in range(150):  # one kill every 200 ms for 30 s
        time.sleep(max(0.0, began + tick * 0.2 - time.monotonic()))
        by_session = ptree.backends_by_session(pg_cluster.backends(), sessions)
        ours = [b for found in by_session.values() for b in found]
        if ours:
            victim = random.choice(ours)
            if pg_cluster.terminate(victim.pid):
                kills.append(victim.application_name or "(unnamed)")
    load.stop_clients()
    fault_end = time.monotonic()
    # Fewer land when the processes have no connection left to kill (dead or restarting).
    extra = [] if len(kills) >= 20 else [f"harness: only {len(kills)} of 150 kills landed"]
    _judge(f"S20 {len(kills)} random backend kills", load, procs, fault_end,
           max_duplicates=len(kills), extra=extra)
