"""Keys to partitions, and positions: pure functions, no I/O.

A key's 32-bit hash is stored at publish; the partition is computed when reading
(`abs(hash) % N`), so the partition count is not baked into stored events. Events
without a key carry no order promise, so they get a random hash (`spread_hash`) and
spread over every partition: each process of a group gets its share of them, and no
process owning other partitions has to walk a log full of partition 0's events. (Rows
published before this stored no hash; they stay in partition 0.)
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterable
from typing import overload

Position = tuple[int, int]  # (txid, event_id), txid as an int (psycopg reads xid8 as text:
#                            never compare txids as text, "99999" > "100000")

START = (0, 0)  # before every event


@overload
def key_hash(key: str) -> int: ...
@overload
def key_hash(key: None) -> None: ...
def key_hash(key: str | None) -> int | None:
    """crc32 of the UTF-8 key as a signed 32-bit int (fits PostgreSQL's integer)."""
    if key is None:
        return None
    value = zlib.crc32(key.encode("utf-8"))
    return value - (1 << 32) if value >= (1 << 31) else value


def spread_hash() -> int:
    """A random non-negative 31-bit hash for an event without a key."""
    return random.getrandbits(31)


def partition_of(hash_value: int | None, partitions: int) -> int:
    """The partition of an event; the same formula as the SQL side."""
    if hash_value is None:
        return 0
    return abs(hash_value) % partitions


def show_position(position: Position) -> dict:
    """The documented JSON shape: {"txid": "12345", "event_id": 678}."""
    return {"txid": str(position[0]), "event_id": position[1]}


def position_in_words(position: Position) -> str:
    """For people: 'the beginning of the log' or 'after event #678 (transaction 12345)'."""
    if position == START:
        return "the beginning of the log"
    if position[1] == 0:
        return f"the end of the log (everything committed before transaction {position[0]})"
    return f"after event #{position[1]} (transaction {position[0]})"


def partitions_in_words(partitions: Iterable[int]) -> str:
    """For people: '0, 1, 5' (sorted), or 'none'; never a Python list."""
    return ", ".join(str(p) for p in sorted(partitions)) or "none"


def fair_share(partitions: int, members: int) -> int:
    """How many partitions one of `members` live processes may own: ceil(P / members)."""
    members = max(1, members)
    return -(-partitions // members)


def type_matcher(types: tuple[str, ...] | None) -> Callable[[str], bool]:
    """A predicate for event types: exact names, or prefixes written as `post.*`."""
    if types is None:
        return lambda _type: True
    exact = frozenset(t for t in types if not t.endswith("*"))
    prefixes = tuple(t[:-1] for t in types if t.endswith("*"))
    if not prefixes:
        return exact.__contains__
    return lambda event_type: event_type in exact or event_type.startswith(prefixes)
