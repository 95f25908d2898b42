"""Job rows (one per enqueued task) and the registry of live worker processes."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

from eventjobs.jobs.statuses import JobStatus

__all__ = ["Job", "JobStatus", "Worker"]




class Job(models.Model):
    """One enqueued task and its whole history (attempts, errors, result)."""

    id = models.BigAutoField(primary_key=True)
    task_path = models.CharField(max_length=500)
    backend = models.CharField(max_length=100, default="default")
    queue = models.CharField(max_length=100, default="default")
    priority = models.SmallIntegerField(default=0)
    takes_context = models.BooleanField(default=False)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.READY)
    run_after = models.DateTimeField(db_default=Now())
    enqueued_at = models.DateTimeField(db_default=Now())
    started_at = models.DateTimeField(null=True, blank=True)
    last_attempted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Effective options, stored so a changed setting never rewrites old jobs' policy.
    max_attempts = models.PositiveIntegerField(default=3)
    retry_backoff = models.FloatField(default=2.0)
    timeout = models.FloatField(null=True, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    worker_ids = models.JSONField(default=list, blank=True)  # one entry per attempt
    errors = models.JSONField(default=list, blank=True)
    return_value = models.JSONField(null=True, blank=True)
    # The lease: who may finish this attempt (fencing token) and until when.
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "eventjobs_job"
        permissions = [("retry_job", "Can retry failed jobs"),
                       ("cancel_job", "Can cancel waiting jobs")]
        indexes = [
            # The claim walks this in order, one queue at a time: only due, unclaimed jobs
            # are in it, and a backlog in one queue costs another queue's claims nothing.
            models.Index(
                fields=["queue", "-priority", "id"],
                name="eventjobs_job_ready_by_queue",
                condition=models.Q(status="READY"),
            ),
            models.Index(
                fields=["run_after"],
                name="eventjobs_job_scheduled",
                condition=models.Q(status="SCHEDULED"),
            ),
            models.Index(
                fields=["lease_expires_at"],
                name="eventjobs_job_leased",
                condition=models.Q(status="RUNNING"),
            ),
            models.Index(
                fields=["finished_at"],
                name="eventjobs_job_finished",
                condition=models.Q(status__in=["SUCCESSFUL", "FAILED"]),
            ),
            # The jobs' dead-letter queue by task, newest first (the admin's filters) and
            # counted by queue (overview, metrics). Partial: claims and finishes of jobs
            # that succeed never write to it.
            models.Index(
                fields=["task_path", "id"],
                name="eventjobs_job_failed",
                condition=models.Q(status="FAILED"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_path} #{self.pk} ({self.display_status})"

    @property
    def display_status(self) -> str:
        """The status as Django's Tasks API names it (SCHEDULED shows as READY)."""
        from eventjobs.jobs.results import display_status

        return display_status(self.status)


class Worker(models.Model):
    """A live `runworker` child process, kept fresh by its heartbeat."""

    id = models.CharField(max_length=200, primary_key=True)
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    queues = models.JSONField(default=list)
    started_at = models.DateTimeField(db_default=Now())
    last_seen = models.DateTimeField(db_default=Now())
    running = models.IntegerField(default=0)

    class Meta:
        db_table = "eventjobs_worker"

    def __str__(self) -> str:
        return self.id
