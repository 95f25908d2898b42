"""Shared helpers for the benchmark: the database server, its databases, worker processes.

The PostgreSQL server is the one DATABASE_URL names (host, port, user, password and
query options; its database name is ignored): the bench creates and drops its own
`bench_*` databases there. Redis is BENCH_REDIS (default redis://127.0.0.1:6379).
"""

from __future__ import annotations

import json
import os
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


def emit(result: dict) -> None:
    """Report a result to the orchestrator (last RESULT line on stdout wins)."""
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


def log_path(name: str) -> Path:
    d = TMP_DIR
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{name}.log"
