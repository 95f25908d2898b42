"""Counts given to the job API and commands are checked before any SQL runs (issue 8,
item 9): a value PostgreSQL would refuse mid-statement, or one that would loop forever,
is refused with what to fix. No django_db mark: any query would fail these tests."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

import eventjobs
from eventjobs.jobs.maintenance import prune_jobs


@pytest.mark.parametrize("extra", [0, -1, 2 ** 31, 10 ** 7, "2", True])
def test_retry_job_refuses_an_extra_attempts_count_out_of_range(extra):
    with pytest.raises(ValueError, match="extra_attempts must be"):
        eventjobs.retry_job(1, extra_attempts=extra)


def test_jobs_retry_refuses_zero_extra_attempts():
    with pytest.raises(CommandError, match="--extra-attempts.*at least 1"):
        call_command("jobs", "retry", "1", "--extra-attempts", "0")


@pytest.mark.parametrize("batch", [0, -5, 2.5, True])
def test_pruning_in_batches_of_nothing_is_refused_rather_than_looping(batch):
    with pytest.raises(ValueError, match="batch must be a whole number of at least 1"):
        prune_jobs("SUCCESSFUL", 60, batch=batch)
