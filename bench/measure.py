"""Measuring: drain figures, latency, first-item and RSS samples, timed loops.

How progress is observed (never by polling a peer's table many times a second):
- workers that can exit when the queue is empty (`runworker --burst`, `pgq run --mode
  drain`, `procrastinate worker --one-shot`, `db_worker --batch`, `consume --burst`, the
  Redis consumer's --burst) are simply waited for;
- first start and last finish come afterwards from each system's own timestamps
  (eventjobs started_at/finished_at, pgqueuer_log, procrastinate_events, DBTaskResult);
- Celery has neither, so its task writes one Redis timestamp at its first and its N-th
  completion (see peers/celery_app.py), and the harness blocks on that (BLPOP).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import common


def rss_at(samples: list[tuple[float, float]], begin: float, end: float
           ) -> tuple[float | None, float | None]:
    """From (time, MB) samples: the first at 10% of [begin, end] and the last before end."""
    inside = [(t, m) for t, m in samples if begin <= t <= end and m > 0]
    t10 = begin + 0.1 * (end - begin)
    early = next((m for t, m in inside if t >= t10), None)
    return early, (inside[-1][1] if inside else None)


def drain_figures(n: int, run: dict, first_start: float, last_finish: float,
                  offset: float = 0.0) -> dict:
    """Rates of one burst drain from the harness's spawn/exit times and the system's own
    first-start / last-finish timestamps (database clock, `offset` = db - ours)."""
    first = first_start - offset
    last = last_finish - offset
    end = run["exit"]
    return {
        "total": n / max(end - run["spawn"], 1e-6),  # spawn -> all exited
        "running": n / max(end - first, 1e-6),  # first job started -> all exited
        "busy": n / max(last - first, 1e-6),  # first start -> last finish
        "to_empty": n / max(last - run["spawn"], 1e-6),  # spawn -> last finish
        "first_start": first - run["spawn"],
    }


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(samples)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


class LatencyFile:
    """Handlers append `time.time() - t0` lines to this file (env BENCH_LAT_FILE)."""

    def __init__(self, name: str):
        d = common.TMP_DIR
        d.mkdir(parents=True, exist_ok=True)
        self.path = d / f"lat-{name}-{os.getpid()}.txt"
        self.path.write_text("")

    @property
    def env(self) -> dict:
        return {"BENCH_LAT_FILE": str(self.path)}

    def values(self) -> list[float]:
        out = []
        for line in self.path.read_text().splitlines():
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
            common.check_alive(list(procs), what, log)
            time.sleep(0.05)  # reads a local file, not the system measured

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


class FirstFile:
    """Each process appends the time it handled its first item (env BENCH_FIRST_FILE)."""

    def __init__(self, name: str):
        common.TMP_DIR.mkdir(parents=True, exist_ok=True)
        self.path = common.TMP_DIR / f"first-{name}-{os.getpid()}.txt"
        self.path.write_text("")

    @property
    def env(self) -> dict:
        return {"BENCH_FIRST_FILE": str(self.path)}

    def earliest(self) -> float:
        times = [float(x) for x in self.path.read_text().split()]
        self.path.unlink()
        if not times:
            raise RuntimeError("no process recorded a first item")
        return min(times)


def record_first() -> None:
    """Called once per process, from inside a handler: append time.time() to
    BENCH_FIRST_FILE."""
    path = os.environ.get("BENCH_FIRST_FILE")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{time.time():.6f}\n".encode())
        finally:
            os.close(fd)


def measure_latency(send, lat: LatencyFile, n: int, procs, warm: int = 3,
                    gap_ms: float | None = None, timeout: float = 60.0,
                    what: str = "worker", log: Path | None = None,
                    idle: float | None = None) -> dict:
    """`send(t0)` enqueues one item carrying t0 (taken before the enqueue call).

    Warm the worker with `warm` items, leave it idle for `idle` s, then send n items
    one by one, `gap_ms` apart (a little jitter, seeded, so sends do not lock step with
    any poll period); p50/p99 in milliseconds.
    """
    for _ in range(warm):
        send(time.time())
    lat.wait_count(warm, timeout, procs, what, log)
    time.sleep(common.LAT_IDLE if idle is None else idle)
    lat.reset()
    gap = (gap_ms or common.LAT_GAP_MS) / 1000.0
    rnd = random.Random(42)
    for _ in range(n):
        send(time.time())
        time.sleep(gap * rnd.uniform(0.9, 1.1))
    v = lat.wait_count(n, timeout, procs, what, log)[:n]
    return {"p50": percentile(v, 50) * 1000, "p99": percentile(v, 99) * 1000, "n": len(v)}


def latency_run(cmd: list[str], env: dict, send, cfg: dict, what: str) -> dict:
    """Start one idle worker, measure enqueue -> start latency, stop it."""
    lat = LatencyFile(what)
    log = common.log_path(what)
    p = common.start(cmd, env={**env, **lat.env}, log=log)
    try:
        return measure_latency(send, lat, cfg["n_lat"], [p], timeout=cfg["timeout"],
                               what=what, log=log)
    finally:
        common.stop(p)
        lat.cleanup()


def timed_loop(fn, n: int, warmup: int = 20) -> float:
    """Call fn(i) n times after `warmup` untimed calls; returns calls/s."""
    for i in range(warmup):
        fn(i)
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t0)
