"""Shared helpers for the benchmark: databases, workers, drain polling, latency.

Everything here talks to 127.0.0.1 only (PostgreSQL and Redis on loopback).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
PY = sys.executable

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PG_PORT", "5432")
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
REDIS_URL_BASE = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")

TMP_DIR = BENCH_DIR / ".tmp"  # logs and latency files; set per run by sysrun.py
POLL_INTERVAL = 0.025  # 40 cheap polls per second, as in peers-baseline.md
LAT_GAP_MS = (5.0, 15.0)  # set from the run config by sysrun.py
LAT_IDLE = 1.0  # idem
STOP_GRACE = 2.0  # idem; measurements are over when workers are stopped


def dsn(dbname: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{dbname}"


def pg_connect(dbname: str, autocommit: bool = True):
    import psycopg

    return psycopg.connect(dsn(dbname), autocommit=autocommit)


def create_db(name: str) -> None:
    """Drop and recreate database `name` (a fresh database per system)."""
    assert name.startswith("bench_"), name
    with pg_connect("postgres") as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')


def drop_db(name: str) -> None:
    assert name.startswith("bench_"), name
    with pg_connect("postgres") as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def scalar(conn, sql: str, params=None):
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


# ---------------------------------------------------------------------------
# processes

_CHILDREN: list[subprocess.Popen] = []


def start(cmd: list[str], env: dict | None = None, cwd: Path | None = None,
          log: Path | None = None) -> subprocess.Popen:
    """Start a worker in its own process group; remembered for cleanup."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    out = open(log, "ab") if log else subprocess.DEVNULL
    p = subprocess.Popen(cmd, env=full_env, cwd=str(cwd or BENCH_DIR), stdout=out,
                         stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                         start_new_session=True)
    _CHILDREN.append(p)
    return p


def stop(p: subprocess.Popen, grace: float | None = None) -> None:
    """SIGTERM the worker's process group, SIGKILL after `grace` seconds."""
    grace = STOP_GRACE if grace is None else grace
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:  # children (e.g. celery prefork) may outlive the leader
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(2)
    except subprocess.TimeoutExpired:
        pass
    if p in _CHILDREN:
        _CHILDREN.remove(p)


def stop_all() -> None:
    for p in list(_CHILDREN):
        stop(p, grace=2.0)


def _on_term(signum, frame):  # pragma: no cover - cleanup path
    stop_all()
    sys.exit(128 + signum)


def install_cleanup() -> None:
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    import atexit

    atexit.register(stop_all)


def check_alive(procs: list[subprocess.Popen], what: str, log: Path | None = None) -> None:
    for p in procs:
        rc = p.poll()
        if rc is not None:
            tail = ""
            if log and log.exists():
                tail = log.read_text(errors="replace")[-800:]
            raise RuntimeError(f"{what} exited early with code {rc}: {tail.strip()}")


