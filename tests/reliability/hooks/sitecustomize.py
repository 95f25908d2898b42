"""Loaded by the scenario subprocesses of tests/reliability/test_connections.py (this
folder goes first on their PYTHONPATH): appends one line per PostgreSQL connection
attempt, `pid monotonic-time ok|error`, to the file named by EVENTJOBS_TEST_CONNECT_LOG.
It only counts; every attempt goes to psycopg unchanged."""

from __future__ import annotations

import os

_LOG = os.environ.get("EVENTJOBS_TEST_CONNECT_LOG")

if _LOG:
    import time

    import psycopg

    # psycopg.connect is the bound Connection.connect; Django and eventjobs both call
    # psycopg.connect(...) through the module, so wrapping the module attribute counts both.
    _connect = psycopg.connect

    def _write(outcome: str) -> None:
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{os.getpid()} {time.monotonic():.3f} {outcome}\n".encode())
        finally:
            os.close(fd)

    def _counted_connect(*args, **kwargs):
        try:
            conn = _connect(*args, **kwargs)
        except Exception:
            _write("error")
            raise
        _write("ok")
        return conn

    psycopg.connect = _counted_connect
