"""What each page shows: the read-only event log, workers, groups and the overview."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from eventjobs.events import control
from eventjobs.models import Cursor, Event, GroupMember, Job, Worker
from tests.admin.conftest import action_choices
from tests.factories import ConsumerGroupFactory, DeadLetterFactory, EventFactory, JobFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(as_user):
    return as_user(superuser=True)


def test_events_are_read_only_even_for_a_superuser(admin_client_):
    event = EventFactory()
    listing = admin_client_.get("/admin/eventjobs/event/")
    assert listing.status_code == 200 and action_choices(listing) == []
    assert admin_client_.get("/admin/eventjobs/event/add/").status_code == 403
    assert admin_client_.get(f"/admin/eventjobs/event/{event.pk}/delete/").status_code == 403
    change = admin_client_.post_form(f"/admin/eventjobs/event/{event.pk}/change/",
                                     {"type": "changed", "_save": "1"})
    assert change.status_code == 403
    detail = admin_client_.get(f"/admin/eventjobs/event/{event.pk}/change/").content.decode()
    assert 'name="_save"' not in detail and "deletelink" not in detail
    assert Event.objects.get(pk=event.pk).type == event.type


def test_an_events_page_tells_per_group_whether_it_was_handled(admin_client_):
    first, second = EventFactory(), EventFactory(type="order.created")
    ConsumerGroupFactory(name="ledger")
    ConsumerGroupFactory(name="second")  # handles order.* and invoice.paid only
    first.refresh_from_db()
    Cursor.objects.filter(group="ledger").update(txid=first.txid, event_id=first.id)
    dead = DeadLetterFactory(event=first, group="ledger")
    page = admin_client_.get(f"/admin/eventjobs/event/{first.pk}/change/").content.decode()
    assert "dead-lettered" in page and f"#{dead.pk} OPEN" in page
    assert "not one of its types" in page  # "second" does not take post.published
    page = admin_client_.get(f"/admin/eventjobs/event/{second.pk}/change/").content.decode()
    assert page.count("waiting") == 2


def test_jobs_list_shows_retry_times_attempts_and_filters_by_django_status(admin_client_):
    retrying = JobFactory(status="SCHEDULED", attempt=1, run_after=timezone.now()
                          + timedelta(minutes=5))
    JobFactory(failed=True)
    page = admin_client_.get("/admin/eventjobs/job/").content.decode()
    assert "READY (retry at" in page and "1 of 3" in page
    ready = admin_client_.get("/admin/eventjobs/job/?status=READY")
    assert [j.pk for j in ready.context["cl"].result_list] == [retrying.pk]
    assert "SCHEDULED" not in page


def test_jobs_search_finds_ids_and_task_paths(admin_client_):
    job = JobFactory(task_path="tests.testapp.tasks.record")
    JobFactory()
    by_id = admin_client_.get(f"/admin/eventjobs/job/?q={job.pk}").context["cl"].result_list
    by_path = admin_client_.get("/admin/eventjobs/job/?q=tasks.rec").context["cl"].result_list
    assert [j.pk for j in by_id] == [job.pk] and [j.pk for j in by_path] == [job.pk]


def test_workers_page_shows_running_jobs_stale_workers_and_consumers(admin_client_):
    now = timezone.now()
    Worker.objects.create(id="web1:10:aa", host="web1", pid=10, queues=["default"], running=1,
                          last_seen=now)
    Worker.objects.create(id="web2:20:bb", host="web2", pid=20, queues=[], running=0,
                          last_seen=now - timedelta(minutes=30))
    job = JobFactory(status="RUNNING", attempt=2, worker_ids=["web2:20:bb", "web1:10:aa"],
                     task_path="tests.testapp.tasks.record")
    JobFactory(status="RUNNING", attempt=1, worker_ids=["web2:20:bb", "other:1:cc"])
    group = ConsumerGroupFactory(name="ledger", partitions=2)
    GroupMember.objects.create(id="web1:11:m", group=group, host="web1", pid=11, last_seen=now)
    Cursor.objects.filter(group=group, partition=1).update(owner="web1:11:m")
    response = admin_client_.get("/admin/eventjobs/worker/")
    workers = {w.id: w for w in response.context["cl"].result_list}
    assert [j.pk for j in workers["web1:10:aa"].jobs_now] == [job.pk]
    assert workers["web2:20:bb"].jobs_now == []  # its old attempt is not what it runs now
    assert workers["web2:20:bb"].stale and not workers["web1:10:aa"].stale
    page = response.content.decode()
    assert "every queue" in page and f"#{job.pk} tests.testapp.tasks.record" in page
    assert "web1:11:m" in page and ">1</td>" in page  # the partition it owns


def test_groups_page_shows_lag_dead_letters_and_pause(admin_client_):
    for _ in range(3):
        EventFactory()
    ConsumerGroupFactory(name="ledger", partitions=2)
    DeadLetterFactory(group="ledger")
    control.pause("ledger")
    response = admin_client_.get("/admin/eventjobs/consumergroup/")
    [group] = response.context["cl"].result_list
    assert group.status["lag"] == 4 and group.status["dead_letters"] == 1
    assert group.status["paused"] is True
    page = response.content.decode()
    assert "?group=ledger&amp;status=OPEN" in page
    detail = admin_client_.get("/admin/eventjobs/consumergroup/ledger/change/").content.decode()
    assert "Resume" in detail and "Reset position" in detail


def test_overview_summarises_queues_groups_and_workers_and_refreshes(admin_client_):
    now = timezone.now()
    JobFactory.create_batch(3)
    JobFactory(queue="other", run_after=now - timedelta(minutes=5))
    JobFactory(failed=True, finished_at=now - timedelta(minutes=2))
    JobFactory(successful=True)
    JobFactory(status="SCHEDULED", run_after=now + timedelta(hours=1))
    EventFactory.create_batch(4)
    ConsumerGroupFactory(name="ledger")
    DeadLetterFactory(group="ledger")
    Worker.objects.create(id="gone:1:x", host="gone", pid=1, queues=["default"],
                          last_seen=now - timedelta(hours=1))
    response = admin_client_.get("/admin/eventjobs/overview/")
    assert response.status_code == 200
    queues = {row["queue"]: row["figures"] for row in response.context["queues"]}
    assert (queues["default"].ready, queues["default"].scheduled) == (3, 1)
    assert queues["default"].failed == 1 and queues["default"].failed_recently == 1
    assert queues["default"].succeeded_recently == 1
    assert response.context["queues"][1]["oldest_ready_seconds"] >= 290
    page = response.content.decode()
    assert '<meta http-equiv="refresh" content="10">' in page
    assert page.count('<rect class="ok"') == 1 and page.count('<rect class="bad"') == 1
    assert page.count('<rect class="ev"') >= 1
    groups = {g["name"]: g for g in response.context["groups"]}
    assert groups["ledger"]["lag"] == 5  # 4 events + the dead letter's own
    # Registered in code (tests/testapp/consumers.py) but never run by `consume`:
    assert groups["audit"]["position"] is None and "never run" in page
    assert [w.id for w in response.context["dead_workers"]] == ["gone:1:x"]
    cards = {c["label"]: c for c in response.context["alarms"]}
    assert cards["open dead letters"]["value"] == 1 and cards["open dead letters"]["alarm"]
    stopped = admin_client_.get("/admin/eventjobs/overview/?refresh=0").content.decode()
    assert 'http-equiv="refresh"' not in stopped


def test_overview_is_linked_from_the_admin_index(admin_client_):
    page = admin_client_.get("/admin/").content.decode()
    assert 'href="/admin/eventjobs/overview/"' in page


def test_a_job_detail_shows_each_attempts_error_and_worker(admin_client_):
    job = JobFactory(failed=True, attempt=2, worker_ids=["h:1:a", "h:2:b"], errors=[
        {"exception_class_path": "builtins.KeyError", "message": "first",
         "traceback": "Traceback\nKeyError: first", "attempt": 1, "worker_id": "h:1:a"},
        {"exception_class_path": "eventjobs.exceptions.WorkerLost", "traceback": "lost",
         "attempt": 2, "worker_id": "h:2:b", "at": "2026-12-01T00:00:00Z"}])
    page = admin_client_.get(f"/admin/eventjobs/job/{job.pk}/change/").content.decode()
    assert page.index("WorkerLost") < page.index("KeyError: first")  # newest first
    assert "attempt 1: h:1:a" in page and "attempt 2: h:2:b" in page
    assert "Retry this job" in page and Job.objects.get(pk=job.pk).status == "FAILED"


def test_queues_and_schedules_are_listed_and_read_only(as_user):
    from eventjobs.models import Schedule

    Schedule.objects.create(name="nightly", task_path="tests.testapp.tasks.add",
                            spec="cron:0 3 * * *")
    client = as_user("eventjobs.view_queue", "eventjobs.view_schedule")
    queues = client.get("/admin/eventjobs/queue/").content.decode()
    # The backend's configured queues are listed before any was ever paused.
    assert "default" in queues and "other" in queues and "running" in queues
    schedules = client.get("/admin/eventjobs/schedule/").content.decode()
    assert "nightly" in schedules and "cron:0 3 * * *" in schedules
    assert client.get("/admin/eventjobs/schedule/add/").status_code == 403
    assert client.get("/admin/eventjobs/queue/add/").status_code == 403


def test_a_limited_job_reads_as_ready_waiting_under_its_limit(as_user):
    job = JobFactory(status="LIMITED", limit_key="tests.testapp.tasks.add", concurrency=2)
    page = as_user("eventjobs.view_job").get(f"/admin/eventjobs/job/{job.pk}/change/")
    text = page.content.decode()
    assert "READY (waiting under its concurrency limit)" in text
    assert "at most 2 at once" in text


def test_jobs_waiting_under_a_limit_count_as_due_on_the_overview(admin_client_):
    from tests.testapp.tasks import per_account

    for n in range(4):
        per_account.enqueue(n, account="acct-1")  # concurrency 1 per account: they wait LIMITED
    JobFactory(status="LIMITED", queue="other", limit_key="k", concurrency=1,
               run_after=timezone.now() - timedelta(minutes=5))
    assert Job.objects.filter(status="LIMITED").count() == 5
    response = admin_client_.get("/admin/eventjobs/overview/")
    rows = {row["queue"]: row for row in response.context["queues"]}
    assert rows["default"]["figures"].ready == 4 and rows["other"]["figures"].ready == 1
    assert rows["default"]["figures"].limited == 4 and rows["other"]["figures"].limited == 1
    # A queue starved under its limit is not "nothing waiting".
    assert rows["other"]["oldest_ready_seconds"] >= 290
    cards = {c["label"]: c for c in response.context["alarms"]}
    assert cards["longest wait of a due job"]["alarm"]
    assert "1 under a limit" in response.content.decode()
