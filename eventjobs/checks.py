"""System checks: misconfiguration is reported by `manage.py check`, not at 3 a.m."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Warning, register
from django.db import connections

from .conf import database_alias


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
