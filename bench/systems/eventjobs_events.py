"""eventjobs, the event half: `publish()`, `publish_many()`, `consume bench` (group "bench").

The consumer is benchapp/consumers.py (`@eventjobs.consumer("bench")`, no-op handler).
Progress is read from the group's cursor rows (see Progress): exact and cheap to poll.
Events carry one of 1,000 keys so that 2 processes can share the group's partitions.
"""

from __future__ import annotations

import io
import sys
import time

import common

from systems import _django as dj

SYSTEM = "eventjobs"
GROUP = "bench"
CONSUMER = [*dj.MANAGE, "consume", GROUP]


def _init(cfg):
    cfg["system"] = SYSTEM
    try:
        dj.setup_django(SYSTEM, cfg["db"])
    except ImportError as exc:
        raise RuntimeError(f"eventjobs is not importable ({exc})") from exc
    import eventjobs

    missing = [n for n in ("publish", "publish_many", "consumer") if not hasattr(eventjobs, n)]
    if missing:
        raise RuntimeError(f"eventjobs event API missing: {', '.join(missing)}")
    return eventjobs


class Progress:
    """Exact progress of group "bench" over a backlog, from its cursor rows only.

    `eventjobs_status` caps lag at LAG_CAP (10,000) and counts events to get it, too
    costly to poll 40 times a second. Instead: read the backlog's (id, key_hash) once,
    bucket the ids by partition (abs(key_hash) % partitions, 0 without a key), and
    each poll reads the group's few cursor rows and bisects. Valid because the backlog
    is published by this process alone, in order, so (txid, id) order is id order.
    """

    def __init__(self, after_id: int):
        from bisect import bisect_right

        self._bisect = bisect_right
        rows = dj.raw("SELECT id, key_hash FROM eventjobs_event WHERE id > %s ORDER BY id",
                      [after_id])
        parts = dj.raw("SELECT partitions FROM eventjobs_consumer_group WHERE name = %s",
                       [GROUP])
        if parts:
            self.partitions = int(parts[0][0])
        else:
            from eventjobs.conf import eventjobs_settings

            self.partitions = eventjobs_settings().partitions
        self.ids: dict[int, list[int]] = {}
        for eid, kh in rows:
            p = 0 if kh is None else abs(int(kh)) % self.partitions
            self.ids.setdefault(p, []).append(eid)
        self.n = len(rows)

    def remaining(self) -> int:
        cur = dj.raw("SELECT partition, event_id FROM eventjobs_cursor WHERE group_name = %s",
                     [GROUP])
        done = sum(self._bisect(self.ids.get(p, ()), e) for p, e in cur)
        return self.n - done


def _last_id() -> int:
    return int(dj.raw("SELECT coalesce(max(id), 0) FROM eventjobs_event")[0][0])


def _publish_tracked(ej, n, chunk=10000) -> Progress:
    before = _last_id()
    _publish_backlog(ej, n, chunk)
    dj.analyze("eventjobs_event")
    pr = Progress(before)
    if pr.n != n:
        raise RuntimeError(f"{pr.n} events in the log after publishing {n}")
    return pr


