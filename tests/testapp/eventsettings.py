"""tests.settings plus EVENTJOBS timings from the environment, for `consume` subprocesses
started by the event tests (each test picks its own)."""

import os

from tests.settings import *  # noqa: F403


def _env(name, default, cast=float):
    value = os.environ.get(name)
    return cast(value) if value else default


EVENTJOBS = {
    "PARTITIONS": _env("EVENTJOBS_PARTITIONS", 4, int),
    "CONSUMER_LEASE_SECONDS": _env("EVENTJOBS_CONSUMER_LEASE_SECONDS", 3.0),
    "CONSUMER_POLL_SECONDS": _env("EVENTJOBS_CONSUMER_POLL_SECONDS", 0.2),
    "BATCH_SIZE": _env("EVENTJOBS_BATCH_SIZE", 200, int),
    "LISTEN": os.environ.get("EVENTJOBS_LISTEN", "1") == "1",
    "SHUTDOWN_GRACE_SECONDS": _env("EVENTJOBS_GRACE_SECONDS", 10.0),
    "HANDLER_TIMEOUT_SECONDS": _env("EVENTJOBS_HANDLER_TIMEOUT_SECONDS", 300.0),
}

# Server settings for the consumer's own Django connection (e.g. "-c
# idle_in_transaction_session_timeout=1000"), for tests where the server kills a batch.
if os.environ.get("EVENTJOBS_TEST_PG_OPTIONS"):
    DATABASES["default"]["OPTIONS"] = {  # noqa: F405
        **DATABASES["default"].get("OPTIONS", {}),  # noqa: F405
        "options": os.environ["EVENTJOBS_TEST_PG_OPTIONS"],
    }
