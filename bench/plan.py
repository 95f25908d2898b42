"""What `make bench` measures: run sizes, the systems and their tests, the table's rows.

FULL is `make bench` (3 passes, about 15 minutes on 2 cores), QUICK `make bench QUICK=1`
(one pass with small sizes, every row, about 3 minutes: to see that rows work, not to
quote), SMOKE the test-suite's tiny eventjobs-only pass.
"""

from __future__ import annotations

from dataclasses import dataclass

N_JOBS = {"eventjobs": 20000, "pgqueuer": 20000, "celery": 2500, "procrastinate": 1000,
          "django_tasks_db": 1000}
FULL = {
    "passes": 3,
    "n_enq": 1000,
    "n_bulk": 20000,
    "n_udrain": N_JOBS,
    "n_drain": N_JOBS,
    "n_lat": 200,
    # PgQueuer's --batch-size: the best of tools/pgq_batch_sweep.py on this machine
    # (2026-12-01, busy machine: 10 -> 500 raised its 2-process drain about 8x; 1000 was
    # no faster). Re-run the sweep on a quiet machine before quoting.
    "pgq_batch": 500,
    # Procrastinate's --concurrency: its best in peers-baseline.md
    "procrastinate_concurrency": 10,
    "lat_gap_ms": 20.0,
    "lat_idle": 0.5,
    "stop_grace": 2.0,
    "n_slow_backlog": 200_000,
    "n_pub": 1000,
    "n_pubbulk": 100_000,
    "n_backlog": 100_000,
    "n_fresh": 100_000,
    "pgbench_T": 2,
    "pgbench_claim_prefill": 200_000,
    "scale": True,
    "scale_finished": 1_000_000,
    "scale_future": 200_000,
    "scale_events": 1_000_000,
    "n_rss": 100_000,
    "timeout": 120,
    "timeout_rss": 300,
    "system_timeout": 420,
}
QUICK = {
    **FULL,
    "passes": 1,
    "n_enq": 300,
    "n_bulk": 5000,
    "n_udrain": {"eventjobs": 5000, "pgqueuer": 5000, "celery": 600, "procrastinate": 300,
                 "django_tasks_db": 300},
    "n_drain": {"eventjobs": 5000, "pgqueuer": 5000, "celery": 600, "procrastinate": 300,
                "django_tasks_db": 300},
    "n_lat": 60,
    "lat_idle": 0.3,
    "stop_grace": 0.5,
    "n_slow_backlog": 40_000,
    "n_pub": 300,
    "n_pubbulk": 10_000,
    "n_backlog": 20_000,
    "n_fresh": 20_000,
    "pgbench_T": 1,
    "pgbench_t": {"enqueue.sql": 1500, "enqueue_batch1000.sql": 40,
                  "claim_complete_batch100.sql": 300, "event_consume_batch100.sql": 800},
    "pgbench_single": False,
    "pgbench_events": 300_000,
    "pgbench_claim_prefill": 80_000,
    "pgbench_checkpoint": False,
    "scale_finished": 100_000,
    "scale_future": 20_000,
    "scale_events": 100_000,
    "n_rss": 5_000,
    "timeout": 60,
    "system_timeout": 180,
}
SMOKE = {
    **QUICK,
    "scale": False,
    "n_enq": 100,
    "n_bulk": 1000,
    "n_udrain": {"eventjobs": 300},
    "n_drain": {"eventjobs": 300},
    "n_lat": 20,
    "n_slow_backlog": 20_000,
    "n_pub": 100,
    "n_pubbulk": 1000,
    "n_backlog": 2000,
    "n_fresh": 2000,
    "timeout": 30,
    "system_timeout": 90,
}

JOB_TESTS = ["enqueue", "udrain", "drain1", "latency", "latency_load"]
EVENT_TESTS = ["publish", "consume1", "consume2", "latency"]
PEER_JOB_TESTS = ["enqueue", "udrain", "drain1", "latency"]


@dataclass
class System:
    name: str  # key of its samples
    column: str  # the table column its figures fill
    module: str  # systems/<module>.py
    db: str | None  # its database (None: Redis only)
    tests: list[str]
    peer: bool = True  # skipped by --smoke
    setup: str | None = "setup"  # the module's setup function, run on db once created
    template: str | None = None  # db is created as a copy of this (migrated once, unused)
    fresh: bool = False  # db is copied anew from template before every pass


