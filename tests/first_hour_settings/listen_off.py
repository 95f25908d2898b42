"""OPTIONS {"LISTEN": False} in a project where nothing imports django.tasks at start-up
(tests.testapp's tasks module is not imported by any app's ready())."""

from tests.first_hour_settings.quiet import *  # noqa: F403

TASKS = {"default": {"BACKEND": "eventjobs.backends.PostgresBackend",
                     "OPTIONS": {"LISTEN": False}}}
