"""A worker child: claim -> execute -> report, one job at a time, on one connection.

That connection is Django's own connection to the backend's database, shared with the
tasks' ORM use: between jobs (no transaction open) the child claims and waits for a NOTIFY
on it, so `runworker --concurrency N` holds N + 2 connections in all (the supervisor's
collector and heartbeat being the two).

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
import select
import socket
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import psycopg
from django.db import InterfaceError as DjangoInterfaceError
from django.db import OperationalError as DjangoOperationalError
from django.db import connections
from django.tasks import TaskResult, TaskResultStatus, task_backends

from eventjobs.db import database_now, django_connection
from eventjobs.exceptions import TaskNotFound
from eventjobs.jobs import store as jobstore
from eventjobs.jobs.atomic import execute_atomic
from eventjobs.jobs.child import WorkerConfig
from eventjobs.jobs.completer import Attempt, error_of, iso
from eventjobs.jobs.executor import TaskMissing, execute, import_task, send_finished
from eventjobs.jobs.limits import IDLE_KEYS, promote_keys
from eventjobs.jobs.reporting import Notices, Reporter
from eventjobs.jobs.results import build_result
from eventjobs.jobs.slot import JobSlot
from eventjobs.jobs.statuses import JobStatus

logger = logging.getLogger("eventjobs.worker")

MAX_BATCH = 100
BATCH_BUDGET_SECONDS = 0.05  # claim only what can start within this much time
QUEUE_REFRESH_SECONDS = 5.0  # a worker of every queue looks for new queues this often
RECONNECT_MAX_SECONDS = 5.0


class ChildWorker:
    """The claim/execute/report loop of one child; `run_once()` does one step."""

    def __init__(self, config: WorkerConfig, reporter: Reporter, *, slot: JobSlot | None = None,
                 gate: Any = None, conn: psycopg.Connection | None = None):
        self.config = config
        self.reporter = reporter
        self.slot = slot  # what runs now, for the supervisor's timeouts and crash handling
        self.gate = gate if gate is not None else contextlib.nullcontext()
        self.backend = task_backends[config.backend_alias]
        self.sender = type(self.backend)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.conn = conn
        self.owns_conn = conn is None
        self.buffer: deque[dict[str, Any]] = deque()
        self.lost: set[int] = set()  # leases lost, by job id (the supervisor says so)
        self.hold = False
        self.stopping = False
        self.avg_seconds = 1.0  # pessimistic until measured: claim one at a time
        self.clock_offset = 0.0  # database clock minus ours, in seconds
        self.current: Attempt | None = None
        self.awaiting: dict[int, tuple[TaskResult, Any]] = {}  # job id -> for task_finished
        self.queues: list[str] = list(config.queues or ())
        self.queues_seen_at = 0.0
        self.outage_since: float | None = None
        self.database_was_away = False  # the tasks' connections need replacing
        self.ran = 0
        self.last_exception: BaseException | None = None  # of the last failed attempt
        # A signal handler writes here to end an idle wait at once.
        self.wakeup_r, self.wakeup_w = os.pipe()
        os.set_blocking(self.wakeup_r, False)
        os.set_blocking(self.wakeup_w, False)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        # Our connection is opened by the first statement (see _database), which rides out
        # a database that is not there yet.
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
        with contextlib.suppress(OSError):
            os.write(self.wakeup_w, b"x")

    def shutdown(self) -> None:
        """Give back what was claimed and not started; close our connection."""
        self.reporter.released([(self._attempt(job), 0.0) for job in self.buffer])
        self.buffer.clear()
        if self.owns_conn:
            with contextlib.suppress(Exception):
                connections[self.backend.database].close()
        for fd in (self.wakeup_r, self.wakeup_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- one step --------------------------------------------------------------------------
    def run_once(self) -> bool:
        """Run one job if one is due (claiming if needed). False when there was none."""
        self._read_notices()
        if self.stopping:
            return False
        if not self.buffer and not self._claim():
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
        queues = self._claim_queues()
        if not queues:
            return False
        limit = max(1, min(MAX_BATCH, int(BATCH_BUDGET_SECONDS / max(self.avg_seconds, 1e-6))))
        rows = self._database(jobstore.claim, queues=queues, limit=limit,
                              lease=self.config.options.lease_seconds, worker_id=self.worker_id)
        if not rows:
            return False
        self.reporter.claimed([self._attempt(row) for row in rows])
        self.buffer.extend(rows)
        return True

    def _claim_queues(self) -> list[str]:
        """The configured queues, or (every queue) the queues that have ready jobs."""
        if self.config.queues is not None:
            return self.queues
        if time.monotonic() - self.queues_seen_at > QUEUE_REFRESH_SECONDS or not self.queues:
            self.queues = self._database(jobstore.ready_queues) or []
            self.queues_seen_at = time.monotonic()
        return self.queues

    def _idle(self) -> bool:
        """Nothing to claim: promote due scheduled jobs, else wait for a NOTIFY or the poll."""
        if self.stopping:
            return False
        if self.config.queues is None:
            self.queues_seen_at = 0.0  # look for queues again after the wait
        due = self._database(jobstore.promote_due)
        admitted = self._database(promote_keys, None, IDLE_KEYS)  # limited jobs with room
        if admitted or (due and due[0]):
            return True  # claim again
        if self.config.burst and not self._burst_should_wait():
            return False
        timeout = self.config.options.poll_seconds
        until_due = self._database(jobstore.seconds_until_next_due, self.config.queues)
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
        counts = self._database(jobstore.pending_counts, self.config.queues) or {}
        return any(counts.values())

    def _wait(self, timeout: float) -> None:
        """Sleep until a NOTIFY for our queues, a notice from the supervisor, or `timeout`."""
        if self.config.options.listen and self._database(self._drain_notifies):
            return  # it came while we were claiming
        watched = [self.wakeup_r]
        if self.conn is not None and not self.conn.closed:
            watched.append(self.conn.fileno())
        if self.reporter.fileno() is not None:
            watched.append(self.reporter.fileno())
        with contextlib.suppress(InterruptedError):
            select.select(watched, [], [], timeout)
        with contextlib.suppress(OSError):
            os.read(self.wakeup_r, 64)
        if self.config.options.listen:
            self._database(self._drain_notifies)

    def _drain_notifies(self, conn: psycopg.Connection) -> bool:
        """Consume wake-ups (also those received during other statements); True if one
        was for a queue we take."""
        relevant = False
        for notify in conn.notifies(timeout=0):
            if self.config.queues is None:
                relevant = True
                if notify.payload not in self.queues:
                    self.queues.append(notify.payload)
            elif notify.payload in self.queues:
                relevant = True
        return relevant

    # -- running a job ---------------------------------------------------------------------
    def now(self) -> float:
        """Epoch seconds on the database's clock."""
        return time.time() + self.clock_offset

    def _attempt(self, job: dict[str, Any]) -> Attempt:
        return Attempt.from_row(job, self.worker_id)

    def run_job(self, job: dict[str, Any]) -> None:
        attempt = self._attempt(job)
        started = self.now()
        t0 = time.monotonic()
        if self.outage_since is None and self.database_was_away:
            self.database_was_away = False
            connections.close_all()  # the tasks' own connections died with the outage too
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
        elapsed = time.monotonic() - t0
        self.avg_seconds = 0.8 * self.avg_seconds + 0.2 * elapsed
        self.ran += 1
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
        _tidy_django_connections(self.worker_id)

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

    # -- the connection --------------------------------------------------------------------
    def _connection(self) -> psycopg.Connection:
        """Django's connection to the backend's database, set up for us once per physical
        connection (a task, or an outage, may have replaced it): named in pg_stat_activity,
        LISTENing, and our clock offset measured."""
        conn = django_connection(self.backend.database)
        if conn is not self.conn:
            jobstore.name_session(conn, f"eventjobs worker {self.worker_id}")
            # Stamp times with the database's clock, never this machine's.
            self.clock_offset = database_now(conn).timestamp() - time.time()
            if self.config.options.listen:
                jobstore.listen(conn)
            self.conn = conn
        return conn

    def _database(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        """Run `operation(conn, ...)`; on a connection failure reconnect with backoff (one
        log line per outage) and return None, so the loop carries on. Never exits. On a
        connection it was given (the test helpers': the caller's own), errors propagate."""
        if not self.owns_conn:
            return operation(self.conn, *args, **kwargs)
        try:
            result = operation(self._connection(), *args, **kwargs)
        except (psycopg.OperationalError, psycopg.InterfaceError, DjangoOperationalError,
                DjangoInterfaceError) as exc:
            self._outage(exc)
            return None
        if self.outage_since is not None:
            logger.warning("worker %s: database back after %.1fs", self.worker_id,
                           time.monotonic() - self.outage_since)
            self.outage_since = None
        return result

    def _outage(self, exc: Exception) -> None:
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            self.database_was_away = True
            logger.error("worker %s: database unavailable (%s); retrying", self.worker_id,
                         str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
        with contextlib.suppress(Exception):
            connections[self.backend.database].close()
        self.conn = None
        waited = time.monotonic() - self.outage_since
        time.sleep(min(RECONNECT_MAX_SECONDS, 0.2 + waited / 4))


def _datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _tidy_django_connections(worker_id: str) -> None:
    """After a job: no transaction may stay open (it would hold the horizon of every event
    consumer in the cluster), and a connection the task broke is replaced."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        if conn.in_atomic_block or not conn.get_autocommit():
            logger.error("worker %s: a task left a transaction open on database %r; rolling "
                         "it back", worker_id, conn.alias)
            with contextlib.suppress(Exception):
                conn.rollback()
            conn.close()
        elif conn.errors_occurred and not conn.is_usable():
            conn.close()


# -- the current job, for the task itself -------------------------------------------------
_active: ChildWorker | None = None


def activate(worker: ChildWorker) -> None:
    """Make `worker` the one `lease_lost()` asks (one per child process)."""
    global _active
    _active = worker


def lease_lost() -> bool:
    """True once the running attempt's lease is known lost (its worker could not renew it
    and another worker may run the job): a long task should stop; its outcome will not be
    recorded. False outside a worker."""
    worker = _active
    if worker is None or worker.current is None:
        return False
    worker._read_notices()
    return worker.current.job_id in worker.lost
