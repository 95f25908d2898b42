"""post-counter: each author's published posts, counted from the events, exactly once."""

from __future__ import annotations

import signal

import pytest
from django.db import connection, transaction

from demo_blog.blog import services
from demo_blog.blog.models import PublishedCount
from tests.conftest import wait_until
from tests.demo.factories import AuthorFactory

pytestmark = pytest.mark.django_db(transaction=True)


def count(author) -> int:
    return PublishedCount.objects.filter(author=author).values_list("published",
                                                                    flat=True).first() or 0


def test_publish_unpublish_republish_and_delete_keep_the_count_right(consume_all):
    alice, bob = AuthorFactory(), AuthorFactory()
    first = services.create_post(alice, "One", "first", publish=True)
    services.create_post(alice, "Two", "second", publish=True)
    draft = services.create_post(alice, "Draft", "not yet", publish=False)
    services.create_post(bob, "Bob's", "hello", publish=True)
    consume_all("post-counter")
    assert (count(alice), count(bob)) == (2, 1)

    services.unpublish_post(first)
    services.edit_post(draft, "Draft", "still not")  # an edit of a draft counts nothing
    consume_all("post-counter")
    assert count(alice) == 1

    services.publish_post(first)
    services.publish_post(draft)
    consume_all("post-counter")
    assert count(alice) == 3

    services.delete_post(draft)  # was published: one fewer
    services.unpublish_post(first)
    services.delete_post(first)  # a draft by then: no change for the delete
    consume_all("post-counter")
    assert (count(alice), count(bob)) == (1, 1)


def test_a_rolled_back_change_publishes_nothing_to_count(consume_all):
    author = AuthorFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.create_post(author, "Never", "rolled back", publish=True)
        raise RuntimeError("the request failed after publishing")
    services.create_post(author, "Kept", "committed", publish=True)
    consume_all("post-counter")
    assert count(author) == 1


def _total() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(published), 0) FROM blog_publishedcount")
        return cursor.fetchone()[0]


def test_a_consume_killed_mid_stream_never_double_counts(spawn):
    """SIGKILL `consume` while it works through a long stream of publications, start
    another: events of the killed batch are delivered again, yet every count is exact,
    because each count and the group's position commit in the same transaction."""
    authors = AuthorFactory.create_batch(3)
    per_author = {a.pk: 0 for a in authors}
    with transaction.atomic():  # 1500 publications, committed before consume starts
        for n in range(1500):
            author = authors[n % 3]
            services.create_post(author, f"Post {n}", "body", publish=True)
            per_author[author.pk] += 1
    env = {"DJANGO_SETTINGS_MODULE": "tests.demo.settings"}
    first = spawn("consume", "post-counter", env=env)
    wait_until(lambda: _total() > 0, timeout=60, interval=0.01,
               message="the first consume to count some posts")
    first.signal(signal.SIGKILL)
    first.wait(timeout=10)
    counted_when_killed = _total()
    assert 0 < counted_when_killed < 1500, "the kill must land mid-stream"

    spawn("consume", "post-counter", env=env)
    wait_until(lambda: _total() >= 1500, timeout=90, message="the restarted consume to finish")
    wait_until(lambda: "lag 0" in _lag_words(), timeout=30, message="lag 0")
    assert _total() == 1500
    assert {c.author_id: c.published for c in PublishedCount.objects.all()} == per_author


def _lag_words() -> str:
    from demo_blog.blog.status import group_status

    return f"lag {group_status('post-counter')['lag']}"
