"""Jobs in the admin: list, filters, detail (payload, each attempt's error), retry, cancel."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join

import eventjobs
from eventjobs.admin.common import (
    ColumnFilter,
    EventjobsAdmin,
    chunks,
    log_changes,
    pre,
    report,
    time_column,
)
from eventjobs.jobs.monitoring import configured_queues
from eventjobs.jobs.statuses import WAITING
from eventjobs.models import Job, JobStatus

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from django.http import HttpResponseRedirect
    from django.utils.safestring import SafeString

RECENT_FOR_CHOICES = 10_000  # the task filter lists the tasks of this many newest jobs


class StatusFilter(admin.SimpleListFilter):
    """Django's four statuses; READY includes jobs waiting for their time, a retry or room
    under a limit."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin
                ) -> list[tuple[str, str]]:
        return [(s, s) for s in ("READY", "RUNNING", "SUCCESSFUL", "FAILED")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "READY":
            return queryset.filter(status__in=WAITING)
        if self.value() in ("RUNNING", "SUCCESSFUL", "FAILED"):
            return queryset.filter(status=self.value())
        return queryset


class QueueFilter(ColumnFilter):
    """The configured queues (read from settings, not from the table)."""

    title = "queue"
    parameter_name = column = "queue"

    def offered(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> set[str]:
        return configured_queues()


class TaskFilter(ColumnFilter):
    """Tasks of recent jobs and of every FAILED job (search finds any task path)."""

    title = "task"
    parameter_name = "task"
    column = "task_path"

    def offered(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> set[str]:
        jobs = model_admin.get_queryset(request).order_by()
        # Both arms read an index: the newest ids, and the FAILED partial index.
        recent = jobs.order_by("-id").values_list("task_path")[:RECENT_FOR_CHOICES]
        failed = jobs.filter(status=JobStatus.FAILED).values_list("task_path")
        return {path for (path,) in recent.union(failed)}


def status_text(job: Job) -> str:
    """'READY', or 'READY (retry at 12:00:05)' / 'READY (runs at …)' while not due, or
    'READY (waiting for its concurrency limit)'."""
    status = job.display_status
    if job.status == JobStatus.LIMITED:
        limit = "concurrency" if job.concurrency else "rate"
        return f"{status} (waiting under its {limit} limit)"
    if job.status == JobStatus.SCHEDULED:
        at = timezone.localtime(job.run_after).strftime("%Y-%m-%d %H:%M:%S")
        return f"{status} ({'retry' if job.attempt else 'runs'} at {at})"
    return status


def duration_text(job: Job) -> str:
    """How long the latest attempt ran (or has been running)."""
    start = job.last_attempted_at
    if start is None or job.status in (JobStatus.READY, JobStatus.SCHEDULED):
        return "—"
    end = job.finished_at if job.status != JobStatus.RUNNING else timezone.now()
    if end is None:
        return "—"
    return _seconds(max(timedelta(0), end - start).total_seconds())


def _seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


# concurrency: a LIMITED job's status text names its kind of limit (status_text).
LIST_COLUMNS = ("id", "task_path", "queue", "status", "priority", "attempt", "max_attempts",
                "run_after", "enqueued_at", "started_at", "last_attempted_at", "finished_at",
                "concurrency")


@admin.register(Job)
class JobAdmin(EventjobsAdmin):
    list_display = ("id", "task", "queue", "status_label", "priority", "attempts",
                    "enqueued_short", "started_short", "finished_short", "duration")
    list_display_links = ("id", "task")
    list_filter = (StatusFilter, QueueFilter, TaskFilter)
    search_fields = ("task_path",)
    search_help_text = "A job id, or part of a task path."
    ordering = ("-id",)
    actions = ["retry_jobs", "cancel_jobs", "delete_selected"]
    fieldsets = [  # what went wrong first: the errors come right after the summary
        (None, {"fields": ("id", "task_path", "queue", "status_label", "priority", "attempts",
                           "backend")}),
        ("Errors, newest first (one per failed attempt)", {"fields": ("errors_text",)}),
        ("Payload", {"fields": ("args_text", "kwargs_text", "return_value_text")}),
        ("When", {"fields": ("enqueued", "runs_after", "started", "last_attempt_started",
                             "finished", "duration")}),
        ("Worker and lease", {"fields": ("worker_list", "lease_until", "lease_token",
                                         "options")}),
        ("Limits, uniqueness and snoozes", {"fields": ("limits", "unique_key", "snoozes_text"),
                                            "classes": ["collapse"]}),
    ]
    readonly_fields = ("status_label", "attempts", "enqueued", "runs_after", "started",
                       "last_attempt_started", "finished", "duration", "lease_until",
                       "worker_list", "options",
                       "args_text", "kwargs_text", "return_value_text", "errors_text",
                       "limits", "snoozes_text")

    @admin.display(description="limits")
    def limits(self, job: Job) -> str:
        parts = []
        if job.concurrency:
            parts.append(f"at most {job.concurrency} at once")
        if job.rate_count:
            parts.append(f"at most {job.rate_count} starts per {job.rate_window:g}s")
        if not parts:
            return "—"
        return f"{', '.join(parts)}, counted per {job.limit_key}"

    @admin.display(description="snoozes (no attempt charged)")
    def snoozes_text(self, job: Job) -> str:
        return pre(job.snoozes) if job.snoozes else "—"

    # -- permissions: jobs are written by the API and workers, never edited by hand ---------
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("eventjobs.retry_job")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("eventjobs.cancel_job")

    # -- list ---------------------------------------------------------------------------------
    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        queryset = super().get_queryset(request)
        match = request.resolver_match
        if match and (match.url_name or "").endswith("changelist"):
            # The list never shows payloads or tracebacks: leave them in the table.
            queryset = queryset.only(*LIST_COLUMNS)
        return queryset

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Job],
                           search_term: str) -> tuple[QuerySet[Job], bool]:
        term = search_term.strip()
        if term.isdigit():
            return queryset.filter(id=int(term)), False
        if term.startswith("#") and term[1:].isdigit():
            return queryset.filter(id=int(term[1:])), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="task", ordering="task_path")
    def task(self, job: Job) -> str:
        return job.task_path

    @admin.display(description="status", ordering="status")
    def status_label(self, job: Job) -> str:
        return format_html('<span class="eventjobs-status eventjobs-status-{}">{}</span>',
                           job.display_status.lower(), status_text(job))

    @admin.display(description="attempts")
    def attempts(self, job: Job) -> str:
        return f"{job.attempt} of {job.max_attempts}"

    enqueued = time_column("enqueued_at", "enqueued")
    started = time_column("started_at", "started (first attempt)")
    finished = time_column("finished_at", "finished")
    enqueued_short = time_column("enqueued_at", "enqueued", short=True)
    started_short = time_column("started_at", "started", short=True)
    finished_short = time_column("finished_at", "finished", short=True)
    runs_after = time_column("run_after", "run after")
    last_attempt_started = time_column("last_attempted_at", "latest attempt started")
    lease_until = time_column("lease_expires_at", "lease until")

    @admin.display(description="duration (latest attempt)")
    def duration(self, job: Job) -> str:
        return duration_text(job)

    # -- detail -------------------------------------------------------------------------------
    @admin.display(description="worker ids (one per attempt)")
    def worker_list(self, job: Job) -> str:
        return pre("\n".join(f"attempt {i}: {w}" for i, w in enumerate(job.worker_ids, 1))
                   or "none yet")

    @admin.display(description="options")
    def options(self, job: Job) -> str:
        timeout = f"{job.timeout:g} s" if job.timeout else "none"
        return (f"max attempts {job.max_attempts}, retry backoff {job.retry_backoff:g} s, "
                f"timeout {timeout}")

    @admin.display(description="args")
    def args_text(self, job: Job) -> str:
        return pre(job.args)

    @admin.display(description="kwargs")
    def kwargs_text(self, job: Job) -> str:
        return pre(job.kwargs)

    @admin.display(description="return value")
    def return_value_text(self, job: Job) -> str:
        return pre(job.return_value) if job.status == JobStatus.SUCCESSFUL else "—"

    @admin.display(description="errors")
    def errors_text(self, job: Job) -> str:
        if not job.errors:
            return "none"
        return format_html_join("", "{}", ((error_block(e),) for e in reversed(job.errors)))

    def detail_actions(self, request: HttpRequest, job: Job) -> list[tuple[str, str]]:
        offered = []
        if job.status == JobStatus.FAILED and self.has_retry_permission(request):
            offered.append(("retry_jobs", "Retry this job"))
        # Every status cancel_waiting cancels: not started, whether due, not yet due or
        # waiting under a limit.
        if (job.status in (JobStatus.READY, JobStatus.SCHEDULED, JobStatus.LIMITED)
                and self.has_cancel_permission(request)):
            offered.append(("cancel_jobs", "Cancel this job"))
        return offered

    # -- actions ------------------------------------------------------------------------------
    @admin.action(description="Retry selected FAILED jobs (one more attempt each)",
                  permissions=["retry"])
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[Job]
                   ) -> HttpResponseRedirect | None:
        done, skipped = self._apply(request, queryset, eventjobs.retry_job,
                                    "Retried by hand (a new attempt)")
        report(self, request, done, skipped, "Retried", ("job", "jobs"),
               "only FAILED jobs can be retried (already retried, or not failed)")
        return self.back(request)

    @admin.action(description="Cancel selected jobs that have not started",
                  permissions=["cancel"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]
                    ) -> HttpResponseRedirect | None:
        def cancel(*ids: int, backend: str) -> list[str]:
            return eventjobs.cancel_job(*ids, backend=backend,
                                        reason=f"cancelled in the admin by {request.user}")

        done, skipped = self._apply(request, queryset, cancel, "Cancelled by hand")
        report(self, request, done, skipped, "Cancelled", ("job", "jobs"),
               "a job that is running or finished cannot be cancelled")
        return self.back(request)

    def _apply(self, request: HttpRequest, queryset: QuerySet[Job],
               operation: Callable[..., list[str]], message: str) -> tuple[int, int]:
        """Run `operation(*ids, backend=)` per backend; log the jobs it changed."""
        by_backend: dict[str, list[int]] = defaultdict(list)
        for job_id, backend in queryset.order_by().values_list("id", "backend"):
            by_backend[backend].append(job_id)
        changed: list[int] = []
        for backend, ids in by_backend.items():
            try:
                for part in chunks(ids):
                    changed += [int(i) for i in operation(*part, backend=backend)]
            except (ImproperlyConfigured, TypeError) as exc:  # a backend since removed
                self.message_user(request, f"{len(ids)} job(s) of task backend {backend!r} "
                                  f"left alone: {exc}", messages.ERROR)
        for part in chunks(changed):
            log_changes(request, Job.objects.using(queryset.db).filter(id__in=part)
                        .only("id", "task_path", "status", "run_after", "attempt"), message)
        total = sum(len(ids) for ids in by_backend.values())
        return len(changed), total - len(changed)


def error_block(error: dict[str, Any]) -> SafeString:
    """One attempt's error: class, message, where and when, and the traceback as text."""
    heading = (f"attempt {error.get('attempt', '?')}: {error.get('exception_class_path', '?')}"
               + (f": {error['message']}" if error.get("message") else ""))
    where = ", ".join(str(p) for p in (error.get("worker_id"), error.get("at")) if p)
    return format_html('<div class="eventjobs-error"><strong>{}</strong>{}{}</div>', heading,
                       format_html(' <span class="quiet">({})</span>', where) if where else "",
                       pre(error.get("traceback", ""), "eventjobs-traceback"))
