"""A worker child's database session: Django's connection, set up for the runtime.

A child shares Django's own connection to the backend's database with its tasks, so
`runworker --concurrency N` holds N + 2 connections in all. Between jobs (no transaction
open) the child claims on it and waits on it for NOTIFYs. The session sets it up once per
physical connection (a task, or an outage, may have replaced it): named in
`pg_stat_activity`, LISTENing, and the database clock's offset measured. A connection
failure never ends the child: it reconnects with a growing pause, logging one line when the
outage starts and one when it ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import time
from collections.abc import Callable
from typing import Any

import psycopg
from django.db import InterfaceError as DjangoInterfaceError
from django.db import OperationalError as DjangoOperationalError
from django.db import connections

from eventjobs.db import add_link_options, database_now, django_connection
from eventjobs.exceptions import first_line
from eventjobs.jobs import store as jobstore

logger = logging.getLogger("eventjobs.worker")

RECONNECT_MAX_SECONDS = 5.0
_LOST_CONNECTION = (psycopg.OperationalError, psycopg.InterfaceError, DjangoOperationalError,
                    DjangoInterfaceError)


class WorkerSession:
    """Django's connection to `database`, as a worker child uses it."""

    def __init__(self, database: str, name: str, *, listen: bool,
                 given: psycopg.Connection | None = None):
        self.database = database
        self.name = name
        self.listen = listen
        # A connection given by the caller (the test helpers': their own, in their
        # transaction) is used as it is: no set-up, and its errors propagate.
        self.given = given
        if given is None:
            add_link_options(database)
        self.outer_atomics: dict[str, int] = {}  # atomic blocks open before the job began
        self.conn: psycopg.Connection | None = given
        self.clock_offset = 0.0  # database clock minus ours, in seconds
        self.outage_since: float | None = None
        self.was_away = False  # an outage happened: the tasks' connections need replacing
        # A signal handler writes here to end an idle wait at once.
        self.wakeup_r, self.wakeup_w = os.pipe()
        os.set_blocking(self.wakeup_r, False)
        os.set_blocking(self.wakeup_w, False)

    def now(self) -> float:
        """Epoch seconds on the database's clock."""
        return time.time() + self.clock_offset

    def run(self, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`operation(conn, ...)`; None after a lost connection (the caller carries on)."""
        if self.given is not None:
            return operation(self.given, *args, **kwargs)
        try:
            result = operation(self._connection(), *args, **kwargs)
        except _LOST_CONNECTION as exc:
            self._outage(exc)
            return None
        if self.outage_since is not None:
            logger.warning("%s: database back after %.1fs", self.name,
                           time.monotonic() - self.outage_since)
            self.outage_since = None
        return result

    def _connection(self) -> psycopg.Connection:
        conn = django_connection(self.database)
        if conn is not self.conn:
            jobstore.name_session(conn, self.name)
            # Stamp times with the database's clock, never this machine's.
            self.clock_offset = database_now(conn).timestamp() - time.time()
            if self.listen:
                jobstore.listen(conn)
            self.conn = conn
        return conn

    def _outage(self, exc: Exception) -> None:
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            self.was_away = True
            logger.error("%s: database unavailable (%s); retrying", self.name,
                         first_line(exc))
        with contextlib.suppress(Exception):
            connections[self.database].close()
        self.conn = None
        waited = time.monotonic() - self.outage_since
        time.sleep(min(RECONNECT_MAX_SECONDS, 0.2 + waited / 4))

    # -- waiting ---------------------------------------------------------------------------
    def wake(self) -> None:
        """End a wait at once (safe from a signal handler)."""
        with contextlib.suppress(OSError):
            os.write(self.wakeup_w, b"x")

    def wait(self, timeout: float, is_ours: Callable[[str], bool],
             also: int | None = None) -> None:
        """Sleep until a NOTIFY whose payload `is_ours`, activity on the `also` descriptor
        (the supervisor's notices), a wake(), or `timeout`."""
        if self.listen and self.run(_drain, is_ours):
            return  # it came while we were claiming
        watched = [self.wakeup_r]
        if self.conn is not None and not self.conn.closed:
            watched.append(self.conn.fileno())
        if also is not None:
            watched.append(also)
        with contextlib.suppress(InterruptedError):
            select.select(watched, [], [], timeout)
        with contextlib.suppress(OSError):
            os.read(self.wakeup_r, 64)
        if self.listen:
            self.run(_drain, is_ours)

    def after_job(self, worker_id: str) -> None:
        """No transaction may stay open after a job (it would hold the horizon of every
        event consumer in the cluster), and a connection the task broke is replaced.

        In-process (eventjobs.testing.run_jobs inside a test's transaction) jobs start
        inside the caller's transaction: only atomic blocks the task itself left open are
        a leak, and they are rolled back to where the job started. (Closing a connection
        inside an atomic block would leave Django refusing every later query on it.)"""
        for conn in connections.all(initialized_only=True):
            if conn.connection is None:
                continue
            outer = self.outer_atomics.get(conn.alias, 0)
            if len(conn.atomic_blocks) > outer or (not outer and not conn.get_autocommit()):
                logger.error("worker %s: a task left a transaction open on database %r; "
                             "rolling it back", worker_id, conn.alias)
                _unwind(conn, outer)
                if not outer:  # and a transaction begun with set_autocommit(False)
                    with contextlib.suppress(Exception):
                        conn.rollback()
                    conn.close()
            elif conn.errors_occurred and not conn.is_usable():
                conn.close()

    def before_job(self) -> None:
        """After an outage, the tasks' own connections died with it too: replace them."""
        self.outer_atomics = {conn.alias: len(conn.atomic_blocks)
                              for conn in connections.all(initialized_only=True)
                              if conn.in_atomic_block}
        if self.outage_since is None and self.was_away and self.given is None:
            self.was_away = False
            connections.close_all()

    def close(self) -> None:
        if self.given is None:
            with contextlib.suppress(Exception):
                connections[self.database].close()
        for fd in (self.wakeup_r, self.wakeup_w):
            with contextlib.suppress(OSError):
                os.close(fd)


def _drain(conn: psycopg.Connection, is_ours: Callable[[str], bool]) -> bool:
    """Consume wake-ups (those received during other statements too); True if one was ours."""
    relevant = False
    for notify in conn.notifies(timeout=0):
        relevant = is_ours(notify.payload) or relevant
    return relevant


def _unwind(conn: Any, depth: int) -> None:
    """Roll back the atomic blocks of `conn` above `depth` (a task left them open)."""
    leaked = RuntimeError("the task left this atomic block open")
    while len(conn.atomic_blocks) > depth:
        left = len(conn.atomic_blocks)
        with contextlib.suppress(Exception):  # a broken connection: closed by the caller
            conn.atomic_blocks[-1].__exit__(RuntimeError, leaked, None)
        if len(conn.atomic_blocks) >= left:
            break
