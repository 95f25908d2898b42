"""PgQueuer as its maintainers tune it for short jobs: `pgq run` on asyncpg with uvloop
(used by its CLI whenever installed), a larger --batch-size for sub-second jobs (its
performance guide; the size is the best of tools/pgq_batch_sweep.py here), its recommended autovacuum settings (`pgq autovac`, applied through
Queries.optimize_autovacuum at setup), durable tables (its default, as eventjobs).

Enqueue goes through SyncQueries + SyncPsycopgDriver (sync code, as Django code would);
bulk through its list enqueue. Drains run `pgq run --mode drain` (it exits once the
queue is empty) and are timed from pgqueuer_log, its own status log: the first
'picked' row and the last 'successful' row. The CLI runs through peers/pgq_cli.py (the
typer workaround of peers-baseline.md).
"""

from __future__ import annotations

import asyncio
import sys

import common
import measure

SYSTEM = "pgqueuer"
CLI = [sys.executable, str(common.BENCH_DIR / "peers" / "pgq_cli.py"), "run",
       "--log-level", "WARNING"]
APP = "peers.pgq_app:factory"


def _cmd(cfg, drain: bool) -> list[str]:
    """`pgq run` with the batch size the sweep chose (plan.py "pgq_batch", see
    tools/pgq_batch_sweep.py)."""
    return [*CLI, "--batch-size", str(cfg["pgq_batch"]), *(["--mode", "drain"] if drain else []),
            APP]


def _env(cfg):
    return {"BENCH_DSN": common.dsn(cfg["db"]), "PYTHONPATH": str(common.BENCH_DIR)}


def setup(cfg):
    import asyncpg
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries

    async def go():
        conn = await asyncpg.connect(common.dsn(cfg["db"]))
        try:
            q = Queries(AsyncpgDriver(conn))
            await q.install()
            await q.optimize_autovacuum()
        finally:
            await conn.close()

    asyncio.run(go())


def _q(conn):
    from pgqueuer.adapters.drivers.psycopg import SyncPsycopgDriver
    from pgqueuer.adapters.persistence.queries import SyncQueries

    return SyncQueries(SyncPsycopgDriver(conn))


def _reset(conn):
    conn.execute("TRUNCATE pgqueuer, pgqueuer_log")


def _bulk(q, n):
    for i in range(0, n, 1000):
        k = min(1000, n - i)
        q.enqueue(["noop"] * k, [None] * k, [0] * k)


def _fill_one_by_one(cfg, n):
    """n single enqueues in one transaction (as eventjobs' udrain fill). Its driver wants
    an autocommit connection; an explicit transaction block groups the calls."""
    with common.pg_connect(cfg["db"]) as conn:
        q = _q(conn)
        with conn.transaction():
            for _ in range(n):
                q.enqueue("noop", None)


def _span(conn, n, what):
    row = conn.execute(
        "SELECT extract(epoch FROM min(created) FILTER (WHERE status = 'picked')),"
        " extract(epoch FROM max(created) FILTER (WHERE status = 'successful')),"
        " count(*) FILTER (WHERE status = 'successful') FROM pgqueuer_log").fetchone()
    left = common.scalar(conn, "SELECT count(*) FROM pgqueuer")
    if row[2] != n or left:
        raise RuntimeError(f"{what}: {row[2]} of {n} jobs successful, {left} left in the queue")
    return float(row[0]), float(row[1])


def t_enqueue(cfg):
    with common.pg_connect(cfg["db"]) as conn:
        q = _q(conn)
        _reset(conn)
        one = measure.timed_loop(lambda i: q.enqueue("noop", None), cfg["n_enq"])
        _reset(conn)
        n = max(1000, cfg["n_bulk"] // 1000 * 1000)
        rate = measure.timed_loop(lambda i: _bulk(q, 1000), n // 1000, warmup=1) * 1000
        _reset(conn)
    return {"enq1": one, "enqbulk": rate}


def _drain(cfg, procs: int, n: int, fill, what: str) -> dict:
    with common.pg_connect(cfg["db"]) as conn:
        _reset(conn)
        fill(conn)
        run = common.run_burst([_cmd(cfg, drain=True)] * procs, _env(cfg), cfg["timeout"], what,
                               common.log_path(what))
        first, last = _span(conn, n, what)
        f = measure.drain_figures(n, run, first, last, common.clock_offset(conn))
        _reset(conn)
    return f


def t_udrain(cfg):
    """Two `pgq run --mode drain` started together; spawn -> last job finished (its queue
    is empty then), first job picked -> last finished, spawn -> first picked."""
    n = cfg["n_udrain"][SYSTEM]
    f = _drain(cfg, 2, n, lambda conn: _fill_one_by_one(cfg, n), "pgqueuer-udrain")
    return {"udrain": f["to_empty"], "udrain_run": f["busy"],
            "uspawn": f["first_start"], "udrain_exit": f["total"]}


def t_drain1(cfg):
    n = cfg["n_drain"][SYSTEM]
    f = _drain(cfg, 1, n, lambda conn: _bulk(_q(conn), n), "pgqueuer-drain1")
    return {"drain1": f["busy"]}


def t_latency(cfg):
    with common.pg_connect(cfg["db"]) as conn:
        q = _q(conn)
        _reset(conn)
        r = measure.latency_run(_cmd(cfg, drain=False), _env(cfg),
                               lambda t0: q.enqueue("noop", repr(t0).encode()), cfg,
                               "pgqueuer-latency")
        _reset(conn)
    return {"lat_p50": r["p50"], "lat_p99": r["p99"]}


TESTS = {
    "enqueue": (t_enqueue, ["enq1", "enqbulk"]),
    "udrain": (t_udrain, ["udrain", "udrain_run", "uspawn", "udrain_exit"]),
    "drain1": (t_drain1, ["drain1"]),
    "latency": (t_latency, ["lat_p50", "lat_p99"]),
}
