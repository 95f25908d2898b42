"""search-index: publish, update, unpublish, delete, applied in order per post; the newer
version of a post always wins, so a post updated then deleted never reappears."""

from __future__ import annotations

import pytest

from demo_blog.blog import search, services
from demo_blog.blog.consumers import index_post
from demo_blog.blog.models import SearchEntry
from eventjobs.events.log import Event
from eventjobs.models import Event as EventRow
from tests.demo.factories import AuthorFactory

pytestmark = pytest.mark.django_db(transaction=True)


def found(text: str) -> list[int]:
    return [entry.post_id for entry in search.search(text)]


def test_publish_update_unpublish_republish_delete(consume_all):
    author = AuthorFactory(name="Ada")
    post = services.create_post(author, "Walruses of the Arctic", "Tusks and ice floes.",
                                publish=True)
    services.create_post(author, "Penguins", "Ice, but the other pole.", publish=True)
    consume_all("search-index")
    assert found("walrus") == [post.pk]  # stemmed: walrus matches walruses
    assert set(found("ice")) == {post.pk, post.pk + 1}

    services.edit_post(post, "Narwhals of the Arctic", "Tusks and ice floes.")
    consume_all("search-index")
    assert found("walrus") == []
    assert found("narwhal") == [post.pk]

    services.unpublish_post(post)
    consume_all("search-index")
    assert found("narwhal") == []

    services.publish_post(post)
    consume_all("search-index")
    assert found("narwhal") == [post.pk]

    services.delete_post(post)
    consume_all("search-index")
    assert found("narwhal") == [] and found("ice") == [post.pk + 1]


def test_drafts_are_never_searchable(consume_all):
    author = AuthorFactory()
    draft = services.create_post(author, "Secret plans", "Unannounced.", publish=False)
    services.edit_post(draft, "Secret plans, revised", "Still unannounced.")
    consume_all("search-index")
    assert found("secret") == []


def test_ranked_with_highlighted_snippets(consume_all):
    author = AuthorFactory()
    in_title = services.create_post(author, "Kafka alternatives", "Some words here.",
                                    publish=True)
    in_body = services.create_post(author, "Queues", "People leaving Kafka behind.",
                                   publish=True)
    consume_all("search-index")
    results = list(search.search("kafka"))
    assert [r.post_id for r in results] == [in_title.pk, in_body.pk]  # title weighs more
    assert "<mark>Kafka</mark>" in results[1].snippet
    assert "<mark>Kafka</mark>" in results[0].title_marked


def test_updated_then_deleted_before_the_group_runs_never_appears(consume_all):
    author = AuthorFactory()
    post = services.create_post(author, "Ephemeral", "Here today.", publish=True)
    services.edit_post(post, "Ephemeral, edited", "Gone tomorrow.")
    services.delete_post(post)
    consume_all("search-index")
    assert found("ephemeral") == []
    assert SearchEntry.objects.get(post_id=post.pk).visible is False


def _as_event(row: EventRow) -> Event:
    return Event(row.id, row.type, row.key, None, row.source, row.created_at, row.txid,
                 row.key_hash, data=row.data)


def test_an_older_event_applied_late_cannot_bring_a_deleted_post_back(consume_all):
    """As when an update was dead-lettered and is reprocessed after the delete: the
    index keeps the deletion's version and ignores anything older."""
    author = AuthorFactory()
    post = services.create_post(author, "Zombie", "It was published.", publish=True)
    services.edit_post(post, "Zombie rising", "It was edited.")
    services.delete_post(post)
    consume_all("search-index")
    late_update = EventRow.objects.get(type="post.updated", key=str(post.pk))
    index_post(_as_event(late_update))  # handled again, after the delete
    assert found("zombie") == []
    assert SearchEntry.objects.get(post_id=post.pk).version == late_update.data["version"] + 1


def test_a_replay_from_the_beginning_ends_in_the_same_index(consume_all):
    from eventjobs.events import control

    author = AuthorFactory()
    keep = services.create_post(author, "Keeper", "Stays.", publish=True)
    gone = services.create_post(author, "Goner", "Leaves.", publish=True)
    services.edit_post(keep, "Keeper, edited", "Stays, changed.")
    services.delete_post(gone)
    consume_all("search-index")
    before = list(SearchEntry.objects.order_by("post_id").values())
    control.reset("search-index", "beginning")
    consume_all("search-index")
    assert list(SearchEntry.objects.order_by("post_id").values()) == before
    assert found("keeper") == [keep.pk] and found("goner") == []


def test_snippets_escape_what_authors_wrote(consume_all, client):
    author = AuthorFactory()
    services.create_post(author, "<b>Bold</b> kafka",
                         "<script>alert(1)</script> kafka < zookeeper & friends", publish=True)
    consume_all("search-index")
    page = client.get("/search/", {"q": "kafka"}).text
    assert "<script>" not in page and "<b>Bold</b>" not in page
    assert "&lt;b&gt;Bold&lt;/b&gt; <mark>kafka</mark>" in page
    assert "<mark>kafka</mark> &lt; zookeeper &amp; friends" in page
