"""`eventjobs.testing.run_jobs()` inside a test's own transaction (issue 10: Django's
`TestCase` and pytest-django's `db` fixture, where nothing the test wrote is committed).

The worker's check for a task that leaves a transaction open must not take the test's
transaction for such a leak: before, it rolled it back and closed the connection, and the
test died with "the connection is closed".
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test import TestCase

from eventjobs.testing import run_jobs
from tests.testapp.models import Ledger
from tests.testapp.tasks import leave_transaction_open, record


class RunJobsInATestCase(TestCase):
    def test_jobs_run_and_the_test_transaction_survives(self):
        record.enqueue("a")
        record.enqueue("b")

        self.assertEqual(run_jobs(), 2)

        self.assertEqual(sorted(Ledger.objects.values_list("job_key", flat=True)), ["a", "b"])
        self.assertTrue(connection.in_atomic_block)  # still the test's transaction


@pytest.mark.django_db
def test_run_jobs_under_the_db_fixture_sees_what_the_test_wrote():
    result = record.enqueue("c")

    assert run_jobs() == 1

    assert list(Ledger.objects.values_list("job_key", flat=True)) == ["c"]
    result.refresh()
    assert result.status == "SUCCESSFUL"


@pytest.mark.django_db
def test_a_task_leaving_its_own_transaction_open_is_still_reported_in_a_test(caplog):
    leave_transaction_open.enqueue()

    record.enqueue("after")

    assert run_jobs() == 2

    assert "left a transaction open" in caplog.text
    assert connection.in_atomic_block and len(connection.atomic_blocks) == 1  # the test's own
    # The task's writes were rolled back with its transaction; the next job ran as usual.
    assert list(Ledger.objects.values_list("job_key", flat=True)) == ["after"]
    with transaction.atomic():
        assert Ledger.objects.count() == 1


def test_a_worker_rolls_back_and_replaces_a_connection_a_task_left_in_a_transaction(
        run_worker, caplog):
    leave_transaction_open.enqueue()
    record.enqueue("after")

    run_worker()

    assert "left a transaction open on database 'default'; rolling it back" in caplog.text
    assert list(Ledger.objects.values_list("job_key", flat=True)) == ["after"]
