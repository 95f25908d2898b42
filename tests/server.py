"""The PostgreSQL server the tests run against: the one DATABASE_URL names, as
tests/settings.py reads it. Tests that make databases of their own (or run the demo)
make them there, so `DATABASE_URL=<any server> make test` needs nothing on 127.0.0.1:5432."""

from __future__ import annotations

import os
from urllib.parse import quote, urlencode, urlsplit

import psycopg

# tests/settings.py's default, for a run without DATABASE_URL.
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/eventjobs"


def database_url(name: str) -> str:
    """DATABASE_URL naming database `name` instead: its user, password, host, port and
    options (?sslmode=...) are kept."""
    parts = urlsplit(os.environ.get("DATABASE_URL") or DEFAULT_URL)
    return parts._replace(path=f"/{quote(name)}").geturl()


def connection_url(settings_dict: dict) -> str:
    """A postgres:// URL for a Django database settings dict: user, password, host, port,
    name, and the libpq OPTIONS as query parameters."""
    s = settings_dict
    auth = quote(s["USER"] or "", safe="")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"], safe="")
    options = {k: v for k, v in (s.get("OPTIONS") or {}).items()
               if isinstance(v, str | int) and not isinstance(v, bool)}
    query = f"?{urlencode(options)}" if options else ""
    return (f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/"
            f"{quote(s['NAME'])}{query}")


def settings_server(dbname: str = "postgres") -> psycopg.Connection:
    """An autocommit connection to the server of Django's DATABASES["default"] (parsed
    from DATABASE_URL by the settings, not by database_url: tests use it to check that)."""
    from django.conf import settings

    s = settings.DATABASES["default"]
    return psycopg.connect(host=s["HOST"] or None, port=s["PORT"] or None,
                           user=s["USER"] or None, password=s["PASSWORD"] or None,
                           dbname=dbname, autocommit=True)


def database_exists(name: str) -> bool:
    """Whether the server of DATABASES["default"] has a database `name`."""
    with settings_server() as conn:
        return bool(conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                 [name]).fetchone())
