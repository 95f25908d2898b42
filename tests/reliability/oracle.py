"""The scenarios' oracle, in the style of Jepsen's queue checkers.

Clients (clients.py) record what the database acknowledged; tasks and handlers write a
ledger in their own transactions (tests/testapp). The checkers compare the two:

- lost: acked (or unknown-but-committed) work with no terminal outcome / never handled
- duplicated: handled more than once (0 allowed for DB-side event handlers; for jobs,
  at-least-once, bounded by the faults injected)
- unexpected: handled although never committed (a phantom from a rolled-back transaction)
- order: per key, handled in publish order; positions never move backwards (sampled)
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import connection, transaction

from eventjobs.models import DeadLetter, Event, Job
from tests.reliability.clients import DB_ERRORS, Outcomes
from tests.testapp.models import EffectCounter, EventLedger, Ledger

GROUP = "exactly-once"  # tests/testapp/consumers.py: handles "rel.*"


def sample(ids, n: int = 15) -> list:
    """The first `n` ids, for failure messages that stay readable."""
    return sorted(ids)[:n]


# -- positions ---------------------------------------------------------------------------------
class PositionSampler(threading.Thread):
    """Reads every cursor every `interval` on its own connection (reconnecting through
    faults) and records any position that moved backwards."""

    def __init__(self, conninfo: str, interval: float = 0.05):
        super().__init__(name="position-sampler", daemon=True)
        self.conninfo, self.interval = conninfo, interval
        self.stop = threading.Event()
        self.last: dict[tuple[str, int], tuple[int, int]] = {}
        self.backwards: list[str] = []
        self.samples = 0

    def run(self) -> None:
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=3,
                                           application_name="reliability sampler")
                rows = conn.execute("SELECT group_name, partition, txid::text, event_id "
                                    "FROM eventjobs_cursor").fetchall()
                self._check(rows)
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                conn = None
            self.stop.wait(self.interval)
        if conn is not None:
            conn.close()

    def _check(self, rows) -> None:
        self.samples += 1
        for group, partition, txid, event_id in rows:
            position = (int(txid), event_id)
            before = self.last.get((group, partition))
            if before is not None and position < before:
                self.backwards.append(f"{group}[{partition}] moved back from {before} to "
                                      f"{position}")
            self.last[(group, partition)] = position

    def finish(self) -> list[str]:
        self.stop.set()
        self.join(timeout=10)
        return self.backwards


# -- checkers ----------------------------------------------------------------------------------
def _present_events(ids: list[int]) -> set[int]:
    return set(Event.objects.filter(pk__in=ids).values_list("pk", flat=True))


def _present_jobs(ids: list[int]) -> set[int]:
    return set(Job.objects.filter(pk__in=ids).values_list("pk", flat=True))


@dataclass
class EventReport:
    """One group's delivery figures against what publishers were told."""

    expected: dict[int, tuple]
    handled: Counter
    lost: set[int]
    duplicated: dict[int, int]
    unexpected: set[int]
    counter_doubles: dict[str, tuple[int, int]]  # key -> (counter value, distinct events)
    order_violations: list[str]
    dead_letters: list[tuple[int, str]]

    def done(self) -> bool:
        return not self.lost

    def problems(self) -> list[str]:
        out = []
        if self.lost:
            out.append(f"{len(self.lost)} committed event(s) never handled (skipped), e.g. "
                       f"{sample(self.lost)}")
        if self.dead_letters:
            out.append(f"{len(self.dead_letters)} event(s) dead-lettered although their "
                       f"handler never fails, e.g. {self.dead_letters[:5]}")
        if self.duplicated:
            out.append(f"{len(self.duplicated)} event(s) handled more than once by a DB-side "
                       f"handler (doubled effects), e.g. {dict(list(self.duplicated.items())[:10])}")
        if self.unexpected:
            out.append(f"{len(self.unexpected)} event(s) handled that were never committed "
                       f"(phantoms), e.g. {sample(self.unexpected)}")
        if self.counter_doubles:
            out.append(f"counter increments differ from events handled for "
                       f"{len(self.counter_doubles)} key(s) (key: (counter, events)): "
                       f"{dict(list(self.counter_doubles.items())[:10])}")
        out.extend(self.order_violations[:10])
        return out


