"""The blog's background jobs (Django's Tasks API; `manage.py runworker` runs them).

Jobs are the to-do list beside the log: each is done once (retried if it fails), by one
worker, and then it is finished. Events are facts every group reads; jobs are work.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F
from django.tasks import task
from django.utils import timezone

logger = logging.getLogger("demo_blog.tasks")


@task(queue_name="emails", max_attempts=5, retry_backoff=2)
def notify_subscribers(post_id: int, title: str, author_id: int, author_name: str,
                       event_id: int) -> int:
    """Email the author's subscribers about a new post; returns how many were sent.

    Enqueued by the `notifications` consumer group when it handles `post.published`.
    A job may run again after a crashed worker: mail is sent at least once."""
    from .models import Subscriber

    emails = list(Subscriber.objects.filter(author_id=author_id)
                  .order_by("email").values_list("email", flat=True))
    if emails:  # one message, the subscribers in Bcc
        EmailMessage(subject=f"New on the demo blog: {title}",
                     body=f"{author_name} published \"{title}\".\n"
                          f"Read it at /posts/{post_id}/ (event #{event_id}).",
                     from_email=settings.DEFAULT_FROM_EMAIL, bcc=emails).send()
    logger.info("notified %s subscriber(s) of %s about post %s", len(emails), author_name,
                post_id)
    return len(emails)


@task(max_attempts=2)
def rebuild_search_index(rebuild_id: int) -> dict:
    """Re-index every post from the posts table, one post per short transaction,
    recording progress on the IndexRebuild row (its page shows it while this runs).

    It runs beside the search-index group without conflict: both write through
    search.apply, where the newer version of a post always wins."""
    from . import search
    from .models import IndexRebuild, Post, SearchEntry

    post_ids = list(Post.objects.order_by("id").values_list("id", flat=True))
    IndexRebuild.objects.filter(pk=rebuild_id).update(total=len(post_ids), done=0,
                                                      started_at=timezone.now())
    pause = settings.DEMO_REBUILD_PAUSE_SECONDS
    reindexed = 0
    for post_id in post_ids:
        with transaction.atomic():  # one post and its progress, committed together
            post = Post.objects.select_related("author").filter(pk=post_id).first()
            if post is not None:  # deleted meanwhile: its post.deleted event hid it
                reindexed += search.apply(
                    post_id=post.pk, version=post.version, visible=post.is_published,
                    author_id=post.author_id, author_name=post.author.name,
                    title=post.title, body=post.body if post.is_published else "",
                    same_version_too=True)
            IndexRebuild.objects.filter(pk=rebuild_id).update(done=F("done") + 1)
        time.sleep(pause)
    # Entries of posts that no longer exist must not be found, whatever wrote them.
    orphans = (SearchEntry.objects.filter(visible=True)
               .exclude(post_id__in=Post.objects.values("id")).update(visible=False))
    IndexRebuild.objects.filter(pk=rebuild_id).update(finished_at=timezone.now())
    return {"posts": len(post_ids), "reindexed": reindexed, "orphans_hidden": orphans}
