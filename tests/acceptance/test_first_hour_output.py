"""What `runworker` and `consume` print in a project that configured no logging, and what a
bare `runworker` does when any queue name is accepted (`QUEUES: []`)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

import eventjobs
from eventjobs.models import Job
from tests.factories import JobFactory
from tests.first_hour import lines_with

pytestmark = [pytest.mark.acceptance, pytest.mark.django_db(transaction=True)]

QUIET = {"DJANGO_SETTINGS_MODULE": "tests.first_hour_settings.quiet"}


def test_runworker_logs_to_the_console_when_the_project_configured_no_logging(spawn):
    JobFactory(task_path="tests.testapp.tasks.always_fails", args=["k"], max_attempts=1)
    proc = spawn("runworker", "--burst", "--concurrency", "1", env=QUIET)
    assert proc.wait(timeout=60) == 0
    out = proc.output()
    assert len(lines_with(out, "runworker starting")) == 1, out
    assert len(lines_with(out, "runworker stopped")) == 1, out
    # What happened to the jobs is told too (errors at -v1 and at -v0).
    [failed] = lines_with(out, "failed for good after")
    assert "ERROR" in failed and "eventjobs." in failed and "boom k" in failed


def test_runworker_at_verbosity_0_keeps_only_warnings_and_errors(spawn):
    JobFactory(task_path="tests.testapp.tasks.always_fails", args=["k"], max_attempts=1)
    proc = spawn("runworker", "--burst", "--concurrency", "1", "-v", "0", env=QUIET)
    assert proc.wait(timeout=60) == 0
    out = proc.output()
    assert "runworker starting" not in out and "runworker stopped" not in out
    assert lines_with(out, "failed for good after")


def test_consume_logs_its_start_and_an_exit_summary(spawn):
    eventjobs.publish("t", {"seq": 1})
    proc = spawn("consume", "ledger", "--burst", env=QUIET)
    assert proc.wait(timeout=60) == 0
    out = proc.output()
    [start] = lines_with(out, "partition(s) per group")
    assert "ledger" in start
    [summary] = lines_with(out, "group ledger: partitions")
    assert "handled 1" in summary


def test_bare_runworker_with_any_queue_runs_every_queue_and_counts_what_it_left(spawn):
    job = JobFactory(task_path="tests.testapp.tasks.record", queue="emails", args=["e"])
    JobFactory(task_path="tests.testapp.tasks.record", queue="reports", args=["later"],
               status="SCHEDULED", run_after=timezone.now() + timedelta(hours=1))
    proc = spawn("runworker", "--burst", "--concurrency", "1",
                 env={"DJANGO_SETTINGS_MODULE": "tests.first_hour_settings.any_queue"})
    assert proc.wait(timeout=60) == 0
    assert Job.objects.get(pk=job.pk).status == "SUCCESSFUL"
    [stopped] = lines_with(proc.output(), "runworker stopped")
    assert re.search(r'deferred"?:? 1', stopped), stopped


# A Python list, tuple or dict as repr() prints it: [0, 1], ['a', 'b'], (1, 2), {'txid': ...}.
PYTHON_REPR = re.compile(r"[\[(]\s*(?:'|\"|-?\d)|\{\s*['\"]|\[\]|\{\}")


def test_consume_says_its_groups_partitions_and_position_in_words_not_python_reprs(spawn):
    eventjobs.publish("t", {"seq": 1})
    proc = spawn("consume", "ledger", "audit", "--burst", env=QUIET)
    assert proc.wait(timeout=60) == 0
    out = proc.output()
    [start] = lines_with(out, "partition(s) per group")
    assert "groups ledger, audit on" in start, start
    [summary] = lines_with(out, "group ledger: partitions")
    assert re.search(r"partitions 0(, \d+)* at (after event #\d+ \(transaction \d+\)|the )",
                     summary), summary
    took = lines_with(out, "took partition")
    assert took, out
    for line in [start, summary, *took]:
        assert not PYTHON_REPR.search(line), line
