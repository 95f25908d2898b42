"""The blog's consumer groups. `manage.py consume` finds them here (eventjobs imports
every installed app's consumers.py) and runs each group at its own position in the log.

Each handler runs inside the group's batch transaction: its database writes, and any
job it enqueues, commit together with the group's new position. A `consume` killed
mid-batch rolls all of it back, and the events are delivered again: the counter is
never incremented twice, the notification never enqueued twice.
"""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

import eventjobs

from . import search
from .models import ActivityEntry, PublishedCount
from .tasks import notify_subscribers


# -- post-counter: each author's number of published posts (the seeds' total_blogs++) -------
def _count(author_id: int, delta: int) -> None:
    # UPDATE blog_publishedcount SET published = published + 1 WHERE author_id = ...
    changed = PublishedCount.objects.filter(author_id=author_id).update(
        published=F("published") + delta)
    if not changed:  # the author's first event: make the row, then count
        PublishedCount.objects.get_or_create(author_id=author_id)
        PublishedCount.objects.filter(author_id=author_id).update(
            published=F("published") + delta)


@eventjobs.consumer("post-counter", types=["post.published", "post.unpublished"])
def count_published(event) -> None:
    _count(event.data["author_id"], 1 if event.type == "post.published" else -1)


@eventjobs.consumer("post-counter", types="post.deleted")
def count_deleted(event) -> None:
    if event.data["was_published"]:
        _count(event.data["author_id"], -1)


# -- search-index: the full-text index behind /search/ -----------------------------------------
@eventjobs.consumer("search-index", types="post.*")
def index_post(event) -> None:
    data = event.data
    who = {"post_id": data["post_id"], "version": data["version"],
           "author_id": data["author_id"], "author_name": data["author_name"],
           "title": data["title"]}
    if event.type == "post.published" or (event.type == "post.updated" and data["published"]):
        search.apply(**who, visible=True, body=data["body"])
    elif event.type in ("post.updated", "post.unpublished", "post.deleted"):
        search.hide(**who)


# -- activity: the public feed at /activity/, built from the whole log --------------------------
def _is_public(event) -> bool:
    data = event.data
    if event.type == "post.updated":
        return bool(data.get("published"))
    if event.type == "post.deleted":
        return bool(data.get("was_published"))
    return event.type in ("post.published", "post.unpublished")


@eventjobs.consumer("activity", types="post.*")
def record_activity(event) -> None:
    if not _is_public(event):
        return  # drafts are private
    data = event.data
    # Keyed by the event id: a replay rewrites the same line (and renews applied_at).
    ActivityEntry.objects.update_or_create(event_id=event.id, defaults={
        "event_txid": event.txid, "event_type": event.type, "post_id": data["post_id"],
        "author_id": data["author_id"], "author_name": data["author_name"],
        "title": data["title"], "happened_at": event.created_at,
        "applied_at": timezone.now()})


# -- notifications: an event turned into a job, in the same transaction -----------------------
@eventjobs.consumer("notifications", types="post.published")
def notify_on_publish(event) -> None:
    data = event.data
    notify_subscribers.enqueue(post_id=data["post_id"], title=data["title"],
                               author_id=data["author_id"], author_name=data["author_name"],
                               event_id=event.id)
