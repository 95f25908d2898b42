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

SERVER = "postgres://postgres@127.0.0.1:5432"


def manage(*args: str, settings: str = "tests.first_hour_settings.quiet",
           db_url: str = f"{SERVER}/postgres", timeout: float = 60,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python manage.py ARGS` with a settings module; returns its exit code and output."""
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings, "DATABASE_URL": db_url,
                "PYTHONUNBUFFERED": "1", "COLUMNS": "80", **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


@contextmanager
def empty_database(name: str) -> Iterator[str]:
    """A database without any table, dropped afterwards; yields its URL."""
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]
