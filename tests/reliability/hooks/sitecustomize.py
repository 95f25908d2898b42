"""Loaded by the scenario subprocesses of tests/reliability/test_connections.py (this
folder goes first on their PYTHONPATH): appends one line per PostgreSQL connection
attempt, `pid monotonic-time ok|error`, to the file named by EVENTJOBS_TEST_CONNECT_LOG.
It only counts; every attempt goes to psycopg unchanged."""

import os

_LOG = os.environ.get("EVENTJOBS_TEST_CONNECT_LOG")

if _LOG:
    import time

    import psycopg

    _connect = psycopg.Connection.connect.__func__

    def _write(outcome: str) -> None:
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{os.getpid()} {time.monotonic():.3f} {outcome}\n".encode())
        finally:
            os.close(fd)

    def _counted_connect(cls, *args, **kwargs):
        try:
            conn = _connect(cls, *args, **kwargs)
        except Exception:
            _write("error")
            raise
        _write("ok")
        return conn

    psycopg.Connection.connect = classmethod(_counted_connect)
