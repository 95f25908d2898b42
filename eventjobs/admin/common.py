"""What every eventjobs admin page shares: a paginator that never counts a big table,
payloads shown as text, the admin log, and the database alias."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString

from eventjobs.conf import database_alias


class ColumnFilter(admin.SimpleListFilter):
    """A filter on one column's exact value. Subclasses name the column and say which
    values to offer (`offered`); the chosen value is offered too, even once it is no
    longer among them (a bookmarked filter stays visible)."""

    column = ""

    def offered(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> set[str]:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin
                ) -> list[tuple[str, str]]:
        values = set(self.offered(request, model_admin))
        chosen = self.value()
        if chosen:
            values.add(chosen)
        return [(v, v) for v in sorted(values)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(**{self.column: self.value()}) if self.value() else queryset


class EstimatedCountPaginator(Paginator):
    """Counts exactly only what is small; for big results, takes PostgreSQL's estimate.

    Django's paginator runs COUNT(*) over the whole (filtered) table on every page: a
    scan of millions of rows. Here the planner's estimate comes first (one EXPLAIN, no
    rows read); only when it expects at most CAP rows are they counted, with LIMIT CAP+1,
    so no count ever reads more than that. `estimated` tells the templates to say "about".
    """

    CAP = 1000
    estimated = False

    @cached_property
    def count(self) -> int:
        assert isinstance(self.object_list, QuerySet)  # the admin pages querysets only
        queryset = self.object_list.order_by()
        expected = planner_estimate(queryset)
        if expected > self.CAP:
            self.estimated = True
            return expected
        exact = queryset[: self.CAP + 1].count()
        if exact > self.CAP:  # the statistics were wrong (or stale)
            self.estimated = True
            return max(exact, expected)
        return exact


def planner_estimate(queryset: QuerySet[Any]) -> int:
    """The row count PostgreSQL's planner expects for `queryset` (from its statistics)."""
    plan = json.loads(queryset.explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


class EventjobsAdmin(admin.ModelAdmin):
    """Shared by every eventjobs ModelAdmin: the eventjobs database, list pages that stay
    cheap on tables of millions of rows, and actions offered as buttons on detail pages."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).using(database_alias())

    def detail_actions(self, request: HttpRequest, obj: Any) -> list[tuple[str, str]]:
        """[(action name, button label)] the detail page of `obj` offers this user."""
        return []

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any,
                           **kwargs: Any) -> HttpResponse:
        obj = context.get("original")
        if obj is not None:
            context["detail_actions"] = self.detail_actions(request, obj)
            opts = self.model._meta
            context["changelist_url"] = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_changelist")
        return super().render_change_form(request, context, *args, **kwargs)

    def back(self, request: HttpRequest) -> HttpResponseRedirect | None:
        """After an action posted from a detail page, return there (same site only)."""
        target = request.POST.get("_return_to")
        if target and url_has_allowed_host_and_scheme(
                target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
            return HttpResponseRedirect(target)
        return None


def exact_time(value: datetime | None, with_zone: bool = False) -> str:
    """'2026-12-01 15:46:02' in the current time zone (seconds matter at 3 a.m.)."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    return local.strftime("%Y-%m-%d %H:%M:%S" + (" %Z" if with_zone else ""))


def short_time(value: datetime | None) -> str:
    """For list columns: '15:46:02' today, '11-30 15:46' before (the full time is on the
    detail page)."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    if local.date() == timezone.localdate():
        return local.strftime("%H:%M:%S")
    return local.strftime("%m-%d %H:%M")


def time_column(field: str, description: str, *, short: bool = False
                ) -> Callable[[Any, Model], str]:
    """A ModelAdmin column or detail field showing `field` to the second (`short`: the
    compact form for lists)."""
    @admin.display(description=description, ordering=field)
    def column(modeladmin: Any, obj: Model) -> str:
        value = getattr(obj, field)
        return short_time(value) if short else exact_time(value, with_zone=True)

    return column


def as_text(value: Any) -> str:
    """A JSON value as indented text (never HTML: the template escapes it)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def pre(value: Any, css_class: str = "eventjobs-pre") -> SafeString:
    """A payload, error or traceback in a monospaced block, escaped."""
    return format_html('<pre class="{}">{}</pre>', css_class, as_text(value))


def log_changes(request: HttpRequest, objects: Iterable[Model], message: str) -> None:
    """One admin-log (LogEntry) row per changed object, with what was done."""
    changed = list(objects)
    if changed:
        user_id = request.user.pk
        assert user_id is not None  # admin views serve logged-in staff only
        LogEntry.objects.log_actions(user_id=user_id, queryset=changed,
                                     action_flag=CHANGE, change_message=message)


def report(modeladmin: admin.ModelAdmin, request: HttpRequest, done: int, skipped: int,
           did: str, noun: tuple[str, str], why_skipped: str) -> None:
    """'Retried 2 jobs.' and, when some were left, 'Skipped 1 job: not FAILED ...'."""
    def n(count: int) -> str:
        return f"{count} {noun[0] if count == 1 else noun[1]}"

    if done:
        modeladmin.message_user(request, f"{did} {n(done)}.", messages.SUCCESS)
    if skipped:
        modeladmin.message_user(request, f"Skipped {n(skipped)}: {why_skipped}.",
                                messages.WARNING)


def chunks[T](ids: list[T], size: int = 1000) -> Iterator[list[T]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]
