"""Parsing of human durations for command-line options ("30d", "12h", "90m", "45s")."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """'30d' -> timedelta(days=30); raises argparse.ArgumentTypeError with an example."""
    match = _PATTERN.match(text or "")
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; use a number and a unit s, m, h, d or w (e.g. 7d, 12h)")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
