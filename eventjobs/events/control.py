"""Steering consumer groups: pause, resume, reset (replay or skip), forget.

Used by `manage.py consumer_group` and the admin. Each takes effect while `consume`
processes run: the change bumps the cursors' generation (and waits for a running batch,
which holds the cursor rows' locks), and the running process reloads after its batch.
Each is idempotent: pausing a paused group or resetting to where a group already is
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psycopg
from django.db import transaction

from eventjobs.conf import database_alias, eventjobs_settings
from eventjobs.db import django_connection
from eventjobs.events import controlstore, store
from eventjobs.events.partitions import START, Position
from eventjobs.exceptions import GroupNotFound

Target = Literal["beginning", "end"] | int | datetime


@dataclass(frozen=True)
class ResetPlan:
    """Where a reset moves a group, and how many handled events it delivers again."""

    group: str
    position: Position
    redeliveries: int
    redeliveries_capped: bool


def _partitions(name: str) -> int:
    from eventjobs.models import ConsumerGroup

    partitions = (ConsumerGroup.objects.using(database_alias()).filter(name=name)
                  .values_list("partitions", flat=True).first())
    if partitions is None:
        raise GroupNotFound(f"no consumer group {name!r} in the database yet (a group is "
                            "created when `consume` first runs it)")
    return partitions


def _position(conn: psycopg.Connection, target: Target) -> Position:
    """The position a reset moves to: everything after it is handled (again)."""
    if target == "beginning":
        return START
    if target == "end":
        return (store.horizon(conn), 0)
    if isinstance(target, bool) or not isinstance(target, int | datetime):
        raise ValueError(f"reset target must be 'beginning', 'end', an event id or a "
                         f"datetime, not {target!r}")
    if isinstance(target, int):
        found = controlstore.event_position(conn, target)
        if found is None:
            raise LookupError(f"event {target} does not exist (never published, or pruned)")
        return (found[0], found[1] - 1)  # re-deliver the event itself
    found = controlstore.position_at_time(conn, target)
    if found is None:
        return (store.horizon(conn), 0)  # nothing at or after T yet
    return (found[0], found[1] - 1)


def plan_reset(name: str, target: Target) -> ResetPlan:
    """What `reset(name, target)` would do, without doing it (for confirmation pages)."""
    partitions = _partitions(name)
    cap = eventjobs_settings().lag_cap
    conn = django_connection(database_alias())
    # One snapshot for the target and the count (no lock: nothing is changed).
    with transaction.atomic(using=database_alias()):
        position = _position(conn, target)
        again = controlstore.count_redeliveries(conn, group=name, position=position,
                                              n=partitions, cap=cap)
    return ResetPlan(name, position, again, again >= cap)


def reset(name: str, target: Target) -> ResetPlan:
    """Move every partition of the group to `target`; returns what was done. A reset to
    where the group already is moves nothing (`redeliveries` is 0)."""
    partitions = _partitions(name)
    cap = eventjobs_settings().lag_cap
    alias = database_alias()
    # One transaction holding the group's cursor locks: a running batch finishes first,
    # and the count and the move see the same positions.
    with transaction.atomic(using=alias):
        conn = django_connection(alias)
        controlstore.lock_group(conn, name)
        position = _position(conn, target)
        again = controlstore.count_redeliveries(conn, group=name, position=position,
                                              n=partitions, cap=cap)
        controlstore.reset_group(conn, group=name, position=position)
    return ResetPlan(name, position, again, again >= cap)


def pause(name: str) -> bool:
    """Stop delivering to the group (every process of it); False if it was paused."""
    return _set_paused(name, True)


def resume(name: str) -> bool:
    """Deliver to the group again; False if it was not paused."""
    return _set_paused(name, False)


def _set_paused(name: str, paused: bool) -> bool:
    _partitions(name)
    alias = database_alias()
    # Under the group's cursor locks: waits for a running batch, which then sees the flag.
    with transaction.atomic(using=alias):
        conn = django_connection(alias)
        controlstore.lock_group(conn, name)
        changed = controlstore.pause_group(conn, group=name, paused=paused)
    return bool(changed)


def forget(name: str) -> None:
    """Drop a retired group's cursors and membership, so it no longer holds retention
    back; its dead letters stay. A later `consume` of it starts afresh."""
    from eventjobs.models import ConsumerGroup

    _partitions(name)
    ConsumerGroup.objects.using(database_alias()).filter(name=name).delete()
