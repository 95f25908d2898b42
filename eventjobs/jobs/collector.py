"""The supervisor's collector thread: reads its children's reports and records outcomes.

Reports arrive through each child's pipe the moment a job is claimed or ends. The
collector keeps what each child holds, records outcomes in batches through the Completer,
confirms them to the child (for `task_finished`), and watches what runs:
- a job past its timeout: the child is killed and the attempt charged JobTimeout;
- a job running long while its child holds other claimed jobs: those are taken back (under
  the child's gate, so the child cannot start one at the same instant) for others to run;
- a child that dies (its pipe closes): the job it was running is charged WorkerLost at
  once, the jobs it never started are released uncharged, and every outcome it reported
  before dying is still recorded.
It runs no user code and survives every error: a database outage only delays recording.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import threading
import time
from collections import defaultdict
from typing import Any

import psycopg

from eventjobs.db import connect
from eventjobs.exceptions import JobTimeout, WorkerLost, first_line
from eventjobs.jobs.children import ChildLink, Children
from eventjobs.jobs.completer import Attempt, Completer
from eventjobs.jobs.reporting import (
    CLAIMED,
    DONE,
    FAILED,
    HELLO,
    RECORDED,
    RELEASED,
    REVOKED,
    SNOOZED,
    SUCCEEDED,
)

logger = logging.getLogger("eventjobs.worker")

COALESCE_SECONDS = 0.002  # after a wake-up, let more reports arrive before reading
FLUSH_SECONDS = 0.005  # an outcome waits at most this long to be recorded
MAX_PENDING = 500  # ... or until this many are waiting
CHECK_SECONDS = 0.1  # timeouts and long-running jobs are checked this often
TAKE_BACK_AFTER_SECONDS = 0.2  # a job running this long releases its child's other claims


class Collector(threading.Thread):
    """Turns children's reports into recorded outcomes; see the module docstring."""

    def __init__(self, children: Children, db_params: dict[str, Any]):
        super().__init__(name="eventjobs-collector", daemon=True)
        self.children = children
        self.db_params = db_params
        self.completer = Completer()
        self.conn: psycopg.Connection | None = None
        self.wants_answer: dict[int, ChildLink] = {}  # job id -> child waiting to hear
        self.first_pending: float | None = None
        self.flush_now = False
        self.retry_at = 0.0
        self.outage_since: float | None = None
        self.next_check = 0.0
        self.closing = threading.Event()  # no new children: finish and stop
        self.abandoning = False  # shutdown grace is over: running jobs are released
        self.counts: dict[str | None, int] = defaultdict(int)  # recorded, by new status
        self.wake_r, self.wake_w = os.pipe()
        self.poller = select.poll()
        self.poller.register(self.wake_r, select.POLLIN)
        self.watched: set[int] = set()

    def close(self) -> None:
        """Record what is left once every child is gone, then stop."""
        self.closing.set()
        self.wake()

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self.wake_w, b"x")

    def run(self) -> None:
        while True:
            try:
                self._step()
            except Exception:  # noqa: BLE001 - the collector must outlive every error
                logger.exception("collector: unexpected error; carrying on")
                time.sleep(0.1)
            if self.closing.is_set() and not len(self.children) and not self.completer:
                break
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()

    def _step(self) -> None:
        links = [link for link in self.children.all() if not link.gone]
        self._watch(links)
        ready = {fd for fd, _ in self.poller.poll(self._timeout() * 1000)}
        if self.wake_r in ready:
            with contextlib.suppress(OSError):
                os.read(self.wake_r, 512)
        if ready:
            time.sleep(COALESCE_SECONDS)
        for link in links:
            if link.report_fd in ready:
                self._drain(link)
        if time.monotonic() >= self.next_check:
            self.next_check = time.monotonic() + CHECK_SECONDS
            for link in links:
                if not link.gone:
                    self._check_running(link)
        self._flush_if_due()

    def _timeout(self) -> float:
        until = self.next_check - time.monotonic()  # seconds
        if self.completer and self.first_pending is not None:
            until = min(until, self.first_pending + FLUSH_SECONDS - time.monotonic(),
                        self.retry_at - time.monotonic())
        return max(until, 0.0005)

    # -- reports ---------------------------------------------------------------------------
    def _watch(self, links: list[ChildLink]) -> None:
        """Keep the poll set in step with the children (poll objects, not Connection.poll or
        connection.wait, which build a selector on every call: per job, that showed)."""
        fds = {link.report_fd for link in links}
        for fd in self.watched - fds:
            self.poller.unregister(fd)
        for fd in fds - self.watched:
            self.poller.register(fd, select.POLLIN)
        self.watched = fds

    def _drain(self, link: ChildLink) -> None:
        try:
            while link.readable():
                self._on_report(link, *pickle.loads(link.report.recv_bytes()))
        except (EOFError, OSError):
            self._gone(link)

    def _on_report(self, link: ChildLink, kind: str, body: Any) -> None:
        if kind == HELLO:
            link.worker_id, _pid, link.wants_confirmations = body
        elif kind == CLAIMED:
            self.children.hold(link, [Attempt.unpack(packed) for packed in body])
        elif kind == SUCCEEDED:
            job_id, return_json, started, finished = body
            attempt = self.children.unhold(link, job_id)
            if attempt is not None:
                self.completer.succeeded(attempt, return_json, started, finished)
                self._pending(link, attempt)
        elif kind == FAILED:
            job_id, error, started, final = body
            attempt = self.children.unhold(link, job_id)
            if attempt is not None:
                self.completer.failed(attempt, error, started, final=final)
                self._pending(link, attempt)
        elif kind == RELEASED:
            for job_id, delay in body:
                attempt = self.children.unhold(link, job_id)
                if attempt is not None:
                    self.completer.release(attempt, delay)
            self._pending(link, None)
        elif kind == SNOOZED:
            job_id, delay, at = body
            attempt = self.children.unhold(link, job_id)
            if attempt is not None:
                self.completer.snooze(attempt, delay, at)
            self._pending(link, None)
        elif kind == DONE:  # an atomic task's outcome, recorded by the child itself
            job_id, status, limit_key = body
            attempt = self.children.unhold(link, job_id)
            if attempt is not None:
                self.completer.already_recorded(attempt, status, limit_key)
                self._pending(link, attempt)

    def _pending(self, link: ChildLink, attempt: Attempt | None) -> None:
        if attempt is not None and link.wants_confirmations:
            self.wants_answer[attempt.job_id] = link
        if self.first_pending is None:
            self.first_pending = time.monotonic()

    def _gone(self, link: ChildLink) -> None:
        """The child's pipe closed: it exited or died. Account for everything it held."""
        running = link.slot.read()
        code = self._exit_code(link)
        with self.children.lock:
            held = list(link.held.values())
            link.held.clear()
        for attempt in held:
            if running is not None and running.job_id == attempt.job_id \
                    and running.token == attempt.token and not self.abandoning:
                self.completer.interrupted(attempt, WorkerLost(
                    f"worker process {link.pid} exited with code {code} while running this "
                    "job"))
                logger.error("job %s %s: worker process %s exited with code %s while running it",
                             attempt.job_id, attempt.task_path, link.pid, code)
            else:
                self.completer.release(attempt)  # never started (or shutdown grace over)
        if link.worker_id is not None:
            # Its last claim may have committed without its report reaching us.
            known = [a.job_id for a in held] + list(link.lost)
            self.completer.release_unreported(link.worker_id, known)
        self.children.remove(link)
        self.flush_now = True
        self._pending(link, None)
        for end in (link.report, link.control):
            with contextlib.suppress(OSError):
                end.close()

    @staticmethod
    def _exit_code(link: ChildLink) -> int | str:
        """The child's exit code (its pipe closes just before it exits: wait a moment)."""
        if link.process is None:
            return "?"
        link.process.join(timeout=1.0)
        return link.process.exitcode if link.process.exitcode is not None else "?"

    # -- what runs now ---------------------------------------------------------------------
    def _check_running(self, link: ChildLink) -> None:
        running = link.slot.read()
        if running is None:
            return
        attempt = link.held.get(running.job_id)
        if attempt is None or attempt.token != running.token:
            return  # finished; its report is on the way
        elapsed = time.monotonic() - running.started
        if running.timeout is not None and elapsed > running.timeout:
            self._kill_for_timeout(link, attempt, running.timeout)
        elif elapsed > TAKE_BACK_AFTER_SECONDS and len(link.held) > 1:
            self._take_back(link, attempt)

    def _kill_for_timeout(self, link: ChildLink, attempt: Attempt, timeout: float) -> None:
        logger.error("job %s %s exceeded its timeout of %ss; killing worker process %s",
                     attempt.job_id, attempt.task_path, timeout, link.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(link.pid, signal.SIGKILL)
        if self.children.unhold(link, attempt.job_id) is not None:
            self.completer.interrupted(attempt, JobTimeout(
                f"job exceeded its timeout of {timeout}s"))
            self._pending(link, None)
            self.flush_now = True

    def _take_back(self, link: ChildLink, running: Attempt) -> None:
        """Release the jobs a child claimed but cannot start while a long job runs."""
        if not link.gate.acquire(timeout=0.05):
            return
        try:
            self._drain(link)  # outcomes reported before the gate: never release those
            now = link.slot.read()
            if link.gone or now is None or now.job_id != running.job_id:
                return
            with self.children.lock:
                waiting = [a for a in link.held.values() if a.job_id != running.job_id]
            if not waiting:
                return
            self.children.tell(link, REVOKED, [a.job_id for a in waiting])
        finally:
            link.gate.release()
        for attempt in waiting:
            self.children.unhold(link, attempt.job_id)
            self.completer.release(attempt)
        self.flush_now = True
        self._pending(link, None)
        logger.info("worker %s: job %s is running long; gave back %s job(s) it had not "
                    "started", link.worker_id, running.job_id, len(waiting))

    # -- recording -------------------------------------------------------------------------
    def _flush_if_due(self) -> None:
        if not self.completer or time.monotonic() < self.retry_at:
            return
        age = time.monotonic() - (self.first_pending or time.monotonic())
        pending = (len(self.completer.successes) + len(self.completer.failures)
                   + len(self.completer.releases) + len(self.completer.snoozes))
        if not (self.flush_now or self.closing.is_set() or age >= FLUSH_SECONDS
                or pending >= MAX_PENDING):
            return
        try:
            if self.conn is None or self.conn.closed:
                self.conn = connect(self.db_params, "eventjobs collector",
                                    synchronous_commit=False)
            recorded = self.completer.flush(self.conn)
        except psycopg.Error as exc:
            self._outage(exc)
            return
        if self.outage_since is not None:
            logger.warning("collector: database back after %.1fs; outcomes recorded",
                           time.monotonic() - self.outage_since)
            self.outage_since = None
        self.first_pending = None
        self.flush_now = False
        self._answer(recorded)

    def _answer(self, recorded: list[Any]) -> None:
        answers: dict[ChildLink, list[tuple[int, str | None]]] = defaultdict(list)
        for item in recorded:
            self.counts[item.status] += 1
            link = self.wants_answer.pop(item.attempt.job_id, None)
            if link is not None and not link.gone:
                answers[link].append((item.attempt.job_id, item.status))
        for link, items in answers.items():
            self.children.tell(link, RECORDED, items)

    def _outage(self, exc: Exception) -> None:
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            logger.error("collector: cannot record outcomes (%s); keeping them and retrying",
                         first_line(exc))
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
        self.conn = None
        self.retry_at = time.monotonic() + min(5.0, 0.2 + (time.monotonic()
                                                            - self.outage_since) / 4)
