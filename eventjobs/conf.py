"""Every setting of eventjobs, its default and its validation, in one place.

Two dicts configure eventjobs:
- a task backend's `TASKS[alias]["OPTIONS"]` (the job half; `JobOptions`), and
- the project-wide `EVENTJOBS` dict (the event half, plus what both halves share:
  the database, prepared statements and connection timeouts; `EventjobsSettings`).

Each value is validated once, when it is read, and a bad one raises ImproperlyConfigured
naming the setting (`TASKS['default']['OPTIONS']['LEASE_SECONDS'] must be ...`).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

MAX_INT4 = 2**31 - 1  # PostgreSQL integer columns (attempt counters)


# -- value parsers: each returns the clean value or raises ValueError("must be ...") ----------
def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number of seconds, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number of seconds, got {value!r}")
    return float(value)


def positive_seconds(value: Any) -> float:
    seconds = _number(value)
    if seconds <= 0:
        raise ValueError(f"must be more than 0 seconds, got {value!r}")
    return seconds


def seconds_or_zero(value: Any) -> float:
    seconds = _number(value)
    if seconds < 0:
        raise ValueError(f"must be 0 or more seconds, got {value!r}")
    return seconds


def optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse_optional(value: Any) -> Any:
        return None if value is None else parse(value)

    return parse_optional


def count(minimum: int, maximum: int = MAX_INT4) -> Callable[[Any], int]:
    def parse_count(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number, got {value!r}")
        if not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}, got {value!r}")
        return value

    return parse_count


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be True or False, got {value!r}")
    return value


def alias_name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a DATABASES alias, got {value!r}")
    return value


def secret_text(value: Any) -> str:
    if not isinstance(value, str) or len(value) < 16:
        raise ValueError("must be a string of at least 16 characters (a random token)")
    return value


@dataclass(frozen=True)
class Setting:
    """One setting: its key, default, parser and a one-line meaning (for docs and errors)."""

    key: str
    default: Any
    parse: Callable[[Any], Any]
    doc: str


def _read(table: tuple[Setting, ...], values: Mapping[str, Any] | None, where: str) -> dict:
    """Parse `values` against `table`; {field name: value}. Unknown keys are left to the
    system checks (a warning naming the closest key), so a typo never stops a deploy."""
    values = values or {}
    if not isinstance(values, Mapping):
        raise ImproperlyConfigured(f"{where} must be a dict, got {type(values).__name__}")
    parsed = {}
    for setting in table:
        raw = values.get(setting.key, setting.default)
        try:
            parsed[setting.key.lower()] = setting.parse(raw)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{where}[{setting.key!r}] {exc} ({setting.doc})") from None
    return parsed


def unknown_keys(known: Sequence[str], values: Mapping[str, Any] | None
                 ) -> list[tuple[str, str | None]]:
    """[(unknown key, closest known key or None)] for the system checks."""
    return [(key, next(iter(difflib.get_close_matches(str(key), known, n=1)), None))
            for key in (values or {}) if key not in known]


# The keys of a TASKS[alias] dict that are read: Django's (django/tasks reads BACKEND,
# QUEUES and OPTIONS) and the eventjobs backend's own DATABASE.
BACKEND_KEYS = ("BACKEND", "QUEUES", "OPTIONS", "DATABASE")


# -- shared by both halves --------------------------------------------------------------------
LISTEN = Setting("LISTEN", True, boolean,
                 "wake up through LISTEN/NOTIFY; polling stays as the fallback")
SHUTDOWN_GRACE_SECONDS = Setting("SHUTDOWN_GRACE_SECONDS", 30.0, seconds_or_zero,
                                 "how long running work may finish after the first SIGTERM")

# -- TASKS[alias]["OPTIONS"]: the job half ----------------------------------------------------
JOB_SETTINGS = (
    Setting("LEASE_SECONDS", 30.0, positive_seconds,
            "a crashed worker's job is run again after this long"),
    Setting("HEARTBEAT_SECONDS", None, optional(positive_seconds),
            "how often leases are renewed (None: LEASE_SECONDS / 3)"),
    Setting("POLL_SECONDS", 1.0, positive_seconds,
            "how often an idle worker looks for jobs without a NOTIFY"),
    SHUTDOWN_GRACE_SECONDS,
    Setting("MAX_ATTEMPTS", 3, count(1), "attempts per job, the first run included"),
    Setting("RETRY_BACKOFF_SECONDS", 2.0, seconds_or_zero,
            "base of the exponential backoff between attempts"),
    Setting("TIMEOUT_SECONDS", None, optional(positive_seconds),
            "an attempt running longer is killed (None: no limit)"),
    LISTEN,
    Setting("IMPORT_GRACE_SECONDS", 600.0, seconds_or_zero,
            "a job whose task path does not import is retried this long before it fails"),
)


@dataclass(frozen=True)
class JobOptions:
    """A PostgresBackend's OPTIONS after defaults and validation."""

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
    def from_options(cls, options: Mapping[str, Any] | None, where: str = "OPTIONS"
                     ) -> JobOptions:
        values = _read(JOB_SETTINGS, options, where)
        if values["heartbeat_seconds"] is None:
            values["heartbeat_seconds"] = values["lease_seconds"] / 3
        return cls(**values)


