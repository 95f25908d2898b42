"""What /how-it-works/ and the blog's pages show about the log, the groups and the jobs.

Read through eventjobs' own monitoring (the same numbers as `manage.py eventjobs_status`).
"""

from __future__ import annotations

from django.db.models import Max

from eventjobs.events.monitoring import groups_status
from eventjobs.models import Event, Job
from eventjobs.status import jobs_status, workers_status

GROUP_ROLES = {
    "post-counter": "keeps each author's published-post count",
    "search-index": "keeps the full-text index behind /search/",
    "activity": "builds the feed at /activity/ from the whole history",
    "notifications": "turns post.published into a notify-subscribers job",
}


def group_status(name: str) -> dict | None:
    """One group's position, lag and dead letters (None before `consume` first ran it)."""
    found = groups_status().get(name)
    return None if found is None or found["position"] is None else {"name": name, **found}


def live_status() -> dict:
    groups = [{"name": name, "role": GROUP_ROLES.get(name, ""), **state}
              for name, state in groups_status().items()]
    jobs = list(Job.objects.order_by("-id")[:12])
    for job in jobs:
        job.short_task = job.task_path.rsplit(".", 1)[-1]
    counts = jobs_status()
    return {
        "events": list(Event.objects.order_by("-txid", "-id")[:12]),
        "event_total": Event.objects.aggregate(n=Max("id"))["n"] or 0,
        "groups": groups,
        "jobs": jobs,
        "job_counts": {status: sum(q[status] for q in counts.values())
                       for status in ("READY", "RUNNING", "SUCCESSFUL", "FAILED")},
        "workers": workers_status(),
    }
