"""The statuses a job row can have (no models here: the runtime imports it before, or
without, Django's app registry)."""

from __future__ import annotations

from django.db import models


class JobStatus(models.TextChoices):
    """Django's four task statuses, plus SCHEDULED: a READY job that is not due yet.

    SCHEDULED keeps future-dated jobs out of the claim index (200k of them slowed each
    claim 150x when they shared it). It is shown to users as READY.
    """

    SCHEDULED = "SCHEDULED", "Scheduled"
    READY = "READY", "Ready"
    RUNNING = "RUNNING", "Running"
    SUCCESSFUL = "SUCCESSFUL", "Successful"
    FAILED = "FAILED", "Failed"