def pgroup_rss_mb(p: subprocess.Popen) -> float:
    """Sum of RSS of all processes in the worker's process group (MB)."""
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            pgrp = int(fields[2])
            if pgrp != p.pid:
                continue
            with open(f"/proc/{d}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return total / 1024.0


# ---------------------------------------------------------------------------
# measurements


def measure_drain(remaining, n: int, procs: list[subprocess.Popen], timeout: float,
                  what: str = "worker", log: Path | None = None,
                  on_progress=None) -> dict:
    """Poll `remaining()` until 0. Rate over first observed progress -> empty.

    Worker start-up (time to the first observed progress) is excluded and
    returned separately.
    """
    t_start = time.perf_counter()
    first = None
    last_r = None
    t_prev = t_start  # last poll that still saw all n left
    deadline = t_start + timeout
    while True:
        r = remaining()
        now = time.perf_counter()
        if on_progress is not None:
            on_progress(r)
        if first is None and r < n:
            first = (now, r)
        elif first is None:
            t_prev = now
        if r <= 0:
            break
        if now > deadline:
            raise RuntimeError(f"drain timed out after {timeout:.0f}s with {r} of {n} left")
        if last_r != r:
            last_r = r
        else:
            check_alive(procs, what, log)
        time.sleep(POLL_INTERVAL)
    t_end = time.perf_counter()
    t1, r1 = first
    if r1 == 0:
        # All done between two polls: n items in at most (t1 - t_prev), a lower bound.
        elapsed = max(t1 - t_prev, 1e-6)
        return {"rate": n / elapsed, "startup": t_prev - t_start, "n": n, "seconds": elapsed}
    elapsed = max(t_end - t1, 1e-6)
    return {"rate": r1 / elapsed, "startup": t1 - t_start, "n": n, "seconds": elapsed}


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(samples)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


class LatencyFile:
    """Handlers append `time.time() - t0` lines to this file (env BENCH_LAT_FILE)."""

    def __init__(self, name: str):
        d = TMP_DIR
        d.mkdir(parents=True, exist_ok=True)
        self.path = d / f"lat-{name}-{os.getpid()}.txt"
        self.path.write_text("")

    @property
    def env(self) -> dict:
        return {"BENCH_LAT_FILE": str(self.path)}

    def values(self) -> list[float]:
        out = []
        for line in self.path.read_text().splitlines():
            line = line.strip()
            if line:
                try:
                    out.append(float(line))
                except ValueError:
                    pass
        return out

    def wait_count(self, n: int, timeout: float, procs=(), what="worker", log=None) -> list[float]:
        deadline = time.time() + timeout
        while True:
            v = self.values()
            if len(v) >= n:
                return v
            if time.time() > deadline:
                raise RuntimeError(f"latency: only {len(v)} of {n} samples after {timeout:.0f}s")
            check_alive(list(procs), what, log)
            time.sleep(0.05)

    def reset(self):
        self.path.write_text("")

    def cleanup(self):
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def record_latency(t0) -> None:
    """Called from inside a task/handler: append now - t0 to BENCH_LAT_FILE."""
    if t0 is None:
        return
    d = time.time() - float(t0)
    path = os.environ.get("BENCH_LAT_FILE")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{d:.6f}\n".encode())
        finally:
            os.close(fd)


def measure_latency(send, lat: LatencyFile, n: int, procs, warm: int = 3,
                    gap_ms=None, seed: int = 42, timeout: float = 60.0,
                    what: str = "worker", log: Path | None = None, idle: float | None = None) -> dict:
    """`send(t0)` enqueues one item carrying t0 (taken before the enqueue call).

    Warm the worker with `warm` items, leave it idle for `idle` s, then send n
    items one by one with a seeded random gap; p50/p99 in milliseconds.
    """
    for _ in range(warm):
        send(time.time())
    lat.wait_count(warm, timeout, procs, what, log)
    time.sleep(LAT_IDLE if idle is None else idle)
    lat.reset()
    rnd = random.Random(seed)
    gap_ms = gap_ms or LAT_GAP_MS
    for _ in range(n):
        send(time.time())
        time.sleep(rnd.uniform(*gap_ms) / 1000.0)
    v = lat.wait_count(n, timeout, procs, what, log)[:n]
    return {"p50": percentile(v, 50) * 1000, "p99": percentile(v, 99) * 1000, "n": len(v)}


def timed_loop(fn, n: int, warmup: int = 20) -> float:
    """Call fn(i) n times after `warmup` untimed calls; returns calls/s."""
    for i in range(warmup):
        fn(i)
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t0)


def emit(result: dict) -> None:
    """Report a result to the orchestrator (last RESULT line on stdout wins)."""
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


def log_path(name: str) -> Path:
    d = TMP_DIR
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{name}.log"


def drain_then_latency(cfg: dict, start_workers, remaining, n: int, send, what: str,
                       cleanup=None, keys=("drain1", "startup", "lat_p50", "lat_p99")) -> dict:
    """Drain n queued items with one worker, then reuse that (now idle) worker for the
    latency test: saves a worker start per pass. `start_workers(env)` returns procs;
    `cleanup()` runs between the two (e.g. delete the finished rows)."""
    lat = LatencyFile(what)
    log = log_path(what)
    procs = start_workers(lat.env, log)
    out = {}
    try:
        d = measure_drain(remaining, n, procs, cfg["timeout"], what, log)
        out[keys[0]] = d["rate"]
        out[keys[1]] = d["startup"]
        try:
            if cleanup is not None:
                cleanup()
            lr = measure_latency(send, lat, cfg["n_lat"], procs, timeout=cfg["timeout"],
                                 what=what, log=log)
            out[keys[2]], out[keys[3]] = lr["p50"], lr["p99"]
        except Exception as exc:
            msg = f"error: {type(exc).__name__}: {exc}"[:300]
            out[keys[2]] = out[keys[3]] = msg
    finally:
        for p in procs:
            stop(p)
        lat.cleanup()
    return out
