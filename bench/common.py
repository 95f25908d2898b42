"""Shared helpers for the benchmark: the database server, worker processes, timing.

The PostgreSQL server is the one DATABASE_URL names (host, port, user, password and
query options; its database name is ignored): the bench creates and drops its own
`bench_*` databases there. Redis is BENCH_REDIS (default redis://127.0.0.1:6379).

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

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
PY = sys.executable

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL_BASE = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")

TMP_DIR = BENCH_DIR / ".tmp"  # logs and latency files; set per run by sysrun.py
LAT_GAP_MS = 20.0  # set from the run config by sysrun.py
LAT_IDLE = 1.0  # idem
STOP_GRACE = 2.0  # idem; measurements are over when workers are stopped
WAIT_POLL = 0.1  # the rare cheap checks (is the slow drain under way?), 10 per second


# ---------------------------------------------------------------------------
# the database server


class Server:
    """The PostgreSQL server DATABASE_URL names, with one database or another on it."""

    def __init__(self, url: str | None = None):
        url = url or os.environ.get("DATABASE_URL") or DEFAULT_URL
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql") or not parts.hostname:
            raise SystemExit(f"DATABASE_URL={url!r}: expected postgresql://user[:password]"
                             "@host[:port]/name")
        self.host = parts.hostname
        self.port = str(parts.port or 5432)
        self.user = unquote(parts.username or "postgres")
        self.password = unquote(parts.password) if parts.password is not None else None
        self.query = parts.query

    def dsn(self, dbname: str) -> str:
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return urlunsplit(("postgresql", f"{auth}@{host}:{self.port}", f"/{dbname}",
                           self.query, ""))

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def libpq_env(self) -> dict[str, str]:
        """PG* variables for command-line clients (pgbench)."""
        env = {"PGHOST": self.host, "PGPORT": self.port, "PGUSER": self.user}
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env


SERVER = Server()


def dsn(dbname: str) -> str:
    return SERVER.dsn(dbname)


def pg_connect(dbname: str, autocommit: bool = True):
    import psycopg

    return psycopg.connect(dsn(dbname), autocommit=autocommit)


def create_db(name: str, template: str | None = None) -> None:
    """Drop and recreate database `name` (optionally as a copy of `template`)."""
    assert name.startswith("bench_"), name
    with pg_connect("postgres") as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def drop_db(name: str) -> None:
    assert name.startswith("bench_"), name
    with pg_connect("postgres") as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def scalar(conn, sql: str, params=None):
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def clock_offset(conn) -> float:
    """Database clock minus this machine's clock (s), to compare its timestamps with ours."""
    t0 = time.time()
    db = float(scalar(conn, "SELECT extract(epoch FROM clock_timestamp())"))
    return db - (t0 + time.time()) / 2


# ---------------------------------------------------------------------------
# processes

_CHILDREN: list[subprocess.Popen] = []


def start(cmd: list[str], env: dict | None = None, cwd: Path | None = None,
          log: Path | None = None) -> subprocess.Popen:
    """Start a worker in its own process group; remembered for cleanup."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - child owns it
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


def _tail(log: Path | None) -> str:
    if log and log.exists():
        return log.read_text(errors="replace")[-800:].strip()
    return ""


def check_alive(procs: Iterable[subprocess.Popen], what: str, log: Path | None = None) -> None:
    for p in procs:
        rc = p.poll()
        if rc is not None:
            raise RuntimeError(f"{what} exited early with code {rc}: {_tail(log)}")


def run_burst(cmds: list[list[str]], env: dict, timeout: float, what: str,
              log: Path | None = None,
              on_tick: Callable[[list[subprocess.Popen]], None] | None = None,
              tick: float = 0.25) -> dict:
    """Start every command at once; wait for all to exit (they exit when done).

    Returns {"spawn": epoch s just before the first start, "exit": epoch s once all have
    exited}. Only waitpid is polled (no database); `on_tick(procs)` (an RSS sample) runs
    every `tick` s meanwhile.
    """
    spawn = time.time()
    procs = [start(cmd, env=env, log=log) for cmd in cmds]
    deadline = time.monotonic() + timeout
    try:
        while any(p.poll() is None for p in procs):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} still running after {timeout:.0f}s: {_tail(log)}")
            if on_tick is not None:
                on_tick(procs)
            _wait_any(procs, tick if on_tick else 0.02)
        ended = time.time()
        bad = [p.returncode for p in procs if p.returncode != 0]
        if bad:
            raise RuntimeError(f"{what} exited with {bad}: {_tail(log)}")
        return {"spawn": spawn, "exit": ended}
    finally:
        for p in procs:
            stop(p)


def _wait_any(procs: list[subprocess.Popen], seconds: float) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                p.wait(seconds)
            except subprocess.TimeoutExpired:
                pass
            return


def wait_for(cond: Callable[[], bool], timeout: float, what: str,
             procs: Iterable[subprocess.Popen] = (), log: Path | None = None) -> None:
    """Poll a cheap condition every WAIT_POLL s (rare use: e.g. a drain under way)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        check_alive(procs, what, log)
        time.sleep(WAIT_POLL)


def pgroup_rss_mb(p: subprocess.Popen) -> float:
    """Sum of RSS of all processes in the worker's process group (MB)."""
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != p.pid:
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
# figures


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
        TMP_DIR.mkdir(parents=True, exist_ok=True)
        self.path = TMP_DIR / f"first-{name}-{os.getpid()}.txt"
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
    time.sleep(LAT_IDLE if idle is None else idle)
    lat.reset()
    gap = (gap_ms or LAT_GAP_MS) / 1000.0
    rnd = random.Random(42)
    for _ in range(n):
        send(time.time())
        time.sleep(gap * rnd.uniform(0.9, 1.1))
    v = lat.wait_count(n, timeout, procs, what, log)[:n]
    return {"p50": percentile(v, 50) * 1000, "p99": percentile(v, 99) * 1000, "n": len(v)}


def latency_run(cmd: list[str], env: dict, send, cfg: dict, what: str) -> dict:
    """Start one idle worker, measure enqueue -> start latency, stop it."""
    lat = LatencyFile(what)
    log = log_path(what)
    p = start(cmd, env={**env, **lat.env}, log=log)
    try:
        return measure_latency(send, lat, cfg["n_lat"], [p], timeout=cfg["timeout"],
                               what=what, log=log)
    finally:
        stop(p)
        lat.cleanup()


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
