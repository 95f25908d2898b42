"""manage.py seed_demo: a few authors, subscribers and posts, and a demo admin login.

Seeds only an empty blog, so running `make demo` again reuses what exists. Posts are
written through the same services as the web pages, so the seeds are events too.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from demo_blog.blog import services
from demo_blog.blog.models import Author, Subscriber

PASSWORD = "demo-password"
ADMIN = ("admin", "admin")

AUTHORS = [
    ("alice", "Alice Moreau", "Writes about databases and the systems built on them."),
    ("bob", "Bob Okafor", "Ships Django apps; left Celery last spring."),
    ("carol", "Carol Lindqvist", "Search, ranking, and other ways to find things."),
]

POSTS = [
    ("alice", "Counting things exactly once",
     "A counter that is incremented by a consumer can count twice when the consumer "
     "crashes after the increment and before it records its position. Commit both in "
     "one transaction and the problem disappears."),
    ("alice", "Why the log is append-only",
     "An event says what happened. It is never changed afterwards: a correction is a new "
     "event. That is what lets a new reader build its own view from the whole history."),
    ("bob", "Leaving Celery for the database we already had",
     "We ran Redis only for the queue. Moving the jobs into PostgreSQL gave us jobs that "
     "exist if and only if the transaction that enqueued them commits."),
    ("bob", "Background jobs are a to-do list",
     "A job is work to do once: send the email, resize the image. One worker takes it, "
     "retries it if it fails, and then it is done."),
    ("carol", "Full-text search in PostgreSQL in ten minutes",
     "A tsvector column, a GIN index and websearch_to_tsquery give ranked results with "
     "highlighted snippets, without running a search server."),
    ("carol", "Ranking results with weights",
     "Give the title weight A and the body weight B, and a match in the title ranks first."),
]


class Command(BaseCommand):
    help = ("Seed the demo blog: three authors (password demo-password), their "
            "subscribers, a few posts (published through the event log) and the demo admin "
            "login admin/admin. Does nothing when the blog already has authors.")

    def handle(self, *args, **options):
        User = get_user_model()
        if not User.objects.filter(username=ADMIN[0]).exists():
            User.objects.create_superuser(ADMIN[0], "admin@demo.invalid", ADMIN[1])
            self.stdout.write(f"created the admin login {ADMIN[0]} / {ADMIN[1]}")
        if Author.objects.exists():
            self.stdout.write(f"the blog has {Author.objects.count()} author(s) already; "
                              "nothing seeded")
            return
        with transaction.atomic():  # a half-seeded blog would not be seeded again
            authors = {}
            for username, name, bio in AUTHORS:
                user = User.objects.create_user(username, f"{username}@demo.invalid", PASSWORD)
                authors[username] = Author.objects.create(user=user, name=name, bio=bio)
                for n in range(1, 3):
                    Subscriber.objects.create(author=authors[username],
                                              email=f"reader{n}.{username}@demo.invalid")
            posts = [services.create_post(authors[who], title, body, publish=True)
                     for who, title, body in POSTS]
            # A little history: an edit, a draft, and a post taken down again.
            services.edit_post(posts[0], posts[0].title, posts[0].body +
                               " (Edited: the position is the consumer's bookmark.)")
            services.create_post(authors["bob"], "Notes for a talk (draft)",
                                 "Not ready yet.", publish=False)
            services.unpublish_post(posts[3])
        self.stdout.write(f"seeded {len(AUTHORS)} authors and {len(POSTS) + 1} posts "
                          f"(log in as alice / {PASSWORD})")
