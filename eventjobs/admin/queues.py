"""Queues and periodic schedules in the admin: pause or resume a queue's claims, and see
every schedule's last and next tick (issue 13's visibility)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.tasks import task_backends

from eventjobs.admin.common import EventjobsAdmin, exact_time, log_changes
from eventjobs.conf import database_alias
from eventjobs.jobs.queues import pause_queues, resume_queues
from eventjobs.models import Queue, Schedule

if TYPE_CHECKING:
    from django.contrib.admin.views.main import ChangeList
    from django.db.models import QuerySet
    from django.http import HttpResponse

    from eventjobs.backends import PostgresBackend


def _configured_queues() -> set[str]:
    from eventjobs.backends import PostgresBackend

    return {q for backend in task_backends.all() if isinstance(backend, PostgresBackend)
            for q in backend.queues}


def _backend_for(name: str, database: str, pause: bool) -> str | None:
    """The TASKS alias to switch queue `name` through: a backend of this database whose
    QUEUES has it (or that serves every queue); to resume, else any backend of this
    database (resume_queues takes a paused queue since removed from QUEUES). None: no
    backend can, and no worker claims the queue's jobs anyway."""
    from eventjobs.backends import PostgresBackend

    backends: list[PostgresBackend] = [
        b for b in task_backends.all() if isinstance(b, PostgresBackend) and b.database == database]
    serving = [b for b in backends if not b.queues or name in b.queues]
    chosen = serving or ([] if pause else backends)
    return chosen[0].alias if chosen else None


@admin.register(Queue)
class QueueAdmin(EventjobsAdmin):
    """One row per queue (the configured ones, and any ever paused): paused or not."""

    list_display = ("name", "state", "since")
    list_display_links = None  # a queue's page would show nothing more than its row
    ordering = ("name",)
    # Queues are few: one page, in name order, so the queues that have no row in the
    # table (get_changelist_instance) merge in their place.
    sortable_by = ()
    list_per_page = 1000
    actions = ["pause_queues", "resume_queues"]

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        # A configured queue has no row until it is first switched, and a GET writes
        # nothing: list it unsaved, running (a row's default).
        have = set(self.get_queryset(request).values_list("name", flat=True))
        missing = [Queue(name=name) for name in _configured_queues() - have]
        if missing:
            changelist.result_list = sorted([*changelist.result_list, *missing],
                                            key=lambda queue: queue.name)
            changelist.result_count += len(missing)
        return changelist

    def changelist_view(self, request: HttpRequest,
                        extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "POST" and self.has_pause_permission(request):
            # An action may select a configured queue listed without a row: give it its
            # row first (idempotent; not paused), so the action finds it.
            Queue.objects.using(database_alias()).bulk_create(
                [Queue(name=name) for name in _configured_queues()], ignore_conflicts=True)
        return super().changelist_view(request, extra_context)

    @admin.display(description="state", ordering="paused")
    def state(self, queue: Queue) -> str:
        return "PAUSED: nothing is claimed" if queue.paused else "running"

    @admin.display(description="since", ordering="updated_at")
    def since(self, queue: Queue) -> str:
        if queue._state.adding:  # listed without a row: never switched
            return "—"
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
        by_backend: dict[str, list[Queue]] = defaultdict(list)
        for queue in changing:
            alias = _backend_for(queue.name, queryset.db, pause)
            if alias is None:
                self.message_user(request, f"Left {queue.name} alone: no eventjobs task "
                                  "backend has it in its QUEUES, so no worker claims its "
                                  "jobs.", messages.ERROR)
            else:
                by_backend[alias].append(queue)
        switched: list[Queue] = []
        for alias, queues in by_backend.items():
            names = [q.name for q in queues]
            try:
                (pause_queues if pause else resume_queues)(*names, backend=alias)
            except (ValueError, TypeError, ImproperlyConfigured) as exc:  # e.g. bad OPTIONS
                self.message_user(request, f"Left {', '.join(names)} alone: {exc}",
                                  messages.ERROR)
            else:
                switched += queues
        if switched:
            switched.sort(key=lambda q: q.name)
            log_changes(request, switched, "Paused the queue" if pause else "Resumed the queue")
            self.message_user(request, f"{'Paused' if pause else 'Resumed'} "
                              f"{', '.join(q.name for q in switched)}.", messages.SUCCESS)
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
