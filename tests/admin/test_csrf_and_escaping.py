"""Every state change needs the CSRF token; payloads, errors and tracebacks are shown as
text, never as markup."""

from __future__ import annotations

import pytest

from eventjobs.models import Cursor, DeadLetter, Job
from tests.admin.conftest import AdminClient
from tests.factories import ConsumerGroupFactory, DeadLetterFactory, EventFactory, JobFactory

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert('owned')</script>"
ESCAPED = "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;"


@pytest.fixture
def superuser_client(as_user) -> AdminClient:
    return as_user(superuser=True)


@pytest.mark.parametrize("token", [None, "x" * 32], ids=["missing", "wrong"])
def test_actions_without_a_valid_csrf_token_are_refused(superuser_client, token):
    job = JobFactory(failed=True)
    dead = DeadLetterFactory()
    ConsumerGroupFactory(name="ledger")
    generations = list(Cursor.objects.values_list("generation", flat=True))
    posts = [
        ("/admin/eventjobs/job/", {"action": "retry_jobs", "_selected_action": job.pk}),
        ("/admin/eventjobs/job/", {"action": "cancel_jobs", "_selected_action": job.pk}),
        ("/admin/eventjobs/deadletter/", {"action": "discard_dead_letters",
                                          "_selected_action": dead.pk}),
        ("/admin/eventjobs/consumergroup/", {"action": "pause_groups",
                                             "_selected_action": "ledger"}),
        ("/admin/eventjobs/consumergroup/ledger/reset/", {"to": "end", "confirm": "1"}),
    ]
    superuser_client.get("/admin/")  # a real session with a CSRF cookie, as in a browser
    for url, data in posts:
        if token:
            data = {**data, "csrfmiddlewaretoken": token}
        response = superuser_client.post(url, {**data, "index": 0})
        assert response.status_code == 403, url
    assert Job.objects.get(pk=job.pk).status == "FAILED"
    assert DeadLetter.objects.get(pk=dead.pk).status == "OPEN"
    assert list(Cursor.objects.values_list("generation", flat=True)) == generations


def _page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def test_job_payloads_errors_and_tracebacks_render_as_text(superuser_client):
    job = JobFactory(failed=True, args=[SCRIPT], kwargs={"html": SCRIPT},
                     task_path="tests.testapp.tasks.add",
                     errors=[{"exception_class_path": "builtins.ValueError", "message": SCRIPT,
                              "traceback": f"Traceback\nValueError: {SCRIPT}", "attempt": 1,
                              "worker_id": SCRIPT, "at": "2026-12-01T00:00:00Z"}])
    page = _page(superuser_client, f"/admin/eventjobs/job/{job.pk}/change/")
    assert SCRIPT not in page
    assert page.count(ESCAPED) >= 4  # args, kwargs, message, traceback (and worker id)
    done = JobFactory(successful=True, return_value={"x": SCRIPT})
    assert SCRIPT not in _page(superuser_client, f"/admin/eventjobs/job/{done.pk}/change/")


def test_event_and_dead_letter_data_render_as_text(superuser_client):
    event = EventFactory(data={"body": SCRIPT}, key=SCRIPT, type="post.published")
    dead = DeadLetterFactory(event=event, event_data={"body": SCRIPT}, error=SCRIPT,
                             traceback=f"Traceback\n{SCRIPT}")
    for url in (f"/admin/eventjobs/event/{event.pk}/change/", "/admin/eventjobs/event/",
                f"/admin/eventjobs/deadletter/{dead.pk}/change/", "/admin/eventjobs/deadletter/"):
        page = _page(superuser_client, url)
        assert SCRIPT not in page, url
        assert ESCAPED in page, url
