"""Connection parameters for eventjobs' own raw psycopg connections."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connections

from .conf import prepare_statements

# Django-only OPTIONS that psycopg.connect() does not understand.
_DJANGO_ONLY = {"isolation_level", "server_side_binding", "pool", "assume_role", "cursor_factory",
                "prepare_threshold"}


def psycopg_params(alias: str) -> dict:
    """Plain, picklable psycopg.connect() kwargs for a Django database alias."""
    settings = connections[alias].settings_dict
    if connections[alias].vendor != "postgresql":
        raise RuntimeError(f"eventjobs needs PostgreSQL; database {alias!r} is "
                           f"{connections[alias].vendor}")
    params = {
        "dbname": settings["NAME"],
        "user": settings.get("USER") or None,
        "password": settings.get("PASSWORD") or None,
        "host": settings.get("HOST") or None,
        "port": settings.get("PORT") or None,
    }
    params.update({k: v for k, v in settings.get("OPTIONS", {}).items() if k not in _DJANGO_ONLY})
    return {k: v for k, v in params.items() if v not in (None, "")}


def describe(params: dict) -> str:
    """host:port/dbname, for logs (never the password)."""
    return f"{params.get('host', 'local')}:{params.get('port', 5432)}/{params.get('dbname')}"


@contextmanager
def session_cursor(alias: str, prepare: bool = False) -> Iterator:
    """A Django cursor on the session of `alias` whose statements psycopg may prepare.

    It is Django's own connection and transaction (so enqueue/publish join the caller's
    transaction) and Django's cursor wrapper (so execute_wrappers, query logging and
    assertNumQueries see it), over a server-side-binding psycopg cursor. With `prepare`
    (and EVENTJOBS["PREPARE_STATEMENTS"], default on), the statement is prepared on first
    use: the hot single-row inserts spend much of their time being parsed and planned.
    Django opens connections with prepare_threshold=None, which would make psycopg ignore
    any prepare; it is lowered only while our statement runs, so other queries stay as
    they were.
    """
    connection = connections[alias]
    connection.ensure_connection()
    raw = connection.connection
    saved = raw.prepare_threshold
    if prepare and prepare_statements():
        raw.prepare_threshold = 0
    try:
        with connection._prepare_cursor(psycopg.Cursor(raw)) as cursor:
            yield cursor
    finally:
        raw.prepare_threshold = saved
