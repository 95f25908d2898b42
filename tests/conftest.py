"""Shared fixtures: real PostgreSQL (pytest-django's test database) and real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection

from tests.server import connection_url

ROOT = Path(__file__).resolve().parent.parent


class Proc:
    """A manage.py subprocess (runworker / consume) with its output kept in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log_path = log
        self.log_file = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT, env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def kill_group(self) -> None:
        """SIGKILL the process and its children (the whole session)."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=10)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.kill_group()
        self.log_file.close()


@pytest.fixture
def db_url(transactional_db) -> str:
    """DATABASE_URL of the test database, for subprocesses: the server Django's connection
    uses now (the reliability tests point it at a private cluster), with its password and
    options, naming the test database."""
    return connection_url(connection.settings_dict)


@pytest.fixture
def spawn(db_url, tmp_path) -> Callable[..., Proc]:
    """Start `manage.py <args>` against the test database; killed at teardown."""
    procs: list[Proc] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Proc:
        full_env = {**os.environ, "DATABASE_URL": db_url,
                    "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONUNBUFFERED": "1",
                    **(env or {})}
        proc = Proc(list(args), full_env, tmp_path / f"proc{len(procs)}.log")
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()


def wait_until(predicate: Callable[[], object], timeout: float = 30, interval: float = 0.05,
               message: str = "condition") -> object:
    """Poll `predicate` (a database state check) until truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
