"""What a group runner does when an event fails or a batch is lost: count the attempt
durably, back off, retry, and after max_attempts dead-letter the event (a mixin of
GroupRunner, kept apart so each half reads on its own)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from django.db import connections

from eventjobs.backoff import backoff_delay
from eventjobs.conf import EventjobsSettings
from eventjobs.events import store
from eventjobs.events.dispatch import Failure
from eventjobs.events.event import Event
from eventjobs.events.registry import Handler

if TYPE_CHECKING:
    from eventjobs.events.runner import _Batch

logger = logging.getLogger("eventjobs.consume")


@dataclass
class Retry:
    """An event that failed and waits for its next attempt."""

    attempts: int
    due: float  # time.monotonic()
    # (error, traceback) once the attempts are spent: the next batch that reaches the
    # event dead-letters it (fenced like any batch: owner, generation, not paused).
    dead: tuple[str, str] | None = None


class HandlerFailed(Exception):
    """A handler failed for `event`; the batch rolls back."""

    def __init__(self, event: Event, failure: Failure, counted: int):
        super().__init__(failure.error)
        self.event, self.failure, self.counted = event, failure, counted


class FailureHandling:
    """Retry and dead-letter decisions of a GroupRunner (see runner.py)."""

    # Provided by the runner (Membership and GroupRunner).
    name: str
    alias: str
    opts: EventjobsSettings
    control_connection: psycopg.Connection
    wait_until: float
    careful_until: tuple[int, int] | None
    _current: _Batch | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry: dict[int, Retry] = {}
        # Why an event's counted attempt was lost, for its dead letter (kept in memory:
        # the database may be the thing that is gone).
        self.lost_errors: dict[int, str] = {}

    def _charge(self, failed: HandlerFailed) -> None:
        """Count the failed attempt (committed at once), record the error, decide."""
        event, failure = failed.event, failed.failure
        attempts = failed.counted or store.count_delivery(self.control_connection,
                                                          group=self.name, event_id=event.id)
        store.delivery_error(self.control_connection, group=self.name, event_id=event.id,
                             error=failure.error)
        store.record_error(self.control_connection, group=self.name, error={
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event_id": event.id,
            "type": event.type, "handler": failure.handler.path, "attempt": attempts,
            "error": failure.error[:1000]})
        if failure.connection_lost:
            connections[self.alias].close()  # a timeout cut a query short: start afresh
        handler = failure.handler
        if attempts >= handler.max_attempts:
            logger.error("group %s: event #%s (%s) failed %s time(s) in %s: %s; dead-lettering "
                         "it", self.name, event.id, event.type, attempts, handler.path,
                         failure.error)
            # Recorded by the next batch that reaches it, never here: a reset, pause or
            # takeover since the failure must win over this decision (fencing).
            self.retry[event.id] = Retry(attempts, 0.0, (failure.error, failure.traceback))
            return
        delay = backoff_delay(handler.retry_backoff, attempts)
        logger.warning("group %s: event #%s (%s) attempt %s/%s failed in %s: %s; retrying in "
                       "%.1fs", self.name, event.id, event.type, attempts, handler.max_attempts,
                       handler.path, failure.error, delay)
        self.retry[event.id] = Retry(attempts, time.monotonic() + delay)
        self.wait_until = time.monotonic() + delay

    def _lost(self, error: str) -> None:
        """The batch broke after handlers ran (its connection, or its time, was lost): the
        culprit is unknown, so handle its events one at a time, each delivery counted."""
        batch = getattr(self, "_current", None)
        self._current = None
        if batch is None or not batch.ran or batch.end is None:
            return
        if batch.counted is not None:
            self.lost_errors[batch.counted] = error
        if self.careful_until is None or batch.end > self.careful_until:
            self.careful_until = batch.end
        logger.warning("group %s: a batch was lost after its handlers ran (%s); handling its "
                       "events one at a time, each delivery counted first", self.name, error)

    def _timed_out(self, handlers: Sequence[Handler]) -> Failure:
        seconds = self.opts.handler_timeout_seconds
        return Failure(handlers[-1], f"eventjobs.events.watchdog.HandlerTimeout: the batch ran "
                       f"longer than HANDLER_TIMEOUT_SECONDS ({seconds:g}s) in this handler",
                       "")

    def _dead_letter_lost(self, conn: psycopg.Connection, event: Event, counted: int) -> None:
        """A delivery counted past max_attempts: its attempts were lost, not failed."""
        last = (self.lost_errors.pop(event.id, None)
                or store.delivery_last_error(self.control_connection, group=self.name,
                                             event_id=event.id)
                or "none recorded")
        logger.error("group %s: event #%s (%s) was being handled %s time(s) when its attempt "
                     "was lost (the process died, or the database ended its connection or "
                     "transaction); dead-lettered without running it again", self.name,
                     event.id, event.type, counted - 1)
        error = (f"eventjobs: the attempt was lost {counted - 1} time(s): the consume process "
                 f"died, or the database ended the connection or transaction (e.g. "
                 f"idle_in_transaction_session_timeout); last error: {last}")
        self._record_dead_letter(conn, event, error, "", counted - 1)

    def _record_dead_letter(self, conn: psycopg.Connection, event: Event, error: str, trace: str,
                            attempts: int) -> None:
        """In the batch's transaction (the caller updates its memory after the commit)."""
        store.dead_letter(conn, group=self.name, event_id=event.id, error=error,
                          traceback=trace, attempts=attempts)
        store.forget_deliveries(conn, group=self.name, event_ids=[event.id])
