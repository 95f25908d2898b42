"""Settings of the event half (keys of the project's EVENTJOBS dict), with defaults."""

from __future__ import annotations

from dataclasses import dataclass

from .conf import eventjobs_setting

EVENT_DEFAULTS = {
    "PARTITIONS": 8,  # per group, fixed when the group is first run
    "CONSUMER_LEASE_SECONDS": 10.0,  # a dead consume process's partitions move after this
    "CONSUMER_HEARTBEAT_SECONDS": None,  # None: lease / 3
    "CONSUMER_POLL_SECONDS": 1.0,
    "BATCH_SIZE": 1000,  # events per handler transaction, at most
    "BATCH_SECONDS": 0.05,  # ... and time budget per batch
    "LISTEN": True,  # LISTEN/NOTIFY wake-ups (polling stays as the fallback)
    "LAG_CAP": 10000,  # lag is exact up to this, then reported as the cap
    "HELD_BACK_AFTER_SECONDS": 1.0,  # report a horizon holder older than this
    "SHUTDOWN_GRACE_SECONDS": 30.0,
    "PREPARE_STATEMENTS": True,  # server-side prepared hot queries (off behind pgbouncer)
}

# NOTIFY channel for events; the payload is empty so a transaction sends one.
EVENT_CHANNEL = "eventjobs_event"

MAX_TYPE_LENGTH = 200


@dataclass(frozen=True)
class EventOptions:
    """The event half's settings after defaults are applied."""

    partitions: int
    lease_seconds: float
    heartbeat_seconds: float
    poll_seconds: float
    batch_size: int
    batch_seconds: float
    listen: bool
    lag_cap: int
    held_back_after_seconds: float
    shutdown_grace_seconds: float
    prepare: bool

    @classmethod
    def load(cls) -> EventOptions:
        merged = {key: eventjobs_setting(key, default) for key, default in EVENT_DEFAULTS.items()}
        lease = float(merged["CONSUMER_LEASE_SECONDS"])
        beat = merged["CONSUMER_HEARTBEAT_SECONDS"]
        return cls(
            partitions=max(1, int(merged["PARTITIONS"])),
            lease_seconds=lease,
            heartbeat_seconds=float(beat) if beat is not None else lease / 3,
            poll_seconds=float(merged["CONSUMER_POLL_SECONDS"]),
            batch_size=max(1, int(merged["BATCH_SIZE"])),
            batch_seconds=float(merged["BATCH_SECONDS"]),
            listen=bool(merged["LISTEN"]),
            lag_cap=int(merged["LAG_CAP"]),
            held_back_after_seconds=float(merged["HELD_BACK_AFTER_SECONDS"]),
            shutdown_grace_seconds=float(merged["SHUTDOWN_GRACE_SECONDS"]),
            prepare=bool(merged["PREPARE_STATEMENTS"]),
        )
