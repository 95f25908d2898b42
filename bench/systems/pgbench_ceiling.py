"""pgbench on the minimal SQL of one job / one event batch: the ceiling column.

Scripts in bench/pgbench/. Every run: `pgbench -n -M prepared -T T -c C -j C` (QUICK:
a fixed `-t` count per client) against the server DATABASE_URL names. Rates are
pgbench's tps times the items per script run. The single-row and 1,000-row INSERT
ceilings stand beside both enqueue and publish (one insert + commit is what each is).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import common

SYSTEM = "pgbench"
DIR = common.BENCH_DIR / "pgbench"
EVENTS = 1_000_000


def setup(cfg):
    if not shutil.which("pgbench"):
        raise RuntimeError("pgbench not found on PATH")
    with common.pg_connect(cfg["db"]) as c:
        c.execute((DIR / "schema.sql").read_text())
        c.execute("INSERT INTO events (type, data) SELECT 'bench.noop', '{}' "
                  "FROM generate_series(1, %s)", (cfg.get("pgbench_events", EVENTS),))
        c.execute("INSERT INTO group_offsets VALUES ('bench', 0)")
        c.execute("VACUUM ANALYZE events")


def _pgbench(cfg, script: str, clients: int) -> float:
    txns = (cfg.get("pgbench_t") or {}).get(script)
    length = ["-t", str(txns)] if txns else ["-T", str(cfg["pgbench_T"])]
    cmd = ["pgbench", "-n", "-M", "prepared", *length, "-c", str(clients),
           "-j", str(clients), "-f", str(DIR / script), cfg["db"]]
    env = {**os.environ, **common.SERVER.libpq_env()}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env,
                         timeout=cfg["pgbench_T"] + 60)
    if out.returncode != 0:
        raise RuntimeError(f"pgbench {script} failed: {out.stderr.strip()[-300:]}")
    m = re.search(r"tps = ([\d.]+)", out.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    if failed and int(failed.group(1)):
        raise RuntimeError(f"pgbench {script}: {failed.group(1)} failed transactions")
    return float(m.group(1))


def _jobs(cfg, prefill: int):
    with common.pg_connect(cfg["db"]) as c:
        c.execute("TRUNCATE jobs RESTART IDENTITY")
        if prefill:
            c.execute("INSERT INTO jobs (queue, status, payload) SELECT 'default', 0, '{}' "
                      "FROM generate_series(1, %s)", (prefill,))
        c.execute("VACUUM ANALYZE jobs")
        if cfg.get("pgbench_checkpoint", True):
            c.execute("CHECKPOINT")


def _left(cfg) -> int:
    with common.pg_connect(cfg["db"]) as c:
        return common.scalar(c, "SELECT count(*) FROM jobs WHERE status = 0")


def t_enqueue(cfg):
    _jobs(cfg, 0)
    one = _pgbench(cfg, "enqueue.sql", 1)
    _jobs(cfg, 0)
    bulk = _pgbench(cfg, "enqueue_batch1000.sql", 1) * 1000
    _jobs(cfg, 0)
    return {"enq1": one, "enqbulk": bulk, "pub1": one, "pubbulk": bulk}


def t_claim(cfg):
    out = {}
    if cfg.get("pgbench_single", True):
        _jobs(cfg, cfg.get("pgbench_claim_prefill", 300_000))
        out["claim_single"] = _pgbench(cfg, "claim_complete.sql", 1)
    for clients, key in ((1, "claim_batch1"), (2, "claim_batch2")):
        _jobs(cfg, cfg.get("pgbench_claim_prefill", 300_000))
        out[key] = _pgbench(cfg, "claim_complete_batch100.sql", clients) * 100
        if _left(cfg) == 0:
            raise RuntimeError("claim prefill ran out; raise pgbench_claim_prefill")
    _jobs(cfg, 0)
    return out


def t_events(cfg):
    with common.pg_connect(cfg["db"]) as c:
        c.execute("UPDATE group_offsets SET position = 0")
        c.execute("CHECKPOINT")
    rate = _pgbench(cfg, "event_consume_batch100.sql", 1) * 100
    with common.pg_connect(cfg["db"]) as c:
        pos = common.scalar(c, "SELECT position FROM group_offsets")
        last = common.scalar(c, "SELECT max(id) FROM events")
    if pos >= last:
        raise RuntimeError("event prefill ran out; raise pgbench_events")
    return {"cons1": rate}


TESTS = {
    "enqueue": (t_enqueue, ["enq1", "enqbulk", "pub1", "pubbulk"]),
    "claim": (t_claim, ["claim_single", "claim_batch1", "claim_batch2"]),
    "events": (t_events, ["cons1"]),
}
