from datetime import UTC, datetime, timedelta

import pytest

from eventjobs.durations import in_words, parse_duration, parse_time


def test_durations_have_one_syntax():
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration(" 1.5h ") == timedelta(hours=1.5)
    assert parse_duration("2w") == timedelta(weeks=2)
    with pytest.raises(ValueError, match="'soon' is not a duration; use a number and a unit"):
        parse_duration("soon")


def test_times_are_iso_or_a_duration_ago():
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert parse_time("2h", now=now) == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert parse_time("2026-11-30T09:30") == datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither an ISO 8601 time"):
        parse_time("yesterday")


def test_durations_read_as_words():
    assert in_words(timedelta(days=7)) == "1 week"
    assert in_words(timedelta(days=3)) == "3 days"
    assert in_words(timedelta(hours=1)) == "1 hour"
    assert in_words(timedelta(seconds=90)) == "90 seconds"
