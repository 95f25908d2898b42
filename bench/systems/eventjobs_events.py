"""eventjobs, the event half: `publish()`, `publish_many()`, `manage.py consume bench`.

The consumer is benchapp/consumers.py (`@eventjobs.consumer("bench")`, no-op handler).
Every consume figure is `consume bench --burst` (it exits once every event committed
before it started is handled) over a backlog published before it starts: events/s from
the first event handled (the handler notes that time once per process) to the exit of
the last process; the start-up before it is reported apart. The group is new (it starts
at the beginning of the log) unless the database holds old events. That everything was
handled is checked afterwards with `eventjobs_status --json` (lag 0).

Databases: `bench_eventjobs_events` (emptied between tests); for the fresh-table row a
brand-new copy of a migrated, never-used template each pass (`bench_eventjobs_fresh`);
and the scale database (1,000,000 old, already consumed events; setup_scale).
"""

from __future__ import annotations

import io
import json
import time

import common
import measure

from systems import _django as dj

SYSTEM = "eventjobs"
GROUP = "bench"
CONSUME = [*dj.MANAGE, "consume", GROUP]
KEYS = 1000  # keyed events carry one of 1,000 keys, so a group's partitions can spread


def _init(cfg):
    cfg["system"] = SYSTEM
    try:
        dj.setup_django(SYSTEM, cfg["db"])
    except ImportError as exc:
        raise RuntimeError(f"eventjobs is not importable ({exc})") from exc
    import eventjobs

    return eventjobs


def _env(cfg, extra=None):
    return {**dj.env_for(SYSTEM, cfg["db"]), **(extra or {})}


def setup(cfg):
    _init(cfg)
    dj.migrate()


# ---------------------------------------------------------------------------
# the rows a test adds, and their removal


def _baseline() -> int:
    if not dj.raw("SELECT to_regclass('bench_baseline') IS NOT NULL")[0][0]:
        return 0
    got = dj.raw("SELECT id FROM bench_baseline WHERE name = 'event'")
    return int(got[0][0]) if got else 0


