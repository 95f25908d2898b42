import math

import pytest

from eventjobs.exceptions import InvalidPayload
from eventjobs.payload import dumps, validate_json


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({1, 2}, "sets are not JSON"),
        (frozenset(), "sets are not JSON"),
        (b"abc", "bytes are not JSON"),
        (object(), "object is not JSON"),
        (float("nan"), "nan"),
        (math.inf, "inf"),
        ("a\x00b", "NUL"),
        ("\ud800", "lone surrogate"),
        ({1: "x"}, "JSON keys must be strings"),
        ({"ok": [1, {"deep": {3}}]}, "args['ok'][1]['deep']"),
    ],
)
def test_bad_values_are_refused_with_a_located_message(value, fragment):
    with pytest.raises(InvalidPayload) as info:
        validate_json(value, "args")
    assert fragment in str(info.value)


def test_invalid_payload_is_a_value_error():
    assert issubclass(InvalidPayload, ValueError)


def test_plain_json_passes_and_serialises_compactly():
    value = {"a": [1, 2.5, None, True, "é"], "b": {"c": ("t", "u")}}
    assert dumps(value, "x") == '{"a":[1,2.5,null,true,"é"],"b":{"c":["t","u"]}}'


def test_circular_data_is_refused_not_looped_on():
    looped: list = []
    looped.append(looped)
    with pytest.raises(InvalidPayload, match="circular"):
        dumps(looped, "args")


def test_error_records_are_storable_even_with_nul_and_surrogates():
    from eventjobs.exceptions import describe as error_record

    record = error_record(FileNotFoundError("no such file: a\x00b\udce9"))
    for text in (record["message"], record["traceback"]):
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogate left
    assert "no such file: a\\x00b\\udce9" in record["message"]


def test_job_arguments_are_limited_in_size_before_any_sql(settings):
    import eventjobs
    from eventjobs.exceptions import InvalidPayload
    from tests.testapp.tasks import record

    settings.EVENTJOBS = {"MAX_PAYLOAD_BYTES": 1000}
    with pytest.raises(InvalidPayload, match=r"args: 2,00\d bytes of JSON.*MAX_PAYLOAD_BYTES"):
        record.enqueue("x" * 2000)  # no django_db: no SQL may run
    with pytest.raises(InvalidPayload, match=r"calls\[1\]\[0\]"):
        eventjobs.enqueue_many(record, [(("ok",), {})] + [(("x" * 2000,), {})])


@pytest.mark.parametrize("bad", [(1, 2), {1, 2}, float("nan"), "a\x00b", "\ud800", {1: "x"}])
def test_the_batch_fast_path_hands_anything_inexact_to_the_located_walk(bad):
    from eventjobs.payload import fast_dumps_each

    assert fast_dumps_each([[1, "ok"], [bad]]) is None
    assert fast_dumps_each([[1, "ok"], {"é": [None, 2.5]}]) == ['[1,"ok"]', '{"é":[null,2.5]}']


def test_a_bad_job_in_a_batch_is_named_by_its_place_before_any_sql():
    import eventjobs
    from tests.testapp.tasks import record

    calls = [(("ok",), {}) for _ in range(5)] + [(("ok",), {"tags": {"a", "b"}})]
    with pytest.raises(InvalidPayload, match=r"calls\[5\]\[1\]\['tags'\]: sets are not JSON"):
        eventjobs.enqueue_many(record, calls)  # no django_db: no SQL may run


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [150, 900, 5000])
def test_deep_nesting_is_refused_on_every_path_before_any_sql(depth):
    import eventjobs
    from tests.testapp.tasks import record

    with pytest.raises(InvalidPayload, match="nested more than 100 levels"):
        dumps(_nested(depth), "args")
    with pytest.raises(InvalidPayload, match=r"calls\[1\]\[0\].*nested more than 100"):
        eventjobs.enqueue_many(record, [(("ok",), {}), ((_nested(depth),), {})])
    with pytest.raises(InvalidPayload, match="nested more than 100 levels"):
        record.enqueue(_nested(depth))  # no django_db: no SQL may run
    with pytest.raises(InvalidPayload, match="item 1 data.*nested more than 100"):
        eventjobs.publish_many([{"type": "ok"}, {"type": "t", "data": _nested(depth)}])


def test_nesting_up_to_the_limit_is_accepted():
    assert dumps(_nested(99), "args") == "[" * 100 + "]" * 100


def test_an_integer_too_long_for_json_text_is_refused_with_its_place():
    with pytest.raises(InvalidPayload, match=r"args\[0\]\['n'\]: an integer of more than"):
        dumps([{"n": 10 ** 5000}], "args")


def test_data_nested_right_at_the_limit_passes_validation_on_every_path():
    import eventjobs
    from tests.testapp.tasks import record

    # No django_db mark: a call whose validation passes goes on to its SQL, which this
    # test refuses; an InvalidPayload would mean the data was refused.
    at_limit = _nested(99)  # 100 containers: the deepest value sits at level 100
    with pytest.raises(RuntimeError, match="Database access not allowed"):
        eventjobs.publish_many([{"type": "ok"}, {"type": "t", "data": at_limit}])
    with pytest.raises(RuntimeError, match="Database access not allowed"):
        eventjobs.publish("t", at_limit)
    with pytest.raises(RuntimeError, match="Database access not allowed"):
        eventjobs.enqueue_many(record, [(("ok",), {}), ((at_limit,), {})])
