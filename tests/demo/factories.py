"""factory-boy factories for the demo blog's authors and posts.

They write rows directly, without events: use them for what a test needs to exist
(a logged-in author, someone else's post). To test what the consumer groups build, write
through demo_blog.blog.services, which publishes the events."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone
from factory.django import DjangoModelFactory

from demo_blog.blog.models import Author, Post, PostStatus, Subscriber

PASSWORD = "test-password"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"writer{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.django.Password(PASSWORD)


class AuthorFactory(DjangoModelFactory):
    """An author with a login (password: factories.PASSWORD)."""

    class Meta:
        model = Author

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Writer {n}")
    bio = "Writes tests."


class SubscriberFactory(DjangoModelFactory):
    class Meta:
        model = Subscriber

    author = factory.SubFactory(AuthorFactory)
    email = factory.Sequence(lambda n: f"reader{n}@example.test")


class PostFactory(DjangoModelFactory):
    """A draft; `PostFactory(published=True)` is a published post."""

    class Meta:
        model = Post

    author = factory.SubFactory(AuthorFactory)
    title = factory.Sequence(lambda n: f"Post number {n}")
    body = factory.Faker("paragraph", nb_sentences=4)
    status = PostStatus.DRAFT

    class Params:
        published = factory.Trait(status=PostStatus.PUBLISHED,
                                  published_at=factory.LazyFunction(timezone.now))
