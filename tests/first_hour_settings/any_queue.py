"""QUEUES: [] (any queue name accepted), no LOGGING."""

from tests.first_hour_settings.quiet import *  # noqa: F403
from tests.settings import TASKS

TASKS = {"default": {**TASKS["default"], "QUEUES": []}}
