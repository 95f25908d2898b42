"""The blog's tables in the admin, read-only: posts change through the blog's pages,
which publish an event with every change (an edit here would bypass the log), and the
other tables belong to the consumer groups that build them from the log."""

from __future__ import annotations

from django.contrib import admin

from .models import ActivityEntry, Author, IndexRebuild, Post, PublishedCount, SearchEntry


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    list_display = ["name", "user"]


@admin.register(Post)
class PostAdmin(ReadOnly):
    list_display = ["title", "author", "status", "version", "published_at"]
    list_filter = ["status"]


@admin.register(PublishedCount)
class PublishedCountAdmin(ReadOnly):
    list_display = ["author", "published"]


@admin.register(SearchEntry)
class SearchEntryAdmin(ReadOnly):
    list_display = ["post_id", "title", "version", "visible"]
    list_filter = ["visible"]
    exclude = ["vector"]


@admin.register(ActivityEntry)
class ActivityEntryAdmin(ReadOnly):
    list_display = ["event_id", "event_type", "author_name", "title", "happened_at",
                    "applied_at"]


@admin.register(IndexRebuild)
class IndexRebuildAdmin(ReadOnly):
    list_display = ["pk", "job_id", "done", "total", "started_at", "finished_at"]
