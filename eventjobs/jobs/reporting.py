"""How a worker child reports what it does, and hears back.

A `runworker` child writes each claim and each outcome into a pipe to its supervisor the
moment it happens, before it starts anything else: the pipe outlives the child, so a
finished job's outcome is never lost with its process, and when the child dies the
supervisor knows exactly which jobs it had claimed, which one was running and which never
started. The supervisor records outcomes in batches (eventjobs/jobs/collector.py) and
answers on a second pipe: leases lost, claimed jobs taken back, outcomes recorded (so
`task_finished` is sent only for what was recorded), "hold" (stop claiming).

`DirectReporter` is the in-process stand-in used by the test helpers: it records each
outcome at once through a Completer on a given connection.
"""

from __future__ import annotations

import pickle
import select
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

import psycopg

from eventjobs.jobs.completer import Attempt, Completer

# Child -> supervisor (each message one small pickled tuple; times are epoch seconds on the
# database's clock; attempts travel packed, see Attempt.pack).
HELLO = "hello"  # (worker_id, pid, wants_confirmations)
CLAIMED = "claimed"  # [packed Attempt, ...]
SUCCEEDED = "succeeded"  # (job_id, return_json, started, finished)
FAILED = "failed"  # (job_id, error record, started, final)
RELEASED = "released"  # [(job_id, delay), ...]
SNOOZED = "snoozed"  # (job_id, delay, at): the task raised eventjobs.Snooze
DONE = "done"  # (job_id, status or None, limit_key): an atomic task recorded its outcome
# Supervisor -> child.
LOST = "lost"  # [job_id, ...]: leases lost; their outcomes will not be recorded
REVOKED = "revoked"  # [job_id, ...]: claimed but not started; given back to the queue
RECORDED = "recorded"  # [(job_id, status or None), ...]
HOLD = "hold"  # bool: stop (True) or resume (False) claiming


@dataclass
class Notices:
    """What the supervisor told the child since the last read."""

    lost: set[int] = field(default_factory=set)
    revoked: set[int] = field(default_factory=set)
    recorded: list[tuple[int, str | None]] = field(default_factory=list)
    hold: bool | None = None

    def __bool__(self) -> bool:
        return bool(self.lost or self.revoked or self.recorded or self.hold is not None)


class SupervisorGone(Exception):
    """The supervisor's end of the report pipe is closed: nobody records outcomes."""


class Reporter(Protocol):
    confirms: bool  # whether outcomes are answered with RECORDED (for task_finished)

    def hello(self, worker_id: str, pid: int) -> None: ...
    def claimed(self, attempts: list[Attempt]) -> None: ...
    def succeeded(self, attempt: Attempt, return_json: str, started: float,
                  finished: float) -> None: ...
    def failed(self, attempt: Attempt, error: dict[str, Any], started: float | None,
               final: bool = False) -> None: ...
    def released(self, items: list[tuple[Attempt, float]]) -> None: ...
    def snoozed(self, attempt: Attempt, delay: float, at: float) -> None: ...
    def done(self, attempt: Attempt, status: str | None, limit_key: str | None) -> None: ...
    def notices(self) -> Notices: ...
    def fileno(self) -> int | None: ...


