"""django-tasks-db (Django Tasks DatabaseBackend) with `db_worker` and CONN_MAX_AGE=None.

`db_worker` defaults otherwise (`--interval 1`), so its latency is dominated by
the poll interval, as documented in peers-baseline.md. It has no bulk enqueue.
"""

from __future__ import annotations

from systems import _django as dj

SYSTEM = "django_tasks_db"
TABLE = "django_tasks_database_dbtaskresult"  # DBTaskResult._meta.db_table
# --no-startup-delay: skips a random sleep of up to 1 s before the first poll (start-up
# is excluded from the rates anyway; this only shortens the run).
WORKER = [*dj.MANAGE, "db_worker", "--queue-name", "default", "--no-startup-delay"]


def _init(cfg):
    cfg["system"] = SYSTEM
    dj.setup_django(SYSTEM, cfg["db"])


def setup(cfg):
    _init(cfg)
    dj.migrate()


def _reset():
    dj.raw(f"TRUNCATE {TABLE}")


def _remaining() -> int:
    return dj.count(f"SELECT count(*) FROM {TABLE} WHERE status IN ('READY', 'RUNNING')")


def t_enqueue(cfg):
    _init(cfg)
    _reset()
    return {"enq1": dj.enqueue_1by1(cfg)}


def _drain(cfg, workers, key):
    _init(cfg)
    _reset()
    n = cfg["n_drain"][SYSTEM]
    r = dj.drain(cfg, dj.fill_in_one_transaction, _remaining, [WORKER] * workers,
                 f"dtdb-drain{workers}", n, table=TABLE)
    out = {key: r["rate"]}
    if workers == 1:
        out["startup"] = r["startup"]
    return out


def t_drain1(cfg):
    """Drain with 1 worker, then the latency test on that worker once idle."""
    _init(cfg)
    _reset()
    return dj.drain_latency(cfg, dj.fill_in_one_transaction, _remaining, WORKER, "dtdb-drain1",
                            cfg["n_drain"][SYSTEM], cleanup=_reset, table=TABLE)


def t_drain2(cfg):
    return _drain(cfg, 2, "drain2")


def t_latency(cfg):
    _init(cfg)
    _reset()
    r = dj.latency(cfg, WORKER, "dtdb-latency")
    return {"lat_p50": r["p50"], "lat_p99": r["p99"]}


TESTS = {
    "enqueue": (t_enqueue, ["enq1"]),
    "drain1": (t_drain1, ["drain1", "startup", "lat_p50", "lat_p99"]),
    "drain2": (t_drain2, ["drain2"]),
    "latency": (t_latency, ["lat_p50", "lat_p99"]),
}
