"""manage.py consume: run event consumer groups."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from eventjobs.events.process import ConsumeProcess
from eventjobs.events.registry import get_group, groups
from eventjobs.events.runner import ClusterMismatch
from eventjobs.management.base import EventjobsCommand


class Command(EventjobsCommand):
    help = (
        "Run event consumer groups (all registered groups when none is named). Each batch "
        "of events runs its handlers and advances the group's position in one transaction. "
        "Several processes may run the same group: they share its key partitions under "
        "leases (same key: in order, one at a time). Wakes through LISTEN/NOTIFY and polls "
        "as a fallback. Logs to the console at -v when the project configured no logging "
        "for `eventjobs`. First SIGTERM/SIGINT: finish the current batch, hand the "
        "partitions over, exit 0; a second one exits at once (the open batch rolls back). "
        "Exit code 3: --burst gave up after --max-wait because an open transaction held "
        "delivery back."
    )
    logs_to_console = True
    refuse_in_transaction = (
        "consume cannot run inside an open transaction (e.g. call_command in a TestCase or "
        "an atomic block): its batches commit on this connection, and events published in "
        "this transaction are not committed, so it would wait for them. In tests, call "
        "eventjobs.testing.run_consumers() instead.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("groups", nargs="*", metavar="GROUP",
                            help="Consumer group(s) to run (default: every registered group).")
        parser.add_argument(
            "--burst", action="store_true",
            help="Exit once the group(s) have handled (or dead-lettered) every event committed "
                 "before this run started.")
        parser.add_argument(
            "--max-wait", type=float, metavar="S",
            help="With --burst: give up after S seconds and exit with code 3, naming the open "
                 "transaction (pid, since when) that holds delivery back, if any.")

    def run(self, *args: Any, **options: Any) -> None:
        if options["max_wait"] is not None and not options["burst"]:
            raise CommandError("--max-wait only applies with --burst")
        names = options["groups"] or sorted(groups())
        if not names:
            raise CommandError("no consumer groups are registered; decorate handlers with "
                               "@eventjobs.consumer(...) in an installed app's consumers.py")
        try:
            selected = [get_group(name) for name in names]
        except Exception as exc:
            raise CommandError(str(exc)) from None
        process = ConsumeProcess(selected, alias=self.database(options),
                                 burst=options["burst"], max_wait=options["max_wait"])
        try:
            code = process.run()
        except ClusterMismatch as exc:
            raise CommandError(str(exc), returncode=2) from None
        if code:
            raise SystemExit(code)
