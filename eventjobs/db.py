"""Every connection eventjobs opens or borrows, from one place.

Two kinds:
- the caller's own Django connection (`session_cursor`, `django_connection`): enqueue,
  publish and consumer batches join the caller's transaction and Django's query logging;
- eventjobs' own autocommit connections (`connect`) for worker loops, leases, LISTEN and
  maintenance, built from Django's own `get_connection_params()` for the alias, with
  connect/statement timeouts and TCP keepalives (`EVENTJOBS`) so a half-open connection
  cannot block a process for minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from eventjobs.conf import eventjobs_settings
from eventjobs.sql import query

if TYPE_CHECKING:
    from django.db.backends.utils import CursorWrapper

# Connection parameters that belong to Django's connection object, not to libpq.
_DJANGO_ONLY = ("cursor_factory", "context", "prepare_threshold")


def connection_params(alias: str) -> dict[str, Any]:
    """Plain, picklable psycopg.connect() kwargs for a Django database alias, with
    eventjobs' timeouts and keepalives added (the project's own OPTIONS win)."""
    if alias not in connections:
        raise ImproperlyConfigured(f"eventjobs uses database {alias!r}, which is not in "
                                   "DATABASES (set EVENTJOBS['DATABASE'])")
    wrapper = connections[alias]
    if wrapper.vendor != "postgresql":
        raise ImproperlyConfigured(f"eventjobs needs PostgreSQL; database {alias!r} is "
                                   f"{wrapper.vendor}")
    params = {k: v for k, v in wrapper.get_connection_params().items() if k not in _DJANGO_ONLY}
    return {**link_options(), **params}


def link_options() -> dict[str, Any]:
    """libpq's connect timeout and TCP keepalives from EVENTJOBS: a server that vanished
    (a failover, a cut network) fails a connection within seconds instead of minutes."""
    conf = eventjobs_settings()
    keepalive = max(1, round(conf.keepalive_seconds))
    return {
        "connect_timeout": max(2, round(conf.connect_timeout_seconds)),
        "keepalives": 1,
        "keepalives_idle": keepalive,
        "keepalives_interval": max(1, keepalive // 3),
        "keepalives_count": 3,
        # Unacknowledged writes (a peer that vanished mid-statement) fail after this.
        "tcp_user_timeout": keepalive * 2 * 1000,
    }


def add_link_options(alias: str) -> None:
    """Give Django's own connection `alias` in this process eventjobs' link options (the
    project's OPTIONS win). For a worker child, which claims, waits for NOTIFY and runs its
    tasks on Django's connection; no statement timeout is added, as tasks' queries run there."""
    options = connections[alias].settings_dict.setdefault("OPTIONS", {})
    for name, value in link_options().items():
        options.setdefault(name, value)


def connect(params: dict[str, Any], application_name: str, *,
            synchronous_commit: bool = True) -> psycopg.Connection:
    """An eventjobs-owned autocommit connection: each statement is its own transaction.

    `synchronous_commit=False` for connections whose commits may be lost in a database
    crash without harm (a claim or lease renewal lost leaves the job as it was; the
    outcome statements turn it back on for themselves, see sql/jobs.sql).
    """
    conf = eventjobs_settings()
    options = [f"-c statement_timeout={round(conf.statement_timeout_seconds * 1000)}"]
    if not synchronous_commit:
        options.append("-c synchronous_commit=off")
    if params.get("options"):
        options.insert(0, params["options"])
    # Our application_name wins over one in the project's OPTIONS (it names the role).
    conn = psycopg.connect(**{**params, "options": " ".join(options),
                              "application_name": application_name[:63]}, autocommit=True)
    if not conf.prepare_statements:
        conn.prepare_threshold = None
    return conn


def database_now(conn: psycopg.Connection) -> datetime:
    """The database's clock (never this machine's)."""
    row = conn.execute(query("common.sql", "clock")).fetchone()
    assert row is not None  # SELECT now() returns one row
    return row[0]


def describe(params: dict[str, Any]) -> str:
    """host:port/dbname, for logs (never the password)."""
    return f"{params.get('host', 'local')}:{params.get('port', 5432)}/{params.get('dbname')}"


def django_connection(alias: str) -> psycopg.Connection:
    """The psycopg connection under Django's connection `alias` (joins its transaction)."""
    wrapper = connections[alias]
    wrapper.ensure_connection()
    return wrapper.connection


@contextmanager
def session_cursor(alias: str, prepare: bool = False) -> Iterator[CursorWrapper]:
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
    wrapper = connections[alias]
    raw = django_connection(alias)
    saved = raw.prepare_threshold
    if prepare and eventjobs_settings().prepare_statements:
        raw.prepare_threshold = 0
    try:
        # Django's private wrapping of a cursor (its stubs list public names only).
        with wrapper._prepare_cursor(psycopg.Cursor(raw)) as cursor:  # type: ignore[attr-defined]
            yield cursor
    finally:
        raw.prepare_threshold = saved
