"""A private PostgreSQL cluster for tests that restart, crash or starve the server.

`PrivateCluster.create()` runs `initdb` from the newest installed server binaries into a
temporary folder (as the `postgres` user when run as root), starts it on a free port of
its own, listening on 127.0.0.1 with its unix socket inside the folder, and
`destroy()` stops it and removes the folder. The machine's own cluster is never touched.

fsync stays on (the server default): an immediate restart must go through real crash
recovery. initdb runs with --no-sync, which only skips flushing the freshly created
files to disk once (safe: the machine does not lose power during a test).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

ADMIN_APP = "reliability admin"  # the test's own connections, never a fault's target


def server_bin() -> Path:
    """The newest installed PostgreSQL server binaries (…/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not found or not (found[-1] / "initdb").exists():
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin "
                           "(apt-get install postgresql)")
    return found[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Backend:
    """One client backend as pg_stat_activity shows it."""

    pid: int
    user: str
    database: str | None
    application_name: str
    client_port: int | None
    state: str | None
    query: str


class PrivateCluster:
    """A throwaway PostgreSQL server; see the module docstring."""

    def __init__(self, root: Path, port: int, settings: dict[str, Any]):
        self.root = root
        self.data = root / "data"
        self.run = root / "run"
        self.logfile = self.run / "server.log"
        self.port = port
        self.settings = settings
        self.bin = server_bin()
        self._admin: psycopg.Connection | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    @classmethod
    def create(cls, *, max_connections: int = 100, **settings: Any) -> PrivateCluster:
        root = Path(tempfile.mkdtemp(prefix="eventjobs-pg-"))
        root.chmod(0o755)
        cluster = cls(root, free_port(), {"max_connections": max_connections, **settings})
        try:
            cluster._initdb()
            cluster._pg_ctl("start", "-l", str(cluster.logfile))
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def _initdb(self) -> None:
        self.data.mkdir()
        self.run.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres")
            shutil.chown(self.run, "postgres")
        self._as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                           "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])
        conf = {
            "port": self.port,
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.run}'",
            "shared_buffers": "'32MB'",
            "log_line_prefix": "'%m [%p] %q%a '",
            "log_timezone": "'UTC'",
            **{k: (f"'{v}'" if isinstance(v, str) else
                   ("on" if v is True else "off" if v is False else v))
               for k, v in self.settings.items()},
        }
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\n# eventjobs reliability tests\n")
            f.writelines(f"{key} = {value}\n" for key, value in conf.items())

    def stop(self, mode: str = "fast") -> None:
        self.close_admin()
        self._pg_ctl("stop", "-m", mode)

    def start(self) -> None:
        self._pg_ctl("start", "-l", str(self.logfile))

    def restart(self, mode: str = "fast") -> float:
        """`pg_ctl restart -m fast|immediate`; returns time.monotonic() once the server
        accepts connections again (immediate: after crash recovery)."""
        assert mode in ("fast", "immediate", "smart"), mode
        self.close_admin()
        self._pg_ctl("restart", "-m", mode, "-l", str(self.logfile))
        return time.monotonic()

    def destroy(self) -> None:
        self.close_admin()
        if (self.data / "postmaster.pid").exists():
            try:
                self._pg_ctl("stop", "-m", "immediate")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg_ctl(self, *args: str) -> None:
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
                           *args])

    def _as_postgres(self, cmd: list[str]) -> None:
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise subprocess.CalledProcessError(done.returncode, cmd, done.stdout,
                                                f"{done.stderr}\n{self.log_tail()}")

    # -- connections ----------------------------------------------------------------------------
    def url(self, dbname: str, user: str = "postgres") -> str:
        return f"postgres://{user}@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", user: str = "postgres",
                application_name: str = ADMIN_APP) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, dbname=dbname, user=user,
                               autocommit=True, application_name=application_name,
                               connect_timeout=5)

    @property
    def admin(self) -> psycopg.Connection:
        """A superuser connection to the `postgres` database, reopened after restarts."""
        if self._admin is None or self._admin.closed or self._admin.broken:
            self._admin = self.connect()
        return self._admin

    def close_admin(self) -> None:
        if self._admin is not None:
            self._admin.close()
        self._admin = None

    def sql(self, query: str, params: Iterable[Any] | None = None,
            dbname: str | None = None) -> list[tuple]:
        """Run one statement as superuser (on `dbname`, or the admin connection)."""
        if dbname is None:
            return self._fetch(self.admin, query, params)
        with self.connect(dbname) as conn:
            return self._fetch(conn, query, params)

    @staticmethod
    def _fetch(conn: psycopg.Connection, query: str, params) -> list[tuple]:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []

    # -- faults ---------------------------------------------------------------------------------
    def backends(self) -> list[Backend]:
        """Client backends other than the admin connection."""
        rows = self.sql("SELECT pid, usename, datname, coalesce(application_name, ''), "
                        "client_port, state, coalesce(query, '') FROM pg_stat_activity "
                        "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
        return [Backend(*row) for row in rows]

    def terminate(self, pid: int) -> bool:
        """pg_terminate_backend(pid): False if it was gone already."""
        return bool(self.sql("SELECT pg_terminate_backend(%s)", [pid])[0][0])

    def terminate_backends(self, predicate: Callable[[Backend], bool],
                           limit: int | None = None) -> list[Backend]:
        """pg_terminate_backend() every backend matching `predicate` (a random `limit` of
        them if given); returns those terminated."""
        chosen = [b for b in self.backends() if predicate(b)]
        if limit is not None and len(chosen) > limit:
            chosen = random.sample(chosen, limit)
        return [backend for backend in chosen if self.terminate(backend.pid)]

    # -- the server's log ---------------------------------------------------------------------
    def log_size(self) -> int:
        return self.logfile.stat().st_size if self.logfile.exists() else 0

    def log_since(self, offset: int) -> str:
        with open(self.logfile, errors="replace") as f:
            f.seek(offset)
            return f.read()

    def log_tail(self, chars: int = 2000) -> str:
        if not self.logfile.exists():
            return ""
        return self.logfile.read_text(errors="replace")[-chars:]
