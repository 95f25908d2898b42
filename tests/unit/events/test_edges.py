"""Edges refused before any SQL runs (issue 8): async handlers, oversized payloads,
a zero batch size; and keyless events spread over partitions."""

import functools

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

import eventjobs
from eventjobs.events.partitions import partition_of, spread_hash
from eventjobs.events.registry import consumer, groups
from eventjobs.exceptions import InvalidPayload
from eventjobs.payload import check_size


def test_an_async_handler_is_refused_at_decoration_naming_it():
    async def audit(event):
        pass

    with pytest.raises(ImproperlyConfigured) as info:
        consumer("unit-async")(audit)
    message = str(info.value)
    assert "test_an_async_handler_is_refused_at_decoration_naming_it.<locals>.audit" in message
    assert "unit-async" in message and "def" in message and "async_to_sync" in message
    assert "unit-async" not in groups()  # nothing registered


def test_async_generators_partials_and_async_callables_are_refused_too():
    async def agen(event):
        yield event

    async def coro(event, extra):
        pass

    class Handler:
        async def __call__(self, event):
            pass

    for func in (agen, functools.partial(coro, extra=1), Handler()):
        with pytest.raises(ImproperlyConfigured, match="async"):
            consumer("unit-async")(func)


def test_a_plain_callable_object_is_accepted():
    class Handler:
        def __call__(self, event):
            pass

    handler = Handler()
    assert consumer("unit-callable")(handler) is handler
    assert groups()["unit-callable"].handlers[0].func is handler


def test_payload_size_is_limited_with_a_clear_error(settings):
    settings.EVENTJOBS = {"MAX_PAYLOAD_BYTES": 1000}
    with pytest.raises(InvalidPayload) as info:
        eventjobs.publish("t", {"body": "x" * 2000})  # no django_db: no SQL may run
    assert "publish() data" in str(info.value) and "MAX_PAYLOAD_BYTES" in str(info.value)
    assert "2,011 bytes" in str(info.value)
    with pytest.raises(InvalidPayload, match="item 1 data"):
        eventjobs.publish_many([{"type": "ok"}, {"type": "t", "data": ["é" * 600]}])
    with pytest.raises(InvalidPayload, match="key"):
        eventjobs.publish("t", key="k" * 1001)


def test_check_size_counts_utf8_bytes_not_characters():
    check_size("é" * 500, "x", max_bytes=1000)  # 1000 bytes: fits
    with pytest.raises(InvalidPayload, match="1,002 bytes"):
        check_size("é" * 501, "x", max_bytes=1000)
    check_size("x" * 250, "x", max_bytes=1000)  # the fast path: 4 bytes a character at most


def test_prune_events_refuses_a_batch_size_below_one():
    for bad in ("0", "-5"):
        with pytest.raises(CommandError, match="batch-size"):
            call_command("prune_events", "--older-than", "30d", "--batch-size", bad)


def test_keyless_events_get_a_spread_hash_covering_every_partition():
    hashes = [spread_hash() for _ in range(2000)]
    assert all(0 <= h < 2**31 for h in hashes)
    assert {partition_of(h, 8) for h in hashes} == set(range(8))