def _reset():
    tables = [t for (t,) in dj.raw(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename LIKE 'eventjobs\\_%%' AND tablename NOT IN ('eventjobs_job', "
        "'eventjobs_worker')")]
    if tables:
        dj.raw(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


KEYS = 1000  # events carry one of 1,000 keys, so a group's key partitions can spread


def _event(i, data=None):
    return {"type": "bench.noop", "data": data, "key": f"k{i % KEYS}", "source": None}


def _publish_backlog(ej, n, chunk=10000):
    batch = [_event(i) for i in range(chunk)]
    for i in range(0, n, chunk):
        ej.publish_many(batch[: min(chunk, n - i)])


def setup(cfg):
    _init(cfg)
    dj.migrate()


def t_publish(cfg):
    ej = _init(cfg)
    _reset()
    out = {"pub1": common.timed_loop(lambda i: ej.publish("bench.noop", key=f"k{i % KEYS}"),
                                     cfg["n_pub"])}
    batch = [_event(i) for i in range(1000)]
    out["pubbulk"] = common.timed_loop(lambda i: ej.publish_many(batch),
                                       max(1, cfg["n_pubbulk"] // 1000), warmup=1) * 1000
    _reset()
    return out


def _consume(cfg, procs_n, progress, what, window=None):
    """Start procs_n `consume bench` processes on a backlog of n; rate of lag decrease.

    Without `window`: until the lag is 0. With it: over `window` seconds after the
    first observed progress (for the 1M backlog).
    """
    log = common.log_path(what)
    procs = [common.start(CONSUMER, env=dj.env_for(SYSTEM, cfg["db"]), log=log)
             for _ in range(procs_n)]
    try:
        n = progress.remaining()
        if window is None:
            return common.measure_drain(progress.remaining, n, procs, cfg["timeout"], "consume",
                                        log)
        t_start = time.perf_counter()
        first = None
        while True:
            lag = progress.remaining()
            now = time.perf_counter()
            if first is None and lag < n:
                first = (now, lag)
            if first and (now - first[0] >= window or lag == 0):
                return {"rate": (first[1] - lag) / max(now - first[0], 1e-6),
                        "startup": first[0] - t_start}
            if now - t_start > cfg["timeout"]:
                raise RuntimeError("consumer made no progress")
            common.check_alive(procs, "consume", log)
            time.sleep(common.POLL_INTERVAL)
    finally:
        for p in procs:
            common.stop(p)


def _consume_test(cfg, procs_n, key):
    ej = _init(cfg)
    _reset()
    pr = _publish_tracked(ej, cfg["n_backlog"])
    r = _consume(cfg, procs_n, pr, f"eventjobs-consume{procs_n}")
    _reset()
    return {key: r["rate"]}


def t_consume1(cfg):
    """Consume with 1 process, then the latency test on that consumer once idle."""
    ej = _init(cfg)
    _reset()
    pr = _publish_tracked(ej, cfg["n_backlog"])
    env = dj.env_for(SYSTEM, cfg["db"])
    out = common.drain_then_latency(
        cfg, lambda lat_env, log: [common.start(CONSUMER, env={**env, **lat_env}, log=log)],
        pr.remaining, pr.n, lambda t0: ej.publish("bench.noop", {"t0": t0}, key=f"k{int(t0 * 1e6) % KEYS}"), "eventjobs-consume1",
        keys=("cons1", "_startup", "elat_p50", "elat_p99"))
    _reset()
    return out


def t_consume2(cfg):
    return _consume_test(cfg, 2, "cons2")


def t_latency(cfg):
    ej = _init(cfg)
    _reset()
    lat = common.LatencyFile("eventjobs-events")
    log = common.log_path("eventjobs-elatency")
    p = common.start(CONSUMER, env={**dj.env_for(SYSTEM, cfg["db"]), **lat.env}, log=log)
    try:
        r = common.measure_latency(lambda t0: ej.publish("bench.noop", {"t0": t0}, key=f"k{int(t0 * 1e6) % KEYS}"), lat,
                                   cfg["n_lat"], [p], timeout=cfg["timeout"],
                                   what="consume", log=log)
    finally:
        common.stop(p)
        lat.cleanup()
    _reset()
    return {"elat_p50": r["p50"], "elat_p99": r["p99"]}


# ---------------------------------------------------------------------------
# scale


def setup_scale(cfg):
    ej = _init(cfg)
    dj.migrate()
    _publish_backlog(ej, cfg["scale_events"], chunk=20000)
    dj.raw("VACUUM ANALYZE eventjobs_event")


def t_scale_consume(cfg):
    """Consume rate over a window, with the backlog topped up to scale_events first."""
    ej = _init(cfg)
    target = cfg["scale_events"]
    pr = Progress(0)
    left = pr.remaining()
    if left < target:
        _publish_backlog(ej, target - left, chunk=20000)
        dj.analyze("eventjobs_event")
        pr = Progress(0)
    r = _consume(cfg, 1, pr, "eventjobs-scale-consume", window=cfg["scale_window"])
    # Replay from the start next pass (the public command), so the backlog is 1M again
    # without publishing it anew; if that fails, the next pass tops the backlog up.
    try:
        from django.core.management import call_command

        call_command("consumer_group", "reset", GROUP, "--to-beginning",
                     stdout=io.StringIO(), stderr=io.StringIO())
    except Exception as exc:  # noqa: BLE001 - fall back to the top-up
        print(f"consumer_group reset failed: {exc}", file=sys.stderr)
    return {"s_ev_cons": r["rate"]}


def t_rss(cfg):
    """Consumer RSS after 10% and after all of n_rss events."""
    ej = _init(cfg)
    _reset()
    n = cfg["n_rss"]
    pr = _publish_tracked(ej, n, chunk=20000)
    samples = {}
    holder = {}

    def on_progress(lag):
        if "early" not in samples and n - lag >= n // 10 and "p" in holder:
            samples["early"] = common.pgroup_rss_mb(holder["p"])

    log = common.log_path("eventjobs-rss-consume")
    p = common.start(CONSUMER, env=dj.env_for(SYSTEM, cfg["db"]), log=log)
    holder["p"] = p
    try:
        r = common.measure_drain(pr.remaining, n, [p], cfg["timeout_rss"], "consume", log,
                                 on_progress=on_progress)
        time.sleep(0.3)
        samples["end"] = common.pgroup_rss_mb(p)
    finally:
        common.stop(p)
    _reset()
    return {"rss_c_early": samples.get("early"), "rss_c_end": samples["end"],
            "rss_c_rate": r["rate"]}


TESTS = {
    "publish": (t_publish, ["pub1", "pubbulk"]),
    "consume1": (t_consume1, ["cons1", "elat_p50", "elat_p99"]),
    "consume2": (t_consume2, ["cons2"]),
    "latency": (t_latency, ["elat_p50", "elat_p99"]),
    "scale_consume": (t_scale_consume, ["s_ev_cons"]),
    "rss": (t_rss, ["rss_c_early", "rss_c_end", "rss_c_rate"]),
}
