"""Building blocks the scenario tests share: the standard load (racing publishers and
enqueuers plus a backlog), readiness waits, the LISTEN probe and the final verdict."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from eventjobs.models import Cursor
from tests.conftest import Proc, wait_until
from tests.reliability import procs as ptree
from tests.reliability.clients import Client, Outcomes, event_writer, job_writer
from tests.reliability.cluster import PrivateCluster
from tests.reliability.oracle import GROUP, PositionSampler, check_events, check_jobs, retrying
from tests.testapp.models import Ledger
from tests.testapp.tasks import rel_job

JOB_PREFIXES = ("jb", "jc")  # the backlog, and jobs enqueued while the fault runs


class Load:
    """Racing publishers of "rel.*" events and an enqueuer of rel_job jobs, recording
    what each client was told (oracle.Outcomes), plus a cursor position sampler."""

    def __init__(self, db_url: str, *, publishers: int = 2, enqueuers: int = 1,
                 job_ms: int = 5, event_sleep_ms: int = 0):
        self.events, self.jobs = Outcomes(), Outcomes()
        self.stop_event = threading.Event()
        self.clients = [
            Client(f"publisher-{n}", self.stop_event, self.events,
                   event_writer(n, sleep_ms=event_sleep_ms), seed=n)
            for n in range(publishers)
        ] + [
            Client(f"enqueuer-{n}", self.stop_event, self.jobs,
                   job_writer(rel_job, f"jc{n}" if n else "jc", batch=5, ms=job_ms),
                   seed=100 + n, max_delay=0.01, pause=0.05)
            for n in range(enqueuers)
        ]
        self.sampler = PositionSampler(db_url)

    def start(self) -> None:
        self.sampler.start()
        for client in self.clients:
            client.start()

    def stop_clients(self) -> None:
        self.stop_event.set()
        for client in self.clients:
            client.join(timeout=30)
            assert not client.is_alive(), f"{client.name} did not stop"

    def figures(self, prefixes: Iterable[str] = JOB_PREFIXES):
        return check_jobs(self.jobs, tuple(prefixes)), check_events(self.events)

    def all_done(self) -> bool:
        jobs, events = self.figures()
        return jobs.done() and events.done()


def workers_up(cluster: PrivateCluster, runworkers: Iterable[Proc], concurrency: int) -> bool:
    """Every runworker has `concurrency` worker children, each holding a database
    connection (so set up and claiming). Judged from /proc and pg_stat_activity, not
    from how the runtime registers itself."""
    backends = cluster.backends()
    for proc in runworkers:
        children = ptree.worker_children(proc.pid)
        connected = set(ptree.owners(backends, proc.pid).values())
        if len(children) < concurrency or not set(children) <= connected:
            return False
    return True


def wait_ready(cluster: PrivateCluster, runworkers: Iterable[Proc] = (), concurrency: int = 0,
               consumers: int = 0, timeout: float = 60) -> None:
    """Until the runworkers' children are up and `consumers` consume processes own
    partitions of the group."""
    runworkers = list(runworkers)
    if runworkers:
        wait_until(lambda: workers_up(cluster, runworkers, concurrency), timeout=timeout,
                   interval=0.2, message=f"{len(runworkers)} runworker(s) with {concurrency} "
                                         "connected worker processes each")
    if consumers:
        wait_until(lambda: Cursor.objects.filter(group_id=GROUP, owner__isnull=False)
                   .values("owner").distinct().count() >= consumers, timeout=timeout,
                   message=f"{consumers} consume processes owning partitions of {GROUP}")


def wait_all_done(load: Load, deadline: float, what: str) -> list[str]:
    """Poll until every acked job and event is done, or `deadline` (time.monotonic());
    [] or a line saying what was still missing."""
    check = retrying(load.all_done)
    while time.monotonic() < deadline:
        if check():
            return []
        time.sleep(0.5)
    jobs, events = retrying(load.figures)() or (None, None)
    if jobs is None:
        return [f"{what}: the database was still unreachable"]
    return [f"{what}: not done in time: {len(jobs.lost)} job(s) and {len(events.lost)} "
            f"event(s) outstanding"]


def probe_listen(count: int, bound: float, spacing: Callable[[], float]) -> list[str]:
    """Enqueue `count` rel_job probes one at a time, each after the workers went idle;
    each must start within `bound` seconds (well under POLL_SECONDS: only a NOTIFY can
    wake an idle worker that fast). Returns violations."""
    problems = []
    for n in range(count):
        time.sleep(spacing())  # let every worker go back to waiting
        key = f"probe-{n}-{time.monotonic_ns()}"
        t0 = time.monotonic()
        rel_job.enqueue(key, 0)
        started = lambda k=key: Ledger.objects.filter(job_key=k).exists()  # noqa: E731
        try:
            wait_until(started, timeout=bound, interval=0.02)
        except AssertionError:
            try:
                wait_until(started, timeout=60, interval=0.1)
                took = f"after {time.monotonic() - t0:.1f}s"
            except AssertionError:
                took = "not within 60s"
            problems.append(f"LISTEN not restored: probe job {n} started {took} (bound "
                            f"{bound}s, POLL_SECONDS much longer)")
    return problems


def still_running(procs: Iterable[Proc]) -> list[str]:
    return [f"process {p.pid} ({' '.join(p.popen.args[2:4])}) exited with code "
            f"{p.popen.poll()}; its log ends:\n{p.output()[-800:]}"
            for p in procs if p.popen.poll() is not None]


def verdict(title: str, problems: list[str], context: str = "") -> None:
    """One assertion listing every violated property (so one failure shows them all)."""
    assert not problems, f"{title}: {len(problems)} violation(s):\n- " + "\n- ".join(
        problems) + (f"\n{context}" if context else "")
