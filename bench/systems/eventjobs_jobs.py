"""eventjobs, the job half, driven as a user drives it: `noop.enqueue()`,
`eventjobs.enqueue_many()` and `manage.py runworker` with its default options.

Every drain runs `runworker --burst` (it exits once nothing is due) and is timed by the
harness from spawn to exit; first start and last finish come afterwards from the jobs'
own started_at / finished_at. Nothing polls the job table while a drain runs.

The same tests run in two databases: `bench_eventjobs` (emptied between tests) and the
scale database (setup_scale: 1,000,000 finished jobs, 200,000 jobs scheduled for
tomorrow and the 1,000,000 old events of eventjobs_events.setup_scale), where each test
deletes only the rows it added, then VACUUMs.
"""

from __future__ import annotations

import datetime as dt
import time

import common
import measure

from systems import _django as dj

SYSTEM = "eventjobs"
TABLE = "eventjobs_job"
RUNWORKER = [*dj.MANAGE, "runworker"]


def _init(cfg):
    cfg["system"] = SYSTEM
    try:
        dj.setup_django(SYSTEM, cfg["db"])
    except ImportError as exc:
        raise RuntimeError(f"eventjobs is not importable ({exc}); is it installed (-e ..)?") from exc
    from django.tasks import task_backends

    backend = task_backends["default"]
    if type(backend).__module__ != "eventjobs.backends":
        raise RuntimeError(f"TASKS default backend is {type(backend)!r}, not eventjobs")


def _env(cfg, extra=None):
    return {**dj.env_for(SYSTEM, cfg["db"]), **(extra or {})}


def setup(cfg):
    _init(cfg)
    dj.migrate()


# ---------------------------------------------------------------------------
# the rows a test adds, and their removal


def _baseline() -> int:
    """Highest job id that belongs to the database's preloaded rows (0 if none)."""
    rows = dj.raw("SELECT to_regclass('bench_baseline') IS NOT NULL")
    if not rows[0][0]:
        return 0
    got = dj.raw("SELECT id FROM bench_baseline WHERE name = 'job'")
    return int(got[0][0]) if got else 0


def _cleanup(base: int) -> None:
    """Remove the rows tests added (none is the usual case before a test)."""
    if not dj.raw(f"SELECT 1 FROM {TABLE} WHERE id > %s LIMIT 1", [base]):
        return
    if base == 0:
        dj.raw(f"TRUNCATE {TABLE} RESTART IDENTITY")
    else:  # keep the preloaded rows; VACUUM so the next test does not walk dead ones
        dj.raw(f"DELETE FROM {TABLE} WHERE id > %s", [base])
        dj.raw(f"VACUUM {TABLE}")


def _span(base: int) -> dict:
    """First start, last finish (db epoch s) and outcome counts of the jobs after `base`."""
    row = dj.raw(
        f"SELECT extract(epoch FROM min(started_at)), extract(epoch FROM max(finished_at)),"
        f" count(*) FILTER (WHERE status = 'SUCCESSFUL'), count(*) FROM {TABLE}"
        " WHERE id > %s", [base])[0]
    return {"first": float(row[0] or 0), "last": float(row[1] or 0), "ok": row[2], "all": row[3]}


def _check(span: dict, n: int, what: str) -> None:
    if span["ok"] != n or span["all"] != n:
        raise RuntimeError(f"{what}: {span['ok']} of {n} jobs SUCCESSFUL ({span['all']} rows)")


def _bulk(n: int, task=None, chunk: int = 1000) -> None:
    import eventjobs

    task = task or dj.noop_task()
    for i in range(0, n, chunk):
        eventjobs.enqueue_many(task, [((), {})] * min(chunk, n - i))


# ---------------------------------------------------------------------------
# tests


