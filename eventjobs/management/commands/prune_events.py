"""manage.py prune_events: delete old events (retention)."""

from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand

from eventjobs.conf import database_alias
from eventjobs.db import connect, connection_params
from eventjobs.durations import duration_argument
from eventjobs.events.partitions import show_position
from eventjobs.events.retention import prune


def _at_least_one(text: str) -> int:
    """argparse `type=`: a batch size of 0 would delete nothing, forever."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class Command(BaseCommand):
    help = (
        "Delete events older than --older-than, in batches (each its own short "
        "transaction). Never deletes events the slowest consumer group has not handled "
        "yet, and names that group, unless --force. Dead letters keep their own copy. "
        "Event ids keep increasing after a purge."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", required=True, metavar="AGE", type=duration_argument,
                            help="Age like 30d, 12h, 90m.")
        parser.add_argument("--force", action="store_true",
                            help="Also delete events a group has not handled yet.")
        parser.add_argument("--batch-size", type=_at_least_one, default=5000, metavar="N",
                            help="Events deleted per transaction (at least 1; default 5000).")

    def handle(self, *args, **options):
        age = options["older_than"]
        conn = connect(connection_params(database_alias()), "eventjobs prune_events")
        try:
            result = prune(conn, older_than=age, force=options["force"],
                           batch_size=options["batch_size"])
        finally:
            conn.close()
        self.stdout.write(f"deleted {result.deleted} event(s)")
        if result.kept:
            self.stdout.write(f"kept {result.kept} older event(s): group "
                              f"{result.blocking_group} is at "
                              f"{show_position(result.blocking_position)} and has not handled "
                              "them yet (--force deletes them)")
