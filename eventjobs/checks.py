"""System checks: misconfiguration is reported by `manage.py check`, not at 3 a.m."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connections

from eventjobs.conf import database_alias
from eventjobs.db import django_connection


def check_backend(backend) -> list:
    """Checks for one PostgresBackend (called through Django's task backend checks)."""
    messages = []
    opts = backend.job_options
    if backend.database not in connections:
        return [Error(f"eventjobs backend {backend.alias!r} uses database {backend.database!r}, "
                      "which is not in DATABASES", id="eventjobs.E002")]
    if connections[backend.database].vendor != "postgresql":
        messages.append(Error(
            f"eventjobs needs PostgreSQL; database {backend.database!r} is "
            f"{connections[backend.database].vendor}",
            hint="Point DATABASES (or EVENTJOBS['DATABASE']) at PostgreSQL.", id="eventjobs.E001"))
    if opts.lease_seconds <= 0 or opts.poll_seconds <= 0:
        messages.append(Error("LEASE_SECONDS and POLL_SECONDS must be positive",
                              id="eventjobs.E003"))
    elif opts.heartbeat_seconds * 2 > opts.lease_seconds:
        messages.append(Warning(
            f"HEARTBEAT_SECONDS ({opts.heartbeat_seconds}) is more than half of LEASE_SECONDS "
            f"({opts.lease_seconds}): one slow heartbeat would let a healthy job be rescued",
            hint="Leave HEARTBEAT_SECONDS unset (LEASE/3) or lower it.", id="eventjobs.W001"))
    if opts.max_attempts < 1:
        messages.append(Error("MAX_ATTEMPTS must be at least 1 (it counts the first run)",
                              id="eventjobs.E004"))
    if not opts.listen:
        messages.append(Warning(
            "LISTEN is off: workers find new jobs only by polling every POLL_SECONDS",
            hint="Turn it off only behind a transaction-mode pooler.", id="eventjobs.W002"))
    return messages


@register()
def check_install(app_configs=None, **kwargs) -> list:
    """App-wide checks: the database is PostgreSQL, and `runworker` is ours."""
    messages = []
    alias = database_alias()
    if alias not in connections:
        messages.append(Error(f"EVENTJOBS['DATABASE'] is {alias!r}, which is not in DATABASES",
                              id="eventjobs.E002"))
    elif connections[alias].vendor != "postgresql":
        messages.append(Error(f"eventjobs needs PostgreSQL; database {alias!r} is "
                              f"{connections[alias].vendor}", id="eventjobs.E001"))
    labels = [config.label for config in apps.get_app_configs()]
    if "channels" in labels and labels.index("channels") < labels.index("eventjobs"):
        messages.append(Warning(
            "'channels' comes before 'eventjobs' in INSTALLED_APPS, so `manage.py runworker` "
            "runs Channels' worker, not eventjobs'",
            hint="List 'eventjobs' before 'channels'.", id="eventjobs.W003"))
    backends = [params.get("BACKEND", "") for params in getattr(settings, "TASKS", {}).values()]
    if not any(path.startswith("eventjobs.backends.") for path in backends):
        messages.append(Warning(
            "no TASKS backend is eventjobs.backends.PostgresBackend; jobs will not be stored",
            hint='Set TASKS = {"default": {"BACKEND": "eventjobs.backends.PostgresBackend"}}.',
            id="eventjobs.W004"))
    return messages


# -- event half: database checks (run by `migrate`, and by `check --database default`) --------

# A group held back by the same horizon for longer than this is reported by eventjobs.W006.
HELD_BACK_WARNING_SECONDS = 300


@register(Tags.database)
def check_event_database(app_configs=None, databases=None, **kwargs) -> list:
    """The event half's database: idle-in-transaction timeout set, horizon not stuck."""
    alias = database_alias()
    if not databases or alias not in databases or alias not in connections:
        return []
    if connections[alias].vendor != "postgresql":
        return []
    import psycopg

    from eventjobs.events import store as eventstore

    messages = []
    try:
        conn = django_connection(alias)
        with conn.transaction():
            timeout = conn.execute(
                "SELECT current_setting('idle_in_transaction_session_timeout')").fetchone()[0]
            stuck = (eventstore.stuck_groups(conn, HELD_BACK_WARNING_SECONDS)
                     if conn.execute("SELECT to_regclass('eventjobs_consumer_group')")
                     .fetchone()[0] else [])
    except (DatabaseError, psycopg.Error):
        return []  # not reachable or not migrated yet: other checks and migrate report it
    if str(timeout).strip() in ("0", "0ms", "0s"):
        messages.append(Warning(
            "idle_in_transaction_session_timeout is 0 (off): one forgotten open transaction "
            "anywhere in the cluster holds back every event consumer until it ends",
            hint="ALTER DATABASE <db> SET idle_in_transaction_session_timeout = '60s' (or on "
                 "the role); see docs/operations.md.", id="eventjobs.W005"))
    for name, xid, since in stuck:
        messages.append(Warning(
            f"consumer group {name!r}: committed events have waited since {since.isoformat()} "
            f"behind transaction {xid}, which is still open",
            hint="Find it with SELECT pid, state, xact_start FROM pg_stat_activity WHERE "
                 "backend_xid IS NOT NULL (as a superuser or pg_read_all_stats) and end it; "
                 "set idle_in_transaction_session_timeout.", id="eventjobs.W006"))
    return messages
