"""The blog's pages through Django's test client: forms, who may change what, and the
pages that read the consumer groups' tables."""

from __future__ import annotations

import pytest

from demo_blog.blog.models import Post, PostStatus
from eventjobs.models import Event
from tests.demo.factories import PASSWORD, AuthorFactory, PostFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_new_post_form_has_title_body_publish_and_save_draft(client):
    author = AuthorFactory()
    assert client.get("/posts/new/").status_code == 302  # log in first
    assert client.login(username=author.user.username, password=PASSWORD)
    page = client.get("/posts/new/").text
    for text in (">Title</label>", ">Body</label>", ">Publish</button>", ">Save draft</button>"):
        assert text in page


def test_publishing_from_the_form_writes_the_post_and_its_event_together(client):
    author = AuthorFactory()
    client.force_login(author.user)
    response = client.post("/posts/new/", {"title": "Hi", "body": "There", "action": "publish"})
    post = Post.objects.get()
    assert response.url == f"/posts/{post.pk}/" and post.status == PostStatus.PUBLISHED
    event = Event.objects.get()
    assert (event.type, event.key) == ("post.published", str(post.pk))
    assert event.data == {"post_id": post.pk, "version": 1, "author_id": author.pk,
                          "author_name": author.name, "title": "Hi", "body": "There"}

    client.post("/posts/new/", {"title": "Later", "body": "Maybe", "action": "draft"})
    draft = Post.objects.get(title="Later")
    assert draft.status == PostStatus.DRAFT
    assert Event.objects.filter(type="post.updated", data__published=False).count() == 1


def test_only_the_author_sees_the_edit_unpublish_delete_buttons_and_drafts(client):
    post = PostFactory(published=True)
    draft = PostFactory(author=post.author)
    other = AuthorFactory()
    client.force_login(other.user)
    page = client.get(f"/posts/{post.pk}/").text
    assert "Unpublish" not in page and "Delete" not in page
    assert client.get(f"/posts/{draft.pk}/").status_code == 404
    assert client.post(f"/posts/{post.pk}/delete/").status_code == 404
    assert client.post(f"/posts/{post.pk}/unpublish/").status_code == 404
    assert Post.objects.filter(pk=post.pk, status=PostStatus.PUBLISHED).exists()

    client.force_login(post.author.user)
    page = client.get(f"/posts/{post.pk}/").text
    assert "Edit" in page and "Unpublish" in page and "Delete" in page
    assert client.get(f"/posts/{draft.pk}/").status_code == 200


def test_edit_unpublish_and_delete_publish_their_events(client):
    author = AuthorFactory()
    client.force_login(author.user)
    client.post("/posts/new/", {"title": "A", "body": "B", "action": "publish"})
    post = Post.objects.get()
    client.post(f"/posts/{post.pk}/edit/", {"title": "A2", "body": "B2", "action": "save"})
    client.post(f"/posts/{post.pk}/unpublish/")
    assert "Delete “A2”?" in client.get(f"/posts/{post.pk}/delete/").text
    response = client.post(f"/posts/{post.pk}/delete/")
    assert response.url == f"/authors/{author.pk}/"
    assert not Post.objects.exists()
    assert list(Event.objects.order_by("id").values_list("type", "data__version")) == [
        ("post.published", 1), ("post.updated", 2), ("post.unpublished", 3),
        ("post.deleted", 4)]


def test_author_page_reads_the_count_from_the_counter(client, consume_all):
    from demo_blog.blog import services

    author = AuthorFactory()
    services.create_post(author, "One", "1", publish=True)
    assert "0 published posts" in client.get(f"/authors/{author.pk}/").text  # not counted yet
    consume_all("post-counter")
    assert "1 published post<" in client.get(f"/authors/{author.pk}/").text
    services.create_post(author, "Two", "2", publish=True)
    consume_all("post-counter")
    assert "2 published posts" in client.get(f"/authors/{author.pk}/").text


def test_search_activity_and_how_it_works_pages(client, consume_all):
    from demo_blog.blog import services

    author = AuthorFactory(name="Hopper")
    services.create_post(author, "Cobol forever", "Business-oriented.", publish=True)
    consume_all()
    page = client.get("/search/", {"q": "cobol"}).text
    assert "1 result for" in page and "<mark>Cobol</mark> forever" in page
    assert "Hopper" in client.get("/activity/").text
    page = client.get("/how-it-works/").text
    for text in ("post-counter", "search-index", "activity", "notifications",
                 "post.published", "notify_subscribers", "/admin/eventjobs/"):
        assert text in page
    assert client.get("/how-it-works/", {"fragment": "1"}).text.lstrip().startswith("<h2>")


def test_the_admin_shows_the_blog_read_only(admin_client):
    post = PostFactory(published=True)
    for url in ("/admin/blog/post/", "/admin/blog/publishedcount/", "/admin/blog/searchentry/",
                "/admin/blog/activityentry/", "/admin/blog/indexrebuild/"):
        assert admin_client.get(url).status_code == 200, url
    assert admin_client.get("/admin/blog/post/add/").status_code == 403
    page = admin_client.get(f"/admin/blog/post/{post.pk}/change/").text
    assert 'name="_save"' not in page  # viewing only: changes go through the blog


def test_a_user_without_an_author_profile_can_browse_and_write(admin_client):
    assert "Log out" in admin_client.get("/").text
    response = admin_client.post("/posts/new/", {"title": "From the admin", "body": "Hi",
                                                 "action": "publish"})
    post = Post.objects.get()
    assert response.url == f"/posts/{post.pk}/" and post.author.name == "admin"
