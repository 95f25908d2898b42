"""The overview page, `/admin/eventjobs/overview/`: what an on-call engineer wants first.

Alarms on top (failures, waiting jobs, dead workers, dead letters, lag, held-back
delivery), then jobs per queue, outcomes and events per minute over the last hour,
consumer groups and workers. It refreshes itself (a meta refresh: no JavaScript). Each
part is shown to those who may view the model it summarises.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.contrib import admin
from django.db.models import Count
from django.db.models.functions import Trunc
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from eventjobs.admin.charts import bar_chart
from eventjobs.conf import database_alias
from eventjobs.events.monitoring import groups_status
from eventjobs.events.registry import groups as registered_groups
from eventjobs.jobs.monitoring import JobFigures, database_now, job_figures, minute_range
from eventjobs.liveness import member_stale_before, worker_stale_before
from eventjobs.models import ConsumerGroup, Event, GroupMember, Overview, Worker

if TYPE_CHECKING:
    from django.urls import URLPattern
    from django.utils.safestring import SafeString

WINDOW = timedelta(hours=1)
REFRESH_SECONDS = 10
MAX_GROUPS = 100  # groups shown (each costs a few indexed queries); the rest are listed
SUMMARISED = ("job", "event", "consumergroup", "deadletter", "worker")


@admin.register(Overview)
class OverviewAdmin(admin.ModelAdmin):
    """Not a table: the overview page in the model's place of the admin index."""

    def has_view_permission(self, request: HttpRequest, obj: Overview | None = None) -> bool:
        return any(request.user.has_perm(f"eventjobs.view_{model}") for model in SUMMARISED)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Overview | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Overview | None = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        return [path("", self.admin_site.admin_view(self.overview_view),
                     name="eventjobs_overview_changelist")]

    def overview_view(self, request: HttpRequest) -> TemplateResponse:
        from django.core.exceptions import PermissionDenied

        if not self.has_view_permission(request):
            raise PermissionDenied
        can = {m: request.user.has_perm(f"eventjobs.view_{m}") for m in SUMMARISED}
        refresh = request.GET.get("refresh") != "0"
        context = {**self.admin_site.each_context(request), "opts": Overview._meta,
                   "title": "eventjobs overview", "can": can,
                   "refresh_seconds": REFRESH_SECONDS if refresh else None,
                   "window_minutes": int(WINDOW.total_seconds() // 60)}
        if can["job"]:
            context.update(jobs_context(job_figures(WINDOW)))
        if can["event"]:
            context["events_chart"] = events_chart()
        if can["consumergroup"] or can["deadletter"]:
            context.update(groups_context())
        if can["worker"]:
            context.update(workers_context())
        context["alarms"] = alarms(context)
        return TemplateResponse(request, "admin/eventjobs/overview/overview.html", context)


def jobs_context(figures: JobFigures) -> dict:
    rows = []
    for name, q in figures.queues.items():
        waited = figures.oldest_ready_seconds(name)
        rows.append({"queue": name, "figures": q, "oldest_ready_seconds": waited,
                     "oldest_ready": waited_text(waited)})
    minutes = [m for m, _, _ in figures.per_minute]
    chart = bar_chart(minutes, [("ok", "successful", [ok for _, ok, _ in figures.per_minute]),
                                ("bad", "failed", [bad for _, _, bad in figures.per_minute])],
                      "jobs finished per minute")
    return {"queues": rows, "jobs_chart": chart, "now": figures.now,
            "failed_recently": sum(q.failed_recently for q in figures.queues.values()),
            "succeeded_recently": sum(q.succeeded_recently for q in figures.queues.values())}


def waited_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def events_chart() -> SafeString:
    """Events published per minute over the window (through the created_at index)."""
    alias = database_alias()
    now = database_now(alias)
    counts = dict(Event.objects.using(alias).filter(created_at__gte=now - WINDOW)
                  .annotate(minute=Trunc("created_at", "minute")).values("minute")
                  .order_by().annotate(n=Count("id")).values_list("minute", "n"))
    minutes = minute_range(now, WINDOW)
    return bar_chart(minutes, [("ev", "events", [counts.get(m, 0) for m in minutes])],
                     "events published per minute")


def groups_context() -> dict:
    alias = database_alias()
    # Groups in the database, and those registered in code that no `consume` ran yet.
    names = sorted(set(ConsumerGroup.objects.using(alias).order_by("name")
                       .values_list("name", flat=True)[:MAX_GROUPS + 1])
                   | set(registered_groups()))
    status = groups_status(names[:MAX_GROUPS])
    groups = [{"name": name, **figures} for name, figures in status.items()]
    # Trouble first: held back, dead letters, lag.
    groups.sort(key=lambda g: (g["held_back_by"] is None, -g["dead_letters"], -g["lag"],
                               g["name"]))
    return {"groups": groups, "more_groups": len(names) > MAX_GROUPS,
            "open_dead_letters": sum(g["dead_letters"] for g in groups)}


def workers_context() -> dict:
    alias = database_alias()
    now = timezone.now()
    workers = list(Worker.objects.using(alias).order_by("host", "pid"))
    cutoff = worker_stale_before(now)
    members = list(GroupMember.objects.using(alias).order_by("group_id", "id"))
    member_cutoff = member_stale_before(now)
    return {"workers_alive": sum(w.last_seen >= cutoff for w in workers),
            "dead_workers": [w for w in workers if w.last_seen < cutoff],
            "members_alive": sum(m.last_seen >= member_cutoff for m in members),
            "dead_members": [m for m in members if m.last_seen < member_cutoff],
            "running_total": sum(w.running for w in workers if w.last_seen >= cutoff)}


def alarms(context: dict) -> list[dict]:
    """The few numbers that say whether something is wrong, as cards (alarm = red)."""
    cards = []
    if "queues" in context:
        waits = [r["oldest_ready_seconds"] or 0 for r in context["queues"]]
        longest = max(waits, default=0)
        cards.append({"label": f"jobs failed in the last {context['window_minutes']} min",
                      "value": context["failed_recently"], "alarm": context["failed_recently"] > 0})
        cards.append({"label": "longest wait of a due job", "value": waited_text(longest or None),
                      "alarm": longest > 60})
    if "dead_workers" in context:
        cards.append({"label": "job workers alive", "value": context["workers_alive"],
                      "alarm": context["workers_alive"] == 0 and bool(context.get("queues"))})
        dead = len(context["dead_workers"]) + len(context["dead_members"])
        cards.append({"label": "stale workers and consumers", "value": dead, "alarm": dead > 0})
    if "groups" in context:
        cards.append({"label": "open dead letters", "value": context["open_dead_letters"],
                      "alarm": context["open_dead_letters"] > 0})
        held = [g["name"] for g in context["groups"] if g["held_back_by"]]
        cards.append({"label": "groups held back by a long transaction", "value": len(held),
                      "alarm": bool(held)})
    return cards
