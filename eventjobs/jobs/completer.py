"""The one place that decides what happens to a job attempt, and records it.

An attempt ends in one of these ways, each decided here and nowhere else:
- it returned: SUCCESSFUL;
- it raised, its worker died or lost its lease, or it ran past its timeout: retried after
  an exponential backoff (READY, or SCHEDULED until due) or, once its attempts are spent,
  FAILED for good with every error kept;
- it never ran (a neighbour's crash, a shutdown, a task path not deployed yet): released
  back to READY without charging the attempt;
- it raised eventjobs.Snooze: given back like a release, due after the snooze, and noted
  in the job's `snoozes`;
- an atomic task's child recorded its success itself, in the task's transaction: only
  accounted for here.

When an outcome of a limited task's job frees room under its limit, that key's waiting
jobs are promoted right after the outcome is recorded, so the freed slot is used at once.

Outcomes are collected and recorded in batches (one statement per kind), each fenced by
the attempt's lease token: a worker that lost its lease matches no row and cannot
overwrite the real outcome. Used by the supervisor's collector thread (for its children),
the rescuer (for leases that expired with nobody left to report) and the in-process
runners of the test helpers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import UUID

import psycopg

from eventjobs.backoff import backoff_delay
from eventjobs.exceptions import describe
from eventjobs.jobs import store as jobstore
from eventjobs.jobs.limits import promote_keys
from eventjobs.jobs.statuses import JobStatus

logger = logging.getLogger("eventjobs.worker")


class Attempt(NamedTuple):
    """A claimed attempt, as the completer needs to know it (a tuple: cheap to pass)."""

    job_id: int
    token: UUID
    attempt: int
    max_attempts: int
    retry_backoff: float
    queue: str
    task_path: str
    worker_id: str

    @classmethod
    def from_row(cls, row: dict[str, Any], worker_id: str) -> Attempt:
        return cls(row["id"], row["lease_token"], row["attempt"], row["max_attempts"],
                   row["retry_backoff"], row["queue"], row["task_path"], worker_id)

    def pack(self) -> tuple:
        """A compact, quickly pickled form (a UUID object pickles slowly)."""
        return (self.job_id, self.token.bytes, self.attempt, self.max_attempts,
                self.retry_backoff, self.queue, self.task_path, self.worker_id)

    @classmethod
    def unpack(cls, packed: tuple) -> Attempt:
        job_id, token, *rest = packed
        return cls(job_id, UUID(bytes=token), *rest)


def decide_failure(attempt: int, max_attempts: int, retry_backoff: float,
                   backoff: bool = True) -> tuple[JobStatus, float]:
    """Where a job goes after failed attempt number `attempt`: (status, delay seconds).
    Without `backoff` a retry is due at once (a worker lost to its lease: not the job's fault)."""
    if attempt >= max_attempts:
        return JobStatus.FAILED, 0.0
    delay = backoff_delay(retry_backoff, attempt) if backoff else 0.0
    return (JobStatus.SCHEDULED if delay > 0 else JobStatus.READY), delay


def error_of(exc: BaseException, attempt: Attempt, at: float | None) -> dict[str, Any]:
    """The error record stored for a failed attempt (Django's TaskError fields and more);
    `at` is when the attempt started (epoch seconds, database clock)."""
    return {**describe(exc), "attempt": attempt.attempt, "worker_id": attempt.worker_id,
            **({"at": iso(at)} if at else {})}


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


@dataclass
class Recorded:
    """What became of one outcome: its new status, or None when the lease was lost."""

    attempt: Attempt
    status: str | None


@dataclass
class Completer:
    """Collects outcomes; `flush(conn)` records them. Not thread-safe: one owner."""

    # Times are epoch seconds on the database's clock.
    successes: list[tuple[Attempt, str, float, float]] = field(default_factory=list)
    # (attempt, error, started, backoff, final)
    failures: list[tuple[Attempt, dict[str, Any], float | None, bool, bool]] = field(
        default_factory=list)
    releases: list[tuple[Attempt, float]] = field(default_factory=list)
    snoozes: list[tuple[Attempt, float, float]] = field(default_factory=list)  # (, delay, at)
    # (worker id, job ids decided otherwise) of dead children whose last claim may not
    # have been reported: their other RUNNING jobs never started.
    unreported: list[tuple[str, list[int]]] = field(default_factory=list)
    # False for a caller that promotes every key itself (the rescuer's maintenance).
    promote_freed: bool = True
    # Recorded by a flush that then failed part-way: reported by the next flush.
    _recorded: list[Recorded] = field(default_factory=list)
    _freed: set[str] = field(default_factory=set)  # limit keys with a slot freed

    def __bool__(self) -> bool:
        return bool(self.successes or self.failures or self.releases or self.snoozes
                    or self.unreported or self._recorded or self._freed)

    # -- what happened -------------------------------------------------------------------------
    def succeeded(self, attempt: Attempt, return_json: str, started: float,
                  finished: float) -> None:
        self.successes.append((attempt, return_json, started, finished))

    def failed(self, attempt: Attempt, error: dict[str, Any], started: float | None,
               backoff: bool = True, final: bool = False) -> None:
        """The attempt ended with an error record (see error_of); `final`: FAILED for good
        whatever attempts are left (the task's code is gone)."""
        self.failures.append((attempt, error, started, backoff, final))

    def interrupted(self, attempt: Attempt, exc: BaseException,
                    started: float | None = None, backoff: bool = True) -> None:
        """The attempt was cut short (WorkerLost, JobTimeout): charged like a failure;
        `backoff=False` retries it at once (a lease that expired with its worker)."""
        self.failed(attempt, error_of(exc, attempt, started), started, backoff)

    def release(self, attempt: Attempt, delay: float = 0.0) -> None:
        """The attempt never ran: give the job back, uncharged, due after `delay`."""
        self.releases.append((attempt, delay))

    def release_unreported(self, worker_id: str, known: list[int]) -> None:
        """A child died: give back, uncharged, jobs it claimed but never reported (it died
        with its claim in flight); `known` are the ids already accounted for."""
        self.unreported.append((worker_id, known))

    def snooze(self, attempt: Attempt, delay: float, at: float) -> None:
        """The task raised Snooze(delay) at `at`: back after `delay`, uncharged."""
        self.snoozes.append((attempt, delay, at))

    def already_recorded(self, attempt: Attempt, status: str | None,
                         limit_key: str | None = None) -> None:
        """An atomic task's child recorded the outcome in the task's own transaction
        (status None: its lease was lost, so it rolled back)."""
        self._recorded.append(Recorded(attempt, status))
        if limit_key is not None:
            self._freed.add(limit_key)

    # -- recording -----------------------------------------------------------------------------
    def flush(self, conn: psycopg.Connection) -> list[Recorded]:
        """Record everything collected. On a database error nothing is dropped: the
        outcomes stay collected for the next flush (the lease fence makes a repeat safe)."""
        if self.successes:
            kept = jobstore.finish_successes(conn, [
                (a.job_id, a.token, value, started, finished)
                for a, value, started, finished in self.successes])
            self._recorded += [Recorded(a, JobStatus.SUCCESSFUL if a.job_id in kept else None)
                               for a, *_ in self.successes]
            self._freed.update(key for key in kept.values() if key is not None)
            self.successes = []
        if self.failures:
            self._recorded += self._record_failures(conn)
        if self.releases:
            rows = jobstore.release(conn, [(a.job_id, a.token, delay)
                                           for a, delay in self.releases])
            self._freed.update(row[3] for row in rows if row[3] is not None)
            self.releases = []
        if self.snoozes:
            rows = jobstore.snooze(conn, [(a.job_id, a.token, delay, at)
                                          for a, delay, at in self.snoozes])
            self._freed.update(row[3] for row in rows if row[3] is not None)
            self.snoozes = []
        # After the failures: the dead child's running job is recorded (charged) first.
        while self.unreported:
            worker_id, known = self.unreported[0]
            rows = jobstore.release_unreported(conn, worker_id, known)
            if rows:
                logger.warning("worker %s died with a claim in flight: released job(s) %s it "
                               "never started", worker_id, [row[0] for row in rows])
            self._freed.update(row[3] for row in rows if row[3] is not None)
            self.unreported.pop(0)
        if self._freed and self.promote_freed:
            promote_keys(conn, self._freed)
        self._freed = set()
        recorded, self._recorded = self._recorded, []
        for item in recorded:
            if item.status is None:
                logger.warning("job %s lost its lease before its outcome was recorded (%s); "
                               "it was rescued and runs again, or has run, elsewhere",
                               item.attempt.job_id, item.attempt.task_path)
        return recorded

    def _record_failures(self, conn: psycopg.Connection) -> list[Recorded]:
        rows: list[dict[str, Any]] = []
        for attempt, error, started, backoff, final in self.failures:
            status, delay = decide_failure(
                attempt.attempt, attempt.attempt if final else attempt.max_attempts,
                attempt.retry_backoff, backoff)
            rows.append({"id": attempt.job_id, "token": attempt.token, "status": status.value,
                         "error": error, "delay": delay, "started_at": started})
        returned = jobstore.record_failures(conn, rows)
        kept = {job_id: new_status for job_id, new_status, _, _ in returned}
        self._freed.update(key for *_, key in returned if key is not None)
        recorded = []
        for (attempt, error, *_), row in zip(self.failures, rows, strict=True):
            recorded_status = kept.get(attempt.job_id)
            recorded.append(Recorded(attempt, recorded_status))
            if recorded_status is not None:
                _log_failure(attempt, error, recorded_status, row["delay"])
        self.failures = []
        return recorded


def _log_failure(attempt: Attempt, error: dict[str, Any], status: str, delay: float) -> None:
    what = f"{error['exception_class_path']}: {error.get('message', '')}".rstrip(": ")
    if status == JobStatus.FAILED:
        logger.error("job %s %s failed for good after %s attempt(s): %s", attempt.job_id,
                     attempt.task_path, attempt.attempt, what)
    else:
        logger.warning("job %s %s attempt %s/%s failed (%s); retrying in %.1fs",
                       attempt.job_id, attempt.task_path, attempt.attempt,
                       attempt.max_attempts, what, delay)
