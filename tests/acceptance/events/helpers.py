"""Helpers shared by the event acceptance tests (real `consume` processes)."""

from __future__ import annotations

from collections import Counter

from django.db import connection

from tests.testapp.models import EventLedger

SETTINGS = "tests.testapp.eventsettings"


def consume(spawn, *args, **env):
    """Start `manage.py consume ARGS` with EVENTJOBS timings from `env`."""
    return spawn("consume", *args, env={"DJANGO_SETTINGS_MODULE": SETTINGS,
                                        **{k: str(v) for k, v in env.items()}})


def handled(group: str) -> Counter:
    """event id -> how many times the group's handler committed it."""
    return Counter(EventLedger.objects.filter(group=group).values_list("event_id", flat=True))


def terminate_other_backends() -> int:
    """pg_terminate_backend every other session of the test database (the consume
    processes' connections); returns how many."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


def consume_backends() -> list[int]:
    """Backend pids of the test database's other sessions."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
        return [row[0] for row in cursor.fetchall()]
