"""Settings for the test suite: eventjobs plus a test app, with short timings.

Standalone (the demo project is not part of the library). Worker and consumer
subprocesses started by tests use these settings too; tests pass timings through
environment variables so each test can choose its own.
"""

import os

import environ

from tests.server import DEFAULT_URL

env = environ.Env()

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"
ROOT_URLCONF = "tests.urls"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "eventjobs",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]

DATABASES = {"default": env.db("DATABASE_URL", default=DEFAULT_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = None
# One test database per pytest run, so parallel runs on one server do not collide.
DATABASES["default"]["TEST"] = {
    "NAME": os.environ.get("EVENTJOBS_TEST_DB", f"test_eventjobs_{os.getpid()}")
}


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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"eventjobs": {"handlers": ["console"], "level": "INFO"}},
}

# A process that takes this long to set up (tests of runworkers started together: one
# still setting up when the other chooses its share of the CPUs).
if os.environ.get("EVENTJOBS_TEST_SLOW_SETUP"):
    import time

    time.sleep(float(os.environ["EVENTJOBS_TEST_SLOW_SETUP"]))
