"""A worker child: claim -> execute -> report, one job at a time, on one connection
(Django's own, shared with its tasks: eventjobs/jobs/session.py).

The child claims a few due jobs in one short autocommit statement (only as many as it can
start within about 50 ms, so a long job never holds others back for long; the supervisor
takes back the rest when a job runs long), runs each with no transaction open, and reports
each outcome to its supervisor before starting the next (eventjobs/jobs/reporting.py),
which records it. User code runs only on this thread. When idle it waits for a NOTIFY on
the same connection, or polls.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import psycopg
from django.tasks import TaskResult, TaskResultStatus, task_backends

from eventjobs.backends import PostgresBackend
from eventjobs.exceptions import TaskNotFound
from eventjobs.jobs import store as jobstore
from eventjobs.jobs.atomic import execute_atomic
from eventjobs.jobs.child import WorkerConfig
from eventjobs.jobs.completer import Attempt, error_of, iso
from eventjobs.jobs.executor import Outcome, TaskMissing, execute, import_task, send_finished
from eventjobs.jobs.limits import IDLE_KEYS, promote_keys
from eventjobs.jobs.reporting import Notices, Reporter
from eventjobs.jobs.results import build_result
from eventjobs.jobs.session import WorkerSession
from eventjobs.jobs.slot import JobSlot
from eventjobs.jobs.statuses import JobStatus

logger = logging.getLogger("eventjobs.worker")

MAX_BATCH = 100
BATCH_BUDGET_SECONDS = 0.05  # claim only what can start within this much time
QUEUE_REFRESH_SECONDS = 5.0  # a worker of every queue looks for new queues this often


class ChildWorker:
    """The claim/execute/report loop of one child; `run_once()` does one step."""

    def __init__(self, config: WorkerConfig, reporter: Reporter, *, slot: JobSlot | None = None,
                 gate: Any = None, conn: psycopg.Connection | None = None):
        self.config = config
        self.reporter = reporter
        self.slot = slot  # what runs now, for the supervisor's timeouts and crash handling
        self.gate = gate if gate is not None else contextlib.nullcontext()
        backend = task_backends[config.backend_alias]
        assert isinstance(backend, PostgresBackend)  # runworker and run_jobs accept no other
        self.backend = backend
        self.sender = type(self.backend)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.session = WorkerSession(self.backend.database, f"eventjobs worker {self.worker_id}",
                                     listen=config.options.listen, given=conn)
        self.buffer: deque[dict[str, Any]] = deque()
        self.lost: set[int] = set()  # leases lost, by job id (the supervisor says so)
        self.hold = False
        self.stopping = False
        self.avg_seconds = 1.0  # pessimistic until measured: claim one at a time
        self.current: Attempt | None = None
        self.awaiting: dict[int, tuple[TaskResult, Any]] = {}  # job id -> for task_finished
        self.queues: list[str] = list(config.queues or ())
        self.queues_seen_at = 0.0
        self.ran = 0
        self.last_exception: BaseException | None = None  # of the last failed attempt

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        # Our connection is opened by the first statement (see WorkerSession.run), which
        # rides out a database that is not there yet.
        self.reporter.hello(self.worker_id, os.getpid())
        if self.slot:
            self.slot.set_worker_id(self.worker_id)

    def run(self) -> None:
        self.start()
        try:
            while not self.stopping:
                if not self.run_once() and self.config.burst:
                    break
        finally:
            self.shutdown()

    def request_stop(self) -> None:
        """First SIGTERM: stop claiming; the running job finishes (the supervisor bounds it)."""
        self.stopping = True
        self.session.wake()

    def shutdown(self) -> None:
        """Give back what was claimed and not started; close our connection."""
        self.reporter.released([(self._attempt(job), 0.0) for job in self.buffer])
        self.buffer.clear()
        self.session.close()

    # -- one step --------------------------------------------------------------------------
    def run_once(self) -> bool:
        """Run one job if one is due (claiming if needed). False when there was none."""
        if self.stopping:
            return False
        if not self.buffer:
            self._read_notices()  # a "hold" may have come; under the gate below otherwise
            if not self._claim():
                return self._idle()
        with self.gate:  # the supervisor takes back unstarted jobs only under this gate
            self._read_notices()
            job = self._next_job()
            if job is None:
                return True
            if self.slot:
                self.slot.start(job)
        try:
            self.run_job(job)
        finally:
            if self.slot:
                self.slot.clear()
        return True

    def _next_job(self) -> dict[str, Any] | None:
        while self.buffer:
            job = self.buffer.popleft()
            if job["id"] not in self.lost:
                return job
            self.lost.discard(job["id"])  # rescued before it started: someone else's now
        return None

    def lease_lost(self) -> bool:
        """Whether the running attempt's lease is known lost (see eventjobs.lease_lost)."""
        self._read_notices()
        return self.current is not None and self.current.job_id in self.lost

    def _read_notices(self) -> None:
        notices: Notices = self.reporter.notices()
        if not notices:
            return
        self.lost |= notices.lost
        if notices.revoked:
            self.buffer = deque(j for j in self.buffer if j["id"] not in notices.revoked)
        if notices.hold is not None and notices.hold != self.hold:
            self.hold = notices.hold
            logger.warning("worker %s: %s claiming", self.worker_id,
                           "stops" if self.hold else "resumes")
        for job_id, status in notices.recorded:
            self._finished(job_id, status)

    def _finished(self, job_id: int, status: str | None) -> None:
        """An outcome was recorded: send task_finished when the job ended for good."""
        waiting = self.awaiting.pop(job_id, None)
        if waiting is None or status not in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED):
            return
        task_result, detail = waiting
        if status == TaskResultStatus.SUCCESSFUL:
            send_finished(task_result, TaskResultStatus.SUCCESSFUL, self.sender,
                          return_value=json.loads(detail))
        else:
            send_finished(task_result, TaskResultStatus.FAILED, self.sender, error=detail)

    # -- claiming and waiting --------------------------------------------------------------
    def _claim(self) -> bool:
        if self.stopping or self.hold:
            return False
        queues, refreshed = self._claim_queues()
        rows = self._claim_from(queues)
        if not rows and not refreshed and self._new_queues_ready():
            # A worker of every queue learns queues as it goes: a job may have gone into a
            # queue first used since the last look (a job enqueueing into another queue).
            rows = self._claim_from(self.queues)
        if not rows:
            return False
        self.reporter.claimed([self._attempt(row) for row in rows])
        self.buffer.extend(rows)
        return True

    def _claim_from(self, queues: list[str]) -> list[dict[str, Any]]:
        if not queues:
            return []
        limit = max(1, min(MAX_BATCH, int(BATCH_BUDGET_SECONDS / max(self.avg_seconds, 1e-6))))
        return self.session.run(jobstore.claim, queues=queues, limit=limit,
                                lease=self.config.options.lease_seconds,
                                worker_id=self.worker_id) or []

    def _claim_queues(self) -> tuple[list[str], bool]:
        """The configured queues, or (every queue) the queues that have ready jobs, and
        whether that list was just read."""
        if self.config.queues is not None:
            return self.queues, False
        if time.monotonic() - self.queues_seen_at > QUEUE_REFRESH_SECONDS or not self.queues:
            self._refresh_queues()
            return self.queues, True
        return self.queues, False

    def _new_queues_ready(self) -> bool:
        """Every queue: read the queues with ready jobs again; True when one is new to us."""
        if self.config.queues is not None:
            return False
        known = set(self.queues)
        self._refresh_queues()
        return not set(self.queues) <= known

    def _refresh_queues(self) -> None:
        self.queues = self.session.run(jobstore.ready_queues) or []
        self.queues_seen_at = time.monotonic()

    def _idle(self) -> bool:
        """Nothing to claim: promote due scheduled jobs, else wait for a NOTIFY or the poll."""
        if self.stopping:
            return False
        due = self.session.run(jobstore.promote_due)
        admitted = self.session.run(promote_keys, None, IDLE_KEYS)  # limited jobs with room
        if admitted or (due and due[0]):
            return True  # claim again
        if self.config.burst and not self._burst_should_wait():
            return False
        timeout = self.config.options.poll_seconds
        until_due = self.session.run(jobstore.seconds_until_next_due, self.config.queues)
        if until_due is not None:
            timeout = min(timeout, max(until_due, 0.001))
        if self.config.burst_deadline is not None:
            timeout = max(0.0, min(timeout, self.config.burst_deadline - time.time()))
        self._wait(timeout)
        return True

    def _burst_should_wait(self) -> bool:
        """--burst --max-wait: wait while jobs of our queues will become due, up to the limit."""
        deadline = self.config.burst_deadline
        if deadline is None or time.time() >= deadline:
            return False
        counts = self.session.run(jobstore.pending_counts, self.config.queues) or {}
        return any(counts.values())

    def _wait(self, timeout: float) -> None:
        """Sleep until a NOTIFY for our queues, a notice from the supervisor, or `timeout`."""
        self.session.wait(timeout, self._is_ours, also=self.reporter.fileno())

    def _is_ours(self, queue: str) -> bool:
        """A NOTIFY's queue: ours? (A worker of every queue takes any, and learns it.)"""
        if self.config.queues is None:
            if queue not in self.queues:
                self.queues.append(queue)
            return True
        return queue in self.queues

    # -- running a job ---------------------------------------------------------------------
    def now(self) -> float:
        """Epoch seconds on the database's clock."""
        return self.session.now()

    def _attempt(self, job: dict[str, Any]) -> Attempt:
        return Attempt.from_row(job, self.worker_id)

    def run_job(self, job: dict[str, Any]) -> None:
        attempt = self._attempt(job)
        started = self.now()
        t0 = time.monotonic()
        self.session.before_job()
        try:
            task = import_task(job["task_path"])
        except TaskMissing as exc:
            self._task_missing(job, attempt, exc)
            return
        except Exception as exc:  # noqa: BLE001 - the module raised at import: the real error
            self.last_exception = exc
            self.reporter.failed(attempt, error_of(exc, attempt, started), started)
            return
        task_result = build_result(task, {**job, "status": JobStatus.RUNNING,
                                          "last_attempted_at": _datetime(started)},
                                   self.config.backend_alias)
        object.__setattr__(task_result, "status", TaskResultStatus.RUNNING)
        self.current = attempt
        try:
            if getattr(task, "atomic", False):
                outcome = execute_atomic(task, task_result, self.sender, self.backend.database,
                                         attempt.job_id, attempt.token, started, self.now)
            else:
                outcome = execute(task, task_result, self.sender)
        finally:
            self.current = None
        finished = self.now()
        self.avg_seconds = 0.8 * self.avg_seconds + 0.2 * (time.monotonic() - t0)
        self.ran += 1
        self._report(job, attempt, task_result, outcome, started, finished)
        self.session.after_job(self.worker_id)

    def _report(self, job: dict[str, Any], attempt: Attempt, task_result: TaskResult,
                outcome: Outcome, started: float, finished: float) -> None:
        """Hand the outcome to the supervisor (before anything else starts)."""
        if outcome.snooze is not None:
            self.reporter.snoozed(attempt, outcome.snooze, finished)
        elif outcome.recorded:
            if self.reporter.confirms and outcome.ok:
                self.awaiting[job["id"]] = (task_result, outcome.return_json)
            self.reporter.done(attempt, JobStatus.SUCCESSFUL if outcome.ok else None,
                               outcome.limit_key)
        elif outcome.ok:
            assert outcome.return_json is not None
            if self.reporter.confirms:
                self.awaiting[job["id"]] = (task_result, outcome.return_json)
            self.reporter.succeeded(attempt, outcome.return_json, started, finished)
        else:
            assert outcome.error is not None
            self.last_exception = outcome.exception
            error = {**outcome.error, "attempt": attempt.attempt,
                     "worker_id": self.worker_id, "at": iso(started)}
            if self.reporter.confirms:
                self.awaiting[job["id"]] = (task_result, error)
            self.reporter.failed(attempt, error, started)

    def _task_missing(self, job: dict[str, Any], attempt: Attempt, exc: TaskMissing) -> None:
        """A task path that does not import: released without charge, FAILED after a grace."""
        age = self.now() - job["enqueued_at"].timestamp()
        if age < self.config.options.import_grace_seconds:
            # Released attempts are not counted, so back off by age instead: 5 s, growing
            # to a minute, until the grace period ends.
            delay = min(max(age / 4, 5.0), 60.0)
            self.reporter.released([(attempt, delay)])
            logger.warning("job %s: %s; released, retrying in %.0fs (fails after %.0fs)",
                           job["id"], exc, delay, self.config.options.import_grace_seconds)
            return
        error = error_of(TaskNotFound(f"{exc} (for {age:.0f}s)"), attempt, None)
        # Failed for good, whatever attempts are left: the code is not coming back.
        self.reporter.failed(attempt, error, None, final=True)

def _datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
