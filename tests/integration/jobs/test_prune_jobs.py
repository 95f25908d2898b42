from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from eventjobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


def _job(status, finished_days_ago=None, **extra):
    finished = timezone.now() - timedelta(days=finished_days_ago) if finished_days_ago else None
    return Job.objects.create(task_path="tests.testapp.tasks.add", status=status,
                              finished_at=finished, **extra)


def test_prunes_only_old_successes_unless_failed_flag():
    old_ok = [_job("SUCCESSFUL", 10) for _ in range(7)]
    new_ok = _job("SUCCESSFUL", 1)
    old_failed = _job("FAILED", 40)
    keep = [_job("READY"), _job("RUNNING"), _job("SCHEDULED", attempt=1)]
    out = StringIO()
    call_command("prune_jobs", "--older-than", "7d", "--batch-size", "3", stdout=out)
    remaining = set(Job.objects.values_list("id", flat=True))
    assert not remaining & {j.id for j in old_ok}
    assert {new_ok.id, old_failed.id, *(j.id for j in keep)} <= remaining
    assert "deleted 7 SUCCESSFUL" in out.getvalue()
    call_command("prune_jobs", "--older-than", "7d", "--failed-older-than", "30d", stdout=out)
    assert not Job.objects.filter(pk=old_failed.pk).exists()
    assert Job.objects.count() == 4


def test_bad_duration_is_a_clear_error():
    with pytest.raises(CommandError, match="not a duration"):
        call_command("prune_jobs", "--older-than", "seven days")
