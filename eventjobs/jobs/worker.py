"""A worker child process: claim -> execute -> finish, one job at a time.

Each child claims in short autocommit statements, runs the job with no transaction
open, and records the outcome fenced by the lease token. Fast jobs are claimed a few
at a time (only as many as it can start within about 50 ms, so a long job never holds
others back) and their successes are recorded in batches.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg
from django.tasks import TaskResultStatus

from eventjobs.backoff import backoff_delay, next_status
from eventjobs.db import connect
from eventjobs.exceptions import TaskNotFound
from eventjobs.jobs import store as jobstore
from eventjobs.jobs.executor import Outcome, error_record, execute, send_finished
from eventjobs.jobs.heartbeat import Heartbeat
from eventjobs.jobs.results import build_result, import_task
from eventjobs.jobs.slot import JobSlot

logger = logging.getLogger("eventjobs.worker")

MAX_BATCH = 100
BATCH_BUDGET_SECONDS = 0.05  # claim only what can start within this much time
FLUSH_SECONDS = 0.02  # successes wait at most this long to be recorded


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a child needs; picklable, sent through multiprocessing spawn."""

    backend_alias: str
    db_params: dict
    queues: list[str]
    lease_seconds: float
    heartbeat_seconds: float
    poll_seconds: float
    grace_seconds: float
    import_grace_seconds: float
    listen: bool
    burst: bool
    settings_module: str
    # With --burst --max-wait: keep waiting for scheduled/leased jobs until this time.time().
    burst_deadline: float | None = None
    # The supervisor's pid: a child whose parent is no longer this pid is orphaned.
    supervisor_pid: int | None = None


