"""Workers in the admin: `runworker` children (Worker rows) and `consume` members
(GroupMember rows), alive or stale, and what each is running now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from eventjobs.admin.common import EventjobsAdmin, time_column
from eventjobs.liveness import member_stale_before, running_by_worker, worker_stale_before
from eventjobs.models import Cursor, GroupMember, Worker

if TYPE_CHECKING:
    from django.contrib.admin.views.main import ChangeList
    from django.db.models import QuerySet
    from django.http import HttpResponse


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin
                ) -> list[tuple[str, str]]:
        return [("alive", "alive"), ("stale", "stale (not seen for 2 leases)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        cutoff = worker_stale_before()
        if self.value() == "alive":
            return queryset.filter(last_seen__gte=cutoff)
        if self.value() == "stale":
            return queryset.filter(last_seen__lt=cutoff)
        return queryset


def consume_members(alias: str) -> list[dict[str, Any]]:
    """Every consume member with its group, partitions owned and state: two queries."""
    members = list(GroupMember.objects.using(alias).order_by("group_id", "id"))
    owned: dict[str | None, list[int]] = {}
    for owner, partition in (Cursor.objects.using(alias)
                             .filter(owner__in=[m.id for m in members])
                             .order_by("partition").values_list("owner", "partition")):
        owned.setdefault(owner, []).append(partition)
    cutoff = member_stale_before()
    return [{"member": m, "partitions": owned.get(m.id, []), "stale": m.last_seen < cutoff}
            for m in members]


@admin.register(Worker)
class WorkerAdmin(EventjobsAdmin):
    list_display = ("id", "host", "pid", "queue_list", "state", "running_now", "seen",
                    "started")
    list_filter = (StateFilter,)
    search_fields = ("id", "host")
    ordering = ("host", "pid")
    actions = None
    list_per_page = 200
    change_list_template = "admin/eventjobs/worker/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Worker | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Worker | None = None) -> bool:
        return False  # rows come and go with the processes; maintenance prunes silent ones

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        workers = list(changelist.result_list)
        running = running_by_worker([w.id for w in workers])
        cutoff = worker_stale_before()
        for worker in workers:
            worker.jobs_now = running.get(worker.id, [])
            worker.stale = worker.last_seen < cutoff
        return changelist

    def changelist_view(self, request: HttpRequest,
                        extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {"members": consume_members(self.get_queryset(request).db),
                 **(extra_context or {})}
        return super().changelist_view(request, extra)

    @admin.display(description="queues")
    def queue_list(self, worker: Worker) -> str:
        return ", ".join(worker.queues) if worker.queues else "every queue"

    @admin.display(description="state")
    def state(self, worker: Worker) -> str:
        stale = getattr(worker, "stale", False)
        return format_html('<span class="{}">{}</span>',
                           "eventjobs-bad" if stale else "eventjobs-good",
                           "stale" if stale else "alive")

    seen = time_column("last_seen", "last seen")
    started = time_column("started_at", "started")

    @admin.display(description="running now")
    def running_now(self, worker: Worker) -> str:
        jobs = getattr(worker, "jobs_now", [])
        if not jobs:
            return "—"
        return format_html_join(", ", '<a href="{}">#{} {}</a>', (
            (reverse("admin:eventjobs_job_change", args=[job.id]), job.id, job.task_path)
            for job in jobs))
