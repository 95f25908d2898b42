"""Settings for the eventjobs demo blog; everything environment-specific comes from env vars.

`demo_blog/run.py` (what `make demo` runs) sets DATABASE_URL; the defaults below suit a
PostgreSQL on this machine.
"""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env(
    DEBUG=(bool, True),
    SECRET_KEY=(str, "demo-only-not-secret"),
    DATABASE_URL=(str, "postgres://postgres@127.0.0.1:5432/eventjobs_demo"),
)

DEBUG = env("DEBUG")
SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",  # full-text search for the search-index group
    "eventjobs",
    "demo_blog.blog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "demo_blog.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {"default": env.db("DATABASE_URL")}
# Workers keep their connection; the web side may use the same default.
DATABASES["default"]["CONN_MAX_AGE"] = None

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# The "notify subscribers" job sends through Django's email backend: the console here, so
# the emails appear in the `runworker` output of `make demo`.
MAILERS = {"default": {"BACKEND": env("DEMO_MAIL_BACKEND",
                                      default="django.core.mail.backends.console.EmailBackend")}}
DEFAULT_FROM_EMAIL = "blog@demo.invalid"

TASKS = {
    "default": {
        "BACKEND": "eventjobs.backends.PostgresBackend",
        "QUEUES": ["default", "emails"],
        "OPTIONS": {},
    }
}

# A small blog: two partitions per consumer group are plenty.
EVENTJOBS = {"PARTITIONS": 2}

# The search-index rebuild job pauses this long after each post, so its progress can be
# watched on its page (a real rebuild would not wait).
DEMO_REBUILD_PAUSE_SECONDS = env.float("DEMO_REBUILD_PAUSE_SECONDS", default=0.4)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "eventjobs": {"handlers": ["console"], "level": env("EVENTJOBS_LOG_LEVEL", default="INFO")},
        "demo_blog": {"handlers": ["console"], "level": "INFO"},
    },
}
