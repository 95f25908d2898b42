"""Procrastinate: sync `defer()`, `batch_defer()` for bulk, `procrastinate worker` with
--concurrency (its throughput knob: jobs run in parallel in one process).

Drains run `worker --one-shot` (it exits once the queue is empty) and are timed from
procrastinate_events, its own job-event log: the first 'started' and the last
'succeeded'.
"""

from __future__ import annotations

import os
import sys

import common
import measure

SYSTEM = "procrastinate"
BASE = [sys.executable, "-m", "procrastinate", "--app=peers.procr_app.app", "worker",
        "--queues", "default"]


def _worker(cfg) -> list[str]:
    """--concurrency from plan.py (10: its best in peers-baseline.md, 598 vs 287 jobs/s)."""
    return [*BASE, "--concurrency", str(cfg["procrastinate_concurrency"])]


def _env(cfg):
    return {"BENCH_DSN": common.dsn(cfg["db"]), "PYTHONPATH": str(common.BENCH_DIR)}


def _app(cfg):
    os.environ.update(_env(cfg))
    from peers.procr_app import app, noop

    return app, noop


def setup(cfg):
    app, _ = _app(cfg)
    with app.open():
        app.schema_manager.apply_schema()


def _reset(conn):
    conn.execute("TRUNCATE procrastinate_jobs CASCADE")


def _bulk(noop, n):
    for i in range(0, n, 1000):
        noop.batch_defer(*[{} for _ in range(min(1000, n - i))])


def t_enqueue(cfg):
    app, noop = _app(cfg)
    with common.pg_connect(cfg["db"]) as conn, app.open():
        _reset(conn)
        one = measure.timed_loop(lambda i: noop.defer(), cfg["n_enq"])
        _reset(conn)
        batch = [{} for _ in range(1000)]
        rate = measure.timed_loop(lambda i: noop.batch_defer(*batch),
                                 max(1, cfg["n_bulk"] // 1000), warmup=1) * 1000
        _reset(conn)
    return {"enq1": one, "enqbulk": rate}


def _span(conn, n, what):
    row = conn.execute(
        "SELECT extract(epoch FROM min(at) FILTER (WHERE type = 'started')),"
        " extract(epoch FROM max(at) FILTER (WHERE type = 'succeeded')),"
        " count(*) FILTER (WHERE type = 'succeeded') FROM procrastinate_events").fetchone()
    if row[2] != n:
        raise RuntimeError(f"{what}: {row[2]} of {n} jobs succeeded")
    return float(row[0]), float(row[1])


def _drain(cfg, procs, n, fill, what):
    app, noop = _app(cfg)
    with common.pg_connect(cfg["db"]) as conn, app.open():
        _reset(conn)
        fill(noop)
        run = common.run_burst([[*_worker(cfg), "--one-shot"]] * procs, _env(cfg), cfg["timeout"],
                               what, common.log_path(what))
        first, last = _span(conn, n, what)
        f = measure.drain_figures(n, run, first, last, common.clock_offset(conn))
        _reset(conn)
    return f


def t_udrain(cfg):
    """Two `worker --one-shot` on n jobs deferred one by one (each its own transaction:
    the sync defer() commits on its own); spawn -> last job finished."""
    n = cfg["n_udrain"][SYSTEM]
    f = _drain(cfg, 2, n, lambda noop: [noop.defer() for _ in range(n)], "procrastinate-udrain")
    return {"udrain": f["to_empty"], "udrain_run": f["busy"],
            "uspawn": f["first_start"]}


def t_drain1(cfg):
    n = cfg["n_drain"][SYSTEM]
    f = _drain(cfg, 1, n, lambda noop: _bulk(noop, n), "procrastinate-drain1")
    return {"drain1": f["busy"]}


def t_latency(cfg):
    app, noop = _app(cfg)
    with common.pg_connect(cfg["db"]) as conn, app.open():
        _reset(conn)
        r = measure.latency_run(_worker(cfg), _env(cfg), lambda t0: noop.defer(t0=t0), cfg,
                               "procrastinate-latency")
        _reset(conn)
    return {"lat_p50": r["p50"], "lat_p99": r["p99"]}


TESTS = {
    "enqueue": (t_enqueue, ["enq1", "enqbulk"]),
    "udrain": (t_udrain, ["udrain", "udrain_run", "uspawn"]),
    "drain1": (t_drain1, ["drain1"]),
    "latency": (t_latency, ["lat_p50", "lat_p99"]),
}
