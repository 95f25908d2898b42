"""Pure parts of the event half: positions, partitions, type patterns, validation."""


import re

import pytest
from django.core.exceptions import ImproperlyConfigured

import eventjobs
from eventjobs.events.log import Event
from eventjobs.events.partitions import (
    fair_share,
    key_hash,
    partition_of,
    type_matcher,
)
from eventjobs.events.registry import consumer
from eventjobs.exceptions import InvalidPayload


def test_positions_compare_txids_as_numbers_across_digit_counts():
    # psycopg gives xid8 as text: "99999" > "100000" as text, but not as positions, which
    # hold the txid as an int (the store converts it when reading).
    assert "99999" > "100000"
    low, high = (int("99999"), 7), (int("100000"), 3)
    assert low < high
    assert sorted([high, low]) == [low, high]
    assert (100000, 3) < (100000, 4)


def test_key_hash_is_stable_signed_32_bit_and_partitions_cover_range():
    assert key_hash(None) is None
    assert key_hash("order-1") == key_hash("order-1")
    hashes = [key_hash(f"k{i}") for i in range(2000)]
    assert all(-(2**31) <= h < 2**31 for h in hashes)
    assert any(h < 0 for h in hashes)
    parts = {partition_of(h, 8) for h in hashes}
    assert parts == set(range(8))
    assert partition_of(None, 8) == 0
    assert partition_of(-(2**31), 8) == 0  # abs() of the smallest int4 still works


def test_fair_share_is_ceiling():
    assert fair_share(8, 1) == 8
    assert fair_share(8, 3) == 3
    assert fair_share(8, 0) == 8
    assert fair_share(2, 5) == 1


def test_type_patterns():
    everything = type_matcher(None)
    assert everything("anything")
    match = type_matcher(("post.*", "user.created"))
    assert match("post.created") and match("post.") and match("user.created")
    assert not match("postal") and not match("user.deleted")


def test_event_data_is_parsed_lazily():
    event = Event(1, "t", None, '{"a": [1, 2]}', None, "2026-01-01 00:00:00+00", 5, None)
    assert event.data == {"a": [1, 2]}
    assert event.position == (5, 1)
    assert event.created_at.year == 2026


@pytest.mark.parametrize("kwargs", [
    {"type": ""}, {"type": "   "}, {"type": "x" * 201}, {"type": 5}, {"type": "post.*"},
    {"type": "t", "key": 12}, {"type": "t", "data": {1: "x"}}, {"type": "t", "data": float("nan")},
    {"type": "t", "data": "nul\x00"}, {"type": "t", "data": {"s": {1, 2}}},
    {"type": "t", "source": 3},
])
def test_bad_events_raise_before_any_sql(kwargs):
    # No django_db mark: any query would fail the test with a database-access error.
    with pytest.raises(InvalidPayload):
        eventjobs.publish(**kwargs)
    with pytest.raises(InvalidPayload):
        eventjobs.publish_many([{"type": "ok"}, kwargs])


@pytest.mark.parametrize("options,fragment", [
    ({"max_attempts": "3"}, "max_attempts must be a whole number, got '3'"),
    ({"max_attempts": 2 ** 40}, "max_attempts must be between 1 and 2147483647"),
    ({"max_attempts": True}, "max_attempts must be a whole number"),
    ({"retry_backoff": float("nan")}, "retry_backoff must be a finite number"),
    ({"retry_backoff": -1}, "retry_backoff must be 0 or more seconds"),
    ({"retry_backoff": "2"}, "retry_backoff must be a number of seconds"),
])
def test_consumer_options_are_checked_at_decoration_with_what_to_fix(options, fragment):
    with pytest.raises(ImproperlyConfigured, match=re.escape(fragment)):
        consumer("g", **options)


def test_consumer_decorator_validates():
    with pytest.raises(ImproperlyConfigured):
        consumer("bad name!")
    with pytest.raises(ImproperlyConfigured):
        consumer("g", max_attempts=0)
    with pytest.raises(ImproperlyConfigured):
        consumer("g", start="middle")
    with pytest.raises(ImproperlyConfigured):
        consumer("g", types=["a*b"])
