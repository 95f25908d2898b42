"""Dead letters: events a group's handlers gave up on. Reprocess (after a fix) or discard.

Both are idempotent: each works on open dead letters only, locking the row, so a
double click handles an event once. A reprocess also takes the group's cursor locks and
leaves an event a replay will deliver again to that replay, so a reprocess racing a
replay handles it once too. A dead letter keeps a copy of the event, so reprocessing
works after retention removed it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models.functions import Now

from eventjobs.conf import database_alias
from eventjobs.db import django_connection
from eventjobs.events import controlstore
from eventjobs.events.dispatch import run_handlers_in_savepoint
from eventjobs.events.event import Event
from eventjobs.events.partitions import key_hash
from eventjobs.events.registry import get_group

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from eventjobs.models import DeadLetter

logger = logging.getLogger("eventjobs.deadletters")


def _open(ids: Iterable[int] | None, group: str | None) -> QuerySet[DeadLetter]:
    from eventjobs.models import DeadLetter, DeadLetterStatus

    qs = DeadLetter.objects.using(database_alias()).filter(status=DeadLetterStatus.OPEN)
    if ids is not None:
        qs = qs.filter(id__in=list(ids))
    if group is not None:
        qs = qs.filter(group=group)
    return qs


def event_of(dead: DeadLetter) -> Event:
    """The event as handlers see it, rebuilt from the dead letter's copy."""
    return Event(dead.event_id, dead.event_type, dead.event_key, None, dead.event_source,
                 dead.event_created_at, int(dead.event_txid), key_hash(dead.event_key),
                 data=dead.event_data)


def reprocess_dead_letters(ids: Iterable[int] | None = None, *, group: str | None = None) -> dict:
    """Run the group's handlers again for open dead letters (by id, or all of `group`).

    Each runs in its own transaction with the handlers' writes; success resolves the
    dead letter in that transaction, failure records the error and leaves it open. A
    dead letter whose event a replay (`consumer_group reset`) will deliver again is left
    to that delivery, which resolves it: the event is not handled twice. Returns
    {"resolved": [...ids], "failed": [...ids], "replaying": [...ids], "not_found": [...ids
    no dead letter has]}; ids of dead letters already resolved or discarded are in none."""
    from eventjobs.models import DeadLetter

    if ids is None and group is None:
        raise ValueError("pass dead letter ids, or group= to reprocess all of a group's")
    if ids is not None:
        ids = list(dict.fromkeys(int(i) for i in ids))
    found = set(DeadLetter.objects.using(database_alias()).filter(id__in=ids)
                .values_list("id", flat=True)) if ids else set()
    result: dict[str, list[int]] = {"resolved": [], "failed": [], "replaying": [],
                                    "not_found": [i for i in ids or () if i not in found]}
    for dead_id, group_name in list(_open(ids, group).order_by("event_txid", "event_id")
                                    .values_list("id", "group")):
        outcome = _reprocess_one(dead_id, group_name)
        if outcome is not None:
            result[outcome].append(dead_id)
    return result


def _reprocess_one(dead_id: int, group_name: str) -> str | None:
    """"resolved", "failed", "replaying", or None when no longer open."""
    from eventjobs.models import DeadLetter, DeadLetterStatus

    alias = database_alias()
    handlers = get_group(group_name).dispatch_table()
    # One transaction: the handlers' writes and the dead letter's new state commit together.
    with transaction.atomic(using=alias):
        conn = django_connection(alias)
        # The group's cursor rows first (the order batches and resets take them in): a
        # running batch, a reset or a second reprocess waits here, so the check below
        # and the handling cannot interleave with them.
        controlstore.lock_group(conn, group_name)
        dead = (DeadLetter.objects.using(alias).select_for_update()
                .filter(id=dead_id, status=DeadLetterStatus.OPEN).first())
        if dead is None:
            return None  # resolved or discarded meanwhile
        if controlstore.replay_pending(conn, group=dead.group, event_id=dead.event_id):
            return "replaying"
        failure = run_handlers_in_savepoint(alias, conn, event_of(dead), handlers(dead.event_type))
        if failure is not None:
            dead.error, dead.traceback = failure.error, failure.traceback
            dead.attempts += 1
            dead.updated_at = Now()
            dead.save(update_fields=["error", "traceback", "attempts", "updated_at"])
            logger.warning("dead letter %s (group %s, event #%s) failed again: %s",
                           dead.id, dead.group, dead.event_id, dead.error)
            return "failed"
        dead.status = DeadLetterStatus.RESOLVED
        dead.resolved_at = dead.updated_at = Now()
        dead.save(update_fields=["status", "resolved_at", "updated_at"])
        return "resolved"




def discard_dead_letters(ids: Iterable[int] | None = None, *, group: str | None = None) -> int:
    """Mark open dead letters discarded (kept for the record); returns how many."""
    from eventjobs.models import DeadLetterStatus

    if ids is None and group is None:
        raise ValueError("pass dead letter ids, or group= to discard all of a group's")
    return _open(ids, group).update(status=DeadLetterStatus.DISCARDED, updated_at=Now(),
                                    resolved_at=Now())
