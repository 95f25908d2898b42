"""Running one event's handlers, and telling whose fault a failure is.

Shared by `consume` (runner.py), dead-letter reprocessing and the in-process test runner.
Every handler call ends in one of three ways:

* it returned, and the batch's transaction is as it was: success;
* it failed (any exception, SystemExit and KeyboardInterrupt included, or it left the
  transaction unusable: aborted by an error it caught without a savepoint, marked for
  rollback, ended): a `Failure` charged to *this* event, never to the next one;
* the connection itself is gone (a database restart, a killed backend, a server
  timeout): `ConnectionLost`, nobody's fault yet (the runner finds the culprit by
  counting deliveries one at a time).

The checks after each call read libpq's and Django's in-memory state: no round trip.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from psycopg.pq import TransactionStatus

from eventjobs.events.event import Event
from eventjobs.events.registry import Handler
from eventjobs.events.watchdog import HandlerTimeout
from eventjobs.exceptions import describe, one_line

if TYPE_CHECKING:
    import psycopg
    from django.db.backends.base.base import BaseDatabaseWrapper


class ConnectionLost(Exception):
    """The batch's database connection broke while handlers ran: no handler is blamed."""


@dataclass(frozen=True)
class Failure:
    """Why one handler call failed."""

    handler: Handler
    error: str  # one line: "module.Class: message"
    traceback: str
    exc: BaseException | None = None
    # The connection broke too (a timeout interrupted a query): reconnect before going on.
    connection_lost: bool = False

    @classmethod
    def of(cls, handler: Handler, exc: BaseException, connection_lost: bool = False) -> Failure:
        return cls(handler, one_line(exc), describe(exc)["traceback"], exc, connection_lost)


class Guard:
    """The state a handler leaves the batch's transaction in. Create it after the
    transaction's first statement (it then stands idle in a transaction block)."""

    def __init__(self, wrapper: BaseDatabaseWrapper, raw: psycopg.Connection) -> None:
        self.wrapper = wrapper  # Django's connection: knows about set_rollback()
        self.raw = raw
        self.pgconn = raw.pgconn

    def spoiled(self) -> bool:
        return self.wrapper.needs_rollback or (
            self.pgconn.transaction_status != TransactionStatus.INTRANS)

    def lost(self) -> bool:
        return self.raw.closed or self.raw.broken or (
            self.pgconn.transaction_status == TransactionStatus.UNKNOWN)

    def problem(self) -> str:
        """What is wrong (after spoiled()); raises ConnectionLost when the connection is."""
        status = self.pgconn.transaction_status
        if self.lost():
            raise ConnectionLost("the connection broke during the handler")
        if status == TransactionStatus.INERROR:
            return ("the handler left the batch's transaction aborted: a database error "
                    "inside it was caught without a savepoint (wrap a statement that may fail "
                    "in transaction.atomic() to recover from its error)")
        if self.wrapper.needs_rollback:
            return ("the handler marked the batch's transaction for rollback "
                    "(transaction.set_rollback(True), or an error caught inside an atomic "
                    "block without a savepoint); raise an exception to fail an event")
        if status == TransactionStatus.IDLE:
            return ("the handler ended the batch's transaction (a commit or rollback on the "
                    "raw connection); handlers run inside it and must leave it open")
        # libpq reports a plain int (psycopg does not make it a TransactionStatus).
        return f"the handler left the batch's connection busy ({TransactionStatus(status).name})"


def run_handlers(event: Event, handlers: Sequence[Handler], guard: Guard) -> Failure | None:
    """Run `handlers` for `event` in the current transaction; the first failure, or None."""
    for handler in handlers:
        try:
            result = handler.func(event)
        except BaseException as exc:  # noqa: BLE001 - every way a handler can fail
            if guard.lost():
                if isinstance(exc, HandlerTimeout):
                    return Failure.of(handler, exc, connection_lost=True)
                raise ConnectionLost(one_line(exc)) from exc
            return Failure.of(handler, exc)
        if result is not None and inspect.isawaitable(result):
            return _awaitable(handler, result)
        if guard.spoiled():
            return Failure(handler, f"eventjobs: {guard.problem()}", "")
    return None


class _Rollback(Exception):
    pass


def run_handlers_in_savepoint(alias: str, conn: psycopg.Connection, event: Event,
                              handlers: Sequence[Handler]) -> Failure | None:
    """run_handlers in a savepoint of Django's connection `alias` (whose psycopg
    connection is `conn`): a failure rolls back the handlers' writes only, not what the
    caller wrote before in the same transaction (a dead letter's update, a test's data)."""
    from django.db import connections, transaction

    failure = None
    try:
        with transaction.atomic(using=alias):
            failure = run_handlers(event, handlers, Guard(connections[alias], conn))
            if failure is not None:
                raise _Rollback()
    except _Rollback:
        pass
    return failure


def _awaitable(handler: Handler, result: object) -> Failure:
    close = getattr(result, "close", None)
    if close is not None:
        close()  # never awaited: close it so Python does not warn later
    return Failure(handler, f"eventjobs: {handler.path} returned {type(result).__name__}, "
                   "an awaitable that nothing will await; event handlers must be plain "
                   "functions that do their work before returning", "")


def calls_made(handlers: Sequence[Handler], failure: Failure | None) -> int:
    """How many handler calls run_handlers made."""
    return len(handlers) if failure is None else handlers.index(failure.handler) + 1
