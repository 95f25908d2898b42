"""A private PostgreSQL cluster for the demo, for machines where none answers.

Made with the installed server binaries (initdb, pg_ctl) in a folder of the checkout,
on a port of its own, listening on 127.0.0.1 only (trust authentication: a local demo).
As root it runs as the `postgres` user (the server refuses to run as root). It is
stopped when the demo stops, and reused by the next run.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

DEFAULT_BIN_GLOB = "/usr/lib/postgresql/*/bin"
INSTALL_HINT = ("install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; "
                "macOS: brew install postgresql) or set DATABASE_URL to a running one")


class ClusterError(RuntimeError):
    """The private cluster could not be made or started (the message says why)."""


def find_binaries(bin_glob: str = DEFAULT_BIN_GLOB) -> Path | None:
    """The newest installed PostgreSQL bin directory holding initdb and pg_ctl."""
    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)

    for candidate in sorted(glob.glob(bin_glob), key=version, reverse=True):
        if os.access(Path(candidate) / "initdb", os.X_OK) and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and bin_glob == DEFAULT_BIN_GLOB else None


class PrivateCluster:
    """One cluster in `directory` (data/ and server.log), served on 127.0.0.1:`port`."""

    def __init__(self, directory: Path, port: int, binaries: Path):
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "server.log"
        self.port = port
        self.binaries = binaries
        self.as_postgres = os.geteuid() == 0
        self.started_by_us = False

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        command = [str(self.binaries / tool), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True)

    def _prepare_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            try:
                shutil.chown(self.directory, "postgres", "postgres")
            except (LookupError, PermissionError) as exc:
                raise ClusterError(f"cannot hand {self.directory} to the postgres user "
                                   f"({exc}); create that user or run as another one") from None
            probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w",
                                    str(self.directory)], capture_output=True)
            if probe.returncode != 0:
                raise ClusterError(f"the postgres user cannot write to {self.directory} (a "
                                   "parent folder is private?); set DEMO_PG_DIR to a folder "
                                   "it can reach")

    def running(self) -> bool:
        return self.data.exists() and self._run("pg_ctl", "status", "-D", str(self.data)
                                                ).returncode == 0

    def start(self) -> str:
        """Make the cluster if needed and start it; returns what was done, in words."""
        self._prepare_directory()
        made = False
        if not (self.data / "PG_VERSION").exists():
            done = self._run("initdb", "-D", str(self.data), "-U", "postgres",
                             "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync")
            if done.returncode != 0:
                raise ClusterError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
            made = True
        if self.running():
            self.started_by_us = True  # left by a run that was killed: adopt it
            return f"reusing the private PostgreSQL already running in {self.directory}"
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   "-c unix_socket_directories=''")
        done = self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
                         "-l", str(self.log), "-o", options)
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-3:] \
                if self.log.exists() else []
            raise ClusterError(f"the private PostgreSQL did not start on port {self.port} "
                               f"({' / '.join(tail) or done.stderr.strip()}); is the port "
                               "taken? set DEMO_PG_PORT")
        self.started_by_us = True
        return (f"{'made and started' if made else 'started'} a private PostgreSQL in "
                f"{self.directory} on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self.started_by_us and self.running():
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))
