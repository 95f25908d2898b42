"""Job rows (one per enqueued task) and the registry of live worker processes."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

from eventjobs.jobs.statuses import JobStatus

__all__ = ["Job", "JobStatus", "Queue", "RateStart", "Schedule", "Worker"]




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
    # @task(unique=True): sha256 of task path, queue, args and kwargs (see jobs/enqueue.py).
    unique_key = models.CharField(max_length=64, null=True, blank=True)
    # @task(concurrency=, rate_limit=): the key the limits count by and the limits themselves.
    limit_key = models.CharField(max_length=700, null=True, blank=True)
    concurrency = models.PositiveIntegerField(null=True, blank=True)
    rate_count = models.PositiveIntegerField(null=True, blank=True)
    rate_window = models.FloatField(null=True, blank=True)  # seconds
    # One {"at", "seconds", "worker_id"} per `raise eventjobs.Snooze(...)`.
    snoozes = models.JSONField(default=list, db_default=models.Value([], models.JSONField()),
                               blank=True)

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
            # The limit promoter takes a key's waiting jobs in claim order ...
            models.Index(
                fields=["limit_key", "-priority", "id"],
                name="eventjobs_job_limited",
                condition=models.Q(status="LIMITED"),
            ),
            # ... after counting the key's admitted (READY) and running attempts ...
            models.Index(
                fields=["limit_key"],
                name="eventjobs_job_limit_active",
                condition=models.Q(status__in=["READY", "RUNNING"], limit_key__isnull=False),
            ),
            # ... and, for a rate, its jobs' latest starts (their earlier ones: RateStart).
            models.Index(
                fields=["limit_key", "last_attempted_at"],
                name="eventjobs_job_rate_starts",
                condition=models.Q(rate_count__isnull=False),
            ),
            # unique_for=: a job of that key that finished recently.
            models.Index(
                fields=["unique_key", "finished_at"],
                name="eventjobs_job_unique_done",
                condition=models.Q(unique_key__isnull=False),
            ),
        ]
        constraints = [
            # At most one waiting or running job per unique key (ON CONFLICT DO NOTHING).
            # `unique_key IS NOT NULL` keeps plain jobs out of it entirely.
            models.UniqueConstraint(
                fields=["unique_key"],
                name="eventjobs_job_unique_waiting",
                condition=models.Q(status__in=["READY", "SCHEDULED", "LIMITED", "RUNNING"],
                                   unique_key__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_path} #{self.pk} ({self.display_status})"

    @property
    def display_status(self) -> str:
        """The status as Django's Tasks API names it (SCHEDULED shows as READY)."""
        from eventjobs.jobs.results import display_status

        return display_status(self.status)


class RateStart(models.Model):
    """An earlier start of a rate-limited job, kept while it is within the rate's window.

    A job row holds its latest start only (last_attempted_at), which its next claim
    overwrites; a job retried within the window would make its earlier starts forgotten.
    So the promoter (promote_limited in sql/jobs.sql), as it admits a job again, copies
    that start here first: every start counts. Only retries of rate-limited jobs write
    here (never the claim); the promoter and maintenance delete rows past the window.
    """

    # Also the promoter's index: a key's starts in time order. The job id keeps two jobs'
    # starts at the same instant apart, and makes copying one start twice a no-op.
    pk = models.CompositePrimaryKey("limit_key", "started_at", "job_id")
    limit_key = models.CharField(max_length=700)
    started_at = models.DateTimeField()
    job_id = models.BigIntegerField()  # no foreign key: pruning a job leaves this alone

    class Meta:
        db_table = "eventjobs_rate_start"

    def __str__(self) -> str:
        return f"{self.limit_key} started job #{self.job_id} at {self.started_at}"


class Worker(models.Model):
    """A live `runworker` child process, kept fresh by its heartbeat."""

    id = models.CharField(max_length=200, primary_key=True)
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    queues = models.JSONField(default=list)
    started_at = models.DateTimeField(db_default=Now())
    last_seen = models.DateTimeField(db_default=Now())
    running = models.IntegerField(default=0)

    # Not columns: the admin's list attaches what each runs now and whether it is stale.
    jobs_now: list[Job]
    stale: bool

    class Meta:
        db_table = "eventjobs_worker"

    def __str__(self) -> str:
        return self.id


class Schedule(models.Model):
    """One `@eventjobs.periodic` schedule and the last tick enqueued for it.

    `last_tick` is the compare-and-set that makes each tick one job however many
    `runworker` processes run: see eventjobs/jobs/scheduler.py.
    """

    name = models.CharField(max_length=200, primary_key=True)
    task_path = models.CharField(max_length=500)
    spec = models.CharField(max_length=200)  # "cron:*/5 * * * *" or "every:30"
    timezone = models.CharField(max_length=100, default="UTC")
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    last_tick = models.DateTimeField(null=True, blank=True)
    next_tick = models.DateTimeField(null=True, blank=True)
    last_job_id = models.BigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "eventjobs_schedule"

    def __str__(self) -> str:
        return self.name


class Queue(models.Model):
    """A queue's switch: a paused queue's jobs are not claimed (`manage.py queue`)."""

    name = models.CharField(max_length=100, primary_key=True)
    paused = models.BooleanField(default=False)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "eventjobs_queue"
        permissions = [("pause_queue", "Can pause and resume queues")]

    def __str__(self) -> str:
        return f"{self.name} (paused)" if self.paused else self.name
