"""Redis Streams as the event-log peer: XADD / XREADGROUP COUNT 100 / XACK (redis-py, hiredis)."""

from __future__ import annotations

import sys

import common

SYSTEM = "redis_streams"
URL = f"{common.REDIS_URL_BASE}/14"
STREAM = "bench:stream"
GROUP = "bench"


def _r():
    import redis

    r = redis.Redis.from_url(URL)
    r.delete(STREAM)
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    return r


def _consumer(name):
    return [sys.executable, str(common.BENCH_DIR / "peers" / "redis_consumer.py"), URL, STREAM,
            GROUP, name]


def _remaining(r):
    def f():
        g = r.xinfo_groups(STREAM)[0]
        return int(g["lag"] or 0) + int(g["pending"] or 0)

    return f


def _fill(r, n, per_pipe=500):
    for i in range(0, n, per_pipe):
        pipe = r.pipeline(transaction=False)
        for _ in range(min(per_pipe, n - i)):
            pipe.xadd(STREAM, {"type": "bench.noop"})
        pipe.execute()


def t_publish(cfg):
    r = _r()
    try:
        one = common.timed_loop(lambda i: r.xadd(STREAM, {"type": "bench.noop"}), cfg["n_pub"])
        r.delete(STREAM)
        n = cfg["n_pubbulk"]
        rate = common.timed_loop(lambda i: _fill(r, 500), max(1, n // 500), warmup=1) * 500
        return {"pub1": one, "pubbulk": rate}
    finally:
        r.delete(STREAM)


def _consume(cfg, procs_n, key):
    r = _r()
    n = cfg["n_backlog"]
    _fill(r, n)
    log = common.log_path(f"redis-consume{procs_n}")
    procs = [common.start(_consumer(f"c{i}"), log=log) for i in range(procs_n)]
    try:
        res = common.measure_drain(_remaining(r), n, procs, cfg["timeout"], "redis consumer", log)
    finally:
        for p in procs:
            common.stop(p)
        r.delete(STREAM)
    return {key: res["rate"]}


def t_consume1(cfg):
    """Consume with 1 consumer, then the latency test on that consumer once idle."""
    r = _r()
    n = cfg["n_backlog"]
    _fill(r, n)
    try:
        return common.drain_then_latency(
            cfg, lambda lat_env, log: [common.start(_consumer("c0"), env=lat_env, log=log)],
            _remaining(r), n, lambda t0: r.xadd(STREAM, {"t0": repr(t0)}), "redis-consume1",
            keys=("cons1", "_startup", "elat_p50", "elat_p99"))
    finally:
        r.delete(STREAM)


def t_consume2(cfg):
    return _consume(cfg, 2, "cons2")


def t_latency(cfg):
    r = _r()
    lat = common.LatencyFile("redis")
    log = common.log_path("redis-latency")
    p = common.start(_consumer("lat"), env=lat.env, log=log)
    try:
        res = common.measure_latency(lambda t0: r.xadd(STREAM, {"t0": repr(t0)}), lat,
                                     cfg["n_lat"], [p], timeout=cfg["timeout"],
                                     what="redis consumer", log=log)
    finally:
        common.stop(p)
        lat.cleanup()
        r.delete(STREAM)
    return {"elat_p50": res["p50"], "elat_p99": res["p99"]}


TESTS = {
    "publish": (t_publish, ["pub1", "pubbulk"]),
    "consume1": (t_consume1, ["cons1", "elat_p50", "elat_p99"]),
    "consume2": (t_consume2, ["cons2"]),
    "latency": (t_latency, ["elat_p50", "elat_p99"]),
}
