"""`runworker`'s parent process: starts N worker children and keeps them healthy.

The supervisor runs no jobs and no user code. At start it forks its children from its
own, already set-up Django (before it opens any connection or starts any thread), so they
are ready in milliseconds; a child that dies later is replaced by a freshly spawned one.
Two threads do its database work on two connections: the collector records what the
children report (eventjobs/jobs/collector.py), the heartbeat renews leases and runs
maintenance (eventjobs/jobs/heartbeat.py). Its main thread reaps and restarts children and
turns signals into a graceful or an immediate stop.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import wait as wait_for
from typing import Any

import psycopg
from django.db import connections

from eventjobs.db import connect, describe
from eventjobs.jobs import store as jobstore
from eventjobs.jobs.child import WorkerConfig
from eventjobs.jobs.child import main as child_main
from eventjobs.jobs.children import ChildLink, Children
from eventjobs.jobs.collector import Collector
from eventjobs.jobs.heartbeat import Heartbeat
from eventjobs.jobs.host import SUPERVISOR_NAME, fair_share, name_process, supervisors_here
from eventjobs.jobs.scheduler import Scheduler
from eventjobs.jobs.slot import JobSlot
from eventjobs.jobs.statuses import JobStatus
from eventjobs.shutdown import TwoStepShutdown

logger = logging.getLogger("eventjobs.worker")

_fork = multiprocessing.get_context("fork")
_spawn = multiprocessing.get_context("spawn")


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this child if its supervisor dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Supervisor:
    """Runs `concurrency` children until stopped (or, with burst, until they are done).
    `concurrency=None`: the host's fair share (eventjobs/jobs/host.py), followed as other
    runworkers start and stop."""

    def __init__(self, config: WorkerConfig, concurrency: int | None):
        self.config = config
        self.auto = concurrency is None
        self.concurrency = concurrency or 1
        self.retiring: set[int] = set()  # children told to stop: more than the fair share
        self.next_share_check = 0.0
        self.children = Children()
        self.processes: dict[int, tuple[multiprocessing.process.BaseProcess, float]] = {}
        self.restart_at: dict[int, float] = {}
        self.quick_deaths: dict[int, int] = {}
        self.stopping = False
        self.stop_deadline: float | None = None
        self.collector = Collector(self.children, config.db_params)
        # Before forking: the children inherit the imported task modules. A burst run
        # drains what is there and enqueues no ticks.
        scheduler = None if config.burst else Scheduler.for_backend(config.backend_alias)
        self.heartbeat = Heartbeat(self.children, db_params=config.db_params,
                                   lease_seconds=config.options.lease_seconds,
                                   interval=config.options.heartbeat_seconds,
                                   maintenance_interval=config.options.poll_seconds,
                                   queues=config.queues, scheduler=scheduler)

    def run(self) -> int:
        cfg, opts = self.config, self.config.options
        if self.auto:
            name_process(SUPERVISOR_NAME)
            self.concurrency = fair_share()
        logger.info(
            "runworker starting: %d process(es)%s, queues %s, backend %r, database %s, lease "
            "%.0fs, heartbeat %.1fs, poll %.1fs, LISTEN %s, shutdown grace %.0fs%s",
            self.concurrency, " (this host's share of its CPUs)" if self.auto else "",
            ",".join(cfg.queues) if cfg.queues else "(every queue)",
            cfg.backend_alias, describe(cfg.db_params), opts.lease_seconds,
            opts.heartbeat_seconds, opts.poll_seconds, "on" if opts.listen else "off",
            opts.shutdown_grace_seconds, ", burst" if cfg.burst else "")
        TwoStepShutdown("runworker", on_first=self._stop_gracefully,
                        on_second=self._stop_now).install()
        # Forked children must inherit no connection (they would share its socket).
        connections.close_all()
        for index in range(self.concurrency):
            self._start_child(index, forked=True)
        self.collector.start()
        self.heartbeat.start()
        while self.processes or (not self.stopping and self.restart_at):
            self._wait(0.2)
            self._reap()
            self._follow_share()
            self._restart_due()
            if self.stop_deadline and time.monotonic() > self.stop_deadline:
                self._abandon()
        self.collector.close()
        self.collector.join(timeout=30)
        self.heartbeat.stop()
        self.heartbeat.join(timeout=10)
        self._exit_log()
        return 0

    # -- children --------------------------------------------------------------------------
    def _start_child(self, index: int, forked: bool) -> None:
        context = _fork if forked else _spawn
        report_r, report_w = context.Pipe(duplex=False)
        control_r, control_w = context.Pipe(duplex=False)
        slot, gate = JobSlot(context), context.Lock()
        # A forked child inherits every pipe end the supervisor holds; it closes all but its
        # own two ends, or it would keep its siblings' pipes (and its own) from closing.
        inherited = [end for link in self.children.all() for end in (link.report, link.control)]
        inherited += [report_r, control_w]
        process = context.Process(target=child_main, name=f"eventjobs-worker-{index}",
                                  args=(self.config, report_w, control_r, slot, gate, forked,
                                        inherited if forked else []))
        process.start()
        report_w.close()  # the child holds the only write end: EOF means it is gone
        control_r.close()
        assert process.pid is not None
        self.children.add(ChildLink(index, process.pid, report_r, control_w, slot, gate,
                                    process=process))
        self.processes[index] = (process, time.monotonic())
        self.restart_at.pop(index, None)
        self.collector.wake()

    def _wait(self, timeout: float) -> None:
        """Sleep until a child exits or `timeout` passes."""
        wait_for([process.sentinel for process, _ in self.processes.values()], timeout)

    def _reap(self) -> None:
        for index, (process, started) in list(self.processes.items()):
            if process.is_alive():
                continue
            process.join()
            del self.processes[index]
            code = process.exitcode
            if index in self.retiring:
                self.retiring.discard(index)  # stopped for the host's share: not restarted
                continue
            if self.stopping or (self.config.burst and code == 0):
                continue
            lived = time.monotonic() - started
            # A child that dies at once (e.g. bad settings) is restarted slowly, not in a loop.
            self.quick_deaths[index] = self.quick_deaths.get(index, 0) + 1 if lived < 10 else 0
            delay = min(30.0, 0.5 * 2 ** self.quick_deaths[index]) if lived < 10 else 0.0
            logger.error("worker child %s exited with code %s after %.1fs; restarting%s",
                         process.pid, code, lived, f" in {delay:.0f}s" if delay else "")
            self.restart_at[index] = time.monotonic() + delay

    def _follow_share(self) -> None:
        """Default concurrency: stop children beyond this supervisor's share of the host's
        CPUs (another runworker started here), or start more when the share grew."""
        if not self.auto or self.stopping or time.monotonic() < self.next_share_check:
            return
        self.next_share_check = time.monotonic() + 1.0
        share = fair_share()
        active = sorted(i for i in self.processes if i not in self.retiring)
        if len(active) > share:
            for index in active[share:]:
                process = self.processes[index][0]
                if process.pid:
                    os.kill(process.pid, signal.SIGTERM)  # finishes its job, then exits
                self.retiring.add(index)
            logger.info("runworker: %d runworker process(es) on this host; running %d child(ren)",
                        supervisors_here(), share)
        elif len(active) < share and not self.config.burst:
            for index in range(share):
                if index not in self.processes and index not in self.restart_at:
                    self.restart_at[index] = time.monotonic()
            logger.info("runworker: %d runworker process(es) on this host; running %d child(ren)",
                        supervisors_here(), share)

    def _restart_due(self) -> None:
        if self.stopping:
            self.restart_at.clear()
            return
        for index, at in list(self.restart_at.items()):
            if time.monotonic() >= at:
                self._start_child(index, forked=False)

    # -- stopping --------------------------------------------------------------------------
    def _stop_gracefully(self) -> None:
        self.stopping = True
        self.stop_deadline = time.monotonic() + self.config.options.shutdown_grace_seconds
        for process, _ in self.processes.values():
            if process.is_alive() and process.pid:
                os.kill(process.pid, signal.SIGTERM)

    def _abandon(self) -> None:
        """Grace period over: stop the children; their running jobs go back uncharged."""
        self.stop_deadline = None
        self.collector.abandoning = True
        running = [link.slot.read() for link in self.children.all()]
        logger.warning("runworker: shutdown grace period over (%.0fs); releasing job(s) %s",
                       self.config.options.shutdown_grace_seconds,
                       [r.job_id for r in running if r])
        for process, _ in self.processes.values():
            process.kill()

    def _stop_now(self) -> None:
        for process, _ in self.processes.values():
            if process.is_alive():
                process.kill()
        logger.warning("runworker: stopped at once; running jobs return when their leases "
                       "expire")
        os._exit(1)

    def _exit_log(self) -> None:
        counts = self.collector.counts
        retried = counts[JobStatus.READY] + counts[JobStatus.SCHEDULED]
        done = (f"{counts[JobStatus.SUCCESSFUL]} succeeded, {counts[JobStatus.FAILED]} failed "
                f"for good, {retried} to be retried")
        left: dict[str, Any] = {}
        try:
            conn = connect(self.config.db_params, "eventjobs supervisor")
            with conn:
                left = jobstore.pending_counts(conn, self.config.queues)
        except psycopg.Error:
            pass
        logger.info("runworker stopped: %s; left: %s", done,
                    ", ".join(f"{k} {v}" for k, v in left.items()) or "unknown")