EJ, SCALE_COL = "**eventjobs**", "eventjobs, full tables (Method: scale column)"
# Every eventjobs database is a copy of one migrated, never-used database (one migrate).
TMPL = "bench_eventjobs_tmpl"
SYSTEMS = [
    System("eventjobs", EJ, "eventjobs_jobs", "bench_eventjobs", JOB_TESTS, peer=False,
           setup=None, template=TMPL),
    System("eventjobs_events", EJ, "eventjobs_events", "bench_eventjobs_events", EVENT_TESTS,
           peer=False, setup=None, template=TMPL),
    System("eventjobs_fresh", EJ, "eventjobs_events", "bench_eventjobs_fresh", ["fresh"],
           peer=False, setup=None, template=TMPL, fresh=True),
    System("pgqueuer", "PgQueuer", "pgqueuer_sys", "bench_pgqueuer", PEER_JOB_TESTS),
    System("procrastinate", "Procrastinate", "procrastinate_sys", "bench_procrastinate",
           PEER_JOB_TESTS),
    System("celery", "Celery+Redis", "celery_sys", None, PEER_JOB_TESTS),
    System("django_tasks_db", "django-tasks-db", "django_tasks_db", "bench_django_tasks_db",
           PEER_JOB_TESTS),
    System("redis_streams", "Redis Streams", "redis_streams", None,
           ["publish", "fresh", *EVENT_TESTS[1:]]),
    System("pgbench", "pgbench ceiling", "pgbench_ceiling", "bench_pgbench",
           ["enqueue", "claim", "events"]),
]
# The same eventjobs tests in one database preloaded with old rows (filled once).
SCALE = [
    System("eventjobs_scale", SCALE_COL, "eventjobs_jobs", "bench_eventjobs_scale", JOB_TESTS,
           peer=False, setup="setup_scale", template=TMPL),
    System("eventjobs_scale_events", SCALE_COL, "eventjobs_events", "bench_eventjobs_scale",
           ["publish", "fresh", *EVENT_TESTS[1:]], peer=False, setup="setup_scale",
           template=TMPL),
]
# RSS over a long run, pass 1 only.
RSS = [
    System("eventjobs_rss", EJ, "eventjobs_jobs", "bench_eventjobs", ["rss"], peer=False),
    System("eventjobs_rss_ev", EJ, "eventjobs_events", "bench_eventjobs_events", ["rss"],
           peer=False),
]
COLUMNS = [EJ, SCALE_COL, "PgQueuer", "Procrastinate", "Celery+Redis", "django-tasks-db",
           "Redis Streams", "pgbench ceiling"]

# (metric key, row label, kind) -- kind: rate, ms, s, mb
ROWS = [
    ("section", "Jobs (no-op task)", None),
    ("enq1", "enqueue 1-by-1, own transaction each (jobs/s)", "rate"),
    ("enqbulk", "enqueue bulk, 1,000 per call (jobs/s)", "rate"),
    ("udrain", "drain as a user runs it: 2 worker processes, default options, spawn -> done "
               "(jobs/s)", "rate"),
    ("udrain_run", "the same, first job started -> done (jobs/s)", "rate"),
    ("uspawn", "the same, spawn -> first job started (s)", "s"),
    ("udrain_exit", "the same, spawn -> both processes exited (jobs/s)", "rate"),
    ("drain1", "drain, 1 worker process, first job started -> last finished (jobs/s)", "rate"),
    ("lat_p50", "enqueue -> start latency p50, idle worker, jobs 20 ms apart (ms)", "ms"),
    ("lat_p99", "enqueue -> start latency p99 (ms)", "ms"),
    ("llat_p50", "the same while another queue's worker drains a backlog: p50 (ms)", "ms"),
    ("llat_p99", "the same while another queue's worker drains a backlog: p99 (ms)", "ms"),
    ("claim_single", "claim + complete one job at a time, 1 client (jobs/s)", "rate"),
    ("claim_batch1", "claim + complete 100 at a time, 1 client (jobs/s)", "rate"),
    ("claim_batch2", "claim + complete 100 at a time, 2 clients (jobs/s)", "rate"),
    ("section", "Events (no-op handler)", None),
    ("pub1", "publish 1-by-1, own transaction each (events/s)", "rate"),
    ("pubbulk", "publish bulk, 1,000 per call (events/s)", "rate"),
    ("cons_fresh", "consume a fresh backlog: new table, keyless, never analyzed, 1 process "
                   "(events/s)", "rate"),
    ("cons_startup", "the same, spawn -> first event handled (s)", "s"),
    ("cons1", "consume a keyed, analyzed backlog, 1 process (events/s)", "rate"),
    ("cons2", "consume a keyed, analyzed backlog, 2 processes (events/s)", "rate"),
    ("elat_p50", "publish -> handler latency p50 (ms)", "ms"),
    ("elat_p99", "publish -> handler latency p99 (ms)", "ms"),
    ("section", "Memory (eventjobs, pass 1)", None),
    ("rss_w_early", "worker RSS at 10% of a long drain (MB)", "mb"),
    ("rss_w_end", "worker RSS at its end (MB)", "mb"),
    ("rss_w_rate", "drain rate over that run (jobs/s)", "rate"),
    ("rss_c_early", "consumer RSS at 10% of a long consume (MB)", "mb"),
    ("rss_c_end", "consumer RSS at its end (MB)", "mb"),
    ("rss_c_rate", "consume rate over that run (events/s)", "rate"),
]