class PipeReporter:
    """The child's side of its two pipes to the supervisor.

    If the supervisor is gone (killed), the child records what it still reports itself, on
    its own connection (`fallback`), and is told to stop (`on_orphaned`): a job that ran
    to its end keeps its outcome even then.
    """

    def __init__(self, report: Connection, control: Connection, wants_confirmations: bool):
        self.report = report
        self.control = control
        self.wants_confirmations = wants_confirmations
        self.confirms = wants_confirmations
        self.fallback: Callable[[], psycopg.Connection | None] | None = None
        self.on_orphaned: Callable[[], None] | None = None
        self.direct: DirectReporter | None = None
        # Checked before every job: a poll object is ~10x cheaper than Connection.poll(),
        # which builds a selector per call.
        self._poller = select.poll()
        self._poller.register(control.fileno(), select.POLLIN)

    def _send(self, message: tuple[str, Any]) -> bool:
        """True when sent; False when the supervisor is gone (see the class docstring)."""
        if self.direct is None:
            try:
                self.report.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
                return True
            except OSError:
                self._orphan()
        return False

    def _orphan(self) -> None:
        if self.direct is not None:
            return
        conn = self.fallback() if self.fallback else None
        if conn is None:
            raise SupervisorGone("the supervisor is gone and there is no connection")
        self.direct = DirectReporter(conn)
        if self.on_orphaned:
            self.on_orphaned()

    def hello(self, worker_id: str, pid: int) -> None:
        self._send((HELLO, (worker_id, pid, self.wants_confirmations)))

    def claimed(self, attempts: list[Attempt]) -> None:
        self._send((CLAIMED, [attempt.pack() for attempt in attempts]))

    def succeeded(self, attempt: Attempt, return_json: str, started: float,
                  finished: float) -> None:
        if not self._send((SUCCEEDED, (attempt.job_id, return_json, started, finished))):
            assert self.direct is not None
            self.direct.succeeded(attempt, return_json, started, finished)

    def failed(self, attempt: Attempt, error: dict[str, Any], started: float | None,
               final: bool = False) -> None:
        if not self._send((FAILED, (attempt.job_id, error, started, final))):
            assert self.direct is not None
            self.direct.failed(attempt, error, started, final)

    def released(self, items: list[tuple[Attempt, float]]) -> None:
        if items and not self._send((RELEASED, [(a.job_id, delay) for a, delay in items])):
            assert self.direct is not None
            self.direct.released(items)

    def snoozed(self, attempt: Attempt, delay: float, at: float) -> None:
        if not self._send((SNOOZED, (attempt.job_id, delay, at))):
            assert self.direct is not None
            self.direct.snoozed(attempt, delay, at)

    def done(self, attempt: Attempt, status: str | None, limit_key: str | None) -> None:
        if not self._send((DONE, (attempt.job_id, status, limit_key))):
            assert self.direct is not None
            self.direct.done(attempt, status, limit_key)

    def notices(self) -> Notices:
        """Everything the supervisor sent, without waiting."""
        if self.direct is not None:
            return self.direct.notices()
        found = Notices()
        try:
            while self._poller.poll(0):
                kind, body = self.control.recv()
                if kind == LOST:
                    found.lost.update(body)
                elif kind == REVOKED:
                    found.revoked.update(body)
                elif kind == RECORDED:
                    found.recorded.extend(body)
                elif kind == HOLD:
                    found.hold = body
        except (EOFError, OSError):
            self._orphan()
        return found

    def fileno(self) -> int | None:
        return None if self.direct is not None else self.control.fileno()


class DirectReporter:
    """Records each outcome at once on `conn` (the test helpers' in-process runner)."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self.completer = Completer()
        self.pending = Notices()
        self.confirms = True

    def hello(self, worker_id: str, pid: int) -> None:
        pass

    def claimed(self, attempts: list[Attempt]) -> None:
        pass

    def succeeded(self, attempt: Attempt, return_json: str, started: float,
                  finished: float) -> None:
        self.completer.succeeded(attempt, return_json, started, finished)
        self._flush()

    def failed(self, attempt: Attempt, error: dict[str, Any], started: float | None,
               final: bool = False) -> None:
        self.completer.failed(attempt, error, started, final=final)
        self._flush()

    def released(self, items: list[tuple[Attempt, float]]) -> None:
        for attempt, delay in items:
            self.completer.release(attempt, delay)
        self._flush()

    def snoozed(self, attempt: Attempt, delay: float, at: float) -> None:
        self.completer.snooze(attempt, delay, at)
        self._flush()

    def done(self, attempt: Attempt, status: str | None, limit_key: str | None) -> None:
        self.completer.already_recorded(attempt, status, limit_key)
        self._flush()

    def _flush(self) -> None:
        for item in self.completer.flush(self.conn):
            self.pending.recorded.append((item.attempt.job_id, item.status))

    def notices(self) -> Notices:
        found, self.pending = self.pending, Notices()
        return found

    def fileno(self) -> int | None:
        return None
