"""Jobs beside events: the notifications group turns post.published into a job in its
own transaction, and the rebuild job reports progress while a real worker runs it."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.tasks import default_task_backend

from demo_blog.blog import consumers, services
from demo_blog.blog.models import IndexRebuild, SearchEntry
from demo_blog.blog.tasks import notify_subscribers
from eventjobs.models import DeadLetter, Job
from tests.conftest import wait_until
from tests.demo.factories import AuthorFactory, SubscriberFactory

pytestmark = pytest.mark.django_db(transaction=True)

NOTIFY = "demo_blog.blog.tasks.notify_subscribers"


def notify_jobs() -> list[Job]:
    return list(Job.objects.filter(task_path=NOTIFY).order_by("id"))


def test_publishing_enqueues_one_notification_per_publication(consume_all):
    author = AuthorFactory()
    post = services.create_post(author, "Hello", "World", publish=True)
    services.create_post(author, "A draft", "not announced", publish=False)
    consume_all("notifications")
    jobs = notify_jobs()
    assert len(jobs) == 1
    assert jobs[0].kwargs["post_id"] == post.pk and jobs[0].queue == "emails"
    consume_all("notifications")  # nothing new: nothing enqueued again
    assert len(notify_jobs()) == 1


def test_a_rolled_back_publication_enqueues_nothing(consume_all):
    author = AuthorFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.create_post(author, "Never", "happened", publish=True)
        raise RuntimeError("rolled back after publishing")
    consume_all("notifications")
    assert notify_jobs() == []


class _EnqueueThenFail:
    """notify_subscribers whose enqueue works, then the handler fails (first time only)."""

    def __init__(self):
        self.calls = 0

    def enqueue(self, **kwargs):
        self.calls += 1
        result = notify_subscribers.enqueue(**kwargs)
        if self.calls == 1:
            raise ConnectionError("the handler failed after enqueuing")
        return result


def test_the_job_is_rolled_back_with_the_handler_that_enqueued_it(consume_all, monkeypatch):
    """The job is written in the group's batch transaction: a failed handler takes its
    job with it, and the retry enqueues exactly one."""
    flaky = _EnqueueThenFail()
    monkeypatch.setattr(consumers, "notify_subscribers", flaky)
    post = services.create_post(AuthorFactory(), "Hello", "World", publish=True)
    consume_all("notifications")
    assert flaky.calls == 2
    jobs = notify_jobs()
    assert [job.kwargs["post_id"] for job in jobs] == [post.pk]
    assert not DeadLetter.objects.exists()


def test_the_notification_job_emails_the_subscribers(mailoutbox):
    author = AuthorFactory(name="Lin")
    SubscriberFactory.create_batch(2, author=author)
    sent = notify_subscribers.call(post_id=7, title="News", author_id=author.pk,
                                   author_name="Lin", event_id=1)
    assert sent == 2
    assert len(mailoutbox) == 1
    assert mailoutbox[0].subject == "New on the demo blog: News"
    assert sorted(mailoutbox[0].bcc) == sorted(author.subscribers.values_list("email",
                                                                                flat=True))


def test_the_rebuild_job_reports_progress_while_a_worker_runs_it(spawn, client):
    author = AuthorFactory()
    posts = [services.create_post(author, f"Post {n}", f"text {n}", publish=True)
             for n in range(6)]
    services.unpublish_post(posts[0])
    client.force_login(author.user)
    response = client.post("/search/rebuild/")
    rebuild = IndexRebuild.objects.get()
    assert response.status_code == 302 and response.url == f"/search/rebuilds/{rebuild.pk}/"
    page = client.get(response.url).text
    assert "Waiting for a worker" in page and 'http-equiv="refresh"' in page

    spawn("runworker", "--concurrency", "1",
          env={"DJANGO_SETTINGS_MODULE": "tests.demo.settings",
               "DEMO_REBUILD_PAUSE_SECONDS": "0.5"})
    wait_until(lambda: IndexRebuild.objects.filter(pk=rebuild.pk, done__gte=1,
                                                   finished_at__isnull=True).exists(),
               timeout=60, message="the job to report progress while running")
    page = client.get(response.url).text
    assert " of 6 posts (" in page and 'http-equiv="refresh"' in page

    wait_until(lambda: IndexRebuild.objects.filter(pk=rebuild.pk,
                                                   finished_at__isnull=False).exists(),
               timeout=60, message="the rebuild to finish")
    # The task's last write is in; its outcome is recorded a moment later by the worker.
    result = wait_until(lambda: (r := default_task_backend.get_result(rebuild.job_id)).status
                        == "SUCCESSFUL" and r, timeout=10, message="the job recorded SUCCESSFUL")
    assert result.return_value == {"posts": 6, "reindexed": 6, "orphans_hidden": 0}
    page = client.get(response.url).text
    assert "Done: 6 of 6 posts re-indexed." in page and 'http-equiv="refresh"' not in page
    # No consumer ran: the index was filled from the posts table by the job alone.
    assert SearchEntry.objects.filter(visible=True).count() == 5
