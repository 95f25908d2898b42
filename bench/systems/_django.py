"""Helpers shared by the Django Tasks backends (eventjobs and django-tasks-db)."""

from __future__ import annotations

import os
import sys

import common
import measure

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


def clock_offset() -> float:
    """Database clock minus this machine's clock (s)."""
    import time

    t0 = time.time()
    db = float(raw("SELECT extract(epoch FROM clock_timestamp())")[0][0])
    return db - (t0 + time.time()) / 2


def noop_task():
    from benchapp.tasks import noop

    return noop


def enqueue_1by1(cfg) -> float:
    """Sequential `noop.enqueue()` calls, each its own transaction (autocommit)."""
    noop = noop_task()
    return measure.timed_loop(lambda i: noop.enqueue(), cfg["n_enq"])


def fill_in_one_transaction(n: int, task=None) -> None:
    """Queue n jobs one by one through the public API, committed together (not timed)."""
    from django.db import transaction

    task = task or noop_task()
    with transaction.atomic():
        for _ in range(n):
            task.enqueue()


def analyze(table: str) -> None:
    """Fresh planner statistics after a fill, as autovacuum would soon provide."""
    raw(f"ANALYZE {table}")
