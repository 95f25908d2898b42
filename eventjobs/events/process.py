"""The `manage.py consume` process: runs one or more consumer groups in one loop.

Wakes on LISTEN/NOTIFY (a hint; polling every CONSUMER_POLL_SECONDS is the fallback),
keeps partition leases on an autocommit control connection, and handles batches on the
Django connection. First SIGTERM/SIGINT: finish the current batch, hand partitions over
(owner cleared: the next process starts at our committed position), exit 0. A second
signal, or a batch outliving SHUTDOWN_GRACE_SECONDS, exits at once: the open batch
rolls back and its events are handled again by the next owner.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

import psycopg
from django.db import DatabaseError, connections

from eventjobs.conf import EventjobsSettings, eventjobs_settings
from eventjobs.db import connect, connection_params, describe
from eventjobs.events import store as eventstore
from eventjobs.events.monitoring import held_back_by
from eventjobs.events.registry import Group
from eventjobs.events.runner import HANDLED, WAIT, GroupRunner
from eventjobs.shutdown import TwoStepShutdown

logger = logging.getLogger("eventjobs.consume")

EXIT_HELD_BACK = 3
RECONNECT_SECONDS = 1.0


class ConsumeProcess:
    """Runs `groups` until stopped (or, with burst, until they caught up)."""

    def __init__(self, groups: list[Group], *, alias: str, opts: EventjobsSettings | None = None,
                 burst: bool = False, max_wait: float | None = None):
        self.groups = groups
        self.alias = alias
        self.opts = opts or eventjobs_settings()
        self.burst = burst
        self.max_wait = max_wait
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.member = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.params = connection_params(alias)
        self.control: psycopg.Connection | None = None
        self.runners: list[GroupRunner] = []
        self.stopped = threading.Event()
        self.shutdown = TwoStepShutdown("consume", on_first=self._first_signal,
                                        on_second=self._now)

    # -- lifecycle ------------------------------------------------------------------------------
    def run(self) -> int:
        self.shutdown.install()
        self._connect()
        system_id = eventstore.system_identifier(self.control)
        if system_id is None:
            logger.warning("consume: cannot read pg_control_system() (needs pg_monitor or "
                           "superuser); the dump/restore check is skipped")
        for group in self.groups:
            runner = GroupRunner(group, opts=self.opts, alias=self.alias, control=self.control,
                                 member=self.member, host=self.host, pid=self.pid)
            if self.burst:
                runner.burst_target = eventstore.last_event(self.control)
            self.runners.append(runner)
        for runner in self.runners:
            runner.start(system_id)
        logger.info("consume %s: groups %s on %s; %s partition(s) per group, batches of up "
                    "to %s events / %.0f ms, %s", self.member, [g.name for g in self.groups],
                    describe(self.params), self.opts.partitions, self.opts.batch_size,
                    self.opts.batch_seconds * 1000,
                    "LISTEN/NOTIFY + polling" if self.opts.listen else "polling only")
        try:
            return self._loop()
        finally:
            for runner in self.runners:
                runner.leave()
                logger.info("consume: %s", runner.describe())
            self.control.close()

    def _loop(self) -> int:
        deadline = time.monotonic() + self.max_wait if self.max_wait is not None else None
        while not self.shutdown.graceful.is_set():
            try:
                busy, wake_at = self._step()
            except (DatabaseError, psycopg.OperationalError, psycopg.InterfaceError) as exc:
                logger.warning("consume: database error (%s); reconnecting", str(exc).strip())
                self._reconnect()
                continue
            if busy:
                continue
            if self.burst:
                if all(runner.burst_done() for runner in self.runners):
                    logger.info("consume --burst: every event committed before the start is "
                                "handled or dead-lettered; exiting")
                    return 0
                if deadline is not None and time.monotonic() > deadline:
                    return self._held_back()
            self._wait(max(0.0, wake_at - time.monotonic()))
        return 0

    def _step(self) -> tuple[bool, float]:
        now = time.monotonic()
        wake_at = now + self.opts.consumer_poll_seconds
        busy = False
        for runner in self.runners:
            if self.shutdown.graceful.is_set():
                break
            if time.monotonic() >= runner.next_heartbeat:
                runner.heartbeat()
            outcome = runner.run_once()
            if outcome == HANDLED:
                busy = True
            elif outcome == WAIT:
                wake_at = min(wake_at, runner.wait_until)
            wake_at = min(wake_at, runner.next_heartbeat)
        return busy, wake_at

    def _held_back(self) -> int:
        behind = [r for r in self.runners if not r.burst_done()]
        holder, cache = None, {}
        for runner in behind:
            holder = holder or held_back_by(self.control, runner.name, runner.low(),
                                            cache=cache)
        behind = [r.name for r in behind]
        if holder and holder.get("visible"):
            logger.error("consume --burst: gave up after --max-wait %ss; group(s) %s are held "
                         "back by transaction %s of pid %s (%s, %s) open since %s: %s",
                         self.max_wait, behind, holder.get("xid"), holder.get("pid"),
                         holder.get("application_name") or "", holder.get("state") or "",
                         holder.get("since"), holder.get("query") or "")
        elif holder:
            logger.error("consume --burst: gave up after --max-wait %ss; group(s) %s are held "
                         "back by transaction %s, open since at least %s (who runs it is "
                         "visible only with the pg_read_all_stats role)", self.max_wait,
                         behind, holder.get("xid"), holder.get("since"))
        else:
            logger.error("consume --burst: gave up after --max-wait %ss; group(s) %s still "
                         "have events before the start to handle (partitions owned by "
                         "others, or retries waiting)", self.max_wait, behind)
        return EXIT_HELD_BACK

    # -- connections and waiting ------------------------------------------------------------
    def _connect(self) -> None:
        self.control = connect(self.params, f"eventjobs consume {self.member}")
        if self.opts.listen:
            eventstore.listen(self.control)
        for runner in self.runners:
            runner.control = self.control

    def _reconnect(self) -> None:
        try:
            connections[self.alias].close()
        except Exception:  # noqa: BLE001 - it is being replaced
            pass
        try:
            if self.control is not None:
                self.control.close()
        except Exception:  # noqa: BLE001
            pass
        while not self.shutdown.graceful.is_set():
            self.stopped.wait(RECONNECT_SECONDS)
            try:
                self._connect()
                return
            except psycopg.Error as exc:
                logger.warning("consume: cannot reconnect (%s)", str(exc).strip())

    def _wait(self, timeout: float) -> None:
        if timeout <= 0:
            return
        if self.opts.listen:
            for _notify in self.control.notifies(timeout=timeout, stop_after=1):
                break
        else:
            self.stopped.wait(timeout)

    # -- signals ---------------------------------------------------------------------------------
    def _first_signal(self) -> None:
        self.stopped.set()
        timer = threading.Timer(self.opts.shutdown_grace_seconds, self._grace_over)
        timer.daemon = True
        timer.start()

    def _grace_over(self) -> None:
        logger.warning("consume: a batch outlived SHUTDOWN_GRACE_SECONDS (%ss); exiting "
                       "(the batch rolls back)", self.opts.shutdown_grace_seconds)
        os._exit(1)

    def _now(self) -> None:
        os._exit(1)
