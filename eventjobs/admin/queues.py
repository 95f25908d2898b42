"""Queues and periodic schedules in the admin: pause or resume a queue's claims, and see
every schedule's last and next tick (issue 13's visibility)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.http import HttpRequest

from eventjobs.admin.common import EventjobsAdmin, exact_time, log_changes
from eventjobs.conf import database_alias
from eventjobs.jobs.queues import pause_queues, resume_queues
from eventjobs.models import Queue, Schedule

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from django.http import HttpResponse


def _configured_queues() -> set[str]:
    from django.tasks import task_backends

    from eventjobs.backends import PostgresBackend

    return {q for backend in task_backends.all() if isinstance(backend, PostgresBackend)
            for q in backend.queues}


@admin.register(Queue)
class QueueAdmin(EventjobsAdmin):
    """One row per queue (the configured ones, and any ever paused): paused or not."""

    list_display = ("name", "state", "since")
    ordering = ("name",)
    actions = ["pause_queues", "resume_queues"]

    def changelist_view(self, request: HttpRequest,
                        extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # A configured queue has no row until it is first paused: show it anyway (an
        # idempotent insert; the row's default is "not paused").
        Queue.objects.using(database_alias()).bulk_create(
            [Queue(name=name) for name in _configured_queues()], ignore_conflicts=True)
        return super().changelist_view(request, extra_context)

    @admin.display(description="state", ordering="paused")
    def state(self, queue: Queue) -> str:
        return "PAUSED: nothing is claimed" if queue.paused else "running"

    @admin.display(description="since", ordering="updated_at")
    def since(self, queue: Queue) -> str:
        return exact_time(queue.updated_at, with_zone=True)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Queue | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Queue | None = None) -> bool:
        return False

    def has_pause_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("eventjobs.pause_queue")

    @admin.action(description="Pause selected queues (running jobs finish)",
                  permissions=["pause"])
    def pause_queues(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        self._switch(request, queryset, pause=True)

    @admin.action(description="Resume selected queues", permissions=["pause"])
    def resume_queues(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        self._switch(request, queryset, pause=False)

    def _switch(self, request: HttpRequest, queryset: QuerySet[Queue], pause: bool) -> None:
        changing = list(queryset.exclude(paused=pause))
        if changing:
            (pause_queues if pause else resume_queues)(*[q.name for q in changing])
            log_changes(request, changing, "Paused the queue" if pause else "Resumed the queue")
            self.message_user(request, f"{'Paused' if pause else 'Resumed'} "
                              f"{', '.join(q.name for q in changing)}.", messages.SUCCESS)
        unchanged = queryset.count() - len(changing)
        if unchanged:
            self.message_user(request, f"{unchanged} already {'paused' if pause else 'running'}.",
                              messages.WARNING)


@admin.register(Schedule)
class ScheduleAdmin(EventjobsAdmin):
    """Every @eventjobs.periodic schedule a runworker registered, with its ticks."""

    list_display = ("name", "task_path", "spec", "timezone", "last", "next", "last_job_id")
    ordering = ("name",)
    readonly_fields = ("name", "task_path", "spec", "timezone", "args", "kwargs", "last",
                       "next", "last_job_id")
    fields = readonly_fields

    @admin.display(description="last tick", ordering="last_tick")
    def last(self, schedule: Schedule) -> str:
        return exact_time(schedule.last_tick, with_zone=True)

    @admin.display(description="next tick", ordering="next_tick")
    def next(self, schedule: Schedule) -> str:
        return exact_time(schedule.next_tick, with_zone=True)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Schedule | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Schedule | None = None) -> bool:
        return False
