import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings

from eventjobs.checks import check_install
from eventjobs.models import Job, Worker
from tests.testapp.tasks import add

pytestmark = pytest.mark.django_db(transaction=True)


def test_status_json_has_every_status_key_and_workers():
    add.enqueue(1, 2)
    Job.objects.create(task_path="x.y", status="SCHEDULED")
    Job.objects.create(task_path="x.y", status="FAILED", queue="other")
    Worker.objects.create(id="h:1:abc", host="h", pid=1, queues=["default"], running=1)
    out = StringIO()
    call_command("eventjobs_status", "--json", stdout=out)
    state = json.loads(out.getvalue())
    assert state["version"] == 1
    assert state["jobs"]["default"] == {"READY": 2, "RUNNING": 0, "SUCCESSFUL": 0, "FAILED": 0}
    assert state["jobs"]["other"] == {"READY": 0, "RUNNING": 0, "SUCCESSFUL": 0, "FAILED": 1}
    [worker] = state["workers"]
    assert worker["id"] == "h:1:abc" and worker["queues"] == ["default"]
    assert worker["running"] == 1 and worker["last_seen"].endswith("Z")
    assert isinstance(state["groups"], dict)


def test_status_text_output():
    add.enqueue(1, 2)
    out = StringIO()
    call_command("eventjobs_status", stdout=out)
    assert "READY 1" in out.getvalue()


def test_channels_before_eventjobs_is_warned(settings):
    # Only the order of names matters to the check; a stand-in app config named "channels".
    with override_settings(INSTALLED_APPS=["tests.testapp.fake_channels", *settings.INSTALLED_APPS]):
        ids = [m.id for m in check_install()]
    assert "eventjobs.W003" in ids


def test_no_eventjobs_backend_is_warned():
    with override_settings(TASKS={"default": {
            "BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}):
        ids = [m.id for m in check_install()]
    assert "eventjobs.W004" in ids


def test_clean_configuration_has_no_messages():
    assert check_install() == []
