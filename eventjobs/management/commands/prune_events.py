"""manage.py prune_events: delete old events (retention)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from eventjobs.db import connect, connection_params
from eventjobs.durations import duration_argument, in_words
from eventjobs.events.partitions import position_in_words
from eventjobs.events.retention import prune
from eventjobs.management.base import EventjobsCommand, Progress, positive_int


class Command(EventjobsCommand):
    help = (
        "Delete events older than --older-than, in batches (each its own short "
        "transaction), showing progress. Never deletes events the slowest consumer group "
        "has not handled yet, and names that group, unless --force. Dead letters keep "
        "their own copy. Event ids keep increasing after a purge."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", required=True, metavar="AGE", type=duration_argument,
                            help="Delete events created longer ago than this: 30d, 12h, 90m.")
        parser.add_argument("--force", action="store_true",
                            help="Also delete old events a consumer group has not handled yet.")
        parser.add_argument("--batch-size", type=positive_int, default=5000, metavar="N",
                            help="Events per DELETE statement (default %(default)s).")

    def run(self, *args: Any, **options: Any) -> None:
        age = options["older_than"]
        progress = Progress(self.stdout.write, "deleted", "event(s)")
        conn = connect(connection_params(self.database(options)), "eventjobs prune_events")
        try:
            result = prune(conn, older_than=age, force=options["force"],
                           batch_size=options["batch_size"], progress=progress.reached)
        finally:
            conn.close()
        self.stdout.write(f"prune_events: deleted {result.deleted} event(s) created more than "
                          f"{in_words(age)} ago ({progress.timing()})")
        if result.kept:
            assert result.blocking_position is not None  # set whenever events were kept
            self.stdout.write(f"kept {result.kept} older event(s): group "
                              f"{result.blocking_group} is at "
                              f"{position_in_words(result.blocking_position)} and has not "
                              "handled them yet (--force deletes them)")
