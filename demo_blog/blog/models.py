"""The blog's tables.

Authors, subscribers and posts are what the web pages write. Each of the other tables
belongs to one consumer group and is built only from the event log:
  PublishedCount  <- post-counter   (each author's number of published posts)
  SearchEntry     <- search-index   (the full-text index behind /search/)
  ActivityEntry   <- activity       (the feed at /activity/)
IndexRebuild is the progress of a "rebuild the search index" job.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models.functions import Now
from django.urls import reverse


class Author(models.Model):
    """A person who writes; logs in with the linked Django user."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="author")
    name = models.CharField(max_length=100)
    bio = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("author", args=[self.pk])


class Subscriber(models.Model):
    """Someone who gets an email when the author publishes (the notify job)."""

    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="subscribers")
    email = models.EmailField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["author", "email"],
                                               name="blog_subscriber_once")]

    def __str__(self) -> str:
        return f"{self.email} -> {self.author}"


class PostStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class Post(models.Model):
    """A blog post. `version` goes up at every change, and every event carries it."""

    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="posts")
    title = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=PostStatus.choices,
                              default=PostStatus.DRAFT)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-published_at", "-id"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_published(self) -> bool:
        return self.status == PostStatus.PUBLISHED

    def get_absolute_url(self) -> str:
        return reverse("post", args=[self.pk])


class PublishedCount(models.Model):
    """post-counter's table: an author's published posts, counted from the events."""

    author = models.OneToOneField(Author, on_delete=models.CASCADE, primary_key=True,
                                  related_name="published_count")
    published = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.author_id}: {self.published}"


class SearchEntry(models.Model):
    """search-index's table: the searchable copy of a post, as the events describe it.

    No foreign key to Post: the index may still hold a post the blog has deleted (until
    the post.deleted event arrives), and a deleted post's row stays, invisible, with the
    version of its deletion, so an older event applied late cannot bring it back."""

    post_id = models.BigIntegerField(primary_key=True)
    version = models.PositiveIntegerField()
    visible = models.BooleanField(default=False)
    author_id = models.BigIntegerField()
    author_name = models.CharField(max_length=100)
    title = models.CharField(max_length=200)
    body = models.TextField()
    vector = models.GeneratedField(
        expression=SearchVector("title", weight="A", config="english")
        + SearchVector("body", weight="B", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        indexes = [GinIndex(fields=["vector"], name="blog_search_vector",
                            condition=models.Q(visible=True))]

    def __str__(self) -> str:
        return f"{self.title} (v{self.version}{'' if self.visible else ', hidden'})"


class ActivityEntry(models.Model):
    """activity's table: one line of the public feed per event (its id is the key)."""

    event_id = models.BigIntegerField(primary_key=True)
    event_txid = models.BigIntegerField()
    event_type = models.CharField(max_length=50)
    post_id = models.BigIntegerField()
    author_id = models.BigIntegerField()
    author_name = models.CharField(max_length=100)
    title = models.CharField(max_length=200)
    happened_at = models.DateTimeField()
    # When the activity group (re)built this line: a replay renews it.
    applied_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["-event_txid", "-event_id"]  # the log's order, newest first

    def __str__(self) -> str:
        return f"{self.event_type} {self.title}"


class IndexRebuild(models.Model):
    """Progress of one "rebuild the search index" job; the job updates it as it goes."""

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True)
    job_id = models.CharField(max_length=40, blank=True)
    total = models.IntegerField(default=0)
    done = models.IntegerField(default=0)
    created_at = models.DateTimeField(db_default=Now())
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"rebuild #{self.pk}: {self.done}/{self.total}"

    @property
    def percent(self) -> int:
        return 100 if self.finished_at else (100 * self.done // self.total if self.total else 0)

    def get_absolute_url(self) -> str:
        return reverse("rebuild", args=[self.pk])
