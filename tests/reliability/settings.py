"""Settings of the processes the reliability scenarios start: the test settings with
timings from the environment (tests/testapp/eventsettings.py reads EVENTJOBS_* for the
event half, tests/settings.py for the job half)."""

from __future__ import annotations

from tests.testapp.eventsettings import *  # noqa: F403
