"""Procrastinate: sync `defer()`, `batch_defer()` for bulk, `procrastinate worker` defaults."""

from __future__ import annotations

import os
import sys

import common

SYSTEM = "procrastinate"


def _env(cfg):
    return {"BENCH_DSN": common.dsn(cfg["db"]), "PYTHONPATH": str(common.BENCH_DIR)}


def _app(cfg):
    os.environ.update(_env(cfg))
    from peers.procr_app import app, noop

    return app, noop


WORKER = [sys.executable, "-m", "procrastinate", "--app=peers.procr_app.app", "worker",
          "--queues", "default"]


def setup(cfg):
    app, _ = _app(cfg)
    with app.open():
        app.schema_manager.apply_schema()


def _reset(conn):
    conn.execute("TRUNCATE procrastinate_jobs CASCADE")


def _remaining(conn):
    return lambda: common.scalar(
        conn, "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")


def t_enqueue(cfg):
    app, noop = _app(cfg)
    with common.pg_connect(cfg["db"]) as conn, app.open():
        _reset(conn)
        one = common.timed_loop(lambda i: noop.defer(), cfg["n_enq"])
        _reset(conn)
        batch = [{} for _ in range(1000)]
        n = cfg["n_bulk"]

        def bulk(i):
            noop.batch_defer(*batch)

        rate = common.timed_loop(bulk, max(1, n // 1000), warmup=1) * 1000
        _reset(conn)
    return {"enq1": one, "enqbulk": rate}


def _drain(cfg, workers, key):
    app, noop = _app(cfg)
    n = cfg["n_drain"][SYSTEM]
    log = common.log_path(f"procrastinate-drain{workers}")
    with common.pg_connect(cfg["db"]) as conn, app.open():
        _reset(conn)
        for i in range(0, n, 1000):
            noop.batch_defer(*[{} for _ in range(min(1000, n - i))])
        conn.execute("ANALYZE procrastinate_jobs")  # fresh stats after the fill
        procs = [common.start(WORKER, env=_env(cfg), log=log) for _ in range(workers)]
        try:
            r = common.measure_drain(_remaining(conn), n, procs, cfg["timeout"], "procrastinate worker", log)
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
    app, noop = _app(cfg)
    n = cfg["n_drain"][SYSTEM]
    with common.pg_connect(cfg["db"]) as conn, app.open():
        _reset(conn)
        for i in range(0, n, 1000):
            noop.batch_defer(*[{} for _ in range(min(1000, n - i))])
        conn.execute("ANALYZE procrastinate_jobs")  # fresh stats after the fill
        out = common.drain_then_latency(
            cfg, lambda lat_env, log: [common.start(WORKER, env={**_env(cfg), **lat_env}, log=log)],
            _remaining(conn), n, lambda t0: noop.defer(t0=t0), "procrastinate-drain1",
            cleanup=lambda: _reset(conn))
        _reset(conn)
    return out


def t_drain2(cfg):
    return _drain(cfg, 2, "drain2")


def t_latency(cfg):
    app, noop = _app(cfg)
    lat = common.LatencyFile("procrastinate")
    log = common.log_path("procrastinate-latency")
    with common.pg_connect(cfg["db"]) as conn, app.open():
        _reset(conn)
        p = common.start(WORKER, env={**_env(cfg), **lat.env}, log=log)
        try:
            r = common.measure_latency(lambda t0: noop.defer(t0=t0), lat, cfg["n_lat"], [p],
                                       timeout=cfg["timeout"], what="procrastinate worker", log=log)
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
