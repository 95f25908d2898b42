"""`runworker`'s parent process: starts N worker children and keeps them healthy.

The supervisor runs no jobs. It restarts children that die, kills a child whose job
outlives its timeout, records WorkerLost at once for a job whose child crashed, runs
maintenance (lease rescue, scheduled-job promotion), and turns signals into a graceful
or an immediate stop.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field, replace
from multiprocessing.connection import wait as wait_for

import psycopg

from eventjobs.backoff import backoff_delay, next_status
from eventjobs.db import connect, describe
from eventjobs.exceptions import JobTimeout, WorkerLost
from eventjobs.jobs import store as jobstore
from eventjobs.jobs.executor import error_record
from eventjobs.jobs.maintenance import JobMaintenance
from eventjobs.jobs.slot import JobSlot, RunningJob
from eventjobs.jobs.worker import WorkerConfig, child_main
from eventjobs.shutdown import TwoStepShutdown

logger = logging.getLogger("eventjobs.worker")

TIMEOUT_CHECK_SECONDS = 0.2

# Children are spawned, not forked: they start with no inherited connections or threads.
_mp = multiprocessing.get_context("spawn")


@dataclass
class Child:
    """One supervised child process and its shared job slot."""

    slot_index: int
    process: multiprocessing.process.BaseProcess
    slot: JobSlot
    started: float = field(default_factory=time.monotonic)
    timed_out: int | None = None  # job id a timeout killed it for (failure already recorded)


class Supervisor:
    """Runs `concurrency` children until stopped (or, with burst, until they are done)."""

    def __init__(self, config: WorkerConfig, concurrency: int):
        self.config = config
        self.concurrency = concurrency
        self.children: dict[int, Child] = {}
        self.stopping = False
        self.stop_deadline: float | None = None
        self.conn: psycopg.Connection | None = None
        self.restart_at: dict[int, float] = {}

    def run(self) -> int:
        cfg = self.config
        logger.info(
            "runworker starting: %d process(es), queues %s, backend %r, database %s, lease %.0fs, "
            "heartbeat %.1fs, poll %.1fs, LISTEN %s, shutdown grace %.0fs%s",
            self.concurrency, ",".join(cfg.queues), cfg.backend_alias, describe(cfg.db_params),
            cfg.lease_seconds, cfg.heartbeat_seconds, cfg.poll_seconds,
            "on" if cfg.listen else "off", cfg.grace_seconds, ", burst" if cfg.burst else "")
        TwoStepShutdown("runworker", on_first=self._stop_gracefully,
                        on_second=self._stop_now).install()
        for slot in range(self.concurrency):
            self._spawn(slot)
        next_maintenance = 0.0
        while self.children or (not self.stopping and self.restart_at):
            self._wait(timeout=self._next_timeout())
            self._reap()
            self._enforce_timeouts()
            self._respawn_due()
            if time.monotonic() >= next_maintenance and not self.stopping:
                self._maintain()
                next_maintenance = time.monotonic() + cfg.poll_seconds
            if self.stop_deadline and time.monotonic() > self.stop_deadline:
                for child in self.children.values():
                    child.process.kill()
        self._exit_log()
        return 0

    # -- children --------------------------------------------------------------------------
    def _spawn(self, slot: int) -> None:
        job_slot = JobSlot(_mp)
        config = replace(self.config, supervisor_pid=os.getpid())
        process = _mp.Process(target=child_main, args=(config, job_slot),
                              name=f"eventjobs-worker-{slot}", daemon=False)
        process.start()
        self.children[slot] = Child(slot_index=slot, process=process, slot=job_slot)
        self.restart_at.pop(slot, None)

    def _wait(self, timeout: float) -> None:
        """Sleep until a child exits or `timeout` passes."""
        wait_for([c.process.sentinel for c in self.children.values()], timeout=timeout)

    def _reap(self) -> None:
        for slot, child in list(self.children.items()):
            if child.process.is_alive():
                continue
            child.process.join()
            del self.children[slot]
            code = child.process.exitcode
            running = child.slot.read()
            if running is not None and running.job_id != child.timed_out:
                self._record_lost(running, WorkerLost(
                    f"worker process {child.process.pid} exited with code {code} while running "
                    "this job"))
            if self.stopping or (self.config.burst and code == 0):
                continue
            lived = time.monotonic() - child.started
            logger.error("worker child %s exited with code %s after %.1fs; restarting",
                         child.process.pid, code, lived)
            # A child that dies at once (e.g. bad settings) is restarted slowly, not in a loop.
            self.restart_at[slot] = time.monotonic() + (0.0 if lived > 10 else 2.0)

    def _respawn_due(self) -> None:
        if self.stopping:
            self.restart_at.clear()
            return
        for slot, at in list(self.restart_at.items()):
            if time.monotonic() >= at:
                self._spawn(slot)

    def _enforce_timeouts(self) -> None:
        for child in self.children.values():
            running = child.slot.read()
            if running is None or running.deadline is None:
                continue
            if time.monotonic() > running.deadline and child.process.is_alive():
                logger.error("job %s exceeded its timeout of %ss; killing worker process %s",
                             running.job_id, running.timeout, child.process.pid)
                child.process.kill()
                child.process.join()
                child.timed_out = running.job_id
                self._record_lost(running, JobTimeout(
                    f"job exceeded its timeout of {running.timeout}s"))

    def _record_lost(self, running: RunningJob, exc: Exception) -> None:
        """Record a failed attempt for the job a dead child was running (fenced by token)."""
        delay = backoff_delay(running.retry_backoff, running.attempt)
        status = next_status(running.attempt, running.max_attempts, delay)
        error = {**error_record(exc), "attempt": running.attempt,
                 "worker_id": running.worker_id}
        try:
            self._connection()
            recorded = jobstore.finish_failure(self.conn, job_id=running.job_id,
                                               token=running.token, status=status, error=error,
                                               delay=delay, started=None)
            if recorded:  # else the child released or finished it before dying
                logger.error("job %s: %s; now %s", running.job_id, exc, status)
        except psycopg.Error as db_exc:
            logger.warning("job %s: could not record %s (%s); its lease will expire",
                           running.job_id, type(exc).__name__, db_exc)
            self._drop_connection()

    # -- maintenance and timing ------------------------------------------------------------
    def _maintain(self) -> None:
        try:
            self._connection()
            JobMaintenance(self.conn, self.config.lease_seconds).run_once()
        except psycopg.Error as exc:
            logger.warning("maintenance failed (%s); retrying", str(exc).strip())
            self._drop_connection()

    def _connection(self) -> None:
        if self.conn is None or self.conn.closed:
            self.conn = connect(self.config.db_params, "eventjobs supervisor",
                                synchronous_commit=False)

    def _drop_connection(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def _next_timeout(self) -> float:
        # Timeouts are checked this often: a job may overrun its timeout by up to this.
        return max(min(self.config.poll_seconds, TIMEOUT_CHECK_SECONDS), 0.01)

    # -- stopping ------------------------------------------------------------------------------
    def _stop_gracefully(self) -> None:
        self.stopping = True
        self.stop_deadline = time.monotonic() + self.config.grace_seconds + 10
        for child in self.children.values():
            if child.process.is_alive():
                os.kill(child.process.pid, signal.SIGTERM)

    def _stop_now(self) -> None:
        for child in self.children.values():
            if child.process.is_alive():
                child.process.kill()
        logger.warning("runworker: stopped at once; running jobs return when their leases "
                       "expire")
        os._exit(1)

    def _exit_log(self) -> None:
        left = ""
        try:
            self._connection()
            left = ", left: " + json.dumps(jobstore.pending_counts(self.conn, self.config.queues))
        except psycopg.Error:
            pass
        finally:
            self._drop_connection()
        logger.info("runworker stopped%s", left)

