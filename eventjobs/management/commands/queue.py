"""manage.py queue: pause, resume and list job queues."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from eventjobs.jobs import queues
from eventjobs.management.base import EventjobsCommand


class Command(EventjobsCommand):
    help = (
        "Pause and resume job queues; takes effect at once for every runworker, and lasts "
        "across restarts.\n"
        "  pause QUEUE [QUEUE ...]: stop claiming the queues' jobs (running ones finish)\n"
        "  resume QUEUE [QUEUE ...]: claim them again (idle workers wake at once)\n"
        "  list: every queue and whether it is paused"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        for name, what in (("pause", "Stop claiming jobs of these queues; running jobs "
                                     "finish."),
                           ("resume", "Claim jobs of these queues again.")):
            p = self.add_subcommand(sub, name, what)
            p.add_argument("queues", nargs="+", metavar="QUEUE", help="Queue name(s).")
            p.add_argument("--backend", default="default", metavar="ALIAS",
                           help="TASKS alias of the eventjobs backend (default: %(default)s).")
        p = self.add_subcommand(sub, "list", "Show every queue and whether it is paused.")
        p.add_argument("--backend", default="default", metavar="ALIAS",
                       help="TASKS alias of the eventjobs backend (default: %(default)s).")

    def run(self, *args: Any, **options: Any) -> None:
        action, backend = options["action"], options["backend"]
        try:
            if action == "list":
                for state in queues.queue_states(backend=backend):
                    since = f" since {state['since']:%Y-%m-%d %H:%M:%S %Z}" \
                        if state["paused"] and state["since"] else ""
                    self.stdout.write(f"{state['name']:<20} "
                                      f"{'paused' if state['paused'] else 'active'}{since}")
                return
            change = queues.pause_queues if action == "pause" else queues.resume_queues
            names = change(*options["queues"], backend=backend)
        except (ValueError, TypeError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{'Paused' if action == 'pause' else 'Resumed'}: {', '.join(names)}")
