"""Validation of job arguments and event data at the edge, before any SQL runs.

PostgreSQL's jsonb rejects NUL characters and lone surrogates mid-transaction (which
would break the caller's transaction), Python's json emits NaN which jsonb rejects,
and json.dumps silently turns {1: "x"} into {"1": "x"}. We refuse all of these up
front with a message that says where the bad value is and what to do instead. Size is
limited too (`check_size`, EVENTJOBS["MAX_PAYLOAD_BYTES"]): a batch of consumers or a
claim of jobs fetches many payloads at once.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from eventjobs.conf import eventjobs_settings
from eventjobs.exceptions import InvalidPayload

MAX_DEPTH = 100  # also ends the walk of a circular structure

_HINTS: dict[type, str] = {
    set: "sets are not JSON; pass a sorted list",
    frozenset: "sets are not JSON; pass a sorted list",
    bytes: "bytes are not JSON; decode them or pass base64 text",
    bytearray: "bytes are not JSON; decode them or pass base64 text",
}


def _loaded_in(where: str) -> str:
    """Where the receiver should load objects: event data goes to a consumer's handler."""
    return "handler" if where.startswith("publish") else "task"


def validate_json(value: Any, where: str) -> None:
    """Raise InvalidPayload unless `value` round-trips through jsonb unchanged."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidPayload(f"{path}: nested more than {MAX_DEPTH} levels deep (or "
                                 "circular); pass flatter data")
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            _check_int(item, path)
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidPayload(f"{path}: {item!r} is not valid JSON; use None or a string")
            continue
        if isinstance(item, str):
            check_text(item, path)
            continue
        if isinstance(item, list | tuple):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(item))
            continue
        if isinstance(item, dict):
            for key, v in item.items():
                if not isinstance(key, str):
                    raise InvalidPayload(
                        f"{path}: dict key {key!r} is a {type(key).__name__}; JSON keys must "
                        "be strings (it would silently come back as a string)"
                    )
                check_text(key, f"{path} key {key!r}")
                stack.append((v, f"{path}[{key!r}]", depth + 1))
            continue
        hint = _HINTS.get(type(item)) or (
            f"{type(item).__name__} is not JSON; pass plain data (ids, strings, numbers, "
            f"lists, dicts) and load objects inside the {_loaded_in(where)}"
        )
        raise InvalidPayload(f"{path}: {hint}")


def _check_int(value: int, path: str) -> None:
    if value.bit_length() < 10_000:  # fewer than ~3,000 digits: well within Python's limit
        return
    try:
        str(value)
    except ValueError:
        raise InvalidPayload(
            f"{path}: an integer of more than {sys.get_int_max_str_digits():,} digits cannot "
            "be written as JSON text; pass it as a string") from None


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_INNERMOST = re.compile(r"[\[{][^\[\]{}]*[\]}]")  # a list or dict with no container inside


def _shallow(text: str) -> bool:
    """Whether JSON `text` nests no deeper than MAX_DEPTH (deeper data would make Python's
    json and Django's TaskResult recurse). Few brackets settle it at once; otherwise the
    strings are dropped and the innermost containers removed, one level per pass."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return True
    bare = _STRING.sub("", text)
    for _ in range(MAX_DEPTH):
        bare, removed = _INNERMOST.subn("", bare)
        if not removed:
            break
    return "[" not in bare and "{" not in bare


def check_text(text: str, path: str) -> None:
    """Raise InvalidPayload unless PostgreSQL can store `text` (no NUL, valid UTF-8)."""
    if "\x00" in text:
        raise InvalidPayload(f"{path}: contains a NUL character (\\x00), which PostgreSQL cannot store")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidPayload(
            f"{path}: contains a lone surrogate ({text[exc.start]!r}), which is not valid UTF-8"
        ) from None


def check_size(text: str, where: str, max_bytes: int | None = None) -> None:
    """Raise InvalidPayload when `text` takes more than `max_bytes` in UTF-8 (default:
    EVENTJOBS["MAX_PAYLOAD_BYTES"], 1 MB)."""
    if max_bytes is None:
        max_bytes = eventjobs_settings().max_payload_bytes
    if len(text) * 4 <= max_bytes:  # UTF-8 takes at most 4 bytes a character: no need to count
        return
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise InvalidPayload(
            f"{where}: {size:,} bytes of JSON, more than the {max_bytes:,} accepted "
            "(EVENTJOBS['MAX_PAYLOAD_BYTES']); store big content elsewhere (a file, a row) "
            "and pass its id")


def _refuse(obj: Any) -> Any:
    raise TypeError  # not JSON: the slow path below says where and why


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False,
                            default=_refuse)


def dumps(value: Any, where: str, *, limit_size: bool = False) -> str:
    """Validate and serialise to compact JSON text (with `limit_size`, no longer than
    EVENTJOBS["MAX_PAYLOAD_BYTES"]: see check_size).

    Fast path in C: serialise, check the text for NUL escapes and lone surrogates, and
    check that parsing it gives back the same value (which catches non-string keys).
    Anything suspicious (including tuples, which come back as lists) takes the walk in
    validate_json, which raises with the location of the bad value or accepts it.
    """
    text = _fast_dumps(value)
    if text is None:
        validate_json(value, where)
        text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    if limit_size:
        check_size(text, where)
    return text


def fast_dumps_each(items: list[Any]) -> list[str] | None:
    """Each item's JSON text when the C serialiser alone shows every item is exact JSON
    (the checks of `dumps`, made once over the whole batch), else None: the caller then
    validates item by item to say which one is bad. For bulk enqueue and publish, where
    a second walk over 20,000 items would cost more than inserting them."""
    try:
        texts = [_ENCODER.encode(item) for item in items]
        if not all(_shallow(text) for text in texts):
            return None
        whole = json_array(texts)
        if "\\u0000" in whole or json.loads(whole) != items:
            return None
        whole.encode("utf-8")  # lone surrogates fail here
        return texts
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        return None


def json_array(texts: list[str]) -> str:
    """The JSON array of items already serialised to JSON text."""
    return "[" + ",".join(texts) + "]"


def _fast_dumps(value: Any) -> str | None:
    """The JSON text when the C serialiser alone shows `value` is exact JSON, else None."""
    try:
        text = _ENCODER.encode(value)
        if not _shallow(text) or "\\u0000" in text or json.loads(text) != value:
            return None
        text.encode("utf-8")  # lone surrogates fail here
        return text
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        return None
