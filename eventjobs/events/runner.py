"""Runs one consumer group inside a `consume` process: a batch is read -> decide -> commit.

A batch is one transaction on the consumer's Django connection: lock our cursor rows,
read the next final events, run the handlers (their ORM writes and enqueued jobs join
the transaction), advance the cursors. A crash rolls back handlers and position
together, so effects in the database happen exactly once.

A failing event (any exception, or a handler that spoils the transaction: dispatch.py)
is retried without holding a transaction open: the events before it are committed, the
retry waits outside any transaction, and its delivery count is committed (on the
autocommit control connection) before each rerun, so even a handler that kills its
process uses up its attempts. After max_attempts it becomes the group's dead letter and
the group moves on. When the batch's connection breaks after handlers ran (a restart, a
killed backend, idle_in_transaction_session_timeout) nobody knows which handler to
blame: the runner then handles the events of that batch one at a time, counting each
delivery first, so the one that keeps killing its transaction is dead-lettered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import connections, transaction

from eventjobs.db import django_connection
from eventjobs.events import store
from eventjobs.events.dispatch import Guard, run_handlers
from eventjobs.events.event import Event
from eventjobs.events.failures import FailureHandling, HandlerFailed
from eventjobs.events.membership import ClusterMismatch, Membership
from eventjobs.events.partitions import Position, partition_of
from eventjobs.events.registry import Handler
from eventjobs.events.watchdog import BatchClock, HandlerTimeout
from eventjobs.events.window import Read
from eventjobs.exceptions import one_line

logger = logging.getLogger("eventjobs.consume")

__all__ = ["GroupRunner", "ClusterMismatch", "HANDLED", "EMPTY", "PAUSED", "WAIT",
           "NOTHING_OWNED"]

# Outcomes of one step.
HANDLED, EMPTY, PAUSED, WAIT, NOTHING_OWNED = "handled", "empty", "paused", "wait", "unowned"
_DEAD = "dead"  # the gate dead-lettered the event instead of running it


class _Stale(Exception):
    """Our cursor rows changed under us (reset, takeover): roll the batch back."""


@dataclass
class _Batch:
    """What one batch did; applied to the runner's memory once it commits."""

    end: Position | None = None  # the last row read, ours or not
    last: Position | None = None  # where our partitions advance to
    handled: list[int] = field(default_factory=list)  # event ids, when tracked
    dead: list[int] = field(default_factory=list)
    passed: int = 0  # our events handled or skipped
    ok: int = 0  # events whose handlers ran and succeeded
    ran: bool = False  # a handler ran: a broken connection then blames nobody yet
    counted: int | None = None  # the event whose delivery was counted before it ran


