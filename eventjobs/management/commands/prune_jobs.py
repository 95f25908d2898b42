"""manage.py prune_jobs: delete old finished jobs, in batches."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from eventjobs.durations import duration_argument
from eventjobs.jobs.maintenance import prune_jobs


class Command(BaseCommand):
    help = (
        "Delete SUCCESSFUL jobs whose finished_at is older than --older-than. FAILED jobs "
        "are the jobs' dead-letter queue and are deleted only with --failed-older-than. "
        "READY, RUNNING and retrying jobs are never deleted. Works in batches."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=duration_argument, required=True, metavar="AGE",
                            help="Age of SUCCESSFUL jobs to delete, e.g. 7d, 12h.")
        parser.add_argument("--failed-older-than", type=duration_argument, metavar="AGE",
                            help="Also delete FAILED jobs finished longer ago than this, e.g. 30d.")
        parser.add_argument("--batch-size", type=int, default=5000,
                            help="Rows per DELETE statement (default %(default)s).")

    def handle(self, *args, **options):
        plan = [("SUCCESSFUL", options["older_than"])]
        if options["failed_older_than"] is not None:
            plan.append(("FAILED", options["failed_older_than"]))
        for status, age in plan:
            def progress(total, status=status):
                self.stdout.write(f"  {status}: {total} deleted so far")

            total = prune_jobs(status, age.total_seconds(), options["batch_size"], progress)
            self.stdout.write(f"prune_jobs: deleted {total} {status} job(s) finished before "
                              f"now - {age}")
