"""The state `manage.py eventjobs_status` prints (JSON shape version 1)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count
from django.tasks import TaskResultStatus, task_backends

from eventjobs.backends import PostgresBackend
from eventjobs.conf import database_alias
from eventjobs.jobs.results import display_status

# Django's four, in the documented order (SCHEDULED shows as READY).
STATUSES = [s.value for s in (TaskResultStatus.READY, TaskResultStatus.RUNNING,
                              TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)]


def jobs_status() -> dict:
    """{queue: {status: count}} with every status present; SCHEDULED counts as READY."""
    from eventjobs.models import Job

    queues: set[str] = set()
    for backend in task_backends.all():
        if isinstance(backend, PostgresBackend):
            queues |= backend.queues
    counts = {queue: dict.fromkeys(STATUSES, 0) for queue in sorted(queues)}
    for row in Job.objects.using(database_alias()).values("queue", "status").annotate(n=Count("id")).order_by():
        status = display_status(row["status"])
        counts.setdefault(row["queue"], dict.fromkeys(STATUSES, 0))[status] += row["n"]
    return counts


def workers_status() -> list[dict]:
    from eventjobs.models import Worker

    return [
        {"id": w.id, "host": w.host, "pid": w.pid, "queues": list(w.queues),
         "last_seen": w.last_seen.isoformat().replace("+00:00", "Z"), "running": w.running}
        for w in Worker.objects.using(database_alias()).order_by("id")
    ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def schedules_status() -> dict:
    """{name: {task, spec, timezone, last_tick, next_tick, last_job}} of every periodic
    schedule a runworker registered (next_tick in the past: no runworker is ticking it)."""
    from django.db import connections

    from eventjobs.jobs import store as jobstore

    with connections[database_alias()].cursor() as cursor:
        rows = jobstore.schedules(cursor)
    return {row["name"]: {"task": row["task_path"], "spec": row["spec"],
                          "timezone": row["timezone"], "last_tick": _iso(row["last_tick"]),
                          "next_tick": _iso(row["next_tick"]), "last_job": row["last_job_id"]}
            for row in rows}


def limits_status() -> dict:
    """{limit key: {task, waiting, ready, running, concurrency, rate}} for every key of a
    task with `concurrency=` or `rate_limit=` that has jobs waiting, admitted or running:
    `waiting` are held back for room (LIMITED, counted as READY under "jobs"), `ready`
    were admitted and wait for a worker. Read through the two partial limit indexes."""
    from django.db.models import Max

    from eventjobs.jobs.statuses import JobStatus
    from eventjobs.models import Job

    rows = (Job.objects.using(database_alias())
            .filter(limit_key__isnull=False,
                    status__in=[JobStatus.LIMITED, JobStatus.READY, JobStatus.RUNNING])
            .values("limit_key", "status")
            .annotate(n=Count("id"), task=Max("task_path"), concurrency=Max("concurrency"),
                      rate_count=Max("rate_count"), rate_window=Max("rate_window"))
            .order_by())
    keys: dict[str, dict] = {}
    fields = {JobStatus.LIMITED.value: "waiting", JobStatus.READY.value: "ready"}
    for row in rows:
        key = keys.setdefault(str(row["limit_key"]), {
            "task": row["task"], "waiting": 0, "ready": 0, "running": 0,
            "concurrency": row["concurrency"],
            "rate": (f"{row['rate_count']}/{row['rate_window']:g}s"
                     if row["rate_count"] else None)})
        key[fields.get(str(row["status"]), "running")] += row["n"]
    return dict(sorted(keys.items()))


def groups_status() -> dict:
    """Filled in by the event half (eventjobs.monitoring), when present."""
    try:
        from eventjobs.events.monitoring import groups_status as event_groups
    except ImportError:
        return {}
    return event_groups()


def collect() -> dict:
    from eventjobs.jobs.queues import paused_queues

    return {"version": 1, "jobs": jobs_status(), "workers": workers_status(),
            "groups": groups_status(), "schedules": schedules_status(),
            "paused_queues": paused_queues(), "limits": limits_status()}
