"""eventjobs, the job half: `noop.enqueue()`, `eventjobs.enqueue_many()`, `runworker`.

"1 / 2 workers" is `runworker --concurrency 1 / 2` (one supervisor, 1 or 2 child
processes each running one job at a time).

Scale tests use their own databases, filled once per invocation (setup_scale):
  bench_eventjobs_fin: 1,000,000 finished (SUCCESSFUL) jobs, cloned in SQL from a
                        job enqueued through the public API;
  bench_eventjobs_fut: 200,000 future-dated jobs, enqueued through enqueue_many with
                        run_after one day ahead (status SCHEDULED).
"""

from __future__ import annotations

import datetime as dt
import time

import common

from systems import _django as dj

SYSTEM = "eventjobs"
TABLE = "eventjobs_job"


def WORKER(conc: int) -> list[str]:
    return [*dj.MANAGE, "runworker", "--concurrency", str(conc), "--queue", "default"]


def _init(cfg, db=None):
    cfg["system"] = SYSTEM
    if db:
        cfg["db"] = db
    try:
        dj.setup_django(SYSTEM, cfg["db"])
    except ImportError as exc:
        raise RuntimeError(f"eventjobs is not importable ({exc}); is it installed (-e ..)?") from exc
    from django.tasks import task_backends

    backend = task_backends["default"]
    if type(backend).__module__ != "eventjobs.backends":
        raise RuntimeError(f"TASKS default backend is {type(backend)!r}, not eventjobs")


def _enqueue_many():
    import eventjobs

    try:
        return eventjobs.enqueue_many
    except AttributeError:
        raise RuntimeError("eventjobs.enqueue_many is missing (bulk enqueue API)") from None


def setup(cfg):
    _init(cfg)
    dj.migrate()


def _reset():
    dj.raw(f"TRUNCATE {TABLE} RESTART IDENTITY")


def _remaining() -> int:
    # One count per status, so each is answered from its partial index: a single
    # `status IN (...)` count would scan the whole table (1M rows in the scale tests)
    # 40 times a second and slow the worker it is measuring.
    return dj.count(
        f"SELECT (SELECT count(*) FROM {TABLE} WHERE status = 'READY')"
        f" + (SELECT count(*) FROM {TABLE} WHERE status = 'RUNNING')")


def _check_all_successful(expect_min: int) -> None:
    rows = dict(dj.raw(f"SELECT status, count(*) FROM {TABLE} GROUP BY status"))
    bad = {k: v for k, v in rows.items() if k != "SUCCESSFUL"}
    if bad or rows.get("SUCCESSFUL", 0) < expect_min:
        raise RuntimeError(f"jobs not all successful after drain: {rows}")


def _bulk(n: int, task=None, chunk: int = 1000) -> None:
    enqueue_many = _enqueue_many()
    task = task or dj.noop_task()
    for i in range(0, n, chunk):
        enqueue_many(task, [((), {})] * min(chunk, n - i))


