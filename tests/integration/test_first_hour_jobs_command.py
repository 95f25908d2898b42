"""`manage.py jobs {list,retry,cancel}`: the jobs' dead-letter queue from the command line."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from eventjobs.models import Job
from tests.factories import JobFactory
from tests.first_hour import manage

pytestmark = pytest.mark.django_db(transaction=True)

FAILS = "tests.testapp.tasks.always_fails"


def run(*args: str) -> str:
    out = StringIO()
    call_command("jobs", *args, stdout=out)
    return out.getvalue()


def test_list_filters_by_status_queue_and_task():
    failed = JobFactory(failed=True, task_path=FAILS)
    JobFactory(failed=True, queue="other")
    JobFactory()
    text = run("list", "--status", "failed", "--task", FAILS)
    assert re.search(rf"^\s*{failed.pk}\s+FAILED\s+default\s", text, re.M), text
    assert "builtins.ValueError: boom" in text
    assert text.strip().endswith("1 job(s)")
    assert run("list", "--status", "failed", "--queue", "other").strip().endswith("1 job(s)")
    assert run("list").strip().endswith("3 job(s)")


def test_list_json_for_scripts():
    job = JobFactory(failed=True, task_path=FAILS)
    JobFactory(status="SCHEDULED")
    [row] = json.loads(run("list", "--status", "failed", "--json"))
    assert row["id"] == job.pk and row["status"] == "FAILED" and row["task_path"] == FAILS
    assert row["attempts"] == 1 and row["max_attempts"] == 3
    assert row["last_error"]["exception_class_path"] == "builtins.ValueError"
    [ready] = json.loads(run("list", "--status", "ready", "--json"))
    assert ready["status"] == "READY"  # SCHEDULED is shown as READY, as Django names it


def test_a_declared_queue_or_a_task_without_jobs_yet_lists_nothing_and_exits_0(db_url):
    JobFactory(queue="default", task_path=FAILS)
    # "other" is in TASKS['default']['QUEUES']; tests.testapp.tasks.add is a task; neither
    # has a job yet. A script polling them gets an empty list, not an error.
    for args in (("--queue", "other"), ("--task", "tests.testapp.tasks.add")):
        listed = manage("jobs", "list", *args, "--json", settings="tests.settings",
                        db_url=db_url)
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == []
        assert run("list", *args).strip() == "0 job(s)"
    # Where QUEUES is [] any queue name is accepted, so any is a queue without jobs yet.
    anywhere = manage("jobs", "list", "--queue", "emails", "--json",
                      settings="tests.first_hour_settings.any_queue", db_url=db_url)
    assert anywhere.returncode == 0, anywhere.stderr
    assert json.loads(anywhere.stdout) == []


def test_a_queue_or_task_that_is_neither_declared_nor_has_jobs_is_a_typo():
    JobFactory(queue="other")
    with pytest.raises(CommandError, match=r"no job has queue 'othr' and "
                       r"TASKS\['default'\]\['QUEUES'\] does not declare it \(it declares "
                       r"default, other\); some that have jobs: other$"):
        run("list", "--queue", "othr", "--json")
    with pytest.raises(CommandError, match="no job has task path 'tests.testapp.tasks.ad' "
                       "and task 'tests.testapp.tasks.ad' does not import"):
        run("list", "--task", "tests.testapp.tasks.ad")
    with pytest.raises(CommandError, match="no job has task path 'tests.testapp.tasks._record'"
                       " and .* is a function, not a Task"):
        run("list", "--task", "tests.testapp.tasks._record")


def test_retry_by_id_and_what_is_left_as_it_is():
    failed = JobFactory(failed=True)
    ready = JobFactory()
    text = run("retry", str(failed.pk), str(ready.pk))
    assert f"retried 1 job(s): {failed.pk}" in text
    assert f"{ready.pk} (READY)" in text
    assert Job.objects.get(pk=failed.pk).status == "READY"


def test_retry_all_failed_of_a_task_shows_progress(monkeypatch):
    monkeypatch.setattr("eventjobs.management.base.PROGRESS_EVERY_SECONDS", 0)
    monkeypatch.setattr("eventjobs.management.commands.jobs.BATCH", 2)
    mine = [JobFactory(failed=True, task_path=FAILS) for _ in range(5)]
    other = JobFactory(failed=True)
    text = run("retry", "--all-failed", "--task", FAILS)
    assert len(re.findall(r"retried \d+ job\(s\) so far, .*/s", text)) >= 2, text
    assert "retried 5 job(s)" in text
    assert set(Job.objects.filter(status="READY").values_list("pk", flat=True)) == {
        j.pk for j in mine}
    assert Job.objects.get(pk=other.pk).status == "FAILED"


def test_retry_needs_ids_or_all_failed_and_a_known_task():
    with pytest.raises(CommandError, match="--all-failed"):
        run("retry")
    with pytest.raises(CommandError, match="no job has task path 'nosuch.task'"):
        run("retry", "--all-failed", "--task", "nosuch.task")


def test_cancel_waiting_jobs():
    ready = JobFactory()
    running = JobFactory(status="RUNNING", attempt=1)
    text = run("cancel", str(ready.pk), str(running.pk), "--reason", "duplicate")
    assert f"cancelled 1 job(s): {ready.pk}" in text
    assert f"{running.pk} (RUNNING)" in text
    job = Job.objects.get(pk=ready.pk)
    assert job.status == "FAILED" and job.errors[-1]["message"] == "duplicate"


def test_jobs_waiting_under_a_limit_are_ready_to_list_and_cancel():
    from tests.testapp.tasks import limited_slow

    limited = limited_slow.enqueue("l", 0)
    assert Job.objects.get(pk=limited.id).status == "LIMITED"
    [row] = json.loads(run("list", "--status", "ready", "--json"))
    assert row["id"] == int(limited.id) and row["status"] == "READY"

    run("cancel", "--all-waiting")

    assert Job.objects.get(pk=limited.id).status == "FAILED"
