"""Publishing events (`publish`, `publish_many`); handlers receive an `Event` (event.py).

An event is written in the caller's transaction on the eventjobs database alias: it
exists if and only if that transaction commits. Everything is validated before any
SQL runs, so a bad event never breaks the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from eventjobs.conf import MAX_TYPE_LENGTH, database_alias, eventjobs_settings
from eventjobs.db import session_cursor
from eventjobs.events import store as eventstore
from eventjobs.events.event import Event
from eventjobs.events.partitions import key_hash, spread_hash
from eventjobs.exceptions import InvalidPayload
from eventjobs.payload import (
    check_size,
    check_text,
    dumps,
    fast_dumps_each,
    json_array,
    validate_json,
)

__all__ = ["Event", "publish", "publish_many"]


def _check_fields(type: Any, key: Any, source: Any, where: str) -> int:
    """Check type, key and source; returns the hash that places the event in a partition.
    Raises InvalidPayload before any SQL runs."""
    if not isinstance(type, str) or not type.strip():
        raise InvalidPayload(f"{where}: type must be a non-empty string, got {type!r}")
    if len(type) > MAX_TYPE_LENGTH:
        raise InvalidPayload(f"{where}: type is {len(type)} characters; at most "
                             f"{MAX_TYPE_LENGTH} are allowed")
    if type.endswith("*"):
        raise InvalidPayload(f"{where}: type {type!r} ends with '*', which consumers read as a "
                             "prefix pattern")
    check_text(type, f"{where} type")
    if source is not None:
        if not isinstance(source, str) or len(source) > MAX_TYPE_LENGTH:
            raise InvalidPayload(f"{where}: source must be a string of at most "
                                 f"{MAX_TYPE_LENGTH} characters, got {source!r}")
        check_text(source, f"{where} source")
    if key is None:
        return spread_hash()
    if not isinstance(key, str):
        raise InvalidPayload(f"{where}: key must be a string or None, got "
                             f"{key.__class__.__name__} {key!r} (pass str(key) explicitly)")
    check_text(key, f"{where} key")
    check_size(key, f"{where} key")
    return key_hash(key)


def publish(type: str, data: Any = None, *, key: str | None = None,
            source: str | None = None) -> Event:
    """Append one event in the current transaction; it exists iff the transaction commits."""
    hashed = _check_fields(type, key, source, "publish()")
    text = dumps(data, "publish() data", limit_size=True)
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
    rows: list[list[Any]] = []  # [type, key, key_hash, data, source], as the SQL reads them
    for n, item in enumerate(items):
        where = f"publish_many() item {n}"
        if not isinstance(item, dict):
            raise InvalidPayload(f"{where}: expected a dict with 'type', got {item!r}")
        unknown = set(item) - {"type", "data", "key", "source"}
        if unknown:
            raise InvalidPayload(f"{where}: unknown field(s) {sorted(unknown)}; use type, data, "
                                 "key, source")
        type, key, source = item.get("type"), item.get("key"), item.get("source")
        rows.append([type, key, _check_fields(type, key, source, where), item.get("data"),
                     source])
    params = {"events": json_array(_event_texts(rows)), "notify": eventjobs_settings().listen}
    with session_cursor(database_alias()) as cursor:
        found = eventstore.insert_events(cursor, params)
    return [Event(event_id, type, key, None, source, created_at, int(txid), hashed, data=data)
            for (event_id, created_at, txid), (type, key, hashed, data, source)
            in zip(found, rows, strict=True)]


def _event_texts(rows: list[list[Any]]) -> list[str]:
    """Each row as JSON text, validated in one pass over the batch; each event's data must
    fit EVENTJOBS["MAX_PAYLOAD_BYTES"] (the batch may be bigger)."""
    texts = fast_dumps_each(rows)
    if texts is None:  # some data is not plain JSON: find it, or accept it (tuples, say)
        for n, row in enumerate(rows):  # type, key and source are checked already
            validate_json(row[3], f"publish_many() item {n} data")
        texts = [json.dumps(row, separators=(",", ":"), ensure_ascii=False) for row in rows]
    max_bytes = eventjobs_settings().max_payload_bytes
    for n, text in enumerate(texts):
        if len(text) * 4 > max_bytes:  # may be too big: measure the data alone
            check_size(dumps(rows[n][3], "data"), f"publish_many() item {n} data")
    return texts

