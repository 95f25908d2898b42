"""Settings for the test suite: the demo project plus a test app, with short timings.

Worker and consumer subprocesses started by tests use these settings too; tests pass
timings through environment variables so each test can choose its own.
"""

import os

from demo_blog.settings import *  # noqa: F403
from demo_blog.settings import INSTALLED_APPS, env

DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/eventjobs")}
DATABASES["default"]["CONN_MAX_AGE"] = None
# One test database per pytest run, so parallel runs on one server do not collide.
DATABASES["default"]["TEST"] = {
    "NAME": os.environ.get("EVENTJOBS_TEST_DB", f"test_eventjobs_{os.getpid()}")
}

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]


def _float(name, default):
    value = os.environ.get(name)
    return float(value) if value else default


TASKS = {
    "default": {
        "BACKEND": "eventjobs.backends.PostgresBackend",
        "QUEUES": ["default", "other"],
        "OPTIONS": {
            "LEASE_SECONDS": _float("EVENTJOBS_LEASE_SECONDS", 30),
            "POLL_SECONDS": _float("EVENTJOBS_POLL_SECONDS", 1),
            "SHUTDOWN_GRACE_SECONDS": _float("EVENTJOBS_GRACE_SECONDS", 30),
            "RETRY_BACKOFF_SECONDS": _float("EVENTJOBS_RETRY_BACKOFF_SECONDS", 2),
            "LISTEN": os.environ.get("EVENTJOBS_LISTEN", "1") == "1",
        },
    }
}

LOGGING["loggers"]["eventjobs"]["level"] = "INFO"  # noqa: F405