@contextmanager
def snapshot() -> Iterator[None]:
    """Read the ledger, counters and outcomes in one snapshot: handlers still running
    must not make a check compare two different moments."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def check_events(outcomes: Outcomes, group: str = GROUP) -> EventReport:
    with snapshot():
        return _check_events(outcomes, group)


def _check_events(outcomes: Outcomes, group: str) -> EventReport:
    expected = outcomes.expected(_present_events)
    rows = list(EventLedger.objects.filter(group=group).order_by("id")
                .values_list("event_id", "key", "seq"))
    handled = Counter(event_id for event_id, _, _ in rows)
    per_key: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for event_id, key, seq in rows:
        if seq is not None:
            per_key[key].append((seq, event_id))
    order = []
    for key, seqs in per_key.items():
        inversions = [(a, b) for a, b in zip(seqs, seqs[1:], strict=False) if b[0] <= a[0]]
        if inversions:
            order.append(f"key {key}: handled out of publish order at (seq, event id) pairs "
                         f"{inversions[:5]}")
    distinct_per_key = Counter(key or "" for key in
                               {event_id: key for event_id, key, _ in rows}.values())
    counters = dict(EffectCounter.objects.filter(group=group).values_list("key", "value"))
    counter_doubles = {k: (counters.get(k, 0), distinct_per_key.get(k, 0))
                       for k in set(counters) | set(distinct_per_key)
                       if counters.get(k, 0) != distinct_per_key.get(k, 0)}
    dead = list(DeadLetter.objects.filter(group=group).values_list("event_id", "error")[:50])
    return EventReport(
        expected=expected, handled=handled, lost=set(expected) - set(handled),
        duplicated={i: n for i, n in handled.items() if n > 1},
        unexpected=set(handled) - set(expected), counter_doubles=counter_doubles,
        order_violations=order, dead_letters=[(i, e[:120]) for i, e in dead])


@dataclass
class JobReport:
    """Job outcomes against what enqueuers were told."""

    expected: dict[int, tuple]
    status: dict[int, str]
    runs: Counter  # key -> ledger rows
    lost: dict[int, str]  # id -> status, for jobs not SUCCESSFUL
    duplicated: dict[str, int]
    unexpected: set[str]
    never_ran: set[int]  # SUCCESSFUL without a ledger row

    def done(self) -> bool:
        return not self.lost

    def problems(self, max_duplicates: int) -> list[str]:
        out = []
        if self.lost:
            by_status = Counter(self.lost.values())
            out.append(f"{len(self.lost)} acked job(s) not SUCCESSFUL ({dict(by_status)}), e.g. "
                       f"{dict(list(sorted(self.lost.items()))[:10])}")
        if self.never_ran:
            out.append(f"{len(self.never_ran)} job(s) SUCCESSFUL without having run, e.g. "
                       f"{sample(self.never_ran)}")
        extra = sum(n - 1 for n in self.duplicated.values())
        if extra > max_duplicates:
            out.append(f"{extra} duplicate run(s) of {len(self.duplicated)} job(s), more than "
                       f"the {max_duplicates} the injected faults can explain, e.g. "
                       f"{dict(list(self.duplicated.items())[:10])}")
        if self.unexpected:
            out.append(f"{len(self.unexpected)} job key(s) ran that were never committed, e.g. "
                       f"{sample(self.unexpected)}")
        return out


def check_jobs(outcomes: Outcomes, prefixes: tuple[str, ...]) -> JobReport:
    with snapshot():
        return _check_jobs(outcomes, prefixes)


def _check_jobs(outcomes: Outcomes, prefixes: tuple[str, ...]) -> JobReport:
    expected = outcomes.expected(_present_jobs)
    status = dict(Job.objects.filter(pk__in=list(expected)).values_list("pk", "status"))
    runs: Counter = Counter()
    for prefix in prefixes:
        runs.update(Ledger.objects.filter(job_key__startswith=f"{prefix}-")
                    .values_list("job_key", flat=True))
    keys = {key: job_id for job_id, (key, _) in expected.items()}
    return JobReport(
        expected=expected, status=status, runs=runs,
        lost={i: status.get(i, "missing") for i in expected if status.get(i) != "SUCCESSFUL"},
        duplicated={k: n for k, n in runs.items() if n > 1},
        unexpected=set(runs) - set(keys),
        never_ran={i for k, i in keys.items() if status.get(i) == "SUCCESSFUL" and not runs[k]})


def retrying(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Wrap a database check so that a dead connection (the server restarted) is
    reopened and the check reads as 'not yet' instead of failing the test."""

    def attempt() -> Any:
        try:
            return fn()
        except DB_ERRORS:
            connection.close()
            return None

    return attempt


# -- the run log of tests/testapp/tasks.py _mark() ----------------------------------------------
@dataclass(frozen=True)
class Mark:
    phase: str
    key: str
    attempt: int
    pid: int
    at: float


def read_marks(path) -> list[Mark]:
    marks = []
    try:
        lines = open(path).read().splitlines()
    except FileNotFoundError:
        return marks
    for line in lines:
        parts = line.split()
        if len(parts) == 5:
            marks.append(Mark(parts[0], parts[1], int(parts[2]), int(parts[3]), float(parts[4])))
    return marks
