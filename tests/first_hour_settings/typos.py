"""Misspelt keys in OPTIONS and EVENTJOBS, and EVENTJOBS["LISTEN"] off."""

from tests.first_hour_settings.quiet import *  # noqa: F403

TASKS = {"default": {"BACKEND": "eventjobs.backends.PostgresBackend",
                     "OPTIONS": {"LEASE_SECOND": 5}}}
EVENTJOBS = {"PARTITION": 4, "LISTEN": False}