def t_enqueue(cfg):
    import eventjobs

    _init(cfg)
    base = _baseline()
    _cleanup(base)
    out = {"enq1": dj.enqueue_1by1(cfg)}
    _cleanup(base)
    noop = dj.noop_task()
    batch = [((), {})] * 1000
    out["enqbulk"] = measure.timed_loop(lambda i: eventjobs.enqueue_many(noop, batch),
                                       max(1, cfg["n_bulk"] // 1000), warmup=1) * 1000
    _cleanup(base)
    return out


def _burst(cfg, procs: int, what: str, on_tick=None) -> dict:
    """Jobs are queued: run `procs` x `runworker --burst` (default options) until all exit."""
    return common.run_burst([[*RUNWORKER, "--burst"]] * procs, _env(cfg), cfg["timeout"],
                            what, common.log_path(what), on_tick=on_tick)


def t_udrain(cfg):
    """As a user runs it: n jobs enqueued one by one in one transaction, no ANALYZE; then
    two `runworker --burst` with default options, started together; spawn -> both exit."""
    _init(cfg)
    base = _baseline()
    _cleanup(base)
    n = cfg["n_udrain"][SYSTEM]
    dj.fill_in_one_transaction(n)
    run = _burst(cfg, 2, "eventjobs-udrain")
    span = _span(base)
    _check(span, n, "udrain")
    f = measure.drain_figures(n, run, span["first"], span["last"], dj.clock_offset())
    _cleanup(base)
    return {"udrain": f["total"], "udrain_run": f["running"], "uspawn": f["first_start"]}


def t_drain1(cfg):
    """One `runworker --burst` (default options) on n jobs enqueued in bulk:
    first job started -> last job finished."""
    _init(cfg)
    base = _baseline()
    _cleanup(base)
    n = cfg["n_drain"][SYSTEM]
    _bulk(n)
    run = _burst(cfg, 1, "eventjobs-drain1")
    span = _span(base)
    _check(span, n, "drain1")
    f = measure.drain_figures(n, run, span["first"], span["last"], dj.clock_offset())
    _cleanup(base)
    return {"drain1": f["busy"]}


def _send(task):
    return lambda t0: task.enqueue(t0=t0)


def t_latency(cfg):
    """enqueue -> start on an idle `runworker --queue default` (default options)."""
    _init(cfg)
    base = _baseline()
    _cleanup(base)
    r = measure.latency_run([*RUNWORKER, "--queue", "default"], _env(cfg),
                           _send(dj.noop_task()), cfg, "eventjobs-latency")
    _cleanup(base)
    return {"lat_p50": r["p50"], "lat_p99": r["p99"]}


def t_latency_load(cfg):
    """The latency test on queue `default` while `runworker --queue slow` drains a backlog."""
    _init(cfg)
    base = _baseline()
    _cleanup(base)
    noop = dj.noop_task()
    slow = noop.using(queue_name="slow")
    _bulk(cfg["n_slow_backlog"], task=slow, chunk=5000)
    log = common.log_path("eventjobs-slow")
    drainer = common.start([*RUNWORKER, "--queue", "slow"], env=_env(cfg), log=log)
    try:
        # Under way: one slow job done (id > base: the pk index, cheap; 10 checks a second).
        common.wait_for(lambda: bool(dj.raw(
            f"SELECT 1 FROM {TABLE} WHERE id > %s AND status = 'SUCCESSFUL' LIMIT 1", [base])),
            cfg["timeout"], "the slow queue's drain to start", [drainer], log)
        r = measure.latency_run([*RUNWORKER, "--queue", "default"], _env(cfg), _send(noop), cfg,
                               "eventjobs-latency-load")
        left = dj.raw(f"SELECT 1 FROM {TABLE} WHERE queue = 'slow' AND status = 'READY' LIMIT 1")
        if not left:
            raise RuntimeError("the slow backlog ran out before the latency samples ended; "
                               "raise n_slow_backlog")
    finally:
        common.stop(drainer)
    _cleanup(base)
    return {"llat_p50": r["p50"], "llat_p99": r["p99"]}


def t_rss(cfg):
    """RSS of one `runworker --burst` (supervisor + children) over n_rss jobs, sampled
    every 0.25 s: the sample at 10% of the drain and the last one before its last job
    finished (after that, children exit one by one)."""
    _init(cfg)
    base = _baseline()
    _cleanup(base)
    n = cfg["n_rss"]
    _bulk(n, chunk=5000)
    samples: list[tuple[float, float]] = []

    def sample(procs):
        samples.append((time.time(), sum(common.pgroup_rss_mb(p) for p in procs)))

    run = _burst(cfg | {"timeout": cfg["timeout_rss"]}, 1, "eventjobs-rss", on_tick=sample)
    span = _span(base)
    _check(span, n, "rss")
    off = dj.clock_offset()
    f = measure.drain_figures(n, run, span["first"], span["last"], off)
    early, end = measure.rss_at(samples, span["first"] - off, span["last"] - off)
    _cleanup(base)
    return {"rss_w_early": early, "rss_w_end": end, "rss_w_rate": f["busy"]}


# ---------------------------------------------------------------------------
# the scale database


def _clone_finished(n: int) -> None:
    """Insert n SUCCESSFUL jobs by cloning one job row in SQL (fast, same shape)."""
    dj.noop_task().enqueue()
    cols = [c for (c,) in dj.raw(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "AND column_name <> 'id' ORDER BY ordinal_position", [TABLE])]
    day_ago = "now() - interval '1 day'"
    override = {"status": "'SUCCESSFUL'", "started_at": day_ago, "finished_at": day_ago,
                "last_attempted_at": day_ago, "enqueued_at": day_ago, "run_after": day_ago,
                "attempt": "1", "lease_token": "NULL", "lease_expires_at": "NULL"}
    sel = ", ".join(override.get(c, f"t.{c}") for c in cols)
    template = dj.raw(f"SELECT max(id) FROM {TABLE}")[0][0]
    for i in range(0, n, 100_000):
        dj.raw(f"INSERT INTO {TABLE} ({', '.join(cols)}) SELECT {sel} FROM {TABLE} t, "
               f"generate_series(1, %s) WHERE t.id = %s", [min(100_000, n - i), template])
    dj.raw(f"DELETE FROM {TABLE} WHERE id = %s", [template])


def setup_scale(cfg):
    """Preload the scale database's job table (its events: eventjobs_events.setup_scale)."""
    _init(cfg)
    dj.migrate()
    _clone_finished(cfg["scale_finished"])
    tomorrow = dj.noop_task().using(run_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    _bulk(cfg["scale_future"], task=tomorrow, chunk=5000)
    dj.raw(f"VACUUM ANALYZE {TABLE}")
    dj.raw("CREATE TABLE IF NOT EXISTS bench_baseline (name text PRIMARY KEY, id bigint)")
    dj.raw("INSERT INTO bench_baseline SELECT 'job', coalesce(max(id), 0) FROM eventjobs_job "
           "ON CONFLICT (name) DO UPDATE SET id = excluded.id")


TESTS = {
    "enqueue": (t_enqueue, ["enq1", "enqbulk"]),
    "udrain": (t_udrain, ["udrain", "udrain_run", "uspawn"]),
    "drain1": (t_drain1, ["drain1"]),
    "latency": (t_latency, ["lat_p50", "lat_p99"]),
    "latency_load": (t_latency_load, ["llat_p50", "llat_p99"]),
    "rss": (t_rss, ["rss_w_early", "rss_w_end", "rss_w_rate"]),
}