def child_main(config: WorkerConfig, slot: JobSlot) -> None:
    """Entry point of a spawned child process."""
    os.environ["DJANGO_SETTINGS_MODULE"] = config.settings_module
    import django

    django.setup()
    _die_with_parent()
    # Ctrl-C reaches the whole process group; the supervisor decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker = ChildWorker(config, slot)
    signal.signal(signal.SIGTERM, lambda *_: worker.request_stop())
    try:
        worker.run()
    except psycopg.OperationalError as exc:
        # The database went away: exit and let the supervisor restart us (with a pause);
        # a job we held is failed over at once or recovered by its lease.
        logger.error("worker %s: database connection lost (%s); exiting", worker.worker_id,
                     str(exc).strip())
        sys.exit(1)


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this child if the supervisor dies (the heartbeat also checks)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class ChildWorker:
    """The claim/execute/finish loop of one child; `run_once()` does one step."""

    def __init__(self, config: WorkerConfig, slot: JobSlot | None = None):
        from django.tasks import task_backends

        self.config = config
        self.slot = slot  # tells the supervisor what runs (timeouts, crashes)
        self.backend = task_backends[config.backend_alias]
        self.sender = type(self.backend)
        self.host = socket.gethostname()
        self.worker_id = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.buffer: deque[dict] = deque()
        self.lost: set[tuple[int, UUID]] = set()  # (id, lease token) taken from us
        self.successes: list[tuple] = []
        # Successes are recorded by the job thread, or by the heartbeat thread while a
        # long job runs; the lock makes each batch taken once.
        self.successes_lock = threading.Lock()
        self.last_flush = time.monotonic()
        self.avg_seconds = 1.0  # pessimistic until measured: claim one at a time
        self.conn = None
        self.clock_offset = timedelta(0)
        self.current: dict | None = None
        self.heartbeat = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.conn = connect(self.config.db_params, f"eventjobs worker {self.worker_id}",
                            synchronous_commit=False)
        # Stamp times with the database's clock, never this machine's.
        self.clock_offset = jobstore.database_now(self.conn) - datetime.now(UTC)
        jobstore.register_worker(self.conn, worker_id=self.worker_id, host=self.host,
                                 pid=os.getpid(), queues=self.config.queues)
        if self.slot:
            self.slot.set_worker_id(self.worker_id)
        self.heartbeat = Heartbeat(
            db_params=self.config.db_params, worker_id=self.worker_id, host=self.host,
            queues=self.config.queues, lease_seconds=self.config.lease_seconds,
            interval=self.config.heartbeat_seconds, listen=self.config.listen, wake=self.wake,
            on_lost=self.lost.update, on_orphaned=self.request_stop, on_tick=self._flush_stale,
            parent_pid=self.config.supervisor_pid or os.getppid(),
        )
        self.heartbeat.start()

    def run(self) -> None:
        self.start()
        try:
            while not self.stopping.is_set():
                if not self.run_once() and self.config.burst:
                    break
        finally:
            self.shutdown()

    def request_stop(self) -> None:
        """First SIGTERM: stop claiming, finish the running job within the grace period."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.wake.set()
        timer = threading.Timer(self.config.grace_seconds, self._abandon)
        timer.daemon = True
        timer.start()

    def shutdown(self) -> None:
        self.flush(force=True)
        self._release_buffer()
        self._stop_heartbeat()
        try:
            jobstore.deregister_worker(self.conn, self.worker_id)
        except Exception:  # noqa: BLE001 - best effort; stale rows are pruned
            pass
        self.conn.close()

    def _stop_heartbeat(self) -> None:
        """Stop and join the heartbeat, so its last beat cannot re-register us afterwards."""
        if self.heartbeat:
            self.heartbeat.stop()
            self.heartbeat.join(timeout=5)

    def _abandon(self) -> None:
        """Grace period over: give back the running job (no attempt charged) and exit."""
        self._stop_heartbeat()
        held = [(job["id"], job["lease_token"], 0.0)
                for job in ([self.current] if self.current else []) + list(self.buffer)]
        try:
            conn = connect(self.config.db_params, f"eventjobs release {self.worker_id}")
            # Successes not flushed yet are recorded first (fenced: a concurrent flush by
            # the job thread makes one of the two updates match nothing).
            jobstore.finish_successes(conn, [
                (job["id"], job["lease_token"], outcome.return_json, started, finished)
                for job, _, outcome, started, finished in list(self.successes)])
            released = jobstore.release(conn, held)
            jobstore.deregister_worker(conn, self.worker_id)
            conn.close()
            logger.warning("worker %s: grace period over; released job(s) %s",
                           self.worker_id, [job_id for job_id, _ in released])
        except Exception:  # noqa: BLE001 - leases recover the jobs anyway
            logger.exception("worker %s: could not release jobs; leases will", self.worker_id)
        os._exit(0)

    # -- one step ------------------------------------------------------------------------------
    def run_once(self) -> bool:
        """Run one job if one is due (claiming if needed). False when there was none."""
        if not self.buffer and not self._claim():
            self.flush(force=True)
            if self._promote_or_wait():
                return True
            return False
        job = self.buffer.popleft()
        if (job["id"], job["lease_token"]) in self.lost:
            # Rescued from us before it started: it is someone else's now.
            self.lost.discard((job["id"], job["lease_token"]))
            self.heartbeat.drop(job["id"])
            return True
        self.run_job(job)
        self.flush(force=not self.buffer)
        return True

    def _claim(self) -> bool:
        # Clear before claiming: a NOTIFY arriving after this point wakes the next wait.
        self.wake.clear()
        if self.stopping.is_set():
            return False
        limit = max(1, min(MAX_BATCH, int(BATCH_BUDGET_SECONDS / max(self.avg_seconds, 1e-6))))
        rows = jobstore.claim(self.conn, queues=self.config.queues, limit=limit,
                              lease=self.config.lease_seconds, worker_id=self.worker_id)
        for row in rows:
            self.heartbeat.hold(row["id"], row["lease_token"])
        self.buffer.extend(rows)
        return bool(rows)

    def _promote_or_wait(self) -> bool:
        """Nothing ready: promote due scheduled jobs, else sleep until woken or due."""
        if self.stopping.is_set():
            return True  # the run loop sees `stopping` and ends
        if jobstore.promote_due(self.conn):
            return True
        if self.config.burst and not self._burst_should_wait():
            return False
        until_due = jobstore.seconds_until_next_due(self.conn, self.config.queues)
        timeout = self.config.poll_seconds
        if until_due is not None:
            timeout = min(timeout, max(until_due, 0.001))
        if self.config.burst_deadline is not None:
            timeout = max(0.0, min(timeout, self.config.burst_deadline - time.time()))
        self.wake.wait(timeout)
        return True

    def _burst_should_wait(self) -> bool:
        """--burst --max-wait: wait while jobs of our queues will become due, up to the limit."""
        deadline = self.config.burst_deadline
        if deadline is None or time.time() >= deadline:
            return False
        return any(jobstore.pending_counts(self.conn, self.config.queues).values())

    def now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset

    def run_job(self, job: dict) -> None:
        started = self.now()
        t0 = time.monotonic()
        self.current = job
        self.heartbeat.running = 1
        try:
            task = import_task(job["task_path"])
        except ImportError as exc:
            self._task_missing(job, exc)
            return
        if self.slot:
            self.slot.start(job)
        job_row = {**job, "status": "RUNNING", "last_attempted_at": started}
        task_result = build_result(task, job_row, self.config.backend_alias)
        object.__setattr__(task_result, "status", TaskResultStatus.RUNNING)
        outcome = execute(task, task_result, self.sender)
        finished = self.now()
        self.current = None
        self.heartbeat.running = 0
        elapsed = time.monotonic() - t0
        self.avg_seconds = 0.8 * self.avg_seconds + 0.2 * elapsed
        if outcome.ok:
            with self.successes_lock:
                self.successes.append((job, task_result, outcome, started, finished))
        else:
            self._record_failure(job, task_result, outcome, started)
        if self.slot:
            self.slot.clear()

    def _record_failure(self, job: dict, task_result, outcome: Outcome, started) -> None:
        error = {**outcome.error, "attempt": job["attempt"], "worker_id": self.worker_id,
                 "at": started.isoformat()}
        delay = backoff_delay(job["retry_backoff"], job["attempt"])
        status = next_status(job["attempt"], job["max_attempts"], delay)
        self.heartbeat.drop(job["id"])  # before the UPDATE: see flush()
        recorded = jobstore.finish_failure(self.conn, job_id=job["id"], token=job["lease_token"],
                                           status=status, error=error, delay=delay,
                                           started=started)
        if not recorded:
            logger.warning("worker %s: job %s lost its lease; its failure is not recorded",
                           self.worker_id, job["id"])
            return
        if status == "FAILED":
            logger.error("job %s %s failed for good after %s attempt(s): %s", job["id"],
                         job["task_path"], job["attempt"], outcome.error["message"] or
                         outcome.error["exception_class_path"])
            send_finished(task_result, TaskResultStatus.FAILED, self.sender, error=error)
        else:
            logger.warning("job %s %s attempt %s/%s failed (%s: %s); retrying in %.1fs",
                           job["id"], job["task_path"], job["attempt"], job["max_attempts"],
                           outcome.error["exception_class_path"], outcome.error["message"],
                           delay)

    def _task_missing(self, job: dict, exc: ImportError) -> None:
        """A task path that does not import: release without charge, fail after a grace."""
        self.current = None
        self.heartbeat.running = 0
        self.heartbeat.drop(job["id"])
        age = (self.now() - job["enqueued_at"]).total_seconds()
        if age < self.config.import_grace_seconds:
            # Released attempts are not counted, so back off by age instead: 5 s, growing
            # to a minute, until the grace period ends.
            delay = min(max(age / 4, 5.0), 60.0)
            jobstore.release(self.conn, [(job["id"], job["lease_token"], delay)])
            logger.warning("job %s: %s; released, retrying in %.0fs (fails after %.0fs)",
                           job["id"], exc, delay, self.config.import_grace_seconds)
        else:
            error = {**error_record(TaskNotFound(str(exc))), "attempt": job["attempt"],
                     "worker_id": self.worker_id}
            jobstore.finish_failure(self.conn, job_id=job["id"], token=job["lease_token"],
                                    status="FAILED", error=error, delay=0, started=None)
            logger.error("job %s failed: %s for %.0fs", job["id"], exc, age)

    def flush(self, force: bool = False, conn=None) -> None:
        """Record buffered successes: every FLUSH_SECONDS, or now when `force`."""
        if not self.successes:
            return
        if not force and time.monotonic() - self.last_flush < FLUSH_SECONDS:
            return
        with self.successes_lock:
            batch, self.successes = self.successes, []
            self.last_flush = time.monotonic()
        if not batch:
            return
        # Stop renewing before the UPDATE, so a heartbeat racing with it cannot take our
        # own finish for a lost lease (the lease is short-lived only for these ms).
        for job, *_ in batch:
            self.heartbeat.drop(job["id"])
        kept = jobstore.finish_successes(conn or self.conn, [
            (job["id"], job["lease_token"], outcome.return_json, started, finished)
            for job, _, outcome, started, finished in batch
        ])
        for job, task_result, outcome, _, finished in batch:
            if job["id"] not in kept:
                logger.warning("worker %s: job %s lost its lease; its success is not recorded",
                               self.worker_id, job["id"])
                continue
            object.__setattr__(task_result, "finished_at", finished)
            send_finished(task_result, TaskResultStatus.SUCCESSFUL, self.sender,
                          return_value=json.loads(outcome.return_json))

    def _flush_stale(self, conn) -> None:
        """Heartbeat thread: while a job runs, record successes the job thread left
        behind, so a long job (or its crash) does not hold earlier outcomes back."""
        if self.current is not None:
            self.flush(conn=conn)

    def _release_buffer(self) -> None:
        held = [(job["id"], job["lease_token"], 0.0) for job in self.buffer]
        self.buffer.clear()
        for job_id, _, _ in held:
            self.heartbeat.drop(job_id)
        jobstore.release(self.conn, held)