class GroupRunner(FailureHandling, Membership):
    """One group's state in a consume process; `run_once()` does one batch."""

    def __init__(self, *args: Any, clock: BatchClock | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lookup = self.group.dispatch_table()
        self.generation: int | None = None
        self.paused = False
        self.limit = min(100, self.opts.batch_size)
        self.wait_until = 0.0
        self.clock = clock or BatchClock(self.opts.handler_timeout_seconds)
        self.careful_until: Position | None = None
        self._current: _Batch | None = None

    def run_once(self) -> str:
        """Handle one batch; returns HANDLED, EMPTY, PAUSED, WAIT or NOTHING_OWNED. Database
        errors propagate (the process reconnects); handler failures do not."""
        if self.wait_until > time.monotonic():
            return WAIT
        try:
            try:
                return self._batch(stop=None)
            except HandlerFailed as failure:
                self._failed(failure)  # its own batches may break too: handled below
                return HANDLED
        except _Stale:
            logger.info("group %s: cursor changed during a batch (reset or takeover); "
                        "rolled back, reloading", self.name)
            return HANDLED
        except HandlerTimeout:  # rang between two handlers: whose time it was is unclear
            self._lost("the batch ran longer than HANDLER_TIMEOUT_SECONDS")
            return HANDLED
        except Exception as exc:  # the connection broke (ConnectionLost, database errors)
            self._lost(one_line(exc).splitlines()[0])
            raise

    def _failed(self, failed: HandlerFailed) -> None:
        """Charge the failure, then commit the events before the failing one (their
        handlers run again: the failed transaction rolled them back), so the retry wait
        holds no transaction open. One of those may fail in turn: charge it too."""
        current: HandlerFailed | None = failed
        while current is not None:
            self._charge(current)
            try:
                while self._batch(stop=current.event.position) == HANDLED:
                    pass
                current = None
            except HandlerFailed as earlier:
                current = earlier
            except _Stale:
                current = None

    def careful(self) -> bool:
        """Count each delivery before running it (and handle one event per batch)?"""
        if self.careful_until is not None and self.low() >= self.careful_until:
            self.careful_until = None
        return self.careful_left > 0 or self.careful_until is not None

    # -- one batch: read -> decide -> commit --------------------------------------------------
    def _batch(self, stop: Position | None) -> str:
        """One transaction: lock cursors, read, handle, advance. `stop`: handle only events
        before this position (commit what came before a failing event)."""
        started = time.monotonic()
        careful = self.careful()
        batch = self._current = _Batch()
        # The batch's transaction: handlers' writes and the position advance commit together.
        with transaction.atomic(using=self.alias):
            conn = django_connection(self.alias)
            rows = store.lock_cursors(conn, group=self.name, member=self.member,
                                      prepare=self.opts.prepare_statements,
                                      asynchronous=not self.opts.batch_synchronous_commit)
            if not rows:
                self.owned = {}
                return NOTHING_OWNED
            self._sync(rows)
            if self.paused:
                return PAUSED
            events, batch.end = store.read_events(conn, self._read(),
                                                  prepare=self.opts.prepare_statements)
            if batch.end is None:
                return EMPTY
            if self._decide(conn, events, batch, stop, careful, started) == WAIT:
                return WAIT
            if batch.last is None:
                return EMPTY
            self._commit(conn, batch, careful)
        self._committed(batch, careful, started, stop)
        return HANDLED

    def _read(self) -> Read:
        """The window after our slowest partition (of the rows just locked)."""
        parts = None if len(self.owned) == self.partitions else tuple(sorted(self.owned))
        return Read(self.low(), parts, self.limit, self.partitions)

    def _sync(self, rows: list[store.CursorRow]) -> None:
        """Take our cursor rows (locked) as the truth; notice resets and pauses."""
        generation = max(row[3] for row in rows)
        owned = {row[0]: (row[1], row[2]) for row in rows}
        if self.generation is not None and generation != self.generation:
            logger.info("group %s: reset/pause/resume noticed (generation %s -> %s); "
                        "continuing from the stored position", self.name, self.generation,
                        generation)
            if any(self.owned.get(p, pos) != pos for p, pos in owned.items()):
                # Moved (a reset; it also forgot the stored delivery counts): pending
                # retries and dead-letter decisions start afresh. A pause/resume keeps them.
                self.retry.clear()
                self.careful_until = None
            # A replay may handle dead-lettered events again: resolve them if so.
            self.has_open_dead_letters = store.has_open_dead_letters(self.control_connection,
                                                                     self.name)
        self.generation = generation
        self.owned = owned
        paused = any(row[4] for row in rows)
        if paused != self.paused:
            logger.info("group %s: %s", self.name, "paused" if paused else "resumed")
        self.paused = paused

    def _decide(self, conn: psycopg.Connection, events: list[Event], batch: _Batch,
                stop: Position | None,
                careful: bool, started: float) -> str | None:
        """Run the handlers of each event in order, until the window, the time budget,
        `stop`, or (careful) one counted event ends the batch. WAIT: a retry is not due."""
        owned, n, lookup, retry = self.owned, self.partitions, self.lookup, self.retry
        diverged = len(set(owned.values())) > 1
        track = self.has_open_dead_letters or bool(retry) or careful
        guard = Guard(connections[self.alias], conn)
        deadline = started + self.opts.batch_seconds
        self.clock.start()
        try:
            for event in events:
                position = event.position
                if stop is not None and position >= stop:
                    return None
                if diverged and position <= owned[partition_of(event.key_hash, n)]:
                    batch.last = position  # that partition's previous owner handled it
                    continue
                batch.passed += 1
                handlers = lookup(event.type)
                if not handlers:
                    batch.last = position
                    continue
                counted = 0
                if careful or event.id in retry:
                    if batch.last is not None:
                        return None  # commit what came before; this one goes first next time
                    gate = self._gate(conn, event, handlers, batch)
                    if gate == WAIT or gate == _DEAD:
                        return gate if gate == WAIT else None
                    counted = int(gate)
                batch.ran = True
                failure = run_handlers(event, handlers, guard)
                now = time.monotonic()
                if failure is None and self.clock.expired(now):
                    failure = self._timed_out(handlers)
                if failure is not None:
                    raise HandlerFailed(event, failure, counted)
                if track:
                    batch.handled.append(event.id)
                batch.ok += 1
                batch.last = position
                if careful or now > deadline:
                    return None
            if stop is None:
                batch.last = batch.end  # the whole window: past other partitions' rows too
            return None
        finally:
            self.clock.stop()

    def _gate(self, conn: psycopg.Connection, event: Event, handlers: Sequence[Handler],
              batch: _Batch) -> str | int:
        """Before running an event that failed before (or while careful): dead-letter it
        if its attempts are spent, WAIT for its backoff, else count the delivery (committed
        first, so a handler that kills its process or connection uses up its attempts)."""
        pending = self.retry.get(event.id)
        if pending is not None and pending.dead is not None:
            # Decided at its last failure; recorded here, in a batch that holds our cursor
            # rows (owned, same generation, not paused), so a reset or pause since wins.
            self._record_dead_letter(conn, event, *pending.dead, pending.attempts)
            batch.dead.append(event.id)
            batch.last = event.position
            return _DEAD
        if pending is not None and pending.due > time.monotonic():
            self.wait_until = pending.due
            return WAIT
        counted = store.count_delivery(self.control_connection, group=self.name,
                                       event_id=event.id)
        if counted > max(h.max_attempts for h in handlers):
            self._dead_letter_lost(conn, event, counted)
            batch.dead.append(event.id)
            batch.last = event.position
            return _DEAD
        batch.counted = event.id
        return counted

    def _commit(self, conn: psycopg.Connection, batch: _Batch, careful: bool) -> None:
        """Advance our partitions to batch.last, fenced by owner and generation."""
        last, generation = batch.last, self.generation
        # _batch commits only a decided position, after _sync read the generation.
        assert last is not None and generation is not None
        behind = [p for p, position in self.owned.items() if position < last]
        moved = store.advance(conn, group=self.name, member=self.member,
                              generation=generation, partitions=behind,
                              position=last, lease=self.opts.consumer_lease_seconds,
                              prepare=self.opts.prepare_statements)
        if moved != len(behind):
            raise _Stale()
        if batch.handled:
            if self.has_open_dead_letters:
                store.resolve_dead_letters(conn, group=self.name, event_ids=batch.handled)
            if self.retry or careful:
                store.forget_deliveries(conn, group=self.name, event_ids=batch.handled)

    def _committed(self, batch: _Batch, careful: bool, started: float,
                   stop: Position | None) -> None:
        """The batch committed: make memory agree, and size the next batch."""
        last = batch.last
        assert last is not None  # only a batch that advanced commits (see _commit)
        for partition, position in self.owned.items():
            if position < last:
                self.owned[partition] = last
        for event_id in batch.handled:
            self.retry.pop(event_id, None)
        for event_id in batch.dead:
            self.retry.pop(event_id, None)
            self.has_open_dead_letters = True
            self.dead_lettered += 1
        self.handled += batch.ok
        self._current = None
        if careful:
            self.careful_left = max(0, self.careful_left - batch.passed)
        elif stop is None and batch.passed > 1:
            elapsed = max(time.monotonic() - started, 1e-6)
            per_event = elapsed / batch.passed
            self.limit = max(1, min(self.opts.batch_size,
                                    int(self.opts.batch_seconds / per_event)))
