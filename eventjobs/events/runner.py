"""Runs one consumer group inside a `consume` process: claim partitions, handle batches.

A batch is one transaction on the consumer's Django connection: lock our cursor rows,
read the next final events, run the handlers (their ORM writes and enqueued jobs join
the transaction), advance the cursors. A crash rolls back handlers and position
together, so effects in the database happen exactly once.

A failing event is retried without holding a transaction open: the events before it
are committed, the retry waits outside any transaction, and its delivery count is
committed (on the autocommit control connection) before each rerun, so even a handler
that kills its process uses up its attempts. After max_attempts it becomes the group's
dead letter and the group moves on.
"""

from __future__ import annotations

import logging
import time
import traceback as tb
from dataclasses import dataclass

from django.db import transaction

from eventjobs.backoff import backoff_delay
from eventjobs.conf import EventjobsSettings
from eventjobs.db import django_connection
from eventjobs.events import store as eventstore
from eventjobs.events.log import Event
from eventjobs.events.partitions import START, fair_share, partition_of, show_position
from eventjobs.events.registry import Group, Handler

logger = logging.getLogger("eventjobs.consume")

# Outcomes of one step.
HANDLED, EMPTY, PAUSED, WAIT, NOTHING_OWNED = "handled", "empty", "paused", "wait", "unowned"


class ClusterMismatch(RuntimeError):
    """The group's cursors hold txids of another PostgreSQL cluster (dump/restore)."""


class _Stale(Exception):
    """Our cursor rows changed under us (reset, takeover): roll the batch back."""


class _HandlerFailed(Exception):
    def __init__(self, event: Event, handler: Handler, exc: BaseException, counted: int):
        super().__init__(str(exc))
        self.event, self.handler, self.exc, self.counted = event, handler, exc, counted
        self.text = f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"
        self.traceback = "".join(tb.format_exception(exc))


@dataclass
class _Retry:
    attempts: int
    due: float  # time.monotonic()
    # (error, traceback) once the attempts are spent: the next batch that reaches the
    # event dead-letters it (fenced like any batch: owner, generation, not paused).
    dead: tuple[str, str] | None = None


