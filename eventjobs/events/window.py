"""What a batch reads: a window of the log after a position (no I/O; store.py runs it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventjobs.events.event import Event
from eventjobs.events.partitions import Position, partition_of

Window = tuple[list[Event], Position | None]  # our events, and the last position read


@dataclass(frozen=True)
class Read:
    """Where a read starts and whose events it returns (None: every partition's)."""

    after: Position
    partitions: tuple[int, ...] | None
    limit: int
    n: int

    def statement(self) -> tuple[str, dict]:
        params: dict[str, Any] = {"txid": str(self.after[0]), "event_id": self.after[1],
                                  "limit": self.limit}
        if self.partitions is None:
            return "read_events", params
        return "read_events_partitions", {**params, "n": self.n,
                                          "partitions": list(self.partitions)}

    def window(self, rows: list) -> Window:
        """Events of our partitions, and the position of the last row read (every event
        of ours up to it is in the list)."""
        if self.partitions is None:
            events = [Event(i, t, k, d, s, c, int(x), h) for i, x, h, t, k, d, s, c in rows]
        else:
            ours, n = frozenset(self.partitions), self.n
            events = [Event(i, t, k, d, s, c, int(x), h) for i, x, h, t, k, d, s, c in rows
                      if partition_of(h, n) in ours]
        return events, ((int(rows[-1][1]), rows[-1][0]) if rows else None)
