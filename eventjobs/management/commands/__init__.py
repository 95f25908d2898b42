"""The eventjobs management commands, one module per command."""

from __future__ import annotations
