"""The Event handlers receive: a light object over one row of the log, no I/O."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from eventjobs.events.partitions import Position

_UNSET = object()


class Event:
    """An event as handlers and `publish` see it (a light object, not a model instance).

    `position` is (txid, id), the order of the log; `data` is parsed on first access.
    """

    __slots__ = ("id", "type", "key", "_data", "_raw", "source", "_created_at", "txid",
                 "key_hash")

    def __init__(self, id: int, type: str, key: str | None, raw: str | None,
                 source: str | None, created_at: datetime | str, txid: int,
                 key_hash: int | None, data: Any = _UNSET):
        self.id = id
        self.type = type
        self.key = key
        self._raw = raw
        self._data = data
        self.source = source
        self._created_at = created_at
        self.txid = txid
        self.key_hash = key_hash

    @property
    def data(self) -> Any:
        if self._data is _UNSET:
            self._data = None if self._raw is None else json.loads(self._raw)
        return self._data

    @property
    def created_at(self) -> datetime:
        """When the publishing transaction started (PostgreSQL's now())."""
        value = self._created_at
        if isinstance(value, str):  # the consumer reads it as text; parsed on demand
            value = self._created_at = datetime.fromisoformat(value)
        return value

    @property
    def position(self) -> Position:
        """(txid, id): compare positions to order events (e.g. against a dead letter)."""
        return (self.txid, self.id)

    def __repr__(self) -> str:
        return f"<Event {self.type} #{self.id} key={self.key!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)
