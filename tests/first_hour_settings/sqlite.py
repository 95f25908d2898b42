"""DATABASES pointing at SQLite: eventjobs needs PostgreSQL."""

from tests.first_hour_settings.quiet import *  # noqa: F403

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
