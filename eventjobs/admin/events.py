"""The event log in the admin: read-only (the log is append-only), with, per event,
whether each consumer group has handled it and any dead letter it left."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from eventjobs.admin.common import ColumnFilter, EventjobsAdmin, pre, time_column
from eventjobs.events.partitions import partition_of, type_matcher
from eventjobs.events.registry import groups as registered_groups
from eventjobs.models import ConsumerGroup, DeadLetter, Event

if TYPE_CHECKING:
    from django.db.models import QuerySet

RECENT_FOR_CHOICES = 10_000  # the type and source filters list those of the newest events


def recent_values(queryset: QuerySet[Any], column: str, newest: int = RECENT_FOR_CHOICES
                  ) -> set[str]:
    """Distinct values of `column` among (about) the `newest` rows: a range of the primary
    key above the last id minus `newest`, never a scan of the whole table."""
    last_id = queryset.order_by("-pk").values("pk")[:1]
    recent = queryset.filter(pk__gt=Subquery(last_id) - newest)
    return set(recent.order_by().values_list(column, flat=True).distinct()) - {None, ""}


class RecentValuesFilter(ColumnFilter):
    """A filter on one column, offering the values of the newest events."""

    def offered(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> set[str]:
        return recent_values(model_admin.get_queryset(request), self.column)


class TypeFilter(RecentValuesFilter):
    title = "type"
    parameter_name = column = "type"


class SourceFilter(RecentValuesFilter):
    title = "source"
    parameter_name = column = "source"


@admin.register(Event)
class EventAdmin(EventjobsAdmin):
    list_display = ("id", "type", "key", "source", "created", "position")
    list_filter = (TypeFilter, SourceFilter, ("created_at", admin.DateFieldListFilter))
    search_fields = ("key",)
    search_help_text = "An event id, or an event key (exact)."
    ordering = ("-id",)
    actions = None
    fields = ("id", "type", "key", "source", "created", "position", "data_text",
              "handled_by")
    readonly_fields = ("created", "position", "data_text", "handled_by")

    # The log is append-only: nobody adds, changes or deletes events here.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        queryset = super().get_queryset(request)
        match = request.resolver_match
        if match and (match.url_name or "").endswith("changelist"):
            queryset = queryset.defer("data")
        return queryset

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Event],
                           search_term: str) -> tuple[QuerySet[Event], bool]:
        term = search_term.strip().lstrip("#")
        if not term:
            return queryset, False
        if term.isdigit():
            return queryset.filter(id=int(term)), False
        return queryset.filter(key=search_term.strip()), False

    created = time_column("created_at", "created")

    @admin.display(description="position (txid, id)")
    def position(self, event: Event) -> str:
        return f"({event.txid}, {event.id})"

    @admin.display(description="data")
    def data_text(self, event: Event) -> str:
        return pre(event.data)

    @admin.display(description="consumer groups")
    def handled_by(self, event: Event) -> str:
        rows = group_progress(event)
        if not rows:
            return "no consumer groups yet"
        return format_html(
            '<table class="eventjobs-table"><thead><tr><th>group</th><th>partition</th>'
            "<th>state</th><th>dead letter</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join("", "{}", ((_progress_row(r),) for r in rows)))


def _progress_row(row: dict[str, Any]) -> SafeString:
    letter: str = "—"
    if row["dead_letter"] is not None:
        dead = row["dead_letter"]
        url = reverse("admin:eventjobs_deadletter_change", args=[dead.id])
        letter = format_html('<a href="{}">#{} {}</a>', url, dead.id, dead.status)
    return format_html("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", row["group"],
                       row["partition"], row["state"], letter)


def group_progress(event: Event, alias: str | None = None) -> list[dict[str, Any]]:
    """Per consumer group: the event's partition, whether the group has handled it (its
    cursor is at or past the event), and the group's latest dead letter for it.
    Three queries whatever the number of groups."""
    from eventjobs.conf import database_alias

    alias = alias or database_alias()
    groups = list(ConsumerGroup.objects.using(alias).prefetch_related("cursors")
                  .order_by("name"))
    letters = {}
    for dead in (DeadLetter.objects.using(alias).filter(event_id=event.id)
                 .only("id", "group", "status").order_by("id")):
        letters[dead.group] = dead  # the latest per group wins
    registered = registered_groups()
    rows = []
    for group in groups:
        partition = partition_of(event.key_hash, group.partitions)
        cursor = next((c for c in group.cursors.all() if c.partition == partition), None)
        handles = (group.name not in registered
                   or type_matcher(registered[group.name].types)(event.type))
        if not handles:
            state = "not one of its types"
        elif cursor is None:
            state = "no cursor"
        elif (int(cursor.txid), cursor.event_id) >= (int(event.txid), event.id):
            state = "dead-lettered" if group.name in letters else "handled"
        else:
            state = "waiting" + (" (paused)" if cursor.paused else "")
        rows.append({"group": group.name, "partition": partition, "state": state,
                     "dead_letter": letters.get(group.name)})
    return rows
