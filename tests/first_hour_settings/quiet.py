"""tests.settings without LOGGING: a new project that configured no logger."""

from tests.settings import *  # noqa: F403

LOGGING = {}
