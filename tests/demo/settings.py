"""Settings for the demo blog's tests: the demo's own settings, a per-run test database
and short timings. `consume` and `runworker` subprocesses started by the tests use them
too (DATABASE_URL then names the test database)."""

from __future__ import annotations

import os

from demo_blog.settings import *  # noqa: F403
from demo_blog.settings import DATABASES, TASKS

# One test database per pytest run (the pattern of tests/settings.py).
DATABASES["default"]["TEST"] = {
    "NAME": os.environ.get("EVENTJOBS_TEST_DB", f"test_eventjobs_demo_{os.getpid()}")
}

EVENTJOBS = {"PARTITIONS": 2, "CONSUMER_LEASE_SECONDS": 5, "CONSUMER_POLL_SECONDS": 0.2,
             "HELD_BACK_AFTER_SECONDS": 0.5, "SHUTDOWN_GRACE_SECONDS": 10}
TASKS["default"]["OPTIONS"] = {"POLL_SECONDS": 0.2, "LEASE_SECONDS": 10,
                               "SHUTDOWN_GRACE_SECONDS": 10, "RETRY_BACKOFF_SECONDS": 0.2}
DEMO_REBUILD_PAUSE_SECONDS = float(os.environ.get("DEMO_REBUILD_PAUSE_SECONDS", "0"))
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