def _cleanup(base: int) -> None:
    """Remove the events (and, on empty tables, the groups) tests added."""
    if not dj.raw("SELECT 1 FROM eventjobs_event WHERE id > %s LIMIT 1", [base]):
        return
    if base == 0:
        tables = [t for (t,) in dj.raw(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename LIKE 'eventjobs\\_%%' AND tablename NOT IN ('eventjobs_job', "
            "'eventjobs_worker')")]
        dj.raw(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        return
    from django.db import transaction

    with transaction.atomic():  # the pruner's flag is transaction-local
        dj.raw("SELECT set_config('eventjobs.pruning', 'on', true)")
        dj.raw("DELETE FROM eventjobs_event WHERE id > %s", [base])
    dj.raw("VACUUM eventjobs_event")


def _event(i, data=None, keyed=True):
    return {"type": "bench.noop", "data": data, "key": f"k{i % KEYS}" if keyed else None,
            "source": None}


def _publish_many(ej, n, chunk=10000, keyed=True):
    batch = [_event(i, keyed=keyed) for i in range(chunk)]
    for i in range(0, n, chunk):
        ej.publish_many(batch[: min(chunk, n - i)])


def _publish_one_by_one(ej, n, transactions=10, procs=2):
    """n keyless `publish()` calls in `transactions` transactions, from `procs` forked
    processes at once (the calls are Python-bound; this only shortens the fill)."""
    import os

    from django.db import connections, transaction

    per = -(-n // transactions)
    chunks = [min(per, n - i) for i in range(0, n, per)]
    connections.close_all()  # each child opens its own connection
    pids = []
    for k in range(procs):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 0
            try:
                for size in chunks[k::procs]:
                    with transaction.atomic():
                        for _ in range(size):
                            ej.publish("bench.noop")
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        pids.append(pid)
    failed = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
    if failed:
        raise RuntimeError(f"publishing the fresh backlog failed in {len(failed)} process(es)")


def _lag() -> dict:
    from django.core.management import call_command

    out = io.StringIO()
    call_command("eventjobs_status", "--json", stdout=out)
    groups = json.loads(out.getvalue()).get("groups", {})
    if isinstance(groups, list):
        groups = {g.get("name"): g for g in groups}
    return groups.get(GROUP) or {}


def _consume_burst(cfg, procs: int, what: str, env=None, on_tick=None) -> dict:
    return common.run_burst([[*CONSUME, "--burst"]] * procs, _env(cfg, env), cfg["timeout"],
                            what, common.log_path(what), on_tick=on_tick)


def _timed_consume(cfg, n: int, procs: int, what: str, on_tick=None) -> dict:
    """`procs` x `consume bench --burst` over the n events just published: events/s from
    the first event handled (any process) to the last exit, and the start-up before it."""
    first = measure.FirstFile(what)
    run = _consume_burst(cfg, procs, what, first.env, on_tick)
    t1 = first.earliest()
    lag = _lag()
    if lag.get("lag") != 0:
        raise RuntimeError(f"{what}: group not caught up after --burst: {lag}")
    return {"rate": n / max(run["exit"] - t1, 1e-6), "startup": t1 - run["spawn"],
            "total": n / (run["exit"] - run["spawn"]), **run}


# ---------------------------------------------------------------------------
# tests


def t_publish(cfg):
    ej = _init(cfg)
    base = _baseline()
    _cleanup(base)
    out = {"pub1": measure.timed_loop(lambda i: ej.publish("bench.noop", key=f"k{i % KEYS}"),
                                     cfg["n_pub"])}
    batch = [_event(i) for i in range(1000)]
    out["pubbulk"] = measure.timed_loop(lambda i: ej.publish_many(batch),
                                       max(1, cfg["n_pubbulk"] // 1000), warmup=1) * 1000
    _cleanup(base)
    return out


def t_fresh(cfg):
    """Keyless events published one by one (10 transactions), never analyzed, one process."""
    ej = _init(cfg)
    base = _baseline()
    if base:  # the scale database
        _cleanup(base)
    else:  # a brand-new database: keep autovacuum from analyzing the burst before it is read
        dj.raw("ALTER TABLE eventjobs_event SET (autovacuum_enabled = false)")
    n = cfg["n_fresh"]
    _publish_one_by_one(ej, n)
    r = _timed_consume(cfg, n, 1, "eventjobs-fresh")
    stats = dj.raw("SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables "
                   "WHERE relname = 'eventjobs_event'")
    if not base and stats and any(stats[0]):
        raise RuntimeError(f"the event table was analyzed during the fresh-table row: {stats}")
    if base:
        _cleanup(base)
    return {"cons_fresh": r["rate"], "cons_startup": r["startup"]}


def _keyed(cfg, procs: int, key: str):
    ej = _init(cfg)
    base = _baseline()
    _cleanup(base)
    n = cfg["n_backlog"]
    _publish_many(ej, n)
    dj.analyze("eventjobs_event")
    r = _timed_consume(cfg, n, procs, f"eventjobs-consume{procs}")
    _cleanup(base)
    return {key: r["rate"]}


def t_consume1(cfg):
    """Keyed events (publish_many), ANALYZE after the fill, one process."""
    return _keyed(cfg, 1, "cons1")


def t_consume2(cfg):
    return _keyed(cfg, 2, "cons2")


def t_latency(cfg):
    ej = _init(cfg)
    base = _baseline()
    _cleanup(base)

    def send(t0):
        ej.publish("bench.noop", {"t0": t0}, key=f"k{int(t0 * 1e6) % KEYS}")

    r = measure.latency_run(CONSUME, _env(cfg), send, cfg, "eventjobs-elatency")
    _cleanup(base)
    return {"elat_p50": r["p50"], "elat_p99": r["p99"]}


def t_rss(cfg):
    """Consumer RSS over n_rss keyed events: sampled every 0.25 s, the sample at 10% of the
    run and the last one."""
    ej = _init(cfg)
    _cleanup(_baseline())
    n = cfg["n_rss"]
    _publish_many(ej, n, chunk=20000)
    dj.analyze("eventjobs_event")
    samples: list[tuple[float, float]] = []
    r = _timed_consume(cfg | {"timeout": cfg["timeout_rss"]}, n, 1, "eventjobs-rss-consume",
                       on_tick=lambda ps: samples.append((time.time(), common.pgroup_rss_mb(ps[0]))))
    early, end = measure.rss_at(samples, r["spawn"] + r["startup"], r["exit"])
    _cleanup(0)
    return {"rss_c_early": early, "rss_c_end": end, "rss_c_rate": r["rate"]}


# ---------------------------------------------------------------------------
# the scale database


def setup_scale(cfg):
    """1,000,000 old events, already consumed by group "bench": a template batch published
    through the public API, cloned in SQL (10 transactions), then `consumer_group reset
    bench --to-end`. Runs after eventjobs_jobs.setup_scale (which migrated)."""
    from django.core.management import call_command

    ej = _init(cfg)
    dj.migrate()
    _consume_burst(cfg, 1, "eventjobs-scale-setup")  # registers the group
    _publish_many(ej, 1000, chunk=1000)
    first = int(dj.raw("SELECT min(id) FROM eventjobs_event")[0][0])
    per = cfg["scale_events"] // 10
    for _ in range(10):
        dj.raw("INSERT INTO eventjobs_event (type, key, key_hash, data, source) "
               "SELECT t.type, t.key, t.key_hash, t.data, t.source FROM eventjobs_event t, "
               "generate_series(1, %s) WHERE t.id BETWEEN %s AND %s",
               [per // 1000, first, first + 999])
    call_command("consumer_group", "reset", GROUP, "--to-end", stdout=io.StringIO(),
                 stderr=io.StringIO())
    dj.raw("VACUUM ANALYZE eventjobs_event")
    dj.raw("CREATE TABLE IF NOT EXISTS bench_baseline (name text PRIMARY KEY, id bigint)")
    dj.raw("INSERT INTO bench_baseline SELECT 'event', coalesce(max(id), 0) FROM eventjobs_event "
           "ON CONFLICT (name) DO UPDATE SET id = excluded.id")


TESTS = {
    "publish": (t_publish, ["pub1", "pubbulk"]),
    "fresh": (t_fresh, ["cons_fresh"]),
    "consume1": (t_consume1, ["cons1"]),
    "consume2": (t_consume2, ["cons2"]),
    "latency": (t_latency, ["elat_p50", "elat_p99"]),
    "rss": (t_rss, ["rss_c_early", "rss_c_end", "rss_c_rate"]),
}
