"""The reset confirmation page of a consumer group: choose where to move the group, see how
many handled events that delivers again, confirm. `/admin/eventjobs/consumergroup/<name>/reset/`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from eventjobs.admin.common import log_changes
from eventjobs.durations import parse_time
from eventjobs.events import control
from eventjobs.events.partitions import position_in_words
from eventjobs.exceptions import GroupNotFound
from eventjobs.models import ConsumerGroup

if TYPE_CHECKING:
    from eventjobs.admin.groups import ConsumerGroupAdmin

TARGETS = [("beginning", "The beginning of the log: deliver every retained event again"),
           ("event", "An event: deliver it and everything after it again"),
           ("time", "A time: start at the first event created at or after it"),
           ("end", "The end of the log: skip every event committed so far")]


class ResetForm(forms.Form):
    """Where to move the group; `target()` is what eventjobs.events.control.reset takes."""

    to = forms.ChoiceField(choices=TARGETS, widget=forms.RadioSelect, initial="beginning")
    event_id = forms.IntegerField(required=False, min_value=1, label="event id")
    at = forms.CharField(required=False, label="time",
                         help_text="ISO 8601 (2026-12-01T09:30, naive means UTC) or an age "
                                   "such as 2h or 30m")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # Form.clean returns cleaned_data
        to = data.get("to")
        if to == "event" and not data.get("event_id"):
            self.add_error("event_id", "Give the id of the event to start from.")
        if to == "time":
            try:
                data["at_parsed"] = parse_time(data.get("at") or "")
            except ValueError as exc:
                self.add_error("at", str(exc))
        return data

    def target(self) -> control.Target:
        to = self.cleaned_data["to"]
        if to == "event":
            return self.cleaned_data["event_id"]
        if to == "time":
            return self.cleaned_data["at_parsed"]
        return to


def reset_view(model_admin: ConsumerGroupAdmin, request: HttpRequest, name: str
               ) -> HttpResponse:
    """GET: the form. POST without `confirm`: the plan (how many events come again).
    POST with `confirm`: the reset, logged, then back to the group's page."""
    if not model_admin.has_reset_permission(request):
        raise PermissionDenied
    group = ConsumerGroup.objects.using(model_admin.get_queryset(request).db).filter(
        name=name).first()
    if group is None:
        raise Http404(f"no consumer group {name!r}")
    form = ResetForm(request.POST if request.method == "POST" else None)
    plan = None
    if request.method == "POST" and form.is_valid():
        try:
            if "confirm" in request.POST:
                return _do_reset(model_admin, request, group, form.target())
            plan = control.plan_reset(group.name, form.target())
        except (LookupError, ValueError, GroupNotFound) as exc:
            form.add_error(None, str(exc).strip("'\""))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": ConsumerGroup._meta, "group": group, "form": form, "plan": plan,
        "plan_where": position_in_words(plan.position) if plan else None,
        "title": f"Reset consumer group {group.name}",
        "group_url": reverse("admin:eventjobs_consumergroup_change", args=[group.name]),
    }
    return TemplateResponse(request, "admin/eventjobs/consumergroup/reset.html", context)


def _do_reset(model_admin: ConsumerGroupAdmin, request: HttpRequest, group: ConsumerGroup,
              target: control.Target) -> HttpResponse:
    before = _generations(group)
    done = control.reset(group.name, target)
    where = position_in_words(done.position)
    if _generations(group) == before:  # reset moves (and bumps) only partitions elsewhere
        text = f"Group {group.name} was already at {where}: nothing changed."
    else:
        again = f"{done.redeliveries}{'+' if done.redeliveries_capped else ''}"
        text = f"Reset group {group.name} to {where}: {again} handled event(s) delivered again."
    log_changes(request, [group], text)
    model_admin.message_user(request, text, messages.SUCCESS)
    return HttpResponseRedirect(reverse("admin:eventjobs_consumergroup_change",
                                        args=[group.name]))


def _generations(group: ConsumerGroup) -> list[int]:
    return list(group.cursors.order_by("partition").values_list("generation", flat=True))
