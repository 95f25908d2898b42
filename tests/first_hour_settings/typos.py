"""Misspelt keys in a TASKS entry, in OPTIONS and in EVENTJOBS, and EVENTJOBS["LISTEN"] off."""

from tests.first_hour_settings.quiet import *  # noqa: F403

TASKS = {"default": {"BACKEND": "eventjobs.backends.PostgresBackend", "QUEUE": ["emails"],
                     "OPTIONS": {"LEASE_SECOND": 5}},
         "reports": {"BACKEND": "eventjobs.backends.PostgresBackend", "OPTION": {},
                     "DATABASE": "default"}}  # DATABASE: a key of eventjobs' own, no typo
EVENTJOBS = {"PARTITION": 4, "LISTEN": False}
