"""The job half: enqueue, the worker runtime, retries, leases, limits and schedules."""

from __future__ import annotations
