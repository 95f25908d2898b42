"""Invalid values in OPTIONS and EVENTJOBS: reported by `check`, not a crash."""

from tests.first_hour_settings.quiet import *  # noqa: F403

TASKS = {"default": {"BACKEND": "eventjobs.backends.PostgresBackend",
                     "OPTIONS": {"LEASE_SECONDS": -1}}}
EVENTJOBS = {"BATCH_SIZE": "many"}
