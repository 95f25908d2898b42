"""Helpers of the first-hour tests: run `manage.py` as a new user would, and databases in
the states a new user meets (never migrated, half migrated)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from tests.conftest import ROOT
from tests.server import database_url


def manage(*args: str, settings: str = "tests.first_hour_settings.quiet",
           db_url: str | None = None, timeout: float = 60,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python manage.py ARGS` with a settings module; returns its exit code and output.
    The database is `db_url`, by default the postgres database of the suite's server."""
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings,
                "DATABASE_URL": db_url or database_url("postgres"),
                "PYTHONUNBUFFERED": "1", "COLUMNS": "80", **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


@contextmanager
def empty_database(name: str) -> Iterator[str]:
    """A database without any table, dropped afterwards; yields its URL."""
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name)
    finally:
        with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]
