"""The supervisor's heartbeat thread: leases, worker rows and maintenance. No user code.

Every HEARTBEAT_SECONDS it renews the lease of every attempt its children hold (one
statement for all of them) and keeps their worker rows fresh; every POLL_SECONDS it runs
maintenance (rescue of expired leases, promotion of due and limited jobs); at each tick of
a periodic schedule it enqueues the tick (eventjobs/jobs/scheduler.py). It runs on its own
connection, so a busy or stuck child cannot delay it, and survives every error:
- when renewals fail for more than a third of the lease, children stop claiming (they could
  not keep new leases either) until renewals work again;
- a lease not renewed in time is lost: the child running that job is told, and the task can
  see it with `eventjobs.lease_lost()`; its outcome will not be recorded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg

from eventjobs.db import connect
from eventjobs.exceptions import first_line
from eventjobs.jobs import store as jobstore
from eventjobs.jobs.children import ChildLink, Children, stopped
from eventjobs.jobs.maintenance import JobMaintenance
from eventjobs.jobs.reporting import HOLD, LOST
from eventjobs.jobs.scheduler import Scheduler

logger = logging.getLogger("eventjobs.worker")


class Heartbeat(threading.Thread):
    """Keeps the leases of every attempt the children hold; runs maintenance."""

    def __init__(self, children: Children, *, db_params: dict[str, Any], lease_seconds: float,
                 interval: float, maintenance_interval: float, queues: Sequence[str] | None,
                 scheduler: Scheduler | None = None):
        super().__init__(name="eventjobs-heartbeat", daemon=True)
        self.children = children
        self.db_params = db_params
        self.lease_seconds = lease_seconds
        self.interval = interval
        self.maintenance_interval = maintenance_interval
        self.queues = queues
        self.host = socket.gethostname()
        self.stop_event = threading.Event()
        self.conn: psycopg.Connection | None = None
        self.last_renewal = time.monotonic()
        self.holding = False
        self.outage_since: float | None = None
        self.next_beat = 0.0
        self.next_maintenance = 0.0
        self.scheduler = scheduler
        self.next_tick = 0.0 if scheduler else float("inf")

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = connect(self.db_params, f"eventjobs heartbeat {os.getpid()}",
                                        synchronous_commit=False)
                if time.monotonic() >= self.next_beat:
                    self.beat()
                    self.next_beat = time.monotonic() + self.interval
                if time.monotonic() >= self.next_maintenance:
                    JobMaintenance(self.conn, self.lease_seconds).run_once()
                    self.next_maintenance = time.monotonic() + self.maintenance_interval
                if self.scheduler and time.monotonic() >= self.next_tick:
                    self.next_tick = time.monotonic() + self.maintenance_interval  # on error
                    self.next_tick = time.monotonic() + min(self.scheduler.run_once(self.conn),
                                                            self.maintenance_interval)
                self._healthy()
            except psycopg.Error as exc:
                self._unhealthy(exc)
            except Exception:  # noqa: BLE001 - the heartbeat must outlive every error
                logger.exception("heartbeat: unexpected error; carrying on")
            self.stop_event.wait(max(0.005, min(self.next_beat, self.next_maintenance,
                                                self.next_tick) - time.monotonic()))
        self._deregister_departed()
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()

    def beat(self) -> None:
        """Renew every held lease; register new children, refresh and forget worker rows."""
        assert self.conn is not None
        # A stopped child (SIGSTOP, a debugger) cannot finish its jobs: let their leases
        # expire so another worker runs them; its late outcome is fenced off.
        frozen = {link.pid for link in self.children.all() if stopped(link.pid)}
        held = [(link, a) for link, a in self.children.held() if link.pid not in frozen]
        kept = jobstore.renew_leases(self.conn, [(a.job_id, a.token) for _, a in held],
                                     self.lease_seconds)
        self.last_renewal = time.monotonic()
        lost: dict[ChildLink, list[int]] = {}
        for link, attempt in held:
            if attempt.job_id not in kept and self.children.drop_if_held(link, attempt.job_id,
                                                                          attempt.token):
                lost.setdefault(link, []).append(attempt.job_id)
        for link, ids in lost.items():
            logger.warning("worker %s: lease lost for job(s) %s (rescued after it expired); "
                           "their outcome will not be recorded by this worker",
                           link.worker_id, sorted(ids))
            self.children.tell(link, LOST, ids)
        for link in self.children.all():
            if link.worker_id is None:
                continue
            running = 1 if link.slot.read() is not None else 0
            if not link.registered:
                jobstore.register_worker(self.conn, worker_id=link.worker_id, host=self.host,
                                         pid=link.pid, queues=self.queues)
                link.registered = True
            jobstore.touch_worker(self.conn, worker_id=link.worker_id, host=self.host,
                                  pid=link.pid, queues=self.queues, running=running)
        self._deregister_departed()

    def _deregister_departed(self) -> None:
        if self.conn is None or self.conn.closed:
            return
        with contextlib.suppress(psycopg.Error):
            for worker_id in self.children.take_departed():
                jobstore.deregister_worker(self.conn, worker_id)

    # -- health ----------------------------------------------------------------------------
    def _healthy(self) -> None:
        if self.outage_since is not None:
            logger.warning("heartbeat: database back after %.1fs",
                           time.monotonic() - self.outage_since)
            self.outage_since = None
        if self.holding:
            self.holding = False
            for link in self.children.all():
                self.children.tell(link, HOLD, False)

    def _unhealthy(self, exc: Exception) -> None:
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            logger.error("heartbeat: database unavailable (%s); retrying",
                         first_line(exc))
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
        self.conn = None
        silent = time.monotonic() - self.last_renewal
        if silent > self.lease_seconds / 3 and not self.holding:
            self.holding = True
            logger.error("heartbeat: leases not renewed for %.0fs; children stop claiming",
                         silent)
            for link in self.children.all():
                self.children.tell(link, HOLD, True)
        if silent > self.lease_seconds:
            self._all_leases_lost()
        self.next_beat = time.monotonic() + min(1.0, self.interval)

    def _all_leases_lost(self) -> None:
        """Leases not renewed for a whole lease are gone: tell each child which."""
        for link, attempt in self.children.held():
            if self.children.drop_if_held(link, attempt.job_id, attempt.token):
                self.children.tell(link, LOST, [attempt.job_id])
                logger.error("worker %s: lease of job %s expired without renewal; another "
                             "worker may run it", link.worker_id, attempt.job_id)
