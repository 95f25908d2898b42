"""Celery + Redis broker: `delay()`, prefork pool, prefetch x4, no result backend.

Worker flags: --without-mingle --without-gossip (they only shorten start-up here: mingle
waits ~1 s for replies from other workers; there are none).
"2 workers" is one worker with `--concurrency 2` (Celery's default on 2 CPUs).
Completion is counted with one Redis INCR per task (Celery prefetches, so the
broker queue does not show completion).
"""

from __future__ import annotations

import os
import sys

import common

SYSTEM = "celery"
BROKER = f"{common.REDIS_URL_BASE}/15"
KEYS = ["bench_celery", "bench:celery:done", "unacked", "unacked_index", "unacked_mutex",
        "_kombu.binding.bench_celery"]


def _env():
    return {"BENCH_CELERY_BROKER": BROKER, "PYTHONPATH": str(common.BENCH_DIR)}


def _worker(concurrency):
    return [sys.executable, "-m", "celery", "-A", "peers.celery_app", "worker",
            "--concurrency", str(concurrency), "-P", "prefork", "-Q", "bench_celery",
            "-l", "WARNING", "--without-mingle", "--without-gossip"]


def _setup():
    os.environ.update(_env())
    import redis
    from peers.celery_app import COUNTER, noop

    r = redis.Redis.from_url(BROKER)
    r.delete(*KEYS)
    return r, noop, COUNTER


def t_enqueue(cfg):
    r, noop, _ = _setup()
    try:
        return {"enq1": common.timed_loop(lambda i: noop.delay(), cfg["n_enq"])}
    finally:
        r.delete(*KEYS)


def _drain(cfg, conc, key):
    r, noop, counter = _setup()
    n = cfg["n_drain"][SYSTEM]
    for _ in range(n):
        noop.delay()
    log = common.log_path(f"celery-drain{conc}")
    p = common.start(_worker(conc), env=_env(), log=log)
    try:
        res = common.measure_drain(lambda: n - int(r.get(counter) or 0), n, [p],
                                   cfg["timeout"], "celery worker", log)
    finally:
        common.stop(p)
        r.delete(*KEYS)
    out = {key: res["rate"]}
    if conc == 1:
        out["startup"] = res["startup"]
    return out


def t_drain1(cfg):
    """Drain with 1 worker, then the latency test on that worker once idle."""
    r, noop, counter = _setup()
    n = cfg["n_drain"][SYSTEM]
    for _ in range(n):
        noop.delay()
    try:
        return common.drain_then_latency(
            cfg, lambda lat_env, log: [common.start(_worker(1), env={**_env(), **lat_env}, log=log)],
            lambda: n - int(r.get(counter) or 0), n, lambda t0: noop.delay(t0=t0),
            "celery-drain1")
    finally:
        r.delete(*KEYS)


def t_drain2(cfg):
    return _drain(cfg, 2, "drain2")


def t_latency(cfg):
    r, noop, _ = _setup()
    lat = common.LatencyFile("celery")
    log = common.log_path("celery-latency")
    p = common.start(_worker(1), env={**_env(), **lat.env}, log=log)
    try:
        res = common.measure_latency(lambda t0: noop.delay(t0=t0), lat, cfg["n_lat"], [p],
                                     timeout=cfg["timeout"], what="celery worker", log=log)
    finally:
        common.stop(p)
        lat.cleanup()
        r.delete(*KEYS)
    return {"lat_p50": res["p50"], "lat_p99": res["p99"]}


TESTS = {
    "enqueue": (t_enqueue, ["enq1"]),
    "drain1": (t_drain1, ["drain1", "startup", "lat_p50", "lat_p99"]),
    "drain2": (t_drain2, ["drain2"]),
    "latency": (t_latency, ["lat_p50", "lat_p99"]),
}
