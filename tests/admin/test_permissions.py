"""Each state-changing action needs its own permission: without it the action is not
offered and a forged POST changes nothing; with it the action works and is logged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from eventjobs.events import control
from eventjobs.models import ConsumerGroup, Cursor, DeadLetter, Job, Queue
from tests.admin.conftest import AdminClient, action_choices
from tests.factories import ConsumerGroupFactory, DeadLetterFactory, JobFactory

pytestmark = pytest.mark.django_db


def _paused_group() -> ConsumerGroup:
    group = ConsumerGroupFactory(name="ledger", partitions=2)
    control.pause("ledger")
    return group


def _is_paused(group: ConsumerGroup) -> bool:
    return Cursor.objects.filter(group=group, paused=True).exists()


@dataclass
class Spec:
    model: str
    action: str
    perm: str
    make: Callable
    changed: Callable
    extra: dict | None = None


SPECS = [
    Spec("job", "retry_jobs", "eventjobs.retry_job", lambda: JobFactory(failed=True),
         lambda job: Job.objects.get(pk=job.pk).status != "FAILED"),
    Spec("job", "cancel_jobs", "eventjobs.cancel_job", lambda: JobFactory(),
         lambda job: Job.objects.get(pk=job.pk).status == "FAILED"),
    Spec("job", "delete_selected", "eventjobs.delete_job", lambda: JobFactory(failed=True),
         lambda job: not Job.objects.filter(pk=job.pk).exists(), {"post": "yes"}),
    Spec("deadletter", "reprocess_dead_letters", "eventjobs.reprocess_deadletter",
         lambda: DeadLetterFactory(group="ledger"),
         lambda dead: DeadLetter.objects.get(pk=dead.pk).status != "OPEN"),
    Spec("deadletter", "discard_dead_letters", "eventjobs.discard_deadletter",
         lambda: DeadLetterFactory(), lambda dead: DeadLetter.objects.get(pk=dead.pk).status != "OPEN"),
    Spec("consumergroup", "pause_groups", "eventjobs.pause_consumergroup",
         lambda: ConsumerGroupFactory(name="ledger", partitions=2), _is_paused),
    Spec("consumergroup", "resume_groups", "eventjobs.pause_consumergroup", _paused_group,
         lambda group: not _is_paused(group)),
    Spec("queue", "pause_queues", "eventjobs.pause_queue",
         lambda: Queue.objects.get_or_create(name="default")[0],
         lambda queue: Queue.objects.get(pk=queue.pk).paused),
    Spec("queue", "resume_queues", "eventjobs.pause_queue",
         lambda: Queue.objects.update_or_create(name="default", defaults={"paused": True})[0],
         lambda queue: not Queue.objects.get(pk=queue.pk).paused),
]
IDS = [f"{s.model}.{s.action}" for s in SPECS]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_view_only_staff_sees_no_action_and_a_forged_post_changes_nothing(as_user, spec):
    obj = spec.make()
    client = as_user(f"eventjobs.view_{spec.model}")
    page = client.get(f"/admin/eventjobs/{spec.model}/")
    assert page.status_code == 200
    assert spec.action not in action_choices(page)
    response = client.action(spec.model, spec.action, [obj.pk], **(spec.extra or {}))
    assert response.status_code == 200  # the list again, unchanged
    assert not spec.changed(obj)
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_staff_with_the_permission_gets_the_action_and_it_is_logged(as_user, spec):
    obj = spec.make()
    client = as_user(f"eventjobs.view_{spec.model}", spec.perm)
    assert spec.action in action_choices(client.get(f"/admin/eventjobs/{spec.model}/"))
    response = client.action(spec.model, spec.action, [obj.pk], **(spec.extra or {}))
    assert response.status_code == 200
    assert spec.changed(obj)
    entry = LogEntry.objects.get()
    assert entry.object_id == str(obj.pk) and entry.user.username == "user0"


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_anonymous_and_non_staff_are_sent_to_the_login_page(as_user, spec):
    obj = spec.make()
    for client in (AdminClient(None), as_user(spec.perm, staff=False)):
        page = client.get(f"/admin/eventjobs/{spec.model}/")
        assert page.status_code == 302 and "/admin/login/" in page["Location"]
        client.action(spec.model, spec.action, [obj.pk], **(spec.extra or {}))
        assert not spec.changed(obj)


def test_an_action_forged_beside_a_permitted_one_is_refused_with_a_message(as_user):
    job = JobFactory()
    client = as_user("eventjobs.view_job", "eventjobs.retry_job")
    response = client.action("job", "cancel_jobs", [job.pk])
    assert "No action selected." in [str(m) for m in response.context["messages"]]
    assert Job.objects.get(pk=job.pk).status == "READY"


def test_reset_needs_its_own_permission(as_user):
    ConsumerGroupFactory(name="ledger", partitions=2)
    before = list(Cursor.objects.values_list("generation", flat=True))
    viewer = as_user("eventjobs.view_consumergroup", "eventjobs.pause_consumergroup")
    url = "/admin/eventjobs/consumergroup/ledger/reset/"
    assert viewer.get(url).status_code == 403
    assert "Reset position" not in viewer.get(
        "/admin/eventjobs/consumergroup/ledger/change/").content.decode()
    assert viewer.post_form(url, {"to": "end", "confirm": "1"}).status_code == 403
    assert list(Cursor.objects.values_list("generation", flat=True)) == before
    resetter = as_user("eventjobs.view_consumergroup", "eventjobs.reset_consumergroup")
    assert resetter.get(url).status_code == 200
    assert "Reset position" in resetter.get(
        "/admin/eventjobs/consumergroup/ledger/change/").content.decode()


def test_detail_pages_offer_buttons_only_with_the_permission(as_user):
    job = JobFactory(failed=True)
    url = f"/admin/eventjobs/job/{job.pk}/change/"
    assert "Retry this job" not in as_user("eventjobs.view_job").get(url).content.decode()
    assert "Retry this job" in as_user("eventjobs.view_job", "eventjobs.retry_job").get(
        url).content.decode()


@pytest.mark.parametrize("waiting", [
    {"status": "READY"},
    {"status": "SCHEDULED", "run_after": timezone.now() + timedelta(hours=1)},
    {"status": "LIMITED", "limit_key": "k", "concurrency": 1},  # waiting under its limit
], ids=lambda w: w["status"])
def test_a_job_that_has_not_started_offers_cancel_and_the_button_cancels_it(as_user, waiting):
    job = JobFactory(**waiting)
    url = f"/admin/eventjobs/job/{job.pk}/change/"
    assert "Cancel this job" not in as_user("eventjobs.view_job").get(url).content.decode()
    client = as_user("eventjobs.view_job", "eventjobs.cancel_job")
    assert "Cancel this job" in client.get(url).content.decode()
    # What the button posts.
    response = client.post_form("/admin/eventjobs/job/", {
        "action": "cancel_jobs", "index": 0, "_selected_action": str(job.pk),
        "_return_to": url}, follow=True)
    assert response.redirect_chain[-1][0] == url
    assert Job.objects.get(pk=job.pk).status == "FAILED"
    running = JobFactory(status="RUNNING", attempt=1)
    page = client.get(f"/admin/eventjobs/job/{running.pk}/change/").content.decode()
    assert "Cancel this job" not in page


def test_the_overview_shows_only_what_the_user_may_view(as_user):
    assert as_user().get("/admin/eventjobs/overview/").status_code == 403
    jobs_only = as_user("eventjobs.view_job").get("/admin/eventjobs/overview/").content.decode()
    assert "Jobs per queue" in jobs_only and "Consumer groups" not in jobs_only
