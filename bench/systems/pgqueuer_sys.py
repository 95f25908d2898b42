"""PgQueuer: sync enqueue (SyncQueries + SyncPsycopgDriver, as Django code would),
list enqueue for bulk, `pgq run` defaults (batch-size 10, LISTEN/NOTIFY, asyncpg).

The CLI runs through peers/pgq_cli.py, the typer workaround from peers-baseline.md.
"""

from __future__ import annotations

import asyncio
import sys

import common

SYSTEM = "pgqueuer"
WORKER = [sys.executable, str(common.BENCH_DIR / "peers" / "pgq_cli.py"), "run",
          "peers.pgq_app:factory"]


def _env(cfg):
    return {"BENCH_DSN": common.dsn(cfg["db"]), "PYTHONPATH": str(common.BENCH_DIR)}


def setup(cfg):
    import asyncpg
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries

    async def go():
        conn = await asyncpg.connect(common.dsn(cfg["db"]))
        try:
            await Queries(AsyncpgDriver(conn)).install()
        finally:
            await conn.close()

    asyncio.run(go())


def _q(conn):
    from pgqueuer.adapters.drivers.psycopg import SyncPsycopgDriver
    from pgqueuer.adapters.persistence.queries import SyncQueries

    return SyncQueries(SyncPsycopgDriver(conn))


def _reset(conn):
    conn.execute("TRUNCATE pgqueuer, pgqueuer_log")


def _remaining(conn):
    return lambda: common.scalar(
        conn, "SELECT count(*) FROM pgqueuer WHERE status IN ('queued', 'picked')")


def _bulk(q, n):
    for i in range(0, n, 1000):
        k = min(1000, n - i)
        q.enqueue(["noop"] * k, [None] * k, [0] * k)


def t_enqueue(cfg):
    with common.pg_connect(cfg["db"]) as conn:
        q = _q(conn)
        _reset(conn)
        one = common.timed_loop(lambda i: q.enqueue("noop", None), cfg["n_enq"])
        _reset(conn)
        n = max(1000, cfg["n_bulk"] // 1000 * 1000)
        rate = common.timed_loop(lambda i: _bulk(q, 1000), n // 1000, warmup=1) * 1000
        _reset(conn)
    return {"enq1": one, "enqbulk": rate}


def _drain(cfg, workers, key):
    n = cfg["n_drain"][SYSTEM]
    log = common.log_path(f"pgqueuer-drain{workers}")
    with common.pg_connect(cfg["db"]) as conn:
        _reset(conn)
        _bulk(_q(conn), n)
        conn.execute("ANALYZE pgqueuer")  # fresh stats after the fill
        procs = [common.start(WORKER, env=_env(cfg), log=log) for _ in range(workers)]
        try:
            r = common.measure_drain(_remaining(conn), n, procs, cfg["timeout"], "pgq run", log)
        finally:
            for p in procs:
                common.stop(p)
        _reset(conn)
    out = {key: r["rate"]}
    if workers == 1:
        out["startup"] = r["startup"]
    return out


def t_drain1(cfg):
    """Drain with 1 worker, then the latency test on that worker once idle."""
    n = cfg["n_drain"][SYSTEM]
    with common.pg_connect(cfg["db"]) as conn:
        q = _q(conn)
        _reset(conn)
        _bulk(q, n)
        conn.execute("ANALYZE pgqueuer")  # fresh stats after the fill
        out = common.drain_then_latency(
            cfg, lambda lat_env, log: [common.start(WORKER, env={**_env(cfg), **lat_env}, log=log)],
            _remaining(conn), n, lambda t0: q.enqueue("noop", repr(t0).encode()),
            "pgqueuer-drain1", cleanup=lambda: _reset(conn))
        _reset(conn)
    return out


def t_drain2(cfg):
    return _drain(cfg, 2, "drain2")


def t_latency(cfg):
    lat = common.LatencyFile("pgqueuer")
    log = common.log_path("pgqueuer-latency")
    with common.pg_connect(cfg["db"]) as conn:
        q = _q(conn)
        _reset(conn)
        p = common.start(WORKER, env={**_env(cfg), **lat.env}, log=log)
        try:
            r = common.measure_latency(lambda t0: q.enqueue("noop", repr(t0).encode()), lat,
                                       cfg["n_lat"], [p], timeout=cfg["timeout"],
                                       what="pgq run", log=log)
        finally:
            common.stop(p)
            lat.cleanup()
        _reset(conn)
    return {"lat_p50": r["p50"], "lat_p99": r["p99"]}


TESTS = {
    "enqueue": (t_enqueue, ["enq1", "enqbulk"]),
    "drain1": (t_drain1, ["drain1", "startup", "lat_p50", "lat_p99"]),
    "drain2": (t_drain2, ["drain2"]),
    "latency": (t_latency, ["lat_p50", "lat_p99"]),
}
