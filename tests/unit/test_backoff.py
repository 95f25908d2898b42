import random

from eventjobs.backoff import MAX_DELAY_SECONDS, backoff_delay, next_status


def test_backoff_grows_exponentially_with_bounded_jitter():
    rng = random.Random(7)
    for attempt, step in [(1, 2), (2, 4), (3, 8), (4, 16)]:
        for _ in range(50):
            delay = backoff_delay(2, attempt, rng)
            assert step <= delay <= step * 1.25


def test_backoff_is_capped_and_zero_base_means_no_wait():
    assert backoff_delay(2, 40) <= MAX_DELAY_SECONDS * 1.25
    assert backoff_delay(0, 3) == 0


def test_jitter_spreads_retries():
    rng = random.Random(1)
    assert len({round(backoff_delay(1, 1, rng), 6) for _ in range(20)}) > 10


def test_next_status():
    assert next_status(1, 3, 2.0) == "SCHEDULED"
    assert next_status(1, 3, 0.0) == "READY"
    assert next_status(3, 3, 2.0) == "FAILED"
    assert next_status(1, 1, 0.0) == "FAILED"


def test_huge_attempt_counts_do_not_overflow():
    assert backoff_delay(2, 5000) <= MAX_DELAY_SECONDS * 1.25
