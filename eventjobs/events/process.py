"""The `manage.py consume` process: runs one or more consumer groups in one loop.

Wakes on LISTEN/NOTIFY (a hint; polling every CONSUMER_POLL_SECONDS is the fallback),
keeps partition leases on an autocommit control connection, and handles batches on the
Django connection. A database error never ends the process: it reconnects with backoff
and carries on (link.py). First SIGTERM/SIGINT: finish the current batch, hand
partitions over (owner cleared: the next process starts at our committed position), exit
0. A second signal, or a batch outliving SHUTDOWN_GRACE_SECONDS, exits at once: the open
batch rolls back and its events are handled again by the next owner.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

import psycopg
from django.db import Error as DjangoDatabaseError

from eventjobs.conf import EventjobsSettings, eventjobs_settings
from eventjobs.events import store
from eventjobs.events.dispatch import ConnectionLost
from eventjobs.events.link import Link, harden_batch_connection
from eventjobs.events.monitoring import held_back_by
from eventjobs.events.partitions import position_in_words
from eventjobs.events.registry import Group
from eventjobs.events.runner import HANDLED, WAIT, GroupRunner
from eventjobs.events.watchdog import BatchClock, install_alarm, start_watchdog
from eventjobs.shutdown import TwoStepShutdown

logger = logging.getLogger("eventjobs.consume")

EXIT_HELD_BACK = 3
# What a lost or restarting database raises; the loop reconnects instead of exiting.
DATABASE_ERRORS = (psycopg.Error, DjangoDatabaseError, ConnectionLost)
PROGRESS_SECONDS = 5.0  # while a group works through a backlog, log its count and rate this often


class ConsumeProcess:
    """Runs `groups` until stopped (or, with burst, until they caught up)."""

    def __init__(self, groups: list[Group], *, alias: str, opts: EventjobsSettings | None = None,
                 burst: bool = False, max_wait: float | None = None, alarm: bool = True):
        self.alias = alias
        self.opts = opts or eventjobs_settings()
        self.burst = burst
        self.max_wait = max_wait
        host, pid = socket.gethostname(), os.getpid()
        self.member = f"{host[:120]}:{pid}:{uuid.uuid4().hex[:8]}"
        self.stopped = threading.Event()
        self.link = Link(alias, f"eventjobs consume {self.member}", self.opts.listen,
                         self.stopped)
        self.clock = BatchClock(self.opts.handler_timeout_seconds, alarm=alarm)
        # One member id per group: membership (and fair shares) are per (process, group).
        self.runners = [GroupRunner(group, opts=self.opts, alias=alias, control=None,
                                    member=f"{self.member}#{n}", host=host, pid=pid,
                                    clock=self.clock)
                        for n, group in enumerate(groups)]
        self.system_id: int | None = None
        self.announced = False
        self.progress_at = time.monotonic() + PROGRESS_SECONDS
        self.progress_from = {runner.name: 0 for runner in self.runners}
        self.shutdown = TwoStepShutdown("consume", on_first=self._first_signal,
                                        on_second=self._now)

    # -- lifecycle ------------------------------------------------------------------------------
    def run(self) -> int:
        self.shutdown.install()
        if self.clock.alarm:
            install_alarm()
            start_watchdog(self.clock)
        harden_batch_connection(self.alias, f"eventjobs consume batches {self.member}")
        try:
            return self._loop()
        finally:
            for runner in self.runners:
                runner.leave()
                logger.info("consume: %s", runner.describe())
            self.link.close_control()

    def _loop(self) -> int:
        deadline = time.monotonic() + self.max_wait if self.max_wait is not None else None
        while not self.shutdown.graceful.is_set():
            try:
                self._setup()
                if not self.runners:
                    logger.error("consume: every group it ran was forgotten; exiting")
                    return 0
                busy, wake_at = self._step()
                if busy:
                    self._progress()
                    continue
                if self.burst and all(runner.burst_done() for runner in self.runners):
                    logger.info("consume --burst: every event committed before the start is "
                                "handled or dead-lettered; exiting")
                    return 0
                if self.burst and deadline is not None and time.monotonic() > deadline:
                    return self._held_back()
                self.link.wait(wake_at - time.monotonic())
            except DATABASE_ERRORS as exc:
                self.link.lost(exc)
                for runner in self.runners:
                    runner.control = self.link.control
                    runner.next_heartbeat = 0.0  # register again at once (new backend pid)
        return 0

    def _setup(self) -> None:
        """Connect and start the groups: at start, and again after an outage."""
        control = self.link.control
        if control is None:
            control = self.link.connect()
            for runner in self.runners:
                runner.control = control
        if not self.announced:
            self.system_id = store.system_identifier(control)
            if self.system_id is None:
                logger.warning("consume: cannot read pg_control_system() (needs pg_monitor or "
                               "superuser); the dump/restore check is skipped")
        for runner in self.runners:
            if not runner.started:
                if self.burst and runner.burst_target is None:
                    runner.burst_target = store.last_event(control) or (0, 0)
                runner.start(self.system_id)
        if not self.announced:
            self.announced = True
            logger.info("consume %s: groups %s on %s; %s partition(s) per group, batches of up "
                        "to %s events / %.0f ms, %s", self.member,
                        ", ".join(r.name for r in self.runners), self.link.where(),
                        self.opts.partitions,
                        self.opts.batch_size, self.opts.batch_seconds * 1000,
                        "LISTEN/NOTIFY + polling" if self.opts.listen else "polling only")

    def _step(self) -> tuple[bool, float]:
        now = time.monotonic()
        wake_at = now + self.opts.consumer_poll_seconds
        busy = False
        for runner in list(self.runners):
            if self.shutdown.graceful.is_set():
                break
            if time.monotonic() >= runner.next_heartbeat and not runner.heartbeat():
                logger.error("consume: group %s was forgotten (consumer_group forget) while "
                             "this process ran it; no longer running it here (a later consume "
                             "starts it afresh)", runner.name)
                self.runners.remove(runner)
                continue
            outcome = runner.run_once()
            if outcome == HANDLED:
                busy = True
            elif outcome == WAIT:
                wake_at = min(wake_at, runner.wait_until)
            wake_at = min(wake_at, runner.next_heartbeat)
        return busy, wake_at

    def _progress(self) -> None:
        """A long run (a backlog, a reset that re-delivers the log) says how it goes."""
        now = time.monotonic()
        if now < self.progress_at:
            return
        seconds = now - self.progress_at + PROGRESS_SECONDS
        for runner in self.runners:
            done = runner.handled - self.progress_from.get(runner.name, 0)
            if done:
                logger.info("consume: group %s handled %s events in %.0fs (%s/s), %s in all; "
                            "now %s", runner.name, f"{done:,}", seconds,
                            f"{done / seconds:,.0f}", f"{runner.handled:,}",
                            position_in_words(runner.low()))
            self.progress_from[runner.name] = runner.handled
        self.progress_at = now + PROGRESS_SECONDS

    def _held_back(self) -> int:
        behind = [r for r in self.runners if not r.burst_done()]
        holder: dict[str, Any] | None = None
        cache: dict[str, Any] = {}
        for runner in behind:
            holder = holder or held_back_by(runner.control_connection, runner.name,
                                            runner.low(), cache=cache)
        names = [r.name for r in behind]
        if holder and holder.get("visible"):
            logger.error("consume --burst: gave up after --max-wait %ss; group(s) %s are held "
                         "back by transaction %s of pid %s (%s, %s) open since %s: %s",
                         self.max_wait, names, holder.get("xid"), holder.get("pid"),
                         holder.get("application_name") or "", holder.get("state") or "",
                         holder.get("since"), holder.get("query") or "")
        elif holder:
            logger.error("consume --burst: gave up after --max-wait %ss; group(s) %s are held "
                         "back by transaction %s, open since at least %s (who runs it is "
                         "visible only with the pg_read_all_stats role)", self.max_wait,
                         names, holder.get("xid"), holder.get("since"))
        else:
            logger.error("consume --burst: gave up after --max-wait %ss; group(s) %s still "
                         "have events before the start to handle (partitions owned by "
                         "others, or retries waiting)", self.max_wait, names)
        return EXIT_HELD_BACK

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