# -- EVENTJOBS: the event half and what both halves share --------------------------------------
EVENTJOBS_SETTINGS = (
    Setting("DATABASE", "default", alias_name, "the DATABASES alias both halves use"),
    Setting("PREPARE_STATEMENTS", True, boolean,
            "prepare hot statements server-side (off behind a transaction-mode pooler)"),
    Setting("CONNECT_TIMEOUT_SECONDS", 10.0, positive_seconds,
            "eventjobs' own connections give up connecting after this long"),
    Setting("STATEMENT_TIMEOUT_SECONDS", 60.0, seconds_or_zero,
            "eventjobs' own statements (claims, leases, maintenance) are cancelled after this "
            "long (0: no limit; handlers' batches use your DATABASES settings)"),
    Setting("KEEPALIVE_SECONDS", 15.0, positive_seconds,
            "a silent connection is probed after this long and dropped after ~2x as long"),
    Setting("MAX_PAYLOAD_BYTES", 1_000_000, count(1, 1_000_000_000),
            "largest job arguments or event data accepted, as JSON text"),
    Setting("PARTITIONS", 8, count(1, 1024), "partitions of a new consumer group"),
    Setting("CONSUMER_LEASE_SECONDS", 10.0, positive_seconds,
            "a dead consume process's partitions move to another after this long"),
    Setting("CONSUMER_HEARTBEAT_SECONDS", None, optional(positive_seconds),
            "how often consume renews its partition leases (None: lease / 3)"),
    Setting("CONSUMER_POLL_SECONDS", 1.0, positive_seconds,
            "how often an idle consume looks for events without a NOTIFY"),
    Setting("BATCH_SIZE", 1000, count(1, 100_000), "events per handler transaction, at most"),
    Setting("BATCH_SECONDS", 0.05, positive_seconds,
            "a batch stops taking new events after this long"),
    Setting("BATCH_SYNCHRONOUS_COMMIT", False, boolean,
            "a batch's commit waits for its WAL flush (off: a crash may lose the last "
            "batches, effects and positions together, and they are handled again)"),
    Setting("HANDLER_TIMEOUT_SECONDS", 300.0, positive_seconds,
            "a batch still running after this long is abandoned and its event charged an "
            "attempt (Kafka's max.poll.interval)"),
    LISTEN,
    Setting("LAG_CAP", 10000, count(1, 100_000_000), "lag is counted exactly up to this"),
    Setting("HELD_BACK_AFTER_SECONDS", 1.0, seconds_or_zero,
            "report a transaction holding delivery back once it is this old"),
    SHUTDOWN_GRACE_SECONDS,
    Setting("METRICS_TOKEN", None, optional(secret_text),
            "when set, /metrics answers only requests with 'Authorization: Bearer <token>'"),
)

MAX_TYPE_LENGTH = 200  # event type and source names


@dataclass(frozen=True)
class EventjobsSettings:
    """The project's EVENTJOBS dict after defaults and validation."""

    database: str
    prepare_statements: bool
    connect_timeout_seconds: float
    statement_timeout_seconds: float
    keepalive_seconds: float
    max_payload_bytes: int
    partitions: int
    consumer_lease_seconds: float
    consumer_heartbeat_seconds: float
    consumer_poll_seconds: float
    batch_size: int
    batch_seconds: float
    batch_synchronous_commit: bool
    handler_timeout_seconds: float
    listen: bool
    lag_cap: int
    held_back_after_seconds: float
    shutdown_grace_seconds: float
    metrics_token: str | None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> EventjobsSettings:
        parsed = _read(EVENTJOBS_SETTINGS, values, "EVENTJOBS")
        if parsed["consumer_heartbeat_seconds"] is None:
            parsed["consumer_heartbeat_seconds"] = parsed["consumer_lease_seconds"] / 3
        return cls(**parsed)


assert {f.name for f in fields(EventjobsSettings)} == {s.key.lower() for s in EVENTJOBS_SETTINGS}
assert {f.name for f in fields(JobOptions)} == {s.key.lower() for s in JOB_SETTINGS}


@cache
def eventjobs_settings() -> EventjobsSettings:
    """EVENTJOBS, read once per process (and again when a test overrides it)."""
    return EventjobsSettings.from_dict(getattr(settings, "EVENTJOBS", None))


def _forget_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "EVENTJOBS":
        eventjobs_settings.cache_clear()


setting_changed.connect(_forget_on_change)


def database_alias() -> str:
    """The database alias both halves use (EVENTJOBS["DATABASE"], default "default")."""
    return eventjobs_settings().database
