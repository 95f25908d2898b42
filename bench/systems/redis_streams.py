"""Redis Streams as the event-log peer: XADD, and consumers that pipeline XACK with the
next XREADGROUP COUNT 100 (peers/redis_consumer.py), redis-py with hiredis.

Consume figures are timed as eventjobs' are: the consumer (--burst: it exits when a read
returns nothing) notes when it handled its first entry; events/s from then to its exit.
"""

from __future__ import annotations

import sys

import common
import measure

SYSTEM = "redis_streams"
URL = f"{common.REDIS_URL_BASE}/14"
STREAM = "bench:stream"
GROUP = "bench"
PIPE = 1000  # entries per pipeline for bulk XADD, as the others' 1,000 per call


def _r():
    import redis

    r = redis.Redis.from_url(URL)
    r.delete(STREAM)
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    return r


def _consumer(name, burst=False):
    return [sys.executable, str(common.BENCH_DIR / "peers" / "redis_consumer.py"), URL, STREAM,
            GROUP, name, *(["--burst"] if burst else [])]


def _fill(r, n, per_pipe=PIPE):
    for i in range(0, n, per_pipe):
        pipe = r.pipeline(transaction=False)
        for _ in range(min(per_pipe, n - i)):
            pipe.xadd(STREAM, {"type": "bench.noop"})
        pipe.execute()


def t_publish(cfg):
    r = _r()
    try:
        one = measure.timed_loop(lambda i: r.xadd(STREAM, {"type": "bench.noop"}), cfg["n_pub"])
        r.delete(STREAM)
        n = cfg["n_pubbulk"]
        rate = measure.timed_loop(lambda i: _fill(r, PIPE), max(1, n // PIPE), warmup=1) * PIPE
        return {"pub1": one, "pubbulk": rate}
    finally:
        r.delete(STREAM)


def _consume(cfg, procs_n, key, n):
    r = _r()
    _fill(r, n)
    what = f"redis-consume{procs_n}"
    first = measure.FirstFile(what)
    try:
        run = common.run_burst([_consumer(f"c{i}", burst=True) for i in range(procs_n)],
                               first.env, cfg["timeout"], what, common.log_path(what))
        g = r.xinfo_groups(STREAM)[0]
        if int(g["lag"] or 0) or int(g["pending"] or 0):
            raise RuntimeError(f"{what}: lag {g['lag']}, pending {g['pending']} after --burst")
        t1 = first.earliest()
    finally:
        r.delete(STREAM)
    return {key: n / max(run["exit"] - t1, 1e-6)}


def t_fresh(cfg):
    """Redis has no planner statistics: the same backlog consume, a new stream each time."""
    return _consume(cfg, 1, "cons_fresh", cfg["n_fresh"])


def t_consume1(cfg):
    return _consume(cfg, 1, "cons1", cfg["n_backlog"])


def t_consume2(cfg):
    return _consume(cfg, 2, "cons2", cfg["n_backlog"])


def t_latency(cfg):
    r = _r()
    try:
        res = measure.latency_run(_consumer("lat"), {}, lambda t0: r.xadd(STREAM, {"t0": repr(t0)}),
                                 cfg, "redis-latency")
    finally:
        r.delete(STREAM)
    return {"elat_p50": res["p50"], "elat_p99": res["p99"]}


TESTS = {
    "publish": (t_publish, ["pub1", "pubbulk"]),
    "fresh": (t_fresh, ["cons_fresh"]),
    "consume1": (t_consume1, ["cons1"]),
    "consume2": (t_consume2, ["cons2"]),
    "latency": (t_latency, ["elat_p50", "elat_p99"]),
}
