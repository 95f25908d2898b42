"""django-tasks-db (Django Tasks DatabaseBackend) with `db_worker` and CONN_MAX_AGE=None
(persistent connections: 3-4x its drain rate with Django's default of 0, see
peers-baseline.md). It has no bulk enqueue.

Drains run `db_worker --batch` (it exits once nothing is left) and are timed from its
result rows' started_at / finished_at. `--no-startup-delay` skips a random sleep of up
to 1 s meant to spread many workers' first polls. `--interval 1` (its default) sets its
latency: the poll period.
"""

from __future__ import annotations

import common
import measure

from systems import _django as dj

SYSTEM = "django_tasks_db"
TABLE = "django_tasks_database_dbtaskresult"  # DBTaskResult._meta.db_table
WORKER = [*dj.MANAGE, "db_worker", "--queue-name", "default", "--no-startup-delay"]


def _init(cfg):
    cfg["system"] = SYSTEM
    dj.setup_django(SYSTEM, cfg["db"])


def _env(cfg):
    return dj.env_for(SYSTEM, cfg["db"])


def setup(cfg):
    _init(cfg)
    dj.migrate()


def _reset():
    dj.raw(f"TRUNCATE {TABLE}")


def t_enqueue(cfg):
    _init(cfg)
    _reset()
    out = {"enq1": dj.enqueue_1by1(cfg)}
    _reset()
    return out


def _drain(cfg, procs, n, what):
    _init(cfg)
    _reset()
    dj.fill_in_one_transaction(n)
    run = common.run_burst([[*WORKER, "--batch"]] * procs, _env(cfg), cfg["timeout"], what,
                           common.log_path(what))
    row = dj.raw(f"SELECT extract(epoch FROM min(started_at)), extract(epoch FROM "
                 f"max(finished_at)), count(*) FILTER (WHERE status = 'SUCCESSFUL') FROM {TABLE}")[0]
    if row[2] != n:
        raise RuntimeError(f"{what}: {row[2]} of {n} jobs SUCCESSFUL")
    f = measure.drain_figures(n, run, float(row[0]), float(row[1]), dj.clock_offset())
    _reset()
    return f


def t_udrain(cfg):
    f = _drain(cfg, 2, cfg["n_udrain"][SYSTEM], "dtdb-udrain")
    return {"udrain": f["to_empty"], "udrain_run": f["busy"],
            "uspawn": f["first_start"]}


def t_drain1(cfg):
    f = _drain(cfg, 1, cfg["n_drain"][SYSTEM], "dtdb-drain1")
    return {"drain1": f["busy"]}


def t_latency(cfg):
    _init(cfg)
    _reset()
    noop = dj.noop_task()
    r = measure.latency_run(WORKER, _env(cfg), lambda t0: noop.enqueue(t0=t0), cfg,
                           "dtdb-latency")
    _reset()
    return {"lat_p50": r["p50"], "lat_p99": r["p99"]}


TESTS = {
    "enqueue": (t_enqueue, ["enq1"]),
    "udrain": (t_udrain, ["udrain", "udrain_run", "uspawn"]),
    "drain1": (t_drain1, ["drain1"]),
    "latency": (t_latency, ["lat_p50", "lat_p99"]),
}
