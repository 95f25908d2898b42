"""Dead letters in the admin: what failed in which group, and reprocess or discard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

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
from eventjobs.events.registry import groups as registered_groups
from eventjobs.models import ConsumerGroup, DeadLetter, DeadLetterStatus

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from django.http import HttpResponseRedirect

LIST_COLUMNS = ("id", "group", "event_id", "event_type", "event_key", "event_source",
                "event_created_at", "error", "attempts", "status", "created_at", "updated_at",
                "resolved_at")


class GroupFilter(ColumnFilter):
    """Consumer groups known to the database or registered in this process."""

    title = "group"
    parameter_name = column = "group"

    def offered(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> set[str]:
        return set(ConsumerGroup.objects.using(model_admin.get_queryset(request).db)
                   .values_list("name", flat=True)) | set(registered_groups())


class TypeFilter(ColumnFilter):
    """Event types among the newest dead letters."""

    title = "event type"
    parameter_name = column = "event_type"

    def offered(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> set[str]:
        return set(model_admin.get_queryset(request).order_by("-id")
                   .values_list("event_type", flat=True)[:5000])


@admin.register(DeadLetter)
class DeadLetterAdmin(EventjobsAdmin):
    list_display = ("id", "group", "event_link", "event_type", "event_key", "event_source",
                    "short_error", "attempts", "status", "created", "updated")
    list_display_links = ("id",)
    list_filter = (GroupFilter, "status", TypeFilter)
    search_fields = ("event_key",)
    search_help_text = "A dead letter id, an event id (#123) or an event key."
    ordering = ("-id",)
    actions = ["reprocess_dead_letters", "discard_dead_letters"]
    fieldsets = [
        (None, {"fields": ("id", "group", "status", "attempts", "created_exact",
                           "updated_exact", "resolved_exact")}),
        ("Why it failed", {"fields": ("error_text", "traceback_text")}),
        ("The event (a copy kept with the dead letter)",
         {"fields": ("event_link", "event_type", "event_key", "event_source", "event_created",
                     "event_txid", "data_text")}),
    ]
    readonly_fields = ("event_link", "data_text", "error_text", "traceback_text",
                       "created_exact", "updated_exact", "resolved_exact", "event_created")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: DeadLetter | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: DeadLetter | None = None) -> bool:
        return False  # discard keeps the record; dead letters are history

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("eventjobs.reprocess_deadletter")

    def has_discard_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("eventjobs.discard_deadletter")

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeadLetter]:
        queryset = super().get_queryset(request)
        match = request.resolver_match
        if match and (match.url_name or "").endswith("changelist"):
            queryset = queryset.only(*LIST_COLUMNS)  # no data or traceback in the list
        return queryset

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[DeadLetter],
                           search_term: str) -> tuple[QuerySet[DeadLetter], bool]:
        term = search_term.strip()
        if term.startswith("#") and term[1:].isdigit():
            return queryset.filter(event_id=int(term[1:])), False
        if term.isdigit():
            return queryset.filter(id=int(term)), False
        return (queryset.filter(event_key=term), False) if term else (queryset, False)

    @admin.display(description="event", ordering="event_id")
    def event_link(self, dead: DeadLetter) -> str:
        url = reverse("admin:eventjobs_event_change", args=[dead.event_id])
        return format_html('<a href="{}">#{}</a>', url, dead.event_id)

    created = time_column("created_at", "dead-lettered", short=True)
    updated = time_column("updated_at", "updated", short=True)
    created_exact = time_column("created_at", "dead-lettered")
    updated_exact = time_column("updated_at", "updated")
    resolved_exact = time_column("resolved_at", "resolved or discarded")
    event_created = time_column("event_created_at", "event created")

    @admin.display(description="error")
    def short_error(self, dead: DeadLetter) -> str:
        return dead.error if len(dead.error) <= 120 else dead.error[:119] + "…"

    @admin.display(description="data")
    def data_text(self, dead: DeadLetter) -> str:
        return pre(dead.event_data)

    @admin.display(description="error")
    def error_text(self, dead: DeadLetter) -> str:
        return pre(dead.error)

    @admin.display(description="traceback")
    def traceback_text(self, dead: DeadLetter) -> str:
        return pre(dead.traceback, "eventjobs-traceback")

    def detail_actions(self, request: HttpRequest, dead: DeadLetter) -> list[tuple[str, str]]:
        if dead.status != DeadLetterStatus.OPEN:
            return []
        offered = []
        if self.has_reprocess_permission(request):
            offered.append(("reprocess_dead_letters", "Reprocess"))
        if self.has_discard_permission(request):
            offered.append(("discard_dead_letters", "Discard"))
        return offered

    @admin.action(description="Reprocess selected dead letters (run the handlers again)",
                  permissions=["reprocess"])
    def reprocess_dead_letters(self, request: HttpRequest, queryset: QuerySet[DeadLetter]
                               ) -> HttpResponseRedirect | None:
        ids = list(queryset.order_by().values_list("id", flat=True))
        resolved: list[int] = []
        failed: list[int] = []
        replaying: list[int] = []
        try:
            for part in chunks(ids):
                outcome = eventjobs.reprocess_dead_letters(part)
                resolved += outcome["resolved"]
                failed += outcome["failed"]
                replaying += outcome["replaying"]
        except ImproperlyConfigured as exc:  # the group's consumers are not in this code
            self.message_user(request, f"Stopped: {exc}", messages.ERROR)
            ids = resolved + failed + replaying  # what was done before it stopped, below
        self._log(request, resolved, "Reprocessed: handled, resolved")
        self._log(request, failed, "Reprocessed: failed again (still open)")
        if replaying:
            self.message_user(request, f"{len(replaying)} left to the replay under way: the "
                              "group's position is before their event, which it will deliver "
                              "again (a reprocess now would handle it twice).", messages.WARNING)
        report(self, request, len(resolved),
               len(ids) - len(resolved) - len(failed) - len(replaying),
               "Reprocessed and resolved", ("dead letter", "dead letters"),
               "not open (already resolved or discarded)")
        if failed:
            self.message_user(request, f"{len(failed)} failed again and stay open: see "
                              "their error.", messages.ERROR)
        return self.back(request)

    @admin.action(description="Discard selected dead letters (keep them as a record)",
                  permissions=["discard"])
    def discard_dead_letters(self, request: HttpRequest, queryset: QuerySet[DeadLetter]
                             ) -> HttpResponseRedirect | None:
        ids = list(queryset.order_by().values_list("id", flat=True))
        discarded: list[int] = []
        for part in chunks(ids):
            # Lock the rows still open: a concurrent discard or reprocess of the same rows
            # waits, then finds them closed, so each is discarded (and logged) once.
            with transaction.atomic(using=queryset.db):
                still_open = list(DeadLetter.objects.using(queryset.db).select_for_update()
                                  .filter(id__in=part, status=DeadLetterStatus.OPEN)
                                  .values_list("id", flat=True))
                if still_open:
                    eventjobs.discard_dead_letters(still_open)
            discarded += still_open
        self._log(request, discarded, "Discarded")
        report(self, request, len(discarded), len(ids) - len(discarded), "Discarded",
               ("dead letter", "dead letters"), "not open (already resolved or discarded)")
        return self.back(request)

    def _log(self, request: HttpRequest, ids: list[int], message: str) -> None:
        for part in chunks(ids):
            log_changes(request, DeadLetter.objects.using(self.get_queryset(request).db)
                        .filter(id__in=part).only("id", "group", "event_type", "event_id",
                                                  "status"), message)
