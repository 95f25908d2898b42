"""Helpers shared by the Django Tasks backends (eventjobs and django-tasks-db)."""

from __future__ import annotations

import os
import sys

import common

MANAGE = [sys.executable, str(common.BENCH_DIR / "manage.py")]


def env_for(system: str, db: str) -> dict:
    return {
        "DJANGO_SETTINGS_MODULE": "benchproj.settings",
        "BENCH_SYSTEM": system,
        "DATABASE_URL": common.dsn(db),
        "PYTHONPATH": str(common.BENCH_DIR),
        "PYTHONUNBUFFERED": "1",
    }


def setup_django(system: str, db: str) -> None:
    from django.conf import settings

    if settings.configured:
        name = settings.DATABASES["default"]["NAME"]
        if name != db or settings.BENCH_SYSTEM != system:
            raise RuntimeError(f"Django already set up for {settings.BENCH_SYSTEM}/{name}; "
                               f"run {system}/{db} in its own process")
        return
    os.environ.update(env_for(system, db))
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def raw(sql: str, params=None):
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(sql, params)
        try:
            return cur.fetchall()
        except Exception:
            return None


def count(sql: str, params=None) -> int:
    return int(raw(sql, params)[0][0])


def noop_task():
    from benchapp.tasks import noop

    return noop


def enqueue_1by1(cfg) -> float:
    """Sequential `noop.enqueue()` calls, each its own transaction (autocommit)."""
    noop = noop_task()
    return common.timed_loop(lambda i: noop.enqueue(), cfg["n_enq"])


def fill_in_one_transaction(n: int) -> None:
    """Queue n jobs through the public API, committed together (not timed)."""
    from django.db import transaction

    noop = noop_task()
    with transaction.atomic():
        for _ in range(n):
            noop.enqueue()


def analyze(table: str) -> None:
    """Fresh planner statistics after a fill, as autovacuum would soon provide: a table
    just truncated and refilled otherwise runs on its empty-table plans."""
    raw(f"ANALYZE {table}")


def drain(cfg, fill, remaining, worker_cmds, what, n, table=None) -> dict:
    fill(n)
    if table:
        analyze(table)
    assert remaining() == n, f"expected {n} queued jobs, found {remaining()}"
    log = common.log_path(what)
    procs = [common.start(cmd, env=env_for(cfg["system"], cfg["db"]), log=log) for cmd in worker_cmds]
    try:
        return common.measure_drain(remaining, n, procs, cfg["timeout"], what, log)
    finally:
        for p in procs:
            common.stop(p)


def latency(cfg, worker_cmd, what) -> dict:
    noop = noop_task()
    lat = common.LatencyFile(what)
    log = common.log_path(what)
    env = {**env_for(cfg["system"], cfg["db"]), **lat.env}
    p = common.start(worker_cmd, env=env, log=log)
    try:
        return common.measure_latency(
            lambda t0: noop.enqueue(t0=t0), lat, cfg["n_lat"], [p],
            timeout=cfg["timeout"], what=what, log=log,
        )
    finally:
        common.stop(p)
        lat.cleanup()


def drain_latency(cfg, fill, remaining, worker_cmd, what, n, cleanup=None, table=None) -> dict:
    """Drain n jobs with one worker, then measure latency on the same idle worker."""
    fill(n)
    if table:
        analyze(table)
    assert remaining() == n, f"expected {n} queued jobs, found {remaining()}"
    noop = noop_task()
    env = env_for(cfg["system"], cfg["db"])
    return common.drain_then_latency(
        cfg, lambda lat_env, log: [common.start(worker_cmd, env={**env, **lat_env}, log=log)],
        remaining, n, lambda t0: noop.enqueue(t0=t0), what, cleanup=cleanup)
