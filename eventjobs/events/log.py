"""Publishing events (`publish`, `publish_many`); handlers receive an `Event` (event.py).

An event is written in the caller's transaction on the eventjobs database alias: it
exists if and only if that transaction commits. Everything is validated before any
SQL runs, so a bad event never breaks the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eventjobs.conf import MAX_TYPE_LENGTH, database_alias, eventjobs_settings
from eventjobs.db import session_cursor
from eventjobs.events import store as eventstore
from eventjobs.events.event import Event
from eventjobs.events.partitions import key_hash, spread_hash
from eventjobs.exceptions import InvalidPayload
from eventjobs.payload import check_size, dumps

__all__ = ["Event", "publish", "publish_many"]


def _validate(type: Any, data: Any, key: Any, source: Any, where: str) -> tuple[str, int]:
    """(data as JSON text, the hash that places the event in a partition); raises
    InvalidPayload before any SQL runs."""
    if not isinstance(type, str) or not type.strip():
        raise InvalidPayload(f"{where}: type must be a non-empty string, got {type!r}")
    if len(type) > MAX_TYPE_LENGTH:
        raise InvalidPayload(f"{where}: type is {len(type)} characters; at most "
                             f"{MAX_TYPE_LENGTH} are allowed")
    if type.endswith("*"):
        raise InvalidPayload(f"{where}: type {type!r} ends with '*', which consumers read as a "
                             "prefix pattern")
    dumps(type, f"{where} type")
    if key is not None and not isinstance(key, str):
        raise InvalidPayload(f"{where}: key must be a string or None, got "
                             f"{key.__class__.__name__} {key!r} (pass str(key) explicitly)")
    if key is not None:
        dumps(key, f"{where} key")
        check_size(key, f"{where} key")
    if source is not None:
        if not isinstance(source, str) or len(source) > MAX_TYPE_LENGTH:
            raise InvalidPayload(f"{where}: source must be a string of at most "
                                 f"{MAX_TYPE_LENGTH} characters, got {source!r}")
        dumps(source, f"{where} source")
    hashed = key_hash(key) if key is not None else spread_hash()
    return dumps(data, f"{where} data", limit_size=True), hashed


def publish(type: str, data: Any = None, *, key: str | None = None,
            source: str | None = None) -> Event:
    """Append one event in the current transaction; it exists iff the transaction commits."""
    text, hashed = _validate(type, data, key, source, "publish()")
    alias = database_alias()
    with session_cursor(alias, prepare=True) as cursor:
        event_id, created_at, txid = eventstore.insert_event(cursor, {
            "type": type, "key": key, "key_hash": hashed, "data": text, "source": source,
            "notify": eventjobs_settings().listen})
    return Event(event_id, type, key, None, source, created_at, int(txid), hashed, data=data)


def publish_many(events: Iterable[dict]) -> list[Event]:
    """Append many events in one statement; each dict has type, and optionally data, key,
    source. All or nothing: one bad event raises InvalidPayload and nothing is written."""
    items = list(events)
    if not items:
        return []
    types, keys, hashes, texts, sources, values = [], [], [], [], [], []
    for n, item in enumerate(items):
        where = f"publish_many() item {n}"
        if not isinstance(item, dict):
            raise InvalidPayload(f"{where}: expected a dict with 'type', got {item!r}")
        unknown = set(item) - {"type", "data", "key", "source"}
        if unknown:
            raise InvalidPayload(f"{where}: unknown field(s) {sorted(unknown)}; use type, data, "
                                 "key, source")
        data = item.get("data")
        text, hashed = _validate(item.get("type"), data, item.get("key"), item.get("source"),
                                 where)
        types.append(item["type"])
        keys.append(item.get("key"))
        hashes.append(hashed)
        texts.append(text)
        sources.append(item.get("source"))
        values.append(data)
    alias = database_alias()
    with session_cursor(alias) as cursor:
        rows = eventstore.insert_events(cursor, {"types": types, "keys": keys,
                                                 "key_hashes": hashes, "data": texts,
                                                 "sources": sources,
                                                 "notify": eventjobs_settings().listen})
    return [Event(event_id, types[n], keys[n], None, sources[n], created_at, int(txid),
                  hashes[n], data=values[n])
            for n, (event_id, created_at, txid) in enumerate(rows)]

