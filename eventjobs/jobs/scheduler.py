"""Enqueues the ticks of `@eventjobs.periodic` schedules, from every runworker at once.

Run by the supervisor's heartbeat thread, woken at each tick. On the database's clock it
computes each schedule's newest tick at or before now and, in one transaction, moves the
schedule's `last_tick` forward to it with a compare-and-set and enqueues the job only if
that update matched: however many runworkers on however many hosts, each tick is one job
(run_after = the tick), with no leader lock for a paused process to hold. Ticks missed
while no runworker ran collapse into the newest one. A schedule seen for the first time
starts at its next tick.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

import psycopg

from eventjobs.backends import PostgresBackend
from eventjobs.db import database_now
from eventjobs.jobs import periodic
from eventjobs.jobs import store as jobstore
from eventjobs.jobs.enqueue import insert, job_params
from eventjobs.jobs.periodic import Schedule

logger = logging.getLogger("eventjobs.scheduler")

WAKE_AFTER_TICK_SECONDS = 0.01  # wake just after a tick, never just before it


class Scheduler:
    """The schedules this runworker enqueues (those whose task uses its backend)."""

    def __init__(self, schedules: list[Schedule]):
        self.schedules = schedules
        self.synced = False

    @classmethod
    def for_backend(cls, alias: str) -> Scheduler | None:
        """Discover every app's schedules; None when none uses backend `alias`."""
        mine = [s for s in periodic.autodiscover() if s.task.backend == alias]
        if mine:
            logger.info("periodic schedules: %s",
                        ", ".join(f"{s.name} ({s.spec})" for s in mine))
        return cls(mine) if mine else None

    def run_once(self, conn: psycopg.Connection, now: datetime | None = None) -> float:
        """Enqueue every tick that is due; returns seconds until the next one. `now` (the
        database's clock unless given) is for tests."""
        now = now or database_now(conn)
        if not self.synced:
            for schedule in self.schedules:
                self._sync(conn, schedule, now)
            self.synced = True
        next_ticks = []
        for schedule in self.schedules:
            try:
                next_ticks.append(self._tick(conn, schedule, now))
            except psycopg.Error:
                raise  # the database: the heartbeat's outage handling retries
            except Exception:  # noqa: BLE001 - one schedule's error must not stop the others
                logger.exception("schedule %s: tick not enqueued (retried at the next "
                                 "maintenance)", schedule.name)
        if not next_ticks:
            return float("inf")
        return max(0.0, (min(next_ticks) - now).total_seconds()) + WAKE_AFTER_TICK_SECONDS

    def _sync(self, conn: psycopg.Connection, schedule: Schedule, now: datetime) -> None:
        """Register the schedule; a new one counts its newest tick as done (it starts at
        the next one), an existing one keeps its last tick."""
        latest = schedule.latest_tick(now)
        jobstore.sync_schedule(conn, {
            "name": schedule.name, "task_path": schedule.task.module_path,
            "spec": schedule.spec, "timezone": schedule.timezone,
            "args": json.dumps(schedule.args), "kwargs": json.dumps(schedule.kwargs),
            "last_tick": latest, "next_tick": schedule.next_tick(latest)})

    def _tick(self, conn: psycopg.Connection, schedule: Schedule, now: datetime) -> datetime:
        tick = schedule.latest_tick(now)
        next_tick = schedule.next_tick(tick)
        # One transaction: the tick is taken if and only if its job is written.
        with conn.transaction():
            if not jobstore.claim_tick(conn, schedule.name, tick, next_tick):
                return next_tick  # enqueued already (by us or another runworker)
            task = schedule.task.using(run_after=tick)
            backend = task.get_backend()
            if not isinstance(backend, PostgresBackend):
                raise TypeError(f"its task's backend {backend.alias!r} is "
                                f"{type(backend).__name__}, not eventjobs' PostgresBackend")
            params = job_params(backend, task, schedule.args, schedule.kwargs)
            with conn.cursor() as cursor:
                row, _created = insert(cursor, task, params)
            jobstore.record_tick_job(conn, schedule.name, row["id"])
        logger.debug("schedule %s: tick %s enqueued as job %s", schedule.name,
                     tick.isoformat(), row["id"])
        return next_tick
