"""eventjobs: background jobs and an event log for Django, stored in PostgreSQL.

The public names are imported lazily so that importing eventjobs loads no models.
"""

from __future__ import annotations

from typing import Any

__all__ = ["enqueue_many", "retry_job", "cancel_job", "lease_lost", "periodic", "Snooze",
           "pause_queues", "resume_queues", "publish", "publish_many", "consumer",
           "reprocess_dead_letters", "discard_dead_letters"]

_LAZY = {
    "enqueue_many": "eventjobs.jobs.api",
    "retry_job": "eventjobs.jobs.api",
    "cancel_job": "eventjobs.jobs.api",
    "lease_lost": "eventjobs.jobs.current",
    "periodic": "eventjobs.jobs.periodic",
    "Snooze": "eventjobs.exceptions",
    "pause_queues": "eventjobs.jobs.queues",
    "resume_queues": "eventjobs.jobs.queues",
    "publish": "eventjobs.events.log",
    "publish_many": "eventjobs.events.log",
    "consumer": "eventjobs.events.registry",
    "reprocess_dead_letters": "eventjobs.events.deadletters",
    "discard_dead_letters": "eventjobs.events.deadletters",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'eventjobs' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
