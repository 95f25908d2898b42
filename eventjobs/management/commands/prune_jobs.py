"""manage.py prune_jobs: delete old finished jobs, in batches."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from eventjobs.durations import duration_argument, in_words
from eventjobs.jobs.maintenance import prune_jobs
from eventjobs.management.base import EventjobsCommand, Progress, positive_int


class Command(EventjobsCommand):
    help = (
        "Delete SUCCESSFUL jobs that finished longer ago than --older-than. FAILED jobs "
        "are the jobs' dead-letter queue and are deleted only with --failed-older-than. "
        "READY, RUNNING and retrying jobs are never deleted. Works in batches, each its "
        "own short transaction, and shows its progress."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=duration_argument, required=True, metavar="AGE",
                            help="Age of SUCCESSFUL jobs to delete, e.g. 7d, 12h.")
        parser.add_argument("--failed-older-than", type=duration_argument, metavar="AGE",
                            help="Also delete FAILED jobs finished longer ago than this, e.g. 30d.")
        parser.add_argument("--batch-size", type=positive_int, default=5000, metavar="N",
                            help="Rows per DELETE statement (default %(default)s).")

    def run(self, *args: Any, **options: Any) -> None:
        plan = [("SUCCESSFUL", options["older_than"])]
        if options["failed_older_than"] is not None:
            plan.append(("FAILED", options["failed_older_than"]))
        for status, age in plan:
            progress = Progress(self.stdout.write, "deleted", f"{status} job(s)")
            total = prune_jobs(status, age.total_seconds(), options["batch_size"],
                               progress.reached)
            self.stdout.write(f"prune_jobs: deleted {total} {status} job(s) finished more "
                              f"than {in_words(age)} ago ({progress.timing()})")