class GroupRunner:
    """One group's state in a consume process; `run_once()` does one batch."""

    def __init__(self, group: Group, *, opts: EventjobsSettings, alias: str, control, member: str,
                 host: str, pid: int):
        self.group = group
        self.name = group.name
        self.opts = opts
        self.alias = alias
        self.control = control
        self.member = member
        self.host = host
        self.pid = pid
        self.lookup = group.dispatch_table()
        self.partitions = opts.partitions
        self.owned: dict[int, tuple[int, int]] = {}
        self.generation: int | None = None
        self.paused = False
        self.careful_left = 0
        self.retry: dict[int, _Retry] = {}
        self.has_open_dead_letters = False
        self.limit = min(100, opts.batch_size)
        self.next_heartbeat = 0.0
        self.wait_until = 0.0
        self.burst_target: tuple[int, int] | None = None
        self.handled = 0
        self.dead_lettered = 0

    # -- setup and membership (control connection, autocommit) --------------------------
    def start(self, system_id: int | None) -> None:
        created = eventstore.create_group(self.control, group=self.name,
                                          partitions=self.opts.partitions,
                                          start=self.group.start, system_id=system_id)
        partitions, stored_id = eventstore.load_group(self.control, self.name)
        self.partitions = partitions
        if created is not None:
            if self.group.start == "latest":
                logger.info("group %s: new; starts at the end of the log (horizon txid %s): "
                            "only events committed from now on are handled", self.name,
                            created[0])
            else:
                first = eventstore.first_event(self.control)
                logger.info("group %s: new; starts at the beginning of the retained log (%s)",
                            self.name, f"event #{first[0]}" if first else "empty so far")
        if stored_id is not None and system_id is not None and stored_id != system_id:
            raise ClusterMismatch(
                f"group {self.name}: its cursors were recorded on PostgreSQL cluster "
                f"{stored_id}, but this is cluster {system_id} (restored from a dump?). "
                f"Transaction ids differ between clusters; run `manage.py consumer_group "
                f"translate` once to re-anchor the cursors by event id.")
        if partitions != self.opts.partitions:
            logger.warning("group %s: has %s partitions (PARTITIONS setting is %s); the group "
                           "keeps the count it was created with", self.name, partitions,
                           self.opts.partitions)
        self.has_open_dead_letters = eventstore.has_open_dead_letters(self.control, self.name)
        self.heartbeat()

    def heartbeat(self) -> None:
        """Renew leases, take a fair share of partitions, give back the excess."""
        c, name, member, lease = self.control, self.name, self.member, self.opts.consumer_lease_seconds
        eventstore.join_group(c, member=member, group=name, host=self.host, pid=self.pid)
        live = eventstore.live_members(c, group=name, member=member, lease=lease)
        target = fair_share(self.partitions, live)
        held = eventstore.renew_leases(c, group=name, member=member, lease=lease)
        if len(held) > target:
            extra = sorted(held)[target:]
            eventstore.release_partitions(c, group=name, member=member, partitions=extra)
            logger.info("group %s: %s live member(s); handing over partition(s) %s",
                        name, live, extra)
        elif len(held) < target:
            claimed = eventstore.claim_partitions(c, group=name, member=member, lease=lease,
                                                  limit=target - len(held))
            if claimed:
                unclean = [p for p, previous in claimed if previous and previous != member]
                logger.info("group %s: took partition(s) %s%s", name,
                            sorted(p for p, _ in claimed),
                            f" (from a process that did not hand over: {unclean}; "
                            "handling one event at a time for a while)" if unclean else "")
                if unclean:
                    # The previous owner may have died inside a handler: count each
                    # delivery before running it, until past its largest possible batch.
                    self.careful_left = self.opts.batch_size
        # Record the horizon our committed events wait behind (and since when), for status
        # and the system check when nobody may see who holds it.
        eventstore.watch_horizon(c, group=name, after=self.low())
        self.next_heartbeat = time.monotonic() + self.opts.consumer_heartbeat_seconds

    def low(self) -> tuple[int, int]:
        """The slowest owned partition's position (START when we own none)."""
        return min(self.owned.values()) if self.owned else START

    def leave(self) -> None:
        """Graceful hand-over: release partitions (others start at our committed position)."""
        try:
            eventstore.release_partitions(self.control, group=self.name, member=self.member,
                                          partitions=list(range(self.partitions)))
            eventstore.leave_group(self.control, self.member)
        except Exception:  # noqa: BLE001 - leases expire anyway
            logger.exception("group %s: could not hand over cleanly; leases will expire",
                             self.name)

    # -- one step ------------------------------------------------------------------------------
    def run_once(self) -> str:
        """Handle one batch; returns HANDLED, EMPTY, PAUSED, WAIT or NOTHING_OWNED."""
        if self.wait_until > time.monotonic():
            return WAIT
        try:
            return self._batch(stop=None)
        except _Stale:
            logger.info("group %s: cursor changed during a batch (reset or takeover); "
                        "rolled back, reloading", self.name)
            return HANDLED
        except _HandlerFailed as failure:
            self._failed(failure)
            return HANDLED

    def _sync(self, rows) -> None:
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
            # A replay may handle dead-lettered events again: resolve them if so.
            self.has_open_dead_letters = eventstore.has_open_dead_letters(self.control,
                                                                          self.name)
        self.generation = generation
        self.owned = owned
        paused = any(row[4] for row in rows)
        if paused != self.paused:
            logger.info("group %s: %s", self.name, "paused" if paused else "resumed")
        self.paused = paused

    def _batch(self, stop: tuple[int, int] | None) -> str:
        """One transaction: lock cursors, read, handle, advance. `stop`: handle only
        events before this position (commit what came before a failing event)."""
        started = time.monotonic()
        careful = self.careful_left > 0
        with transaction.atomic(using=self.alias):
            conn = django_connection(self.alias)
            rows = eventstore.lock_cursors(conn, group=self.name, member=self.member,
                                           prepare=self.opts.prepare_statements)
            if not rows:
                self.owned = {}
                return NOTHING_OWNED
            self._sync(rows)
            if self.paused:
                return PAUSED
            owned = self.owned
            low = min(owned.values())
            parts = None if len(owned) == self.partitions else sorted(owned)
            limit = 1 if careful else self.limit
            events = eventstore.read_events(conn, after=low, limit=limit, partitions=parts,
                                            n=self.partitions, prepare=self.opts.prepare_statements)
            if not events:
                return EMPTY
            diverged = any(position != low for position in owned.values())
            n_parts, lookup, retry = self.partitions, self.lookup, self.retry
            deadline = started + self.opts.batch_seconds
            last = None
            handled_ids: list[int] = []
            dead_ids: list[int] = []
            track = self.has_open_dead_letters or bool(retry) or careful
            for row in events:
                event = Event(row[0], row[1], row[2], row[3], row[4], row[5], int(row[6]),
                              row[7])
                position = (event.txid, event.id)
                if stop is not None and position >= stop:
                    break
                if diverged and position <= owned[partition_of(event.key_hash, n_parts)]:
                    last = position  # that partition's owner before us handled it
                    continue
                handlers = lookup(event.type)
                if handlers:
                    counted = 0
                    pending = retry.get(event.id)
                    if pending is not None or careful:
                        if last is not None:
                            break  # commit what came before; this one goes first next time
                        if pending is not None and pending.dead is not None:
                            # Its attempts are spent: dead-letter it in this batch, which
                            # holds our cursor rows (owned, same generation, not paused).
                            self._record_dead_letter(conn, event, *pending.dead,
                                                     pending.attempts)
                            dead_ids.append(event.id)
                            last = position
                            break
                        if pending is not None and pending.due > time.monotonic():
                            self.wait_until = pending.due
                            return WAIT
                        counted = eventstore.count_delivery(self.control, group=self.name,
                                                            event_id=event.id)
                        if counted > max(h.max_attempts for h in handlers):
                            self._dead_letter_in_batch(conn, event, counted)
                            dead_ids.append(event.id)
                            last = position
                            break
                    for handler in handlers:
                        try:
                            handler.func(event)
                        except Exception as exc:  # noqa: BLE001 - any handler error
                            raise _HandlerFailed(event, handler, exc, counted) from exc
                    if track:
                        handled_ids.append(event.id)
                    self.handled += 1
                last = position
                if time.monotonic() > deadline:
                    break
            if last is None:
                return EMPTY
            behind = [p for p, position in owned.items() if position < last]
            moved = eventstore.advance(conn, group=self.name, member=self.member,
                                       generation=self.generation, partitions=behind,
                                       position=last, lease=self.opts.consumer_lease_seconds,
                                       prepare=self.opts.prepare_statements)
            if moved != len(behind):
                raise _Stale()
            if handled_ids:
                if self.has_open_dead_letters:
                    eventstore.resolve_dead_letters(conn, group=self.name, event_ids=handled_ids)
                if retry or careful:
                    eventstore.forget_deliveries(conn, group=self.name, event_ids=handled_ids)
        # Committed.
        for p in behind:
            owned[p] = last
        for event_id in handled_ids:
            retry.pop(event_id, None)
        for event_id in dead_ids:
            retry.pop(event_id, None)
            self.has_open_dead_letters = True
            self.dead_lettered += 1
        if careful:
            self.careful_left -= len(events)
        elif stop is None and len(events) > 1:
            elapsed = max(time.monotonic() - started, 1e-6)
            per_event = elapsed / len(events)
            self.limit = max(1, min(self.opts.batch_size,
                                    int(self.opts.batch_seconds / per_event)))
        return HANDLED

    # -- failures ----------------------------------------------------------------------------
    def _failed(self, failure: _HandlerFailed) -> None:
        event, handler = failure.event, failure.handler
        attempts = failure.counted or eventstore.count_delivery(
            self.control, group=self.name, event_id=event.id)
        eventstore.delivery_error(self.control, group=self.name, event_id=event.id,
                                  error=failure.text)
        eventstore.record_error(self.control, group=self.name, error={
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event_id": event.id,
            "type": event.type, "handler": handler.path, "attempt": attempts,
            "error": failure.text[:1000]})
        # Commit the events before the failing one (their handlers run again: the failed
        # transaction rolled them back), so the retry wait holds no transaction open.
        try:
            while self._batch(stop=event.position) == HANDLED:
                pass
        except (_Stale, _HandlerFailed):
            self.retry.pop(event.id, None)
            return
        if attempts >= handler.max_attempts:
            logger.error("group %s: event #%s (%s) failed %s time(s) in %s: %s; dead-lettering "
                         "it", self.name, event.id, event.type, attempts, handler.path,
                         failure.text)
            # Recorded by the next batch that reaches it, never here: a reset, pause or
            # takeover since the failure must win over this decision (fencing).
            self.retry[event.id] = _Retry(attempts, 0.0, (failure.text, failure.traceback))
            return
        delay = backoff_delay(handler.retry_backoff, attempts)
        logger.warning("group %s: event #%s (%s) attempt %s/%s failed in %s: %s; retrying in "
                       "%.1fs", self.name, event.id, event.type, attempts, handler.max_attempts,
                       handler.path, failure.text, delay)
        self.retry[event.id] = _Retry(attempts, time.monotonic() + delay)
        self.wait_until = time.monotonic() + delay

    def _dead_letter_in_batch(self, conn, event: Event, counted: int) -> None:
        """A delivery counted past max_attempts: its process died while handling it."""
        logger.error("group %s: event #%s (%s) was being handled %s time(s) when the process "
                     "died; dead-lettered without running it again", self.name, event.id,
                     event.type, counted - 1)
        error = (f"eventjobs: the consume process died while handling this event "
                 f"({counted - 1} time(s)); last error: "
                 f"{self._last_error(event.id) or 'none recorded'}")
        self._record_dead_letter(conn, event, error, "", counted - 1)

    def _record_dead_letter(self, conn, event: Event, error: str, trace: str,
                            attempts: int) -> None:
        """In the batch's transaction (the caller updates its memory after the commit)."""
        eventstore.dead_letter(conn, group=self.name, event_id=event.id, error=error,
                               traceback=trace, attempts=attempts)
        eventstore.forget_deliveries(conn, group=self.name, event_ids=[event.id])

    def _last_error(self, event_id: int) -> str:
        from eventjobs.models import Delivery

        row = Delivery.objects.using(self.alias).filter(group_id=self.name,
                                                        event_id=event_id).first()
        return row.last_error if row else ""

    # -- burst ----------------------------------------------------------------------------------
    def burst_done(self) -> bool:
        """--burst: every event committed before the run started is handled or dead-lettered."""
        if self.burst_target is None:
            return True
        pending = eventstore.pending_partitions(self.control, group=self.name,
                                                upto=self.burst_target, n=self.partitions)
        return not pending

    def describe(self) -> str:
        return (f"group {self.name}: partitions {sorted(self.owned)} at "
                f"{show_position(self.low())}, handled {self.handled}, dead-lettered "
                f"{self.dead_lettered}")
