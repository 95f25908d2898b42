"""Settings of the small Django project used by the benchmark.

BENCH_SYSTEM selects the task backend under test:
  eventjobs        -> eventjobs.backends.PostgresBackend (+ event log consumers)
  django_tasks_db  -> django_tasks_db.DatabaseBackend (CONN_MAX_AGE=None, see peers-baseline.md)
DATABASE_URL selects the (per-system, fresh) database.
"""

import os
from urllib.parse import unquote, urlparse

BENCH_SYSTEM = os.environ.get("BENCH_SYSTEM", "eventjobs")


def _db_from_url(url: str) -> dict:
    u = urlparse(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(u.path.lstrip("/")),
        "USER": unquote(u.username or "postgres"),
        "PASSWORD": unquote(u.password or ""),
        "HOST": u.hostname or "127.0.0.1",
        "PORT": str(u.port or 5432),
        # Persistent connections for both Django backends (fair to django-tasks-db).
        "CONN_MAX_AGE": None,
    }


SECRET_KEY = "bench-not-secret"
DEBUG = False  # DEBUG=True would keep every query in memory (RSS test)
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "benchproj.urls"

DATABASES = {
    "default": _db_from_url(
        os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_eventjobs")
    )
}

INSTALLED_APPS = ["django.contrib.contenttypes"]
if BENCH_SYSTEM == "eventjobs":
    INSTALLED_APPS += ["eventjobs"]
    TASKS = {
        "default": {
            "BACKEND": "eventjobs.backends.PostgresBackend",
            # "slow" holds the backlog of the latency-while-another-queue-drains row.
            "QUEUES": ["default", "slow"],
            "OPTIONS": {},
        }
    }
elif BENCH_SYSTEM == "django_tasks_db":
    INSTALLED_APPS += ["django_tasks_db"]
    TASKS = {
        "default": {
            "BACKEND": "django_tasks_db.DatabaseBackend",
            "QUEUES": ["default"],
        }
    }
else:
    raise RuntimeError(f"unknown BENCH_SYSTEM={BENCH_SYSTEM!r}")
INSTALLED_APPS += ["benchapp"]

# Warnings and errors to the console, as a production site logs. The handler's own level
# matters: with only the root logger at WARNING, Django's `django.tasks` logger (INFO)
# would still print two lines per job through this handler, for every Django backend.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler", "level": "WARNING"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
