"""System checks: misconfiguration is reported by `manage.py check`, not at 3 a.m."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections

from eventjobs.conf import (
    BACKEND_KEYS,
    EVENTJOBS_SETTINGS,
    JOB_SETTINGS,
    Setting,
    eventjobs_settings,
    unknown_keys,
)
from eventjobs.db import django_connection

if TYPE_CHECKING:
    import psycopg

    from eventjobs.backends import PostgresBackend

NOT_POSTGRESQL_HINT = "Point DATABASES (or EVENTJOBS['DATABASE']) at PostgreSQL."


def _database_errors(alias: str, what: str) -> list[CheckMessage]:
    """E002/E001 for the database `what` names, or [] when it is PostgreSQL."""
    if alias not in connections:
        return [Error(f"{what} is {alias!r}, which is not in DATABASES",
                      hint="Name an alias of DATABASES.", id="eventjobs.E002")]
    vendor = connections[alias].vendor
    if vendor != "postgresql":
        return [Error(f"eventjobs needs PostgreSQL; database {alias!r} is {vendor}",
                      hint=NOT_POSTGRESQL_HINT, id="eventjobs.E001")]
    return []


def _typos(known: Sequence[str], values: Any, where: str) -> list[CheckMessage]:
    """W007 for every key of `values` not in `known`, naming the closest."""
    if not isinstance(values, dict):
        return []  # reported as E005 by the reader
    messages: list[CheckMessage] = []
    for key, closest in unknown_keys(known, values):
        guess = f"; did you mean {closest!r}?" if closest else ""
        messages.append(Warning(
            f"{where} has an unknown key {key!r}{guess} (it is ignored)",
            hint=f"Known keys: {', '.join(known)}.", id="eventjobs.W007"))
    return messages


def _keys(table: tuple[Setting, ...]) -> list[str]:
    return [s.key for s in table]


def check_backend(backend: PostgresBackend) -> list[CheckMessage]:
    """Checks for one PostgresBackend (called through Django's task backend checks)."""
    where = backend.options_setting
    # A misspelt "QUEUE" or "OPTION" is ignored by Django, so the queues or options meant
    # silently fall back to their defaults.
    messages = _typos(BACKEND_KEYS, backend.params, f"TASKS[{backend.alias!r}]")
    messages += _typos(_keys(JOB_SETTINGS), backend.options, where)
    if backend.options_error is not None:
        return [*messages, Error(str(backend.options_error), id="eventjobs.E005")]
    opts = backend.job_options
    try:
        shared = eventjobs_settings().database
    except ImproperlyConfigured:
        shared = None  # reported by check_install
    own = backend.database_setting
    if own and own != shared:  # the shared one is checked once, by check_install
        messages += _database_errors(own, f"TASKS[{backend.alias!r}]['DATABASE']")
    if opts.heartbeat_seconds * 2 > opts.lease_seconds:
        messages.append(Warning(
            f"HEARTBEAT_SECONDS ({opts.heartbeat_seconds}) is more than half of LEASE_SECONDS "
            f"({opts.lease_seconds}): one slow heartbeat would let a healthy job be rescued",
            hint="Leave HEARTBEAT_SECONDS unset (LEASE/3) or lower it.", id="eventjobs.W001"))
    if not opts.listen:
        messages.append(Warning(
            f"{where}['LISTEN'] is off: workers find new jobs only by polling every "
            "POLL_SECONDS", hint="Turn it off only behind a transaction-mode pooler.",
            id="eventjobs.W002"))
    return messages


@register()
def check_install(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
                  ) -> list[CheckMessage]:
    """App-wide checks: EVENTJOBS is valid, the database is PostgreSQL, `runworker` is ours."""
    if not apps.is_installed("eventjobs"):
        return []  # registered by importing this module; the backend reports E006
    values = getattr(settings, "EVENTJOBS", None)
    messages = _typos(_keys(EVENTJOBS_SETTINGS), values, "EVENTJOBS")
    try:
        opts = eventjobs_settings()
    except ImproperlyConfigured as exc:
        return [*messages, Error(str(exc), id="eventjobs.E005")]
    messages += _database_errors(opts.database, "EVENTJOBS['DATABASE']")
    if not opts.listen:
        messages.append(Warning(
            "EVENTJOBS['LISTEN'] is off: consume processes find new events only by polling "
            "every CONSUMER_POLL_SECONDS", hint="Turn it off only behind a transaction-mode "
            "pooler.", id="eventjobs.W002"))
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
def check_event_database(app_configs: Sequence[AppConfig] | None = None,
                         databases: Sequence[str] | None = None, **kwargs: Any
                         ) -> list[CheckMessage]:
    """The event half's database: idle-in-transaction timeout set, horizon not stuck."""
    try:
        alias = eventjobs_settings().database
    except ImproperlyConfigured:
        return []  # reported by check_install
    if not databases or alias not in databases or alias not in connections:
        return []
    if connections[alias].vendor != "postgresql":
        return []
    import psycopg

    from eventjobs.events import store as eventstore

    messages: list[CheckMessage] = []
    try:
        conn = django_connection(alias)
        with conn.transaction():
            timeout = _value(conn, "SELECT current_setting('idle_in_transaction_session_timeout')")
            stuck = (eventstore.stuck_groups(conn, HELD_BACK_WARNING_SECONDS)
                     if _value(conn, "SELECT to_regclass('eventjobs_consumer_group')") else [])
    except (DatabaseError, psycopg.Error):
        return []  # not reachable or not migrated yet: other checks and migrate report it
    if str(timeout).strip() in ("0", "0ms", "0s"):
        messages.append(Warning(
            "idle_in_transaction_session_timeout is 0 (off): one forgotten open transaction "
            "anywhere in the cluster holds back every event consumer until it ends",
            hint="Set it for the database eventjobs uses (or for its role): ALTER DATABASE "
                 f"{connections[alias].settings_dict.get('NAME') or '<name>'} SET "
                 "idle_in_transaction_session_timeout = '60s'; sessions opened afterwards end "
                 "a transaction left idle that long.", id="eventjobs.W005"))
    for name, xid, since in stuck:
        messages.append(Warning(
            f"consumer group {name!r}: committed events have waited since {since.isoformat()} "
            f"behind transaction {xid}, which is still open",
            hint="Find it with SELECT pid, state, xact_start FROM pg_stat_activity WHERE "
                 "backend_xid IS NOT NULL (as a superuser or pg_read_all_stats) and end it; "
                 "set idle_in_transaction_session_timeout.", id="eventjobs.W006"))
    return messages


def _value(conn: psycopg.Connection, sql: str) -> Any:
    """The value of a SELECT without FROM (it returns exactly one row)."""
    row = conn.execute(sql).fetchone()
    assert row is not None  # a SELECT without FROM always returns one row
    return row[0]
