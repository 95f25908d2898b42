"""activity: a group added later builds the feed from the whole history, and a reset
to the beginning rebuilds the same feed."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from demo_blog.blog import services
from demo_blog.blog.models import ActivityEntry
from tests.demo.factories import AuthorFactory

pytestmark = pytest.mark.django_db(transaction=True)


def feed() -> list[tuple]:
    return list(ActivityEntry.objects.values_list("event_id", "event_type", "author_name",
                                                  "title", "happened_at"))


def write_history():
    author = AuthorFactory(name="Grace")
    first = services.create_post(author, "Compilers", "A first post.", publish=True)
    services.create_post(author, "Private notes", "A draft.", publish=False)
    services.edit_post(first, "Compilers, revisited", "Edited.")
    second = services.create_post(author, "Debugging", "Moths.", publish=True)
    services.unpublish_post(second)
    services.delete_post(first)


def test_a_group_added_later_builds_the_feed_from_history(consume_all):
    write_history()  # before the activity group ever ran
    consume_all("activity")
    assert [(kind, title) for _, kind, _, title, _ in reversed(feed())] == [
        ("post.published", "Compilers"),
        ("post.updated", "Compilers, revisited"),
        ("post.published", "Debugging"),
        ("post.unpublished", "Debugging"),
        ("post.deleted", "Compilers, revisited"),
    ]  # oldest first here; drafts are private


def test_reset_to_the_beginning_rebuilds_the_same_feed(consume_all):
    write_history()
    consume_all("activity")
    built = feed()
    first_applied = max(ActivityEntry.objects.values_list("applied_at", flat=True))

    ActivityEntry.objects.all().delete()  # the feed is lost (or its code changed)
    call_command("consumer_group", "reset", "activity", "--to-beginning")
    consume_all("activity")
    assert feed() == built
    assert min(ActivityEntry.objects.values_list("applied_at", flat=True)) > first_applied


def test_replaying_over_an_existing_feed_rewrites_the_same_lines(consume_all):
    write_history()
    consume_all("activity")
    built = feed()
    call_command("consumer_group", "reset", "activity", "--to-beginning")
    consume_all("activity")
    assert feed() == built  # keyed by event id: no line twice


def test_the_replay_button_empties_the_feed_and_replays_the_log(consume_all, client):
    write_history()
    consume_all("activity")
    built = feed()
    author = AuthorFactory()
    client.force_login(author.user)
    response = client.post("/activity/replay/", follow=True)
    assert "5 event(s) to replay" in response.text or "event(s) to replay" in response.text
    assert ActivityEntry.objects.count() == 0
    consume_all("activity")
    assert feed() == built
