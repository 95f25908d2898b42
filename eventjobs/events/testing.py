"""Running consumer groups inside a test, in the test's own transaction.

`run_consumers()` is re-exported as `eventjobs.testing.run_consumers`. It works inside
Django's `TestCase` and pytest-django's `db` fixture, where the events a test published
are not committed: it reads them on the test's own connection.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from django.db import transaction

from eventjobs.conf import database_alias, eventjobs_settings
from eventjobs.db import django_connection
from eventjobs.events import controlstore, store
from eventjobs.events.dispatch import calls_made, run_handlers_in_savepoint
from eventjobs.events.event import Event
from eventjobs.events.partitions import partition_of
from eventjobs.events.registry import Group, Handler, get_group
from eventjobs.events.registry import groups as registered_groups


class HandlerError(Exception):
    """A handler spoiled its transaction without raising (run_consumers re-raises this)."""


def run_consumers(*groups: str, raise_errors: bool = True) -> int:
    """Run every pending event of the named consumer groups (all registered groups when
    none is named) through their handlers, as `consume` would, and advance the groups'
    positions; returns how many handler calls ran (retries included).

    Everything happens in the caller's connection and transaction: the events of the
    test's own open transaction are read too, because this reads without the visibility
    horizon `consume` waits behind. That is only sound where nothing else publishes
    concurrently, i.e. in tests: never call it from application code.

    A failing handler's exception is raised (after its writes are rolled back to a
    savepoint: the caller's transaction stays usable) unless `raise_errors=False`: then
    the event is retried up to its handlers' max_attempts, at once and without backoff,
    and dead-lettered like `consume` does.
    """
    alias = database_alias()
    selected = [get_group(name) for name in groups] or list(registered_groups().values())
    calls = 0
    # A savepoint when the caller is in a transaction (a TestCase): our writes stay in it.
    with transaction.atomic(using=alias):
        conn = django_connection(alias)
        for group in selected:
            calls += _run_group(alias, conn, group, raise_errors)
    return calls


def _run_group(alias: str, conn: psycopg.Connection, group: Group, raise_errors: bool) -> int:
    store.create_group(conn, group=group.name, partitions=eventjobs_settings().partitions,
                       start=group.start, system_id=None)
    loaded = store.load_group(conn, group.name)
    assert loaded is not None  # created just above, in this transaction
    partitions = loaded[0]
    positions = {c["partition"]: (c["txid"], c["event_id"])
                 for c in store.cursors_of_group(conn, group.name)}
    lookup = group.dispatch_table()
    calls = 0
    last = None
    for event in controlstore.read_events_unbounded(conn, min(positions.values())):
        if event.position <= positions[partition_of(event.key_hash, partitions)]:
            continue  # handled before (partitions can stand at different positions)
        handlers = lookup(event.type)
        if handlers:
            calls += _deliver(alias, conn, group, event, handlers, raise_errors)
        last = event.position
    if last is not None:
        behind = [p for p, position in positions.items() if position < last]
        controlstore.move_cursors(conn, group=group.name, partitions=behind, position=last)
    return calls


def _deliver(alias: str, conn: psycopg.Connection, group: Group, event: Event,
             handlers: Sequence[Handler], raise_errors: bool) -> int:
    """Run one event (retried with raise_errors=False); returns the handler calls made."""
    calls, failure = 0, None
    for _attempt in range(max(h.max_attempts for h in handlers)):
        failure = run_handlers_in_savepoint(alias, conn, event, handlers)
        calls += calls_made(handlers, failure)
        if failure is None:
            store.resolve_dead_letters(conn, group=group.name, event_ids=[event.id])
            return calls
        if raise_errors:
            if failure.exc is not None:
                raise failure.exc
            raise HandlerError(f"group {group.name}, event #{event.id}: {failure.error}")
    assert failure is not None
    store.dead_letter(conn, group=group.name, event_id=event.id, error=failure.error,
                      traceback=failure.traceback, attempts=max(h.max_attempts for h in handlers))
    return calls


