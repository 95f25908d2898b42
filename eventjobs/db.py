"""Connection parameters for eventjobs' own raw psycopg connections."""

from __future__ import annotations

from django.db import connections

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
