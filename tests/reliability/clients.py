"""The scenarios' clients: threads of the test process playing the users, recording what
the database told them about each transaction (see oracle.py for how it is judged).

A transaction is *acked* when its commit returned, *unknown* when the commit itself
failed (the connection died: it may or may not have committed; the database decides
afterwards), *rolled back* when the client rolled it back on purpose (5 % of them, so a
phantom would show), and *failed* when it failed before its commit.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from django.db import DatabaseError, InterfaceError, connection, transaction

import eventjobs

DB_ERRORS = (DatabaseError, InterfaceError, psycopg.Error)


class _Rollback(Exception):
    pass


@dataclass
class Outcomes:
    """What clients were told about their transactions (thread-safe)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: dict[int, tuple[str, int | None]] = field(default_factory=dict)  # id -> (key, seq)
    unknown: dict[int, tuple[str, int | None]] = field(default_factory=dict)
    rolled_back: set[int] = field(default_factory=set)
    failed: int = 0  # transactions that failed before their commit

    def record(self, kind: str, items: dict[int, tuple[str, int | None]]) -> None:
        with self.lock:
            if kind == "acked":
                self.acked.update(items)
            elif kind == "unknown":
                self.unknown.update(items)
            elif kind == "rolled_back":
                self.rolled_back.update(items)
            else:
                self.failed += 1

    def expected(self, present: Callable[[list[int]], set[int]]) -> dict[int, tuple]:
        """Acked, plus the unknown ones the database says committed."""
        with self.lock:
            acked, unknown = dict(self.acked), dict(self.unknown)
        committed = present(list(unknown)) if unknown else set()
        return {**acked, **{i: v for i, v in unknown.items() if i in committed}}

    def summary(self) -> str:
        with self.lock:
            return (f"acked {len(self.acked)}, unknown {len(self.unknown)}, rolled back "
                    f"{len(self.rolled_back)}, failed before commit {self.failed}")


def _client_transaction(outcomes: Outcomes, write: Callable[[], dict], rng: random.Random,
                        max_delay: float, rollback_rate: float) -> None:
    """One client transaction: write, wait a little (commits race out of id order),
    maybe roll back on purpose, commit; record what the client was told."""
    items: dict = {}
    body_done = False
    try:
        with transaction.atomic():
            items = write()
            if max_delay:
                time.sleep(rng.random() * max_delay)
            if rng.random() < rollback_rate:
                raise _Rollback()
            body_done = True
    except _Rollback:
        outcomes.record("rolled_back", items)
    except DB_ERRORS:
        # An error leaving atomic() after the body ran came from COMMIT: outcome unknown.
        outcomes.record("unknown" if body_done else "failed", items)
        connection.close()
        time.sleep(0.05)
    else:
        outcomes.record("acked", items)


class Client(threading.Thread):
    """Runs client transactions until `stop` is set (its own Django connection)."""

    def __init__(self, name: str, stop: threading.Event, outcomes: Outcomes,
                 write: Callable[[random.Random], dict], *, seed: int, max_delay: float = 0.02,
                 rollback_rate: float = 0.05, pause: float = 0.0):
        super().__init__(name=name, daemon=True)
        self.stop, self.outcomes, self.write = stop, outcomes, write
        self.rng = random.Random(seed)
        self.max_delay, self.rollback_rate, self.pause = max_delay, rollback_rate, pause

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                _client_transaction(self.outcomes, lambda: self.write(self.rng), self.rng,
                                    self.max_delay, self.rollback_rate)
                if self.pause:
                    time.sleep(self.pause)
        finally:
            connection.close()


def event_writer(publisher: int, keys: int = 3, sleep_ms: int = 0) -> Callable:
    """publish 1-3 "rel.race" events on this publisher's own keys, seq rising per key."""
    seqs: Counter = Counter()

    def write(rng: random.Random) -> dict:
        items = {}
        for _ in range(rng.randint(1, 3)):
            key = f"p{publisher}k{rng.randrange(keys)}"
            seqs[key] += 1
            data = {"seq": seqs[key], **({"sleep_ms": sleep_ms} if sleep_ms else {})}
            items[eventjobs.publish("rel.race", data, key=key).id] = (key, seqs[key])
        return items

    return write


def job_writer(task, prefix: str, batch: int = 10, ms: int = 0) -> Callable:
    """enqueue_many `batch` jobs of `task` with keys prefix-0, prefix-1, ..."""
    counter = iter(range(10**9))

    def write(rng: random.Random) -> dict:
        keys = [f"{prefix}-{next(counter)}" for _ in range(batch)]
        results = eventjobs.enqueue_many(task, [((key, ms), {}) for key in keys])
        return {int(r.id): (key, None) for r, key in zip(results, keys, strict=True)}

    return write


def enqueue_backlog(task, prefix: str, count: int, outcomes: Outcomes, ms: int = 0) -> None:
    """Enqueue `count` jobs from the calling thread (acked on return)."""
    for start in range(0, count, 500):
        keys = [f"{prefix}-{n}" for n in range(start, min(count, start + 500))]
        results = eventjobs.enqueue_many(task, [((key, ms), {}) for key in keys])
        outcomes.record("acked", {int(r.id): (key, None)
                                  for r, key in zip(results, keys, strict=True)})


def publish_backlog(count: int, outcomes: Outcomes, keys: int = 16, sleep_ms: int = 0) -> None:
    """Publish `count` "rel.race" events on keys b0..b<keys-1>, seq rising per key."""
    for start in range(0, count, 1000):
        items = [{"type": "rel.race", "key": f"b{n % keys}",
                  "data": {"seq": n, **({"sleep_ms": sleep_ms} if sleep_ms else {})}}
                 for n in range(start, min(count, start + 1000))]
        events = eventjobs.publish_many(items)
        outcomes.record("acked", {e.id: (e.key, e.data["seq"]) for e in events})
