"""Settings for eventjobs with their documented defaults, read in one place."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

JOB_DEFAULTS = {
    "LEASE_SECONDS": 30.0,
    "HEARTBEAT_SECONDS": None,  # None: LEASE_SECONDS / 3
    "POLL_SECONDS": 1.0,
    "SHUTDOWN_GRACE_SECONDS": 30.0,
    "MAX_ATTEMPTS": 3,
    "RETRY_BACKOFF_SECONDS": 2.0,
    "TIMEOUT_SECONDS": None,
    "LISTEN": True,
    # How long a job whose task path does not import is released (not failed),
    # so a rolling deploy can bring the code; then it fails with TaskNotFound.
    "IMPORT_GRACE_SECONDS": 600.0,
}

# NOTIFY channel for jobs; the payload is the queue name only.
JOB_CHANNEL = "eventjobs_job"


@dataclass(frozen=True)
class JobOptions:
    """The backend OPTIONS after defaults are applied."""

    lease_seconds: float
    heartbeat_seconds: float
    poll_seconds: float
    shutdown_grace_seconds: float
    max_attempts: int
    retry_backoff_seconds: float
    timeout_seconds: float | None
    listen: bool
    import_grace_seconds: float

    @classmethod
    def from_options(cls, options: dict) -> JobOptions:
        merged = {**JOB_DEFAULTS, **{k.upper(): v for k, v in (options or {}).items()}}
        lease = float(merged["LEASE_SECONDS"])
        heartbeat = merged["HEARTBEAT_SECONDS"]
        timeout = merged["TIMEOUT_SECONDS"]
        return cls(
            lease_seconds=lease,
            heartbeat_seconds=float(heartbeat) if heartbeat is not None else lease / 3,
            poll_seconds=float(merged["POLL_SECONDS"]),
            shutdown_grace_seconds=float(merged["SHUTDOWN_GRACE_SECONDS"]),
            max_attempts=int(merged["MAX_ATTEMPTS"]),
            retry_backoff_seconds=float(merged["RETRY_BACKOFF_SECONDS"]),
            timeout_seconds=float(timeout) if timeout is not None else None,
            listen=bool(merged["LISTEN"]),
            import_grace_seconds=float(merged["IMPORT_GRACE_SECONDS"]),
        )


def eventjobs_setting(name: str, default=None):
    """Read one key of the project-wide EVENTJOBS setting."""
    return getattr(settings, "EVENTJOBS", {}).get(name, default)


def database_alias() -> str:
    """The database alias both halves use (EVENTJOBS["DATABASE"], default "default")."""
    return eventjobs_setting("DATABASE", "default")


def prepare_statements() -> bool:
    """EVENTJOBS["PREPARE_STATEMENTS"] (default True): prepare hot statements server-side.

    Turn off behind a pooler in transaction mode that does not track prepared statements.
    """
    return bool(eventjobs_setting("PREPARE_STATEMENTS", True))
