"""S11: how many connections runworker and consume hold, and what they do when the
server has none left.

Connections are attributed to a process tree by their client socket (procs.py), so a
connection counts whatever its application_name; each should also be named
`eventjobs...` so an operator can find it in pg_stat_activity. Documented (docs/
guarantees.md): `runworker --concurrency N` holds N + 2, `consume` holds 2, tasks' and
handlers' own ORM use included.

With max_connections exhausted (filler connections take every slot), a runworker and a
consume started then must say why (the server's "too many clients"), retry at most
about once per second per process (every connection attempt is counted by
hooks/sitecustomize.py), keep running, and resume within 10 s once slots free up.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

import eventjobs
from eventjobs.models import Job
from tests.conftest import wait_until
from tests.reliability import procs as ptree
from tests.reliability.clients import Outcomes, enqueue_backlog
from tests.reliability.conftest import with_connect_log
from tests.reliability.oracle import GROUP, check_events, check_jobs
from tests.reliability.scenario import Load, still_running, verdict, wait_ready
from tests.testapp.models import EventLedger
from tests.testapp.tasks import rel_job

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(240)]

PG_SETTINGS = {"max_connections": 25}
N = 3
DOCUMENTED = {"runworker": N + 2, "consume": 2}
WINDOW = 8.0  # seconds of exhaustion observed
MAX_RATE = 1.25  # connection attempts per second per process, plus a start-up allowance
START_ALLOWANCE = 2


def test_s11_runworker_and_consume_hold_the_documented_connections_under_load(
        pg_cluster, start, db_url):
    procs = {"runworker": start("runworker", "--concurrency", str(N)),
             "consume": start("consume", GROUP)}
    wait_ready(pg_cluster, [procs["runworker"]], N, consumers=1)
    load = Load(db_url, publishers=1, enqueuers=1, job_ms=2)
    enqueue_backlog(rel_job, "jb", 600, load.jobs, ms=2)
    load.start()
    counts: dict[str, list[int]] = {name: [] for name in procs}
    names: dict[str, Counter] = {name: Counter() for name in procs}
    for _ in range(40):
        time.sleep(0.15)
        found = ptree.backends_by_session(pg_cluster.backends(),
                                          [p.pid for p in procs.values()])
        for name, proc in procs.items():
            counts[name].append(len(found[proc.pid]))
            names[name].update(b.application_name or "(unnamed)" for b in found[proc.pid])
    load.stop_clients()
    problems = []
    for name, expected in DOCUMENTED.items():
        seen, steady = counts[name], counts[name][len(counts[name]) // 2:]
        if max(seen) > expected or set(steady) != {expected}:
            problems.append(f"{name}: documented {expected} connection(s), held {sorted(set(seen))} "
                            f"(max {max(seen)}, second half {sorted(set(steady))}); by "
                            f"application_name: {dict(names[name])}")
        unnamed = [n for n in names[name] if not n.startswith("eventjobs")]
        if unnamed:
            problems.append(f"{name}: connections an operator cannot attribute (application_name "
                            f"not 'eventjobs...'): {unnamed}")
    problems += still_running(procs.values())
    verdict("S11 connections per process", problems)


def _fill(cluster) -> list[psycopg.Connection]:
    """Open connections until the server refuses: every slot taken."""
    fillers = []
    while len(fillers) < 200:
        try:
            fillers.append(cluster.connect(application_name="reliability filler"))
        except psycopg.OperationalError as exc:
            assert "too many clients" in str(exc), exc
            return fillers
    raise AssertionError("max_connections was never reached")


def _attempts(path: Path, since: float, until: float) -> Counter:
    """Connection attempts per pid between two time.monotonic() values."""
    found: Counter = Counter()
    if path.exists():
        for line in path.read_text().splitlines():
            pid, at, _ = line.split()
            if since <= float(at) <= until:
                found[int(pid)] += 1
    return found


def test_s11_exhausted_max_connections_backs_off_and_resumes(pg_cluster, start, tmp_path):
    # This test's own connections, opened before the server is full.
    assert not Job.objects.exists()
    pg_cluster.backends()
    fillers = _fill(pg_cluster)
    logs = {"runworker": tmp_path / "connects-runworker.txt",
            "consume": tmp_path / "connects-consume.txt"}
    try:
        procs = {"runworker": start("runworker", "--concurrency", "2",
                                    env=with_connect_log(logs["runworker"])),
                 "consume": start("consume", GROUP, env=with_connect_log(logs["consume"]))}
        jobs, events = Outcomes(), Outcomes()
        enqueue_backlog(rel_job, "jb", 20, jobs)
        published = eventjobs.publish_many([{"type": "rel.race", "key": f"k{n % 4}",
                                             "data": {"seq": n}} for n in range(20)])
        events.record("acked", {e.id: (e.key, e.data["seq"]) for e in published})
        began = time.monotonic()
        time.sleep(WINDOW)  # observe what the processes do while the server is full
        ended = time.monotonic()
        problems, seen = [], {}
        for name, proc in procs.items():
            per_pid = seen[name] = _attempts(logs[name], began, ended)
            limit = MAX_RATE * WINDOW + START_ALLOWANCE
            fast = {pid: n for pid, n in per_pid.items() if n > limit}
            if fast:
                problems.append(f"{name}: process(es) retried faster than ~1/s while the server "
                                f"was full: {fast} attempts in {WINDOW:.0f}s (limit {limit:.0f})")
            if not per_pid:
                problems.append(f"{name}: made no connection attempt while the server was full")
            if "too many clients" not in proc.output():
                problems.append(f"{name}: its log never says why it cannot connect; it ends:\n"
                                f"{proc.output()[-600:]}")
    finally:
        for conn in fillers:
            conn.close()
    freed = time.monotonic()
    problems += _resumed(jobs, events, freed)
    # Nothing was killed, so nothing can excuse a job run twice or an event handled twice
    # or skipped (the plan: "no job is claimed twice").
    problems += check_jobs(jobs, ("jb",)).problems(max_duplicates=0)
    problems += check_events(events).problems()
    problems += still_running(procs.values())
    verdict("S11 max_connections exhausted", problems,
            context=f"connection attempts per pid in the {WINDOW:.0f}s window: {seen}")


def _resumed(jobs: Outcomes, events: Outcomes, freed: float) -> list[str]:
    """Both processes take up their work within 10 s of slots freeing up."""
    problems = []
    checks = {
        "runworker": lambda: Job.objects.filter(pk__in=list(jobs.acked),
                                                status="SUCCESSFUL").exists(),
        "consume": lambda: EventLedger.objects.filter(group=GROUP).exists(),
    }
    for name, progressed in checks.items():
        try:
            wait_until(progressed, timeout=max(0.1, freed + 10 - time.monotonic()))
        except AssertionError:
            problems.append(f"{name}: no progress within 10s of connections freeing up")
    try:
        wait_until(lambda: not Job.objects.filter(pk__in=list(jobs.acked))
                   .exclude(status="SUCCESSFUL").exists() and check_events(events).done(),
                   timeout=30)
    except AssertionError:
        problems.append("not all work done within 30s of connections freeing up")
    return problems
