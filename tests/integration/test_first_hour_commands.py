"""The commands' surface as a new user meets it: help for every option, wrapped summaries,
Django's common options after a sub-command, wrong ids and names, output in words,
progress of long commands."""

from __future__ import annotations

import argparse
import re
from io import StringIO

import pytest
from django.core.management import call_command, get_commands, load_command_class

import eventjobs
from eventjobs.exceptions import InvalidPayload, JobNotFound
from eventjobs.models import DeadLetter, Job
from tests.conftest import wait_until
from tests.factories import ConsumerGroupFactory, DeadLetterFactory, EventFactory, JobFactory
from tests.first_hour import manage
from tests.testapp import consumers
from tests.testapp.tasks import add

COMMANDS = sorted(name for name, app in get_commands().items() if app == "eventjobs")


def _parsers():
    """(label, parser) for every eventjobs command and each of its sub-commands."""
    for name in COMMANDS:
        parser = load_command_class("eventjobs", name).create_parser("manage.py", name)
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    yield f"{name} {sub_name}", sub


def test_the_commands_are_all_here():
    assert set(COMMANDS) >= {"runworker", "consume", "eventjobs_status", "prune_jobs",
                             "prune_events", "deadletters", "consumer_group", "jobs"}


@pytest.mark.parametrize("label,parser", list(_parsers()), ids=lambda v: str(v))
def test_every_option_and_sub_command_has_help(label, parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"{label} {choice.dest}: sub-command without help"
            continue
        assert action.help and action.help != argparse.SUPPRESS, (
            f"{label}: {action.option_strings or action.dest} has no help")


@pytest.mark.parametrize("label,parser", list(_parsers()), ids=lambda v: str(v))
def test_help_is_wrapped_to_the_terminal(label, parser, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    long_lines = [line for line in parser.format_help().splitlines() if len(line) > 80]
    assert not long_lines, f"{label}: {long_lines}"


def test_forget_has_its_own_wording():
    parsers = dict(_parsers())
    forget = parsers["consumer_group forget"].format_help()
    assert "(all its processes)" not in forget
    assert "cursors" in forget and "dead letters" in forget


def test_runworker_help_says_a_bare_runworker_takes_every_queue():
    runworker = dict(_parsers())["runworker"].format_help()
    assert "every queue" in " ".join(runworker.split())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("args", [("deadletters", "list", "--settings",
                                   "tests.first_hour_settings.quiet", "-v", "2"),
                                  ("jobs", "list", "--no-color", "--traceback"),
                                  ("consumer_group", "translate", "--skip-checks")],
                         ids=lambda a: a[0])
def test_common_options_are_accepted_after_a_sub_command(args, db_url):
    result = manage(*args, db_url=db_url, settings="tests.settings")
    assert result.returncode == 0, result.stderr
    assert "unrecognized arguments" not in result.stderr


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("args,said", [
    (("deadletters", "reprocess", "999"), "no dead letter with id 999"),
    (("deadletters", "discard", "999"), "no dead letter with id 999"),
    (("deadletters", "list", "--group", "nosuch"), "no consumer group 'nosuch'"),
    (("deadletters", "reprocess", "--group", "nosuch"), "no consumer group 'nosuch'"),
    (("consumer_group", "pause", "nosuch"), "no consumer group 'nosuch'"),
    (("consumer_group", "translate", "nosuch"), "no consumer group 'nosuch'"),
    (("jobs", "retry", "12345"), "no job with id 12345"),
    (("jobs", "cancel", "12345"), "no job with id 12345"),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else None)
def test_wrong_ids_and_names_say_what_was_not_found_and_exit_non_zero(args, said, db_url):
    result = manage(*args, db_url=db_url, settings="tests.settings")
    assert result.returncode == 1
    assert said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.django_db(transaction=True)
def test_retry_and_cancel_of_ids_that_do_not_exist_raise_job_not_found():
    failed = JobFactory(failed=True)
    ready = JobFactory()
    with pytest.raises(JobNotFound, match="12345") as raised:
        eventjobs.retry_job(failed.pk, 12345)
    assert isinstance(raised.value, LookupError) and raised.value.ids == [12345]
    assert Job.objects.get(pk=failed.pk).status == "FAILED"  # nothing was changed
    with pytest.raises(JobNotFound, match="12345"):
        eventjobs.cancel_job(ready.pk, "12345")
    assert Job.objects.get(pk=ready.pk).status == "READY"
    # Existing jobs in another state are still just left out of the list.
    assert eventjobs.retry_job(ready.pk) == []
    assert eventjobs.cancel_job(failed.pk) == []
    assert eventjobs.retry_job(failed.pk) == [str(failed.pk)]


@pytest.mark.django_db(transaction=True)
def test_reprocess_dead_letters_reports_ids_not_found(monkeypatch):
    monkeypatch.setattr(consumers, "FIXED", True)
    dead = DeadLetterFactory(group="flaky")
    result = eventjobs.reprocess_dead_letters([dead.pk, 999])
    assert result == {"resolved": [dead.pk], "failed": [], "replaying": [], "not_found": [999]}
    assert eventjobs.reprocess_dead_letters([dead.pk])["not_found"] == []  # exists, resolved


@pytest.mark.django_db(transaction=True)
def test_reprocess_of_many_dead_letters_shows_progress(monkeypatch):
    monkeypatch.setattr(consumers, "FIXED", True)
    monkeypatch.setattr("eventjobs.management.base.PROGRESS_EVERY_SECONDS", 0)
    monkeypatch.setattr("eventjobs.management.commands.deadletters.BATCH", 2)
    for _ in range(5):
        DeadLetterFactory(group="flaky")
    out = StringIO()
    call_command("deadletters", "reprocess", "--group", "flaky", stdout=out)
    text = out.getvalue()
    assert len(re.findall(r"reprocessed \d+ dead letter\(s\) so far, .*/s", text)) >= 2, text
    assert "resolved 5, failed again 0" in text
    assert not DeadLetter.objects.filter(status="OPEN").exists()


@pytest.mark.django_db(transaction=True)
def test_prune_jobs_speaks_in_words_and_shows_progress(monkeypatch):
    from django.utils import timezone

    monkeypatch.setattr("eventjobs.management.base.PROGRESS_EVERY_SECONDS", 0)
    old = timezone.now() - timezone.timedelta(days=10)
    for _ in range(5):
        JobFactory(successful=True, finished_at=old)
    out = StringIO()
    call_command("prune_jobs", "--older-than", "3d", "--batch-size", "2", stdout=out)
    text = out.getvalue()
    assert "finished more than 3 days ago" in text and "now - " not in text
    assert len(re.findall(r"deleted \d+ SUCCESSFUL job\(s\) so far, .*/s", text)) >= 2, text
    assert "deleted 5 SUCCESSFUL job(s)" in text


@pytest.mark.django_db(transaction=True)
def test_prune_events_shows_progress(monkeypatch):
    from eventjobs.db import django_connection
    from eventjobs.events.store import horizon

    monkeypatch.setattr("eventjobs.management.base.PROGRESS_EVERY_SECONDS", 0)
    events = eventjobs.publish_many([{"type": "t"} for _ in range(5)])
    # Only final events are pruned: wait until no open transaction in the cluster (other
    # test runs share it) is older than them.
    wait_until(lambda: horizon(django_connection("default")) > events[-1].txid, message="events below the horizon")
    out = StringIO()
    call_command("prune_events", "--older-than", "0s", "--batch-size", "2", stdout=out)
    text = out.getvalue()
    assert len(re.findall(r"deleted \d+ event\(s\) so far, .*/s", text)) >= 2, text
    assert "deleted 5 event(s)" in text


@pytest.mark.django_db(transaction=True)
def test_reset_says_where_in_words():
    ConsumerGroupFactory(name="ledger", partitions=2)
    event = EventFactory()
    out = StringIO()
    call_command("consumer_group", "reset", "ledger", "--to-event", str(event.pk), stdout=out)
    assert "{" not in out.getvalue() and "event #" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_group_that_never_ran_shows_as_not_started_with_its_pending_count():
    from eventjobs.events.monitoring import groups_status

    eventjobs.publish_many([{"type": "order.placed"}, {"type": "order.paid"},
                            {"type": "user.joined"}])
    status = groups_status()
    assert status["ledger"]["started"] is False and status["ledger"]["lag"] == 3
    assert status["second"]["started"] is False and status["second"]["lag"] == 2  # order.*
    assert status["tail"]["lag"] == 0  # start="latest": nothing before it is for it
    assert status["ledger"]["position"] is None
    out = StringIO()
    call_command("eventjobs_status", stdout=out)
    [line] = [line for line in out.getvalue().splitlines() if " ledger " in f" {line} "]
    assert "not started" in line and "lag 3" in line


def test_payload_hints_name_the_handler_for_events_and_the_task_for_jobs():
    with pytest.raises(InvalidPayload, match="load objects inside the handler"):
        eventjobs.publish("t", {"post": object()})
    with pytest.raises(InvalidPayload, match="load objects inside the task"):
        add.enqueue(object(), 2)
