"""Pausing and resuming queues (`manage.py queue`, the admin). No SQL here.

A paused queue's jobs stay where they are and are not claimed (the claim statement
itself skips paused queues, so even a worker that has not heard of the pause obeys it);
running jobs finish. The switch is a row in eventjobs_queue, so it survives restarts.
Resuming sends the queues' NOTIFY, so idle workers claim at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import connections, transaction
from django.tasks import task_backends

from eventjobs.jobs import store as jobstore

if TYPE_CHECKING:
    from eventjobs.backends import PostgresBackend

logger = logging.getLogger("eventjobs.jobs")


def _backend(alias: str) -> PostgresBackend:
    from eventjobs.backends import PostgresBackend

    backend = task_backends[alias]
    if not isinstance(backend, PostgresBackend):
        raise TypeError(f"backend {alias!r} is not eventjobs.backends.PostgresBackend")
    return backend


def _check_names(backend: PostgresBackend, names: Iterable[str],
                 also: Iterable[str] = ()) -> list[str]:
    """The names, once each; ValueError for none, or for one neither in QUEUES nor `also`."""
    names = list(dict.fromkeys(names))
    unknown = sorted(set(names) - backend.queues - set(also)) if backend.queues else []
    if not names or unknown:
        raise ValueError(f"unknown queue(s) {unknown or names}; TASKS[{backend.alias!r}]"
                         f"['QUEUES'] is {sorted(backend.queues)}")
    return names


def pause_queues(*names: str, backend: str = "default") -> list[str]:
    """Stop claims from these queues (running jobs finish); returns the names."""
    return _set_paused(_backend(backend), names, paused=True)


def resume_queues(*names: str, backend: str = "default") -> list[str]:
    """Let these queues' jobs be claimed again, waking idle workers; returns the names.

    A queue paused and since removed from QUEUES can be resumed too: otherwise nothing
    could ever lift its pause, and its jobs would stay unclaimed if it came back."""
    return _set_paused(_backend(backend), names, paused=False)


def _set_paused(backend: PostgresBackend, names: Iterable[str], paused: bool) -> list[str]:
    # One transaction: every queue switches together, and the NOTIFY of a resume is sent
    # when the switch is visible to the claims it wakes.
    with transaction.atomic(using=backend.database), \
            connections[backend.database].cursor() as cursor:
        paused_now = set() if paused else {
            name for name, is_paused, _ in jobstore.queue_states(cursor) if is_paused}
        names = _check_names(backend, names, also=paused_now)
        for name in names:
            jobstore.set_queue_paused(cursor, name, paused,
                                      notify=not paused and backend.job_options.listen)
    logger.info("queue(s) %s %s", ", ".join(names), "paused" if paused else "resumed")
    return names


def queue_states(backend: str = "default") -> list[dict[str, Any]]:
    """Every queue of the backend (and any queue ever paused) with its switch."""
    tasks_backend = _backend(backend)
    with connections[tasks_backend.database].cursor() as cursor:
        rows = {name: (paused, at) for name, paused, at in jobstore.queue_states(cursor)}
    names = sorted(set(tasks_backend.queues) | set(rows))
    return [{"name": name, "paused": rows.get(name, (False, None))[0],
             "since": rows.get(name, (False, None))[1]} for name in names]


def paused_queues() -> list[str]:
    """Names of the paused queues (for eventjobs_status)."""
    from eventjobs.conf import database_alias

    with connections[database_alias()].cursor() as cursor:
        return [name for name, paused, _ in jobstore.queue_states(cursor) if paused]