# Targets (issue 9), each from figures of the same pass: the median over passes of the
# per-pass value. (label, (system, key), (system, key) or None, op, limit, format)
TARGETS = [
    ("drain as a user runs it (spawn -> done), eventjobs ÷ PgQueuer",
     ("eventjobs", "udrain"), ("pgqueuer", "udrain"), ">=", 1.5, "x"),
    ("the same from the first job started, eventjobs ÷ PgQueuer",
     ("eventjobs", "udrain_run"), ("pgqueuer", "udrain_run"), ">=", 2.0, "x"),
    ("spawn -> first job started, eventjobs ÷ PgQueuer",
     ("eventjobs", "uspawn"), ("pgqueuer", "uspawn"), "<=", 1.0, "x"),
    ("consume a fresh, never-analyzed, keyless backlog (events/s)",
     ("eventjobs_fresh", "cons_fresh"), None, ">=", 150_000, "rate"),
    ("the same ÷ the analyzed, keyed figure",
     ("eventjobs_fresh", "cons_fresh"), ("eventjobs_events", "cons1"), ">=", 0.85, "%"),
    ("enqueue 1-by-1 ÷ pgbench single-row insert + commit",
     ("eventjobs", "enq1"), ("pgbench", "enq1"), ">=", 0.5, "%"),
    ("publish 1-by-1 ÷ pgbench single-row insert + commit",
     ("eventjobs_events", "pub1"), ("pgbench", "pub1"), ">=", 0.5, "%"),
    ("enqueue_many ÷ pgbench 1,000-row insert",
     ("eventjobs", "enqbulk"), ("pgbench", "enqbulk"), ">=", 0.5, "%"),
    ("publish_many ÷ pgbench 1,000-row insert",
     ("eventjobs_events", "pubbulk"), ("pgbench", "pubbulk"), ">=", 0.5, "%"),
    ("enqueue -> start p50, idle worker (ms)", ("eventjobs", "lat_p50"), None, "<=", 2.0, "ms"),
    ("enqueue -> start p99, idle worker (ms)", ("eventjobs", "lat_p99"), None, "<=", 10.0, "ms"),
    ("the p50 while another queue drains a backlog (ms)",
     ("eventjobs", "llat_p50"), None, "<=", 2.0, "ms"),
    ("the p99 while another queue drains a backlog (ms)",
     ("eventjobs", "llat_p99"), None, "<=", 10.0, "ms"),
    ("worker RSS, end ÷ 10%", ("eventjobs_rss", "rss_w_end"), ("eventjobs_rss", "rss_w_early"),
     "<=", 1.1, "x"),
    ("consumer RSS, end ÷ 10%", ("eventjobs_rss_ev", "rss_c_end"),
     ("eventjobs_rss_ev", "rss_c_early"), "<=", 1.1, "x"),
]
# Each eventjobs figure at scale against the same figure on empty tables: cost <= 10%.
SCALE_PAIRS = [("eventjobs", "eventjobs_scale"), ("eventjobs_events", "eventjobs_scale_events"),
               ("eventjobs_fresh", "eventjobs_scale_events")]
SCALE_COST_LIMIT = 0.10
