"""The queue list and its pause and resume actions: every backend's queues, a queue since
removed from settings (never a 500), and a list page that writes nothing."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

from eventjobs.models import Queue
from tests.admin.conftest import action_choices

pytestmark = pytest.mark.django_db


@pytest.fixture
def pauser(as_user):
    return as_user("eventjobs.view_queue", "eventjobs.pause_queue")


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_list_shows_configured_queues_without_writing_a_row(pauser, as_user):
    response = pauser.get("/admin/eventjobs/queue/")
    assert [q.name for q in response.context["cl"].result_list] == ["default", "other"]
    assert "pause_queues" in action_choices(response)
    page = response.content.decode()
    assert 'name="_selected_action" value="other"' in page and "running" in page
    assert not Queue.objects.exists()  # a GET writes nothing
    as_user("eventjobs.view_queue").action("queue", "pause_queues", ["other"])
    assert not Queue.objects.exists()  # nor does a POST of one who may not switch queues


def test_a_configured_queue_that_has_no_row_yet_is_paused_from_the_list(pauser):
    Queue.objects.create(name="default")
    response = pauser.action("queue", "pause_queues", ["other"])
    assert "Paused other." in _messages(response)
    assert Queue.objects.get(name="other").paused
    assert not Queue.objects.get(name="default").paused


def test_a_paused_queue_removed_from_settings_can_still_be_resumed(pauser):
    Queue.objects.create(name="gone", paused=True)  # paused, then taken out of QUEUES
    page = pauser.get("/admin/eventjobs/queue/")
    assert "gone" in [q.name for q in page.context["cl"].result_list]
    response = pauser.action("queue", "resume_queues", ["gone"])
    assert response.status_code == 200
    assert "Resumed gone." in _messages(response)
    assert not Queue.objects.get(name="gone").paused
    assert LogEntry.objects.get().object_id == "gone"


def test_pausing_a_queue_that_no_backend_serves_is_refused_with_a_message(pauser):
    Queue.objects.create(name="gone")
    response = pauser.action("queue", "pause_queues", ["gone", "default"])
    assert response.status_code == 200
    messages = _messages(response)
    assert "Paused default." in messages
    assert any(m.startswith("Left gone alone: no eventjobs task backend") for m in messages)
    assert not Queue.objects.get(name="gone").paused
    assert Queue.objects.get(name="default").paused


def test_a_queue_of_another_backend_is_switched_by_that_backend(pauser, settings):
    settings.TASKS = {**settings.TASKS, "bulk": {
        "BACKEND": "eventjobs.backends.PostgresBackend", "QUEUES": ["bulk"]}}
    assert "Paused bulk." in _messages(pauser.action("queue", "pause_queues", ["bulk"]))
    assert Queue.objects.get(name="bulk").paused
    assert "Resumed bulk." in _messages(pauser.action("queue", "resume_queues", ["bulk"]))
    assert not Queue.objects.get(name="bulk").paused
