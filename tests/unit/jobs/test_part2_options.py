"""Per-task options of jobs part 2, @periodic and Snooze: validated at decoration, with
the option's name in the error (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.tasks import task
from django.tasks.exceptions import InvalidTask

import eventjobs
from eventjobs.exceptions import Snooze
from eventjobs.jobs.enqueue import unique_key
from eventjobs.jobs.periodic import Schedule
from eventjobs.jobs.tasks import limit_key_of, parse_rate


def _noop(**kwargs):
    return None


@pytest.mark.parametrize("options,needle", [
    ({"concurrency": 0}, "concurrency"),
    ({"concurrency": "2"}, "concurrency"),
    ({"rate_limit": "10 per second"}, "rate_limit"),
    ({"rate_limit": "0/s"}, "rate_limit"),
    ({"unique": "yes"}, "unique"),
    ({"unique_for": 60}, r"unique_for=\.\.\.\) needs unique="),
    ({"unique": True, "unique_for": -1}, "unique_for"),
    ({"concurrency_key": "account"}, r"concurrency_key=\.\.\.\) needs concurrency="),
    ({"concurrency": 1, "concurrency_key": ""}, "concurrency_key"),
    ({"rate_limit": "1/s", "rate_limit_key": 5}, "rate_limit_key"),
    ({"concurrency": 1, "concurrency_key": "a", "rate_limit": "1/s", "rate_limit_key": "b"},
     "both keys must be the same"),
    ({"atomic": 1}, "atomic"),
])
def test_bad_options_fail_at_decoration_naming_the_option(options, needle):
    with pytest.raises(InvalidTask, match=needle):
        task(**options)(_noop)


async def _async_noop():
    return None


def test_atomic_refuses_an_async_function():
    with pytest.raises(InvalidTask, match="atomic=True"):
        task(atomic=True)(_async_noop)


def test_rates_parse_per_second_minute_and_hour():
    assert parse_rate("10/s") == (10, 1.0)
    assert parse_rate("100 / m") == (100, 60.0)
    assert parse_rate("5/hour") == (5, 3600.0)


def test_limit_key_is_the_task_path_plus_the_calls_key():
    by_kwarg = task(concurrency=1, concurrency_key="account")(_noop)
    by_callable = task(rate_limit="1/s", rate_limit_key=lambda *a, **kw: kw["x"] * 2)(_noop)
    plain_limit = task(concurrency=3)(_noop)
    assert limit_key_of(by_kwarg, [], {"account": 7}) == f"{by_kwarg.module_path}:7"
    assert limit_key_of(by_callable, [], {"x": 2}) == f"{by_callable.module_path}:4"
    assert limit_key_of(plain_limit, [], {}) == plain_limit.module_path
    assert limit_key_of(task(_noop), [], {}) is None
    with pytest.raises(InvalidTask, match="'account' is not among"):
        limit_key_of(by_kwarg, [7], {})


def test_unique_key_ignores_kwarg_order_but_not_queue_or_values():
    t = task(unique=True)(_noop)
    assert unique_key(t, [1], {"a": 1, "b": 2}) == unique_key(t, [1], {"b": 2, "a": 1})
    assert unique_key(t, [1], {}) != unique_key(t, [2], {})
    assert unique_key(t, [1], {}) != unique_key(t.using(queue_name="other"), [1], {})


def test_snooze_takes_seconds_or_a_timedelta_and_refuses_the_rest():
    assert Snooze(5).seconds == 5.0
    assert Snooze(timedelta(minutes=1)).seconds == 60.0
    for bad in (-1, float("nan"), "5", True):
        with pytest.raises(ValueError, match="Snooze"):
            Snooze(bad)


@pytest.mark.parametrize("kwargs,needle", [
    ({}, "exactly one of"),
    ({"cron": "* * * * *", "every": 5}, "exactly one of"),
    ({"cron": "every minute"}, "not a cron expression"),
    ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "not a time zone"),
    ({"every": 5, "timezone": "UTC"}, "cron= only"),
    ({"every": 0.5}, "at least 1 second"),
    ({"every": 5, "args": [{1, 2}]}, "sets are not JSON"),
])
def test_periodic_refuses_bad_schedules(kwargs, needle):
    with pytest.raises((TypeError, ValueError), match=needle):
        eventjobs.periodic(**kwargs)


def test_periodic_goes_above_task():
    with pytest.raises(TypeError, match="above @task"):
        eventjobs.periodic(every=5)(_noop)


def test_every_ticks_are_multiples_of_the_interval_since_the_epoch():
    s = Schedule(name="s", task=task(_noop), every=30)
    now = datetime(2026, 1, 1, 10, 0, 59, 500000, tzinfo=UTC)
    assert s.latest_tick(now) == datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)
    assert s.latest_tick(datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)) == \
        datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)  # a tick is its own latest
    assert s.next_tick(s.latest_tick(now)) == datetime(2026, 1, 1, 10, 1, tzinfo=UTC)


def test_cron_ticks_follow_the_schedules_time_zone():
    s = Schedule(name="s", task=task(_noop), cron="0 3 * * *", timezone="Europe/Paris")
    now = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert s.latest_tick(now) == datetime(2026, 7, 1, 1, 0, tzinfo=UTC)  # 03:00 CEST
    assert s.next_tick(s.latest_tick(now)) == datetime(2026, 7, 2, 1, 0, tzinfo=UTC)
    on_tick = datetime(2026, 7, 1, 1, 0, tzinfo=UTC)
    assert s.latest_tick(on_tick) == on_tick