def t_enqueue(cfg):
    _init(cfg)
    _reset()
    out = {"enq1": dj.enqueue_1by1(cfg)}
    _reset()
    try:
        enqueue_many = _enqueue_many()
        noop = dj.noop_task()
        batch = [((), {})] * 1000
        out["enqbulk"] = common.timed_loop(lambda i: enqueue_many(noop, batch),
                                           max(1, cfg["n_bulk"] // 1000), warmup=1) * 1000
    except Exception as exc:
        out["enqbulk"] = f"error: {type(exc).__name__}: {exc}"
    _reset()
    return out


def _fill(n):
    try:
        _bulk(n)
    except RuntimeError:  # no enqueue_many: one transaction of single enqueues
        dj.fill_in_one_transaction(n)


def _drain(cfg, conc, n, reset=True):
    if reset:
        _reset()
    before = dj.count(f"SELECT count(*) FROM {TABLE} WHERE status = 'SUCCESSFUL'")
    r = dj.drain(cfg, _fill, _remaining, [WORKER(conc)], f"eventjobs-drain{conc}", n,
                 table=TABLE)
    if reset:
        _check_all_successful(n)
    else:
        after = dj.count(f"SELECT count(*) FROM {TABLE} WHERE status = 'SUCCESSFUL'")
        if after - before != n:
            raise RuntimeError(f"only {after - before} of {n} jobs ended SUCCESSFUL")
    return r


def t_drain1(cfg):
    """Drain with 1 worker, then the latency test on that worker once idle."""
    _init(cfg)
    _reset()
    n = cfg["n_drain"][SYSTEM]

    def between():
        _check_all_successful(n)
        _reset()

    out = dj.drain_latency(cfg, _fill, _remaining, WORKER(1), "eventjobs-drain1", n,
                           cleanup=between, table=TABLE)
    _reset()
    return out


def t_drain2(cfg):
    _init(cfg)
    r = _drain(cfg, 2, cfg["n_drain"][SYSTEM])
    _reset()
    return {"drain2": r["rate"]}


def t_latency(cfg):
    _init(cfg)
    _reset()
    r = dj.latency(cfg, WORKER(1), "eventjobs-latency")
    _reset()
    return {"lat_p50": r["p50"], "lat_p99": r["p99"]}


# ---------------------------------------------------------------------------
# scale


def _clone_finished(n: int) -> None:
    """Insert n SUCCESSFUL jobs by cloning one job row in SQL (fast, same shape)."""
    noop = dj.noop_task()
    noop.enqueue()
    cols = [c for (c,) in dj.raw(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "AND column_name <> 'id' ORDER BY ordinal_position", [TABLE])]
    override = {
        "status": "'SUCCESSFUL'",
        "started_at": "now() - interval '1 day'",
        "finished_at": "now() - interval '1 day'",
        "last_attempted_at": "now() - interval '1 day'",
        "enqueued_at": "now() - interval '1 day'",
        "run_after": "now() - interval '1 day'",
        "attempt": "1",
        "lease_token": "NULL",
        "lease_expires_at": "NULL",
    }
    sel = ", ".join(override.get(c, f"t.{c}") for c in cols)
    template = dj.raw(f"SELECT max(id) FROM {TABLE}")[0][0]
    step = 100_000
    for i in range(0, n, step):
        k = min(step, n - i)
        dj.raw(f"INSERT INTO {TABLE} ({', '.join(cols)}) SELECT {sel} FROM {TABLE} t, "
               f"generate_series(1, %s) WHERE t.id = %s", [k, template])
    dj.raw(f"DELETE FROM {TABLE} WHERE id = %s", [template])
    dj.raw(f"VACUUM ANALYZE {TABLE}")


def setup_scale_fin(cfg):
    _init(cfg)
    dj.migrate()
    _clone_finished(cfg["scale_finished"])


def setup_scale_fut(cfg):
    _init(cfg)
    dj.migrate()
    noop = dj.noop_task().using(run_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    _bulk(cfg["scale_future"], task=noop, chunk=5000)
    dj.raw(f"VACUUM ANALYZE {TABLE}")
    n = dj.count(f"SELECT count(*) FROM {TABLE} WHERE run_after > now()")
    if n < cfg["scale_future"]:
        raise RuntimeError(f"only {n} future-dated jobs after fill")


def _scale(cfg, prefix):
    n = cfg["n_drain_scale"]
    # Remove the previous pass's finished jobs in the future-dated DB (keep 200k future only);
    # the finished DB keeps growing a little (>= 1M finished).
    if prefix == "fut":
        dj.raw(f"DELETE FROM {TABLE} WHERE status = 'SUCCESSFUL'")
    r = _drain(cfg, 1, n, reset=False)
    lat = dj.latency(cfg, WORKER(1), f"eventjobs-{prefix}-latency")
    if prefix == "fut":
        dj.raw(f"DELETE FROM {TABLE} WHERE status = 'SUCCESSFUL'")
        left = dj.count(f"SELECT count(*) FROM {TABLE} WHERE status = 'SCHEDULED'")
        if left < cfg["scale_future"]:
            raise RuntimeError(f"future-dated jobs ran early: {left} left")
    return {f"s_{prefix}_drain": r["rate"], f"s_{prefix}_p50": lat["p50"],
            f"s_{prefix}_p99": lat["p99"]}


def t_scale_fin(cfg):
    _init(cfg, cfg["db_fin"])
    return _scale(cfg, "fin")


def t_scale_fut(cfg):
    _init(cfg, cfg["db_fut"])
    return _scale(cfg, "fut")


def t_rss(cfg):
    """Worker RSS (supervisor + child) after 10% and after 100% of n_rss jobs."""
    _init(cfg)
    _reset()
    n = cfg["n_rss"]
    _fill(n)
    dj.analyze(TABLE)
    log = common.log_path("eventjobs-rss")
    p = common.start(WORKER(1), env=dj.env_for(SYSTEM, cfg["db"]), log=log)
    samples = {}

    def on_progress(remaining):
        done = n - remaining
        if "early" not in samples and done >= n // 10:
            samples["early"] = common.pgroup_rss_mb(p)

    try:
        r = common.measure_drain(_remaining, n, [p], cfg["timeout_rss"], "runworker", log,
                                 on_progress=on_progress)
        time.sleep(0.3)
        samples["end"] = common.pgroup_rss_mb(p)
    finally:
        common.stop(p)
    _check_all_successful(n)
    _reset()
    return {"rss_w_early": samples.get("early"), "rss_w_end": samples["end"],
            "rss_w_rate": r["rate"]}


TESTS = {
    "enqueue": (t_enqueue, ["enq1", "enqbulk"]),
    "drain1": (t_drain1, ["drain1", "startup", "lat_p50", "lat_p99"]),
    "drain2": (t_drain2, ["drain2"]),
    "latency": (t_latency, ["lat_p50", "lat_p99"]),
    "scale_fin": (t_scale_fin, ["s_fin_drain", "s_fin_p50", "s_fin_p99"]),
    "scale_fut": (t_scale_fut, ["s_fut_drain", "s_fut_p50", "s_fut_p99"]),
    "rss": (t_rss, ["rss_w_early", "rss_w_end", "rss_w_rate"]),
}
