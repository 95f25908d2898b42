"""manage.py jobs: list, retry and cancel jobs (FAILED jobs are the jobs' dead-letter queue)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.management.base import CommandError, CommandParser
from django.tasks import task_backends
from django.tasks.exceptions import InvalidTaskBackend

from eventjobs.exceptions import JobNotFound
from eventjobs.jobs.api import cancel_job, retry_job
from eventjobs.jobs.executor import TaskMissing, import_task
from eventjobs.jobs.statuses import WAITING, JobStatus
from eventjobs.management.base import EventjobsCommand, Progress, positive_int

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from eventjobs.backends import PostgresBackend
    from eventjobs.models import Job

# Jobs retried or cancelled per statement by --all-failed / --all-waiting.
BATCH = 500
# What Django calls READY includes the jobs not due yet and those waiting under a limit.
STATUSES: dict[str, Sequence[str] | None] = {
    "ready": WAITING, "running": [JobStatus.RUNNING], "successful": [JobStatus.SUCCESSFUL],
    "failed": [JobStatus.FAILED], "all": None}


class Command(EventjobsCommand):
    help = (
        "See, retry and cancel jobs. FAILED jobs (attempts spent, or cancelled) are the "
        "jobs' dead-letter queue: they stay until retried or pruned.\n"
        "  list [--status S] [--queue Q] [--task PATH] [--limit N] [--json]: newest first\n"
        "  retry (ID ... | --all-failed [--task PATH] [--queue Q]): FAILED jobs back to "
        "READY with one more attempt (--extra-attempts N), their history kept\n"
        "  cancel (ID ... | --all-waiting [--task PATH] [--queue Q]): jobs that have not "
        "started become FAILED with a JobCancelled error; running jobs are never stopped"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--backend", default="default", metavar="ALIAS",
                            help="TASKS alias of the eventjobs backend (default: %(default)s).")
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION",
                                    title="actions")
        listing = self.add_subcommand(sub, "list", "Show jobs, newest first.")
        listing.add_argument("--status", choices=sorted(STATUSES), default="all",
                             help="Only jobs in this state (default: %(default)s; ready "
                                  "includes deferred jobs and retries waiting).")
        self._filters(listing)
        listing.add_argument("--limit", type=int, default=50, metavar="N",
                             help="Show at most N jobs (default: %(default)s).")
        listing.add_argument("--json", action="store_true",
                             help="Print a JSON list, one object per job.")
        retry = self.add_subcommand(sub, "retry", "Put FAILED jobs back to READY.")
        self._ids(retry, "--all-failed", "Every FAILED job (narrow with --task, --queue).")
        retry.add_argument("--extra-attempts", type=positive_int, default=1, metavar="N",
                           help="Attempts added to each job (default: %(default)s).")
        cancel = self.add_subcommand(sub, "cancel", "Cancel jobs that have not started.")
        self._ids(cancel, "--all-waiting", "Every job not started yet (narrow with --task, "
                                           "--queue).")
        cancel.add_argument("--reason", default="cancelled with manage.py jobs cancel",
                            help="Recorded as the JobCancelled error's message.")

    def _filters(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--queue", metavar="Q", help="Only jobs of this queue.")
        parser.add_argument("--task", metavar="PATH",
                            help="Only jobs of this task, by its path: myapp.tasks.send_email.")

    def _ids(self, parser: argparse.ArgumentParser, everything: str, help: str) -> None:
        parser.add_argument("ids", nargs="*", type=int, metavar="ID",
                            help="Job id(s), as `jobs list` shows them (the TaskResult id).")
        parser.add_argument(everything, action="store_true", dest="everything", help=help)
        self._filters(parser)

    def backend(self, options: dict[str, Any]) -> PostgresBackend:
        from eventjobs.backends import PostgresBackend

        try:
            backend = task_backends[options["backend"]]
        except InvalidTaskBackend:
            raise CommandError(f"TASKS has no backend {options['backend']!r}") from None
        if not isinstance(backend, PostgresBackend):
            raise CommandError(f"TASKS[{options['backend']!r}] is not "
                               "eventjobs.backends.PostgresBackend")
        return backend

    def database(self, options: dict[str, Any]) -> str:
        return self.backend(options).database

    def run(self, *args: Any, **options: Any) -> None:
        from eventjobs.models import Job

        jobs = Job.objects.using(self.database(options)).filter(backend=options["backend"])
        jobs = self._filtered(jobs, options)
        if options["action"] == "list":
            return self._list(jobs, options)
        if bool(options["ids"]) == options["everything"]:
            flag = "--all-failed" if options["action"] == "retry" else "--all-waiting"
            raise CommandError(f"{options['action']}: name job IDs, or {flag}")
        if options["action"] == "retry":
            return self._change(jobs.filter(status="FAILED"), options, "retried", "FAILED",
                                lambda ids: retry_job(*ids, backend=options["backend"],
                                                      extra_attempts=options["extra_attempts"]))
        return self._change(jobs.filter(status__in=WAITING), options, "cancelled",
                            "waiting", lambda ids: cancel_job(*ids, backend=options["backend"],
                                                              reason=options["reason"]))

    def _filtered(self, jobs: QuerySet[Job], options: dict[str, Any]) -> QuerySet[Job]:
        """Apply --queue and --task. A queue the backend accepts, or a path that imports as a
        task, may simply have no job yet: that is an empty list (scripts rely on it), not an
        error. A name that is neither and that no job has is an error: a typo, most likely."""
        backend = self.backend(options)
        for option, field, label in (("queue", "queue", "queue"),
                                     ("task", "task_path", "task path")):
            value = options.get(option)
            if value is None:
                continue
            if not jobs.filter(**{field: value}).exists():
                unknown = (_unknown_queue(backend, value) if option == "queue"
                           else _not_a_task(value))
                if unknown:
                    known = sorted(jobs.values_list(field, flat=True).distinct().order_by()[:10])
                    raise CommandError(f"no job has {label} {value!r} and {unknown}; some "
                                       f"that have jobs: {', '.join(known) or 'none'}")
            jobs = jobs.filter(**{field: value})
        return jobs

    def _list(self, jobs: QuerySet[Job], options: dict[str, Any]) -> None:
        statuses = STATUSES[options["status"]]
        if statuses:
            jobs = jobs.filter(status__in=statuses)
        total = jobs.count()
        rows = [_row(job) for job in jobs.order_by("-id")[:max(options["limit"], 0)]]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        for r in rows:
            error = r["last_error"]
            said = f"{error['exception_class_path']}: {error['message']}" if error else ""
            self.stdout.write(f"{r['id']:>8}  {r['status']:<10} {r['queue']:<12} "
                              f"{r['attempts']}/{r['max_attempts']:<3} {r['task_path']}  "
                              f"{said.splitlines()[0][:100] if said else ''}".rstrip())
        more = (f" (the newest {len(rows)} shown; --limit N shows more)"
                if total > len(rows) else "")
        self.stdout.write(f"{total} job(s){more}")

    def _change(self, candidates: QuerySet[Job], options: dict[str, Any], done: str, state: str,
                change: Callable[[list[int]], list[str]]) -> None:
        """Retry or cancel by id (naming those left as they are) or in bulk (progress)."""
        if options["ids"]:
            try:
                changed = change(options["ids"])
            except JobNotFound as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"{done} {len(changed)} job(s)"
                              + (f": {', '.join(changed)}" if changed else ""))
            self._left(candidates, options["ids"], changed, state)
            return
        progress = Progress(self.stdout.write, done, "job(s)")
        ids = list(candidates.order_by("id").values_list("id", flat=True))
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            try:
                progress.add(len(change(chunk)))
            except JobNotFound as exc:  # pruned meanwhile: the others still go
                progress.add(len(change([i for i in chunk if i not in exc.ids])))
        self.stdout.write(progress.summary())

    def _left(self, candidates: QuerySet[Job], ids: list[int], changed: list[str],
              state: str) -> None:
        """Name the jobs given by id that were not in a state to change."""
        left = [i for i in dict.fromkeys(ids) if str(i) not in changed]
        if not left:
            return
        everyone = candidates.model.objects.using(candidates.db)
        shown = dict(everyone.filter(pk__in=left).values_list("pk", "status"))
        said = ", ".join(f"{i} ({'READY' if shown[i] == 'SCHEDULED' else shown[i]})"
                         for i in left if i in shown)
        self.stdout.write(f"left as they are (not {state}): {said}")


def _unknown_queue(backend: PostgresBackend, queue: str) -> str | None:
    """Why `queue` is not a queue of the backend, or None when it is. Django's rule: empty
    QUEUES accepts any name, so then no name is a typo we could tell."""
    if not backend.queues or queue in backend.queues:
        return None
    return (f"TASKS[{backend.alias!r}]['QUEUES'] does not declare it (it declares "
            f"{', '.join(sorted(backend.queues))})")


def _not_a_task(task_path: str) -> str | None:
    """Why `task_path` is not a task, or None when it imports as one."""
    try:
        import_task(task_path)
    except TaskMissing as exc:
        return str(exc)
    return None


def _row(job: Job) -> dict[str, Any]:
    """One job as `jobs list --json` prints it."""
    last = job.errors[-1] if job.errors else None
    return {
        "id": job.id, "task_path": job.task_path, "queue": job.queue,
        "status": job.display_status, "priority": job.priority, "attempts": job.attempt,
        "max_attempts": job.max_attempts,
        "enqueued_at": _iso(job.enqueued_at), "run_after": _iso(job.run_after),
        "started_at": _iso(job.started_at), "finished_at": _iso(job.finished_at),
        "last_error": {"exception_class_path": last.get("exception_class_path"),
                       "message": last.get("message", ""), "attempt": last.get("attempt")}
        if last else None,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
