"""Every change to a post, each in one transaction with the event that describes it.

The web views and the seed command call these. `eventjobs.publish` writes the event in
the same transaction as the post: if the change rolls back, the event never existed;
if it commits, every consumer group will see it. Events are keyed by the post's id, so
each group handles one post's events in the order they were published.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

import eventjobs

from .models import Author, Post, PostStatus


def _event_data(post: Post) -> dict:
    """What every post event carries: enough for a consumer to never read the Post table
    (it may have changed since, or be gone, when the event is handled or replayed)."""
    return {"post_id": post.pk, "version": post.version, "author_id": post.author_id,
            "author_name": post.author.name, "title": post.title}


def _publish(event_type: str, post: Post, **extra) -> None:
    eventjobs.publish(event_type, {**_event_data(post), **extra}, key=str(post.pk),
                      source="demo_blog")


def create_post(author: Author, title: str, body: str, *, publish: bool) -> Post:
    """A new post: published at once, or saved as a draft (a draft's events say so)."""
    with transaction.atomic():  # the post and its event commit together
        if publish:
            post = Post.objects.create(author=author, title=title, body=body,
                                       status=PostStatus.PUBLISHED, published_at=timezone.now())
            _publish("post.published", post, body=post.body)
        else:
            post = Post.objects.create(author=author, title=title, body=body)
            _publish("post.updated", post, body=post.body, published=False)
    return post


def edit_post(post: Post, title: str, body: str, *, publish: bool = False) -> Post:
    """Change a post's text; `publish=True` also publishes a draft."""
    with transaction.atomic():  # the change and its event commit together
        post = Post.objects.select_for_update().get(pk=post.pk)  # versions never collide
        post.title, post.body = title, body
        post.version += 1
        post.save()
        _publish("post.updated", post, body=post.body, published=post.is_published)
        if publish and not post.is_published:
            _make_public(post)
    return post


def publish_post(post: Post) -> Post:
    """Publish a draft (a no-op for a post that is already published)."""
    with transaction.atomic():  # the status change and its event commit together
        post = Post.objects.select_for_update().get(pk=post.pk)
        if not post.is_published:
            _make_public(post)
    return post


def unpublish_post(post: Post) -> Post:
    """Take a published post back to draft (a no-op for a draft)."""
    with transaction.atomic():  # the status change and its event commit together
        post = Post.objects.select_for_update().get(pk=post.pk)
        if post.is_published:
            post.status = PostStatus.DRAFT
            post.version += 1
            post.save()
            _publish("post.unpublished", post)
    return post


def delete_post(post: Post) -> None:
    """Delete a post; its event says whether it was published (the counter needs that)."""
    with transaction.atomic():  # the deletion and its event commit together
        post = Post.objects.select_for_update().get(pk=post.pk)
        post.version += 1
        _publish("post.deleted", post, was_published=post.is_published)
        post.delete()


def _make_public(post: Post) -> None:
    post.version += 1
    post.status = PostStatus.PUBLISHED
    post.published_at = post.published_at or timezone.now()
    post.save()
    _publish("post.published", post, body=post.body)
