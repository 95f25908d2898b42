"""eventjobs installed, TASKS not set (Django's default ImmediateBackend applies)."""

from tests.first_hour_settings.quiet import *  # noqa: F403

del TASKS  # noqa: F821
