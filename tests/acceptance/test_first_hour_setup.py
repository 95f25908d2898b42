"""Set-up mistakes a new user makes, seen as they see them: `manage.py` run as a subprocess
with a settings module that has the mistake."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.first_hour import empty_database, lines_with, manage
from tests.server import database_exists, settings_server

pytestmark = pytest.mark.acceptance

EVERY_COMMAND = [
    ("runworker", "--burst", "--concurrency", "1"),
    ("consume", "--burst"),
    ("eventjobs_status",),
    ("prune_jobs", "--older-than", "7d"),
    ("prune_events", "--older-than", "7d"),
    ("deadletters", "list"),
    ("consumer_group", "pause", "ledger"),
    ("jobs", "list"),
]


def find_python(python: str) -> subprocess.CompletedProcess:
    """.ci/find-python (what `make` uses to make .venv) with PYTHON set."""
    return subprocess.run([str(ROOT / ".ci" / "find-python")], env={**os.environ, "PYTHON": python},
                          capture_output=True, text=True, timeout=60)


def test_find_python_uses_the_python_named_by_PYTHON():
    found = find_python(sys.executable)  # this suite's Python, a 3.12+ by the project's rules
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == sys.executable


@pytest.mark.parametrize("kind", ["missing", "too old"])
def test_find_python_refuses_a_PYTHON_that_is_not_a_312(tmp_path, kind):
    python = tmp_path / "python3.11"
    if kind == "too old":
        # Stands for an old interpreter: it runs, but fails find-python's version test.
        python.write_text("#!/bin/sh\nexit 1\n")
        python.chmod(0o755)
    found = find_python(str(python))
    assert found.returncode == 1
    assert found.stdout == ""  # no other interpreter is offered in its place
    [line] = found.stderr.splitlines()
    assert f"PYTHON={python}" in line and ">= 3.12" in line


@pytest.fixture
def unmigrated_db():
    with empty_database(f"fh_unmigrated_{os.getpid()}") as url:
        yield url


def test_the_helpers_use_the_server_DATABASE_URL_names(unmigrated_db):
    assert database_exists(unmigrated_db.rsplit("/", 1)[1])
    with settings_server() as conn:
        where = (conn.info.host, conn.info.port)
    shown = manage("shell", "-v", "0", "-c", "from django.db import connection as c; "
                   "c.ensure_connection(); print(c.connection.info.host, c.connection.info.port)")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == [where[0], str(where[1])]


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: c[0])
def test_every_command_on_an_unmigrated_database_says_run_migrate(unmigrated_db, command):
    result = manage(*command, db_url=unmigrated_db, timeout=30)
    assert result.returncode != 0
    said = lines_with(result.stderr, "manage.py migrate")
    assert len(said) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "UndefinedTable" not in result.stderr + result.stdout


def test_a_partly_migrated_database_names_the_missing_migrations(unmigrated_db):
    migrated = manage("migrate", "eventjobs", "0002", db_url=unmigrated_db)
    assert migrated.returncode == 0, migrated.stderr
    result = manage("runworker", "--burst", "--concurrency", "1", db_url=unmigrated_db,
                    timeout=30)
    assert result.returncode != 0
    [line] = lines_with(result.stderr, "manage.py migrate")
    assert "0003_drop_queue_status_index" in line and "0004" in line
    assert "0001_initial" not in line


def test_sqlite_is_reported_once_with_its_hint():
    for command in (("check",), ("runworker", "--burst")):
        result = manage(*command, settings="tests.first_hour_settings.sqlite")
        assert result.returncode != 0
        output = result.stdout + result.stderr
        assert output.count("eventjobs.E001") == 1, output
        assert "HINT: Point DATABASES" in output


def test_eventjobs_missing_from_installed_apps_is_a_check_error_and_an_enqueue_error():
    settings = "tests.first_hour_settings.no_app"
    # A project whose tasks are imported at start-up (the usual case for a check to see them).
    checked = manage("shell", "-c", "import tests.testapp.tasks; "
                     "from django.core.management import call_command; call_command('check')",
                     settings=settings)
    assert "eventjobs.E006" in checked.stderr
    assert "INSTALLED_APPS" in checked.stderr
    enqueued = manage("shell", "-c", "from tests.testapp.tasks import add; add.enqueue(1, 2)",
                      settings=settings)
    assert enqueued.returncode != 0
    last = enqueued.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last and "'eventjobs'" in last and "INSTALLED_APPS" in last
    assert "does not exist" not in enqueued.stderr


def test_task_options_without_tasks_setting_name_the_setting():
    result = manage("shell", "-c", "import tests.testapp.tasks",
                    settings="tests.first_hour_settings.no_tasks")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "TASKS" in last and "max_attempts" in last
    assert "eventjobs.backends.PostgresBackend" in last
    assert "TASKS is not set" in last


def test_typos_get_a_warning_naming_the_closest_key():
    result = manage("check", settings="tests.first_hour_settings.typos")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    [lease] = lines_with(output, "'LEASE_SECOND'")
    assert "eventjobs.W007" in lease and "'LEASE_SECONDS'" in lease
    assert "TASKS['default']['OPTIONS']" in lease
    [partition] = lines_with(output, "'PARTITION'")
    assert "eventjobs.W007" in partition and "'PARTITIONS'" in partition
    assert "EVENTJOBS" in partition
    [listen] = lines_with(output, "eventjobs.W002")
    assert "EVENTJOBS['LISTEN']" in listen


def test_misspelt_keys_of_a_tasks_entry_get_a_warning_naming_the_closest_key():
    result = manage("check", settings="tests.first_hour_settings.typos")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    [queue] = lines_with(output, "'QUEUE'")
    assert "eventjobs.W007" in queue and "TASKS['default'] has an unknown key" in queue
    assert "did you mean 'QUEUES'?" in queue
    [option] = lines_with(output, "'OPTION'")
    assert "eventjobs.W007" in option and "TASKS['reports']" in option
    assert "did you mean 'OPTIONS'?" in option
    # The hint lists the keys that are read: Django's and the backend's own DATABASE.
    assert lines_with(output, "Known keys: BACKEND, QUEUES, OPTIONS, DATABASE.")
    assert output.count("eventjobs.W007") == 4, output  # these two, LEASE_SECOND, PARTITION


def test_invalid_values_are_check_errors_not_a_crash():
    result = manage("check", settings="tests.first_hour_settings.bad_values")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    assert "SystemCheckError" in output
    assert lines_with(output, "eventjobs.E005")
    assert lines_with(output, "TASKS['default']['OPTIONS']['LEASE_SECONDS']")
    assert lines_with(output, "EVENTJOBS['BATCH_SIZE']")


def test_backend_checks_run_even_when_nothing_imports_django_tasks():
    result = manage("check", settings="tests.first_hour_settings.listen_off")
    output = result.stdout + result.stderr
    assert result.returncode == 0
    [listen] = lines_with(output, "eventjobs.W002")
    assert "TASKS['default']['OPTIONS']['LISTEN'] is off" in listen
