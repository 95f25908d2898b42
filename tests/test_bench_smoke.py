"""The benchmark harness still runs, on the server DATABASE_URL names.

One tiny eventjobs-only pass (`bench/run.py --smoke`) must fill every eventjobs row of
its table with a number; the harness must take host, port, user and password from
DATABASE_URL (not from a fixed 127.0.0.1:5432).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402  (bench/common.py)
import measure  # noqa: E402  (bench/measure.py)
import report  # noqa: E402  (bench/report.py)

SMOKE_ROWS = [
    "enqueue 1-by-1, own transaction each (jobs/s)",
    "enqueue bulk, 1,000 per call (jobs/s)",
    "drain as a user runs it: 2 worker processes, default options, spawn -> done (jobs/s)",
    "the same, first job started -> done (jobs/s)",
    "the same, spawn -> first job started (s)",
    "drain, 1 worker process, first job started -> last finished (jobs/s)",
    "enqueue -> start latency p50, idle worker, jobs 20 ms apart (ms)",
    "the same while another queue's worker drains a backlog: p50 (ms)",
    "publish 1-by-1, own transaction each (events/s)",
    "publish bulk, 1,000 per call (events/s)",
    "consume a fresh backlog: new table, keyless, never analyzed, 1 process (events/s)",
    "consume a keyed, analyzed backlog, 1 process (events/s)",
    "consume a keyed, analyzed backlog, 2 processes (events/s)",
    "publish -> handler latency p50 (ms)",
]


def _results_table(report: str) -> dict[str, str]:
    results = report.split("## Results", 1)[1].split("## Targets", 1)[0]
    return {line.split("|")[1].strip(): line.split("|")[2].strip()
            for line in results.splitlines() if line.startswith("| ") and "---" not in line}


def test_bench_harness_smoke_run():
    proc = subprocess.run([sys.executable, "bench/run.py", "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = _results_table((ROOT / "bench" / ".tmp" / "smoke-results.md").read_text())
    for metric in SMOKE_ROWS:
        assert float(rows[metric].split()[0].replace(",", "")) > 0, (metric, rows)


def test_server_comes_from_database_url():
    server = common.Server("postgres://ann%40x:p%3Ass@db.example:6543/whatever?sslmode=disable")
    assert (server.host, server.port, server.user, server.password) == (
        "db.example", "6543", "ann@x", "p:ss")
    assert server.dsn("bench_x") == (
        "postgresql://ann%40x:p%3Ass@db.example:6543/bench_x?sslmode=disable")
    assert server.libpq_env() == {"PGHOST": "db.example", "PGPORT": "6543", "PGUSER": "ann@x",
                                  "PGPASSWORD": "p:ss"}


def test_bench_refuses_a_server_it_cannot_reach():
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/x"}
    proc = subprocess.run([sys.executable, "bench/run.py", "--smoke"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"127.0.0.1:{port}" in proc.stdout


def test_drain_figures_put_database_times_on_the_harness_clock():
    run = {"spawn": 100.0, "exit": 104.0}
    # the database clock runs 0.5 s ahead: its 101.5 is our 101.0
    f = measure.drain_figures(1000, run, first_start=101.5, last_finish=103.5, offset=0.5)
    assert f["first_start"] == 1.0
    assert f["total"] == 250.0  # 1000 jobs, spawn -> exit 4 s
    assert f["running"] == 1000 / 3  # first start -> exit
    assert f["busy"] == 500.0  # first start -> last finish
    assert f["to_empty"] == 1000 / 3  # spawn -> last finish


def test_targets_pair_figures_of_the_same_pass():
    samples = {"eventjobs": {"udrain": [300.0, 9999.0, 200.0]},
               "pgqueuer": {"udrain": [100.0, "error: crashed", 100.0]}}
    table = report.build_targets(samples)
    row = next(line for line in table.splitlines() if line.startswith("| drain as a user"))
    # pass 2 has no PgQueuer figure, so its eventjobs figure pairs with nothing
    assert "| 3.00× / 2.00× | 2.50× |" in row and row.endswith("| ✔ |")


def test_rss_is_read_while_every_process_lives():
    # before `begin` the children are still starting; after `end` they exit one by one
    samples = [(0.0, 50.0), (1.0, 120.0), (5.0, 121.0), (9.0, 122.0), (10.5, 60.0)]
    assert measure.rss_at(samples, begin=1.0, end=10.0) == (121.0, 122.0)  # 10% = t 1.9
