"""The database connections of a `consume` process, and riding out their loss.

Two connections: the process's own autocommit control connection (leases, membership,
delivery counts, LISTEN), from eventjobs.db.connect, and the Django connection its
batches run on (handlers share its transaction). Both get connect timeouts and TCP
keepalives, so a half-open socket (a vanished server, a dropped NAT entry) fails within
about 2 x KEEPALIVE_SECONDS instead of blocking a batch or a wait for minutes.

When the database goes away (a restart, a failover, pg_terminate_backend, a server
timeout), the process logs one line, reconnects with backoff capped at two seconds,
restores LISTEN, and logs one line when it is back.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

import psycopg
from django.db import connections

from eventjobs.db import connect, connection_params, describe
from eventjobs.events import store
from eventjobs.exceptions import first_line

logger = logging.getLogger("eventjobs.consume")

MAX_BACKOFF_SECONDS = 2.0
# libpq settings the batch connection takes from eventjobs' defaults unless the project
# set them in DATABASES OPTIONS.
_HARDENING = ("connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
              "keepalives_count", "tcp_user_timeout")


def harden_batch_connection(alias: str, application_name: str) -> None:
    """Give the Django connection batches run on eventjobs' timeouts and keepalives (the
    project's own OPTIONS win) and a recognisable application_name. Only `consume` calls
    this: its Django connection serves nothing but batches."""
    defaults = connection_params(alias)
    wrapper = connections[alias]
    options = wrapper.settings_dict.setdefault("OPTIONS", {})
    for key in _HARDENING:
        if key in defaults:
            options.setdefault(key, defaults[key])
    options.setdefault("application_name", application_name[:63])
    wrapper.close()  # reconnect with them


class Link:
    """The control connection, and the outage bookkeeping of both connections."""

    def __init__(self, alias: str, name: str, listen: bool, stopped: threading.Event):
        self.alias = alias
        self.name = name
        self.listen = listen
        self.stopped = stopped
        self.params: dict[str, Any] = connection_params(alias)
        self.control: psycopg.Connection | None = None
        self.down_since: float | None = None

    def where(self) -> str:
        return describe(self.params)

    def connect(self) -> psycopg.Connection:
        """Open (or reopen) the control connection and LISTEN on it."""
        self.close_control()
        conn = connect(self.params, self.name)
        try:
            if self.listen:
                store.listen(conn)
        except BaseException:
            conn.close()
            raise
        self.control = conn
        return conn

    def close_control(self) -> None:
        if self.control is not None:
            try:
                self.control.close()
            except Exception:  # noqa: BLE001 - it is being replaced
                pass
            self.control = None

    def healthy(self) -> bool:
        conn = self.control
        if conn is None or conn.closed or conn.broken:
            return False
        try:
            conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def lost(self, exc: BaseException) -> None:
        """A database error reached the loop: reconnect until both connections work."""
        if self.down_since is None:
            self.down_since = time.monotonic()
            logger.warning("consume: lost the database (%s); reconnecting", first_line(exc))
        _close_django(self.alias)
        delay, attempts = 0.1, 0
        while not self.stopped.is_set():
            attempts += 1
            try:
                if not self.healthy():
                    self.connect()
                connections[self.alias].ensure_connection()
                _check_django(self.alias)
            except Exception as retry_exc:  # noqa: BLE001 - still down: try again
                logger.debug("consume: still cannot reach the database: %s",
                             first_line(retry_exc))
                _close_django(self.alias)
                self.stopped.wait(delay * (1 + random.random() * 0.25))
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
                continue
            logger.info("consume: the database is back after %.1fs (%s attempt(s)); resuming",
                        time.monotonic() - self.down_since, attempts)
            self.down_since = None
            return

    def wait(self, timeout: float) -> None:
        """Sleep up to `timeout`, waking early on a NOTIFY (with LISTEN on)."""
        if timeout <= 0:
            return
        if self.listen and self.control is not None:
            for _notify in self.control.notifies(timeout=timeout, stop_after=1):
                break
        else:
            self.stopped.wait(timeout)


def _close_django(alias: str) -> None:
    try:
        connections[alias].close()
    except Exception:  # noqa: BLE001 - it is being replaced
        connections[alias].connection = None


def _check_django(alias: str) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")
