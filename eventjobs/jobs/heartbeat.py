"""A worker child's background thread: lease heartbeat, LISTEN wake-ups, supervisor watch.

It runs on its own connection, independent of the job's thread, so a CPU-bound job
keeps its lease (the GIL is released to this thread every few milliseconds). Losing
this connection (e.g. pg_terminate_backend) only delays wake-ups: the worker still
polls, and the thread reconnects.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from uuid import UUID

import psycopg

from eventjobs.db import connect
from eventjobs.jobs import store as jobstore

logger = logging.getLogger("eventjobs.worker")

RECONNECT_SECONDS = 1.0


class Heartbeat(threading.Thread):
    """Keeps the leases of `held` jobs alive and sets `wake` when a job is enqueued."""

    def __init__(self, *, db_params: dict, worker_id: str, host: str, queues: list[str],
                 lease_seconds: float, interval: float, listen: bool, wake: threading.Event,
                 on_lost: Callable[[set[tuple[int, UUID]]], None],
                 on_orphaned: Callable[[], None], on_tick: Callable[[psycopg.Connection], None],
                 parent_pid: int):
        super().__init__(name="eventjobs-heartbeat", daemon=True)
        self.db_params = db_params
        self.worker_id = worker_id
        self.host = host
        self.queues = queues
        self.lease_seconds = lease_seconds
        self.interval = interval
        self.listen = listen
        self.wake = wake
        self.on_lost = on_lost
        self.on_orphaned = on_orphaned
        self.on_tick = on_tick
        self.parent_pid = parent_pid
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.held: dict[int, UUID] = {}
        self.running = 0
        self.conn: psycopg.Connection | None = None

    # Called from the job thread.
    def hold(self, job_id: int, token: UUID) -> None:
        with self.lock:
            self.held[job_id] = token

    def drop(self, job_id: int) -> None:
        with self.lock:
            self.held.pop(job_id, None)

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        next_beat = 0.0
        while not self.stop_event.is_set():
            try:
                if self.conn is None or self.conn.closed:
                    self._connect()
                wait = max(0.0, next_beat - time.monotonic())
                if wait > 0:
                    # Returns on timeout; NOTIFYs that came during a heartbeat query were
                    # kept by psycopg and are yielded here.
                    for notify in self.conn.notifies(timeout=min(wait, 0.5)):
                        if notify.payload in self.queues:
                            self.wake.set()
                if self.stop_event.is_set():
                    break
                if time.monotonic() >= next_beat:
                    self._beat()
                    next_beat = time.monotonic() + self.interval
                self.on_tick(self.conn)
                if os.getppid() != self.parent_pid:
                    logger.error("worker %s: supervisor died; stopping", self.worker_id)
                    self.on_orphaned()
                    return
            except psycopg.Error as exc:
                logger.warning("worker %s: heartbeat connection failed (%s); reconnecting",
                               self.worker_id, str(exc).strip())
                self._close()
                # The wake-up may have been lost with the connection: let the loop poll.
                self.wake.set()
                self.stop_event.wait(RECONNECT_SECONDS)
                next_beat = 0.0
        self._close()

    def _connect(self) -> None:
        self.conn = connect(self.db_params, f"eventjobs heartbeat {self.worker_id}",
                            synchronous_commit=False)
        if self.listen:
            jobstore.listen(self.conn)

    def _beat(self) -> None:
        with self.lock:
            held = list(self.held.items())
        kept = jobstore.extend_leases(self.conn, held, self.lease_seconds)
        with self.lock:
            # Lost: not renewed, and still held under the same token (a job finished or
            # re-claimed meanwhile is not lost).
            lost = {(job_id, token) for job_id, token in held
                    if job_id not in kept and self.held.get(job_id) == token}
            for job_id, _ in lost:
                del self.held[job_id]
            running = self.running
        if lost:
            logger.warning("worker %s: lease lost for job(s) %s (rescued after expiry); "
                           "their outcome will not be recorded by this worker",
                           self.worker_id, sorted(job_id for job_id, _ in lost))
            self.on_lost(lost)
        jobstore.touch_worker(self.conn, worker_id=self.worker_id, host=self.host,
                              pid=os.getpid(), queues=self.queues, running=running)

    def _close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg.Error:
                pass
        self.conn = None
