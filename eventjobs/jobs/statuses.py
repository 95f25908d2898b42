"""The statuses a job row can have (no models here: the runtime imports it before, or
without, Django's app registry)."""

from __future__ import annotations

from django.db import models


class JobStatus(models.TextChoices):
    """Django's four task statuses, plus two internal kinds of READY shown as READY:
    SCHEDULED (not due yet) and LIMITED (due, waiting for room under its task's
    `concurrency=` or `rate_limit=`).

    Both keep their jobs out of the claim index (200k future jobs slowed each claim 150x
    when they shared it), so the plain claim never looks at limits or schedules.
    """

    SCHEDULED = "SCHEDULED", "Scheduled"
    LIMITED = "LIMITED", "Limited"
    READY = "READY", "Ready"
    RUNNING = "RUNNING", "Running"
    SUCCESSFUL = "SUCCESSFUL", "Successful"
    FAILED = "FAILED", "Failed"


# Every status Django sees as READY: a job not started yet (the jobs that can be cancelled).
WAITING = (JobStatus.READY, JobStatus.SCHEDULED, JobStatus.LIMITED)
