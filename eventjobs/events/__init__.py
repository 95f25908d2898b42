"""The event half: the log, consumer groups, their runner and the `consume` process."""

from __future__ import annotations
