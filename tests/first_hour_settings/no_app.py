"""The eventjobs backend in TASKS, but "eventjobs" missing from INSTALLED_APPS."""

from tests.first_hour_settings.quiet import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "eventjobs"]
