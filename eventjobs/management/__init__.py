"""Management-command support shared by the eventjobs commands (base.py)."""

from __future__ import annotations
