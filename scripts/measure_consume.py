"""Measure `consume --burst` throughput on a fresh backlog (docs/events.md, "Performance").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python scripts/measure_consume.py [--rounds 3] [--events 100000]

Each round and variant gets a database of its own, copied from a migrated template, so
the event table is new and never analyzed (autovacuum is off for it, so it stays so).
The backlog is published the way an application does: `eventjobs.publish()`, one by
one, in 10 transactions. Then one consumer group with a no-op handler drains it through
the same code as `manage.py consume GROUP --burst` (ConsumeProcess, in-process), timed
from the first handler call to the end (start-up excluded); the position advances in
each batch's transaction as always. Variants, alternated within each round:

  keyless-fresh   no key, no ANALYZE (what a burst of publishing looks like)
  keyed-analyzed  1,000 keys, ANALYZE after the fill (the old benchmark's setting)

Not a test: figures depend on the machine and its load. Reports each run and the median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "eventjobs_measure_template"


def _url(base: str, dbname: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def _admin(base: str) -> psycopg.Connection:
    return psycopg.connect(_url(base, "postgres"), autocommit=True)


def _django_env(url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONPATH": str(ROOT)}


def prepare_template(base: str) -> None:
    with _admin(base) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"],
                   env=_django_env(_url(base, TEMPLATE)), check=True, cwd=ROOT,
                   stderr=subprocess.DEVNULL)


def one_run(base: str, variant: str, events: int) -> dict:
    name = f"eventjobs_measure_{os.getpid()}"
    with _admin(base) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    try:
        out = subprocess.run([sys.executable, __file__, "--child", variant, str(events)],
                             env=_django_env(_url(base, name)), check=True, cwd=ROOT,
                             capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    finally:
        with _admin(base) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")


def child(variant: str, events: int) -> None:
    """In the run's own database: fill, then drain with a no-op handler."""
    import django

    django.setup()
    import logging

    from django.db import connection, transaction

    import eventjobs
    from eventjobs.conf import database_alias
    from eventjobs.events.process import ConsumeProcess
    from eventjobs.events.registry import get_group

    logging.getLogger("eventjobs").setLevel(logging.WARNING)
    keyed = variant.startswith("keyed")
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE eventjobs_event SET (autovacuum_enabled = off)")
    per_txn = events // 10
    for t in range(10):
        with transaction.atomic():
            for i in range(per_txn):
                eventjobs.publish("bench.noop", {"i": i},
                                  key=f"k{(t * per_txn + i) % 1000}" if keyed else None)
    with connection.cursor() as cursor:
        if variant.endswith("analyzed"):
            cursor.execute("ANALYZE eventjobs_event")
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'eventjobs_event'")
        reltuples = cursor.fetchone()[0]
    connection.close()

    calls = {"n": 0, "first": 0.0}

    @eventjobs.consumer("measure")
    def noop(event):
        if not calls["n"]:
            calls["first"] = time.perf_counter()
        calls["n"] += 1

    ConsumeProcess([get_group("measure")], alias=database_alias(), burst=True,
                   alarm=False).run()
    seconds = time.perf_counter() - calls["first"]
    print(json.dumps({"variant": variant, "events": calls["n"], "seconds": round(seconds, 3),
                      "rate": round(calls["n"] / seconds), "reltuples": reltuples}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    prepare_template(base)
    results: dict[str, list[int]] = {"keyless-fresh": [], "keyed-analyzed": []}
    for round_ in range(args.rounds):
        order = list(results) if round_ % 2 == 0 else list(reversed(results))
        for variant in order:
            run = one_run(base, variant, args.events)
            results[variant].append(run["rate"])
            print(f"round {round_ + 1} {variant}: {run['events']:,} events in "
                  f"{run['seconds']:.3f}s = {run['rate']:,} events/s "
                  f"(reltuples before: {run['reltuples']})", flush=True)
    for variant, rates in results.items():
        print(f"{variant}: median {statistics.median(rates):,.0f} events/s "
              f"(runs: {', '.join(f'{r:,}' for r in rates)})")
    fresh, keyed = (statistics.median(results[v]) for v in results)
    print(f"keyless-fresh / keyed-analyzed = {fresh / keyed:.2f}")
    with _admin(base) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")


if __name__ == "__main__":
    main()
