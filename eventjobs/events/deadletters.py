"""Dead letters: events a group's handlers gave up on. Reprocess (after a fix) or discard.

Both are idempotent: each works on open dead letters only, locking the row, so a
double click (or a replay racing with a reprocess) handles an event once. A dead
letter keeps a copy of the event, so reprocessing works after retention removed it.
"""

from __future__ import annotations

import logging
import traceback as tb
from collections.abc import Iterable

from django.db import transaction
from django.db.models.functions import Now

from eventjobs.conf import database_alias
from eventjobs.events.log import Event
from eventjobs.events.partitions import key_hash
from eventjobs.events.registry import get_group

logger = logging.getLogger("eventjobs.deadletters")


def _open(ids: Iterable[int] | None, group: str | None):
    from eventjobs.models import DeadLetter, DeadLetterStatus

    qs = DeadLetter.objects.using(database_alias()).filter(status=DeadLetterStatus.OPEN)
    if ids is not None:
        qs = qs.filter(id__in=list(ids))
    if group is not None:
        qs = qs.filter(group=group)
    return qs


def event_of(dead) -> Event:
    """The event as handlers see it, rebuilt from the dead letter's copy."""
    return Event(dead.event_id, dead.event_type, dead.event_key, None, dead.event_source,
                 dead.event_created_at, int(dead.event_txid), key_hash(dead.event_key),
                 data=dead.event_data)


def reprocess_dead_letters(ids: Iterable[int] | None = None, *, group: str | None = None) -> dict:
    """Run the group's handlers again for open dead letters (by id, or all of `group`).

    Each runs in its own transaction with the handlers' writes; success resolves the
    dead letter in that transaction, failure records the error and leaves it open.
    Returns {"resolved": [...ids], "failed": [...ids], "not_found": [...ids no dead
    letter has]}; ids of dead letters already resolved or discarded are in none."""
    from eventjobs.models import DeadLetter, DeadLetterStatus

    if ids is None and group is None:
        raise ValueError("pass dead letter ids, or group= to reprocess all of a group's")
    alias = database_alias()
    if ids is not None:
        ids = list(dict.fromkeys(int(i) for i in ids))
    found = set(DeadLetter.objects.using(alias).filter(id__in=ids)
                .values_list("id", flat=True)) if ids else set()
    result: dict[str, list[int]] = {"resolved": [], "failed": [],
                                    "not_found": [i for i in ids or () if i not in found]}
    for dead_id in list(_open(ids, group).order_by("event_txid", "event_id")
                        .values_list("id", flat=True)):
        with transaction.atomic(using=alias):
            dead = (DeadLetter.objects.using(alias).select_for_update()
                    .filter(id=dead_id, status=DeadLetterStatus.OPEN).first())
            if dead is None:
                continue  # resolved or discarded meanwhile
            handlers = get_group(dead.group).dispatch_table()(dead.event_type)
            event = event_of(dead)
            try:
                with transaction.atomic(using=alias):
                    for handler in handlers:
                        handler.func(event)
            except Exception as exc:  # noqa: BLE001 - recorded on the dead letter
                dead.error = f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"
                dead.traceback = "".join(tb.format_exception(exc))
                dead.attempts += 1
                dead.updated_at = Now()
                dead.save(update_fields=["error", "traceback", "attempts", "updated_at"])
                result["failed"].append(dead.id)
                logger.warning("dead letter %s (group %s, event #%s) failed again: %s",
                               dead.id, dead.group, dead.event_id, dead.error)
                continue
            dead.status = DeadLetterStatus.RESOLVED
            dead.resolved_at = dead.updated_at = Now()
            dead.save(update_fields=["status", "resolved_at", "updated_at"])
            result["resolved"].append(dead.id)
    return result


def discard_dead_letters(ids: Iterable[int] | None = None, *, group: str | None = None) -> int:
    """Mark open dead letters discarded (kept for the record); returns how many."""
    from eventjobs.models import DeadLetterStatus

    if ids is None and group is None:
        raise ValueError("pass dead letter ids, or group= to discard all of a group's")
    return _open(ids, group).update(status=DeadLetterStatus.DISCARDED, updated_at=Now(),
                                    resolved_at=Now())
