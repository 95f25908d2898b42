import random

import pytest

from eventjobs.backoff import MAX_DELAY_SECONDS, backoff_delay
from eventjobs.jobs.completer import decide_failure


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


def test_the_completer_decides_where_a_failed_attempt_goes():
    status, delay = decide_failure(1, 3, 2.0)
    assert status == "SCHEDULED" and 2.0 <= delay <= 2.5
    assert decide_failure(1, 3, 0.0) == ("READY", 0.0)
    assert decide_failure(3, 3, 2.0) == ("FAILED", 0.0)
    assert decide_failure(1, 1, 0.0) == ("FAILED", 0.0)


def test_huge_attempt_counts_do_not_overflow():
    assert backoff_delay(2, 5000) <= MAX_DELAY_SECONDS * 1.25


@pytest.mark.parametrize("options", [
    {"max_attempts": 2**31}, {"max_attempts": 0}, {"max_attempts": 2.5},
    {"retry_backoff": float("nan")}, {"retry_backoff": -1}, {"timeout": float("nan")},
    {"timeout": 0}, {"timeout": float("inf")},
])
def test_task_options_that_cannot_work_are_refused_with_their_name(options):
    from django.tasks import task
    from django.tasks.exceptions import InvalidTask

    name = next(iter(options))
    with pytest.raises(InvalidTask, match=rf"@task\({name}="):
        task(**options)(_module_level)


def _module_level():
    pass
