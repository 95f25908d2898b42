"""Celery + Redis broker as its maintainers run it for throughput: the prefork pool with
its default concurrency (one child per CPU) and default prefetch, no result backend,
`-l WARNING`. --without-mingle --without-gossip only shorten start-up (mingle waits about
1 s for replies from other workers; there are none).

No burst mode and no job table: the task's Redis counter records the first and the
N-th completion (peers/celery_app.py); the harness blocks on the latter (BLPOP), then
stops the workers.
"""

from __future__ import annotations

import os
import sys
import time

import common
import measure

SYSTEM = "celery"
BROKER = f"{common.REDIS_URL_BASE}/15"
KEYS = ["bench_celery", "bench:celery:done", "bench:celery:first", "bench:celery:last",
        "unacked", "unacked_index", "unacked_mutex", "_kombu.binding.bench_celery"]


def _env(expect=0):
    return {"BENCH_CELERY_BROKER": BROKER, "PYTHONPATH": str(common.BENCH_DIR),
            "BENCH_EXPECT": str(expect)}


def _worker(name):
    return [sys.executable, "-m", "celery", "-A", "peers.celery_app", "worker",
            "-P", "prefork", "-Q", "bench_celery", "-n", f"{name}@%h",
            "-l", "WARNING", "--without-mingle", "--without-gossip"]


def _setup():
    os.environ.update(_env())
    import redis
    from peers.celery_app import noop

    r = redis.Redis.from_url(BROKER)
    r.delete(*KEYS)
    return r, noop


def t_enqueue(cfg):
    r, noop = _setup()
    try:
        return {"enq1": measure.timed_loop(lambda i: noop.delay(), cfg["n_enq"])}
    finally:
        r.delete(*KEYS)


def _drain(cfg, procs, n, what):
    r, noop = _setup()
    for _ in range(n):
        noop.delay()
    log = common.log_path(what)
    spawn = time.time()
    ps = [common.start(_worker(f"w{i}"), env=_env(n), log=log) for i in range(procs)]
    try:
        deadline = time.monotonic() + cfg["timeout"]
        got = None
        while got is None:  # short blocking waits: redis-py times out long reads
            got = r.blpop("bench:celery:last", timeout=1)
            if got is None and time.monotonic() > deadline:
                raise RuntimeError(f"{what}: not done after {cfg['timeout']}s, "
                                   f"{r.get('bench:celery:done')} of {n}")
            if got is None:
                common.check_alive(ps, what, log)
        last = float(got[1])
        first = float(r.get("bench:celery:first"))
    finally:
        for p in ps:
            common.stop(p)
        r.delete(*KEYS)
    return {"to_empty": n / (last - spawn), "running": n / (last - first),
            "first": first - spawn}


def t_udrain(cfg):
    """Two `celery worker` (default concurrency each), spawn -> N-th completion."""
    f = _drain(cfg, 2, cfg["n_udrain"][SYSTEM], "celery-udrain")
    return {"udrain": f["to_empty"], "udrain_run": f["running"], "uspawn": f["first"]}


def t_drain1(cfg):
    f = _drain(cfg, 1, cfg["n_drain"][SYSTEM], "celery-drain1")
    return {"drain1": f["running"]}


def t_latency(cfg):
    r, noop = _setup()
    try:
        res = measure.latency_run(_worker("lat"), _env(), lambda t0: noop.delay(t0=t0), cfg,
                                 "celery-latency")
    finally:
        r.delete(*KEYS)
    return {"lat_p50": res["p50"], "lat_p99": res["p99"]}


TESTS = {
    "enqueue": (t_enqueue, ["enq1"]),
    "udrain": (t_udrain, ["udrain", "udrain_run", "uspawn"]),
    "drain1": (t_drain1, ["drain1"]),
    "latency": (t_latency, ["lat_p50", "lat_p99"]),
}
