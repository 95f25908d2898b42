"""Consumer groups in the admin: position, lag, dead letters, members, held-back
delivery; pause, resume, and reset on a confirmation page (admin/reset.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Count, Max, Q
from django.http import HttpRequest
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from eventjobs.admin.common import (
    EventjobsAdmin,
    exact_time,
    log_changes,
    pre,
    report,
    time_column,
)
from eventjobs.events import control
from eventjobs.events.monitoring import groups_status
from eventjobs.events.partitions import position_in_words
from eventjobs.liveness import member_stale_before
from eventjobs.models import ConsumerGroup, Cursor, GroupMember

if TYPE_CHECKING:
    from django.contrib.admin.views.main import ChangeList
    from django.db.models import QuerySet
    from django.http import HttpResponse, HttpResponseRedirect
    from django.urls import URLPattern


def attach_status(groups: list[ConsumerGroup]) -> None:
    """Give each group of a page its monitoring figures (`.status`, `.alive`, `.last_active`):
    two ORM queries for the page, and a few indexed ones per group for lag and horizon."""
    names = [g.name for g in groups]
    if not names:
        return
    status = groups_status(names)
    alive = dict(GroupMember.objects.using(groups[0]._state.db).filter(group__in=names)
                 .values("group").order_by()
                 .annotate(n=Count("id", filter=Q(last_seen__gte=member_stale_before())))
                 .values_list("group", "n"))
    active = dict(Cursor.objects.using(groups[0]._state.db).filter(group__in=names)
                  .values("group").order_by().annotate(last=Max("updated_at"))
                  .values_list("group", "last"))
    for group in groups:
        group.status = status.get(group.name, {})
        group.alive = alive.get(group.name, 0)
        group.last_active = active.get(group.name)


@admin.register(ConsumerGroup)
class ConsumerGroupAdmin(EventjobsAdmin):
    list_display = ("name", "position", "lag", "dead_letters", "paused", "members_alive",
                    "last_active", "held_back")
    list_display_links = ("name",)
    search_fields = ("name",)
    ordering = ("name",)
    actions = ["pause_groups", "resume_groups"]
    fields = ("name", "partitions", "created", "position", "lag", "dead_letters", "paused",
              "members_alive", "last_active", "held_back", "cursor_table", "errors")
    readonly_fields = fields

    created = time_column("created_at", "created")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # `consume` creates groups

    def has_change_permission(self, request: HttpRequest, obj: ConsumerGroup | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ConsumerGroup | None = None) -> bool:
        return False  # `manage.py consumer_group forget` retires a group

    def has_pause_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("eventjobs.pause_consumergroup")

    def has_reset_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("eventjobs.reset_consumergroup")

    def get_urls(self) -> list[URLPattern]:
        from eventjobs.admin.reset import reset_view

        view = self.admin_site.admin_view(lambda request, name: reset_view(self, request, name))
        return [path("<path:name>/reset/", view, name="eventjobs_consumergroup_reset"),
                *super().get_urls()]

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        attach_status(list(changelist.result_list))
        return changelist

    def get_object(self, request: HttpRequest, object_id: str,
                   from_field: str | None = None) -> ConsumerGroup | None:
        group = super().get_object(request, object_id, from_field)
        if group is not None:
            attach_status([group])
        return group

    # -- columns ------------------------------------------------------------------------------
    @admin.display(description="position")
    def position(self, group: ConsumerGroup) -> str:
        shown = group.status.get("position")
        if shown is None:
            return "—"
        return position_in_words((int(shown["txid"]), shown["event_id"]))

    @admin.display(description="lag")
    def lag(self, group: ConsumerGroup) -> str:
        lag = group.status.get("lag", 0)
        return f"≥ {lag}" if group.status.get("lag_capped") else str(lag)

    @admin.display(description="open dead letters")
    def dead_letters(self, group: ConsumerGroup) -> str:
        n = group.status.get("dead_letters", 0)
        if not n:
            return "0"
        url = reverse("admin:eventjobs_deadletter_changelist")
        query = urlencode({"group": group.name, "status": "OPEN"})
        return format_html('<a class="eventjobs-bad" href="{}?{}">{}</a>', url, query, n)

    @admin.display(description="paused", boolean=True)
    def paused(self, group: ConsumerGroup) -> bool:
        return bool(group.status.get("paused"))

    @admin.display(description="members alive")
    def members_alive(self, group: ConsumerGroup) -> str:
        return str(group.alive)

    @admin.display(description="last activity")
    def last_active(self, group: ConsumerGroup) -> str:
        return exact_time(group.last_active)

    @admin.display(description="delivery held back")
    def held_back(self, group: ConsumerGroup) -> str:
        held = group.status.get("held_back_by")
        if not held:
            return "—"
        who = f" (pid {held['pid']})" if held.get("pid") else ""
        return format_html('<span class="eventjobs-warn">by transaction {}{} since {}</span>',
                           held.get("xid"), who, held.get("since"))

    @admin.display(description="partitions")
    def cursor_table(self, group: ConsumerGroup) -> str:
        rows = ((c.partition, f"({c.txid}, {c.event_id})", c.owner or "—",
                 exact_time(c.lease_expires_at), "yes" if c.paused else "no",
                 exact_time(c.updated_at))
                for c in group.cursors.order_by("partition"))
        return format_html(
            '<table class="eventjobs-table"><thead><tr><th>partition</th><th>position</th>'
            "<th>owner</th><th>lease until</th><th>paused</th><th>updated</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                                 "<td>{}</td></tr>", rows))

    @admin.display(description="recent errors")
    def errors(self, group: ConsumerGroup) -> str:
        return pre(group.recent_errors) if group.recent_errors else "none"

    def detail_actions(self, request: HttpRequest, group: ConsumerGroup
                       ) -> list[tuple[str, str]]:
        offered = []
        if self.has_pause_permission(request):
            offered.append(("resume_groups", "Resume") if group.status.get("paused")
                           else ("pause_groups", "Pause"))
        return offered

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any,
                           **kwargs: Any) -> HttpResponse:
        group = context.get("original")
        if group is not None and self.has_reset_permission(request):
            context["reset_url"] = reverse("admin:eventjobs_consumergroup_reset",
                                           args=[group.name])
        return super().render_change_form(request, context, *args, **kwargs)

    # -- actions ------------------------------------------------------------------------------
    @admin.action(description="Pause selected groups (every consume process stops "
                              "delivering to them)", permissions=["pause"])
    def pause_groups(self, request: HttpRequest, queryset: QuerySet[ConsumerGroup]
                     ) -> HttpResponseRedirect | None:
        return self._set_paused(request, queryset, control.pause, "Paused")

    @admin.action(description="Resume selected groups", permissions=["pause"])
    def resume_groups(self, request: HttpRequest, queryset: QuerySet[ConsumerGroup]
                      ) -> HttpResponseRedirect | None:
        return self._set_paused(request, queryset, control.resume, "Resumed")

    def _set_paused(self, request: HttpRequest, queryset: QuerySet[ConsumerGroup],
                    operation: Callable[[str], bool], did: str) -> HttpResponseRedirect | None:
        groups = list(queryset.order_by("name"))
        changed = [g for g in groups if operation(g.name)]  # False: it already was
        log_changes(request, changed, did)
        report(self, request, len(changed), len(groups) - len(changed), did,
               ("group", "groups"), f"already {did.lower()}")
        return self.back(request)
