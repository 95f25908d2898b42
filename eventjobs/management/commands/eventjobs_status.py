"""manage.py eventjobs_status: jobs per queue and status, live workers, consumer groups."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from eventjobs.status import collect


class Command(BaseCommand):
    help = ("Show jobs per queue and status, live worker processes and consumer groups "
            "(position, lag, dead letters). --json prints the stable machine-readable shape.")

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true",
                            help="Print JSON (shape version 1, see docs/operations.md).")

    def handle(self, *args, **options):
        state = collect()
        if options["json"]:
            self.stdout.write(json.dumps(state, indent=2))
            return
        self.stdout.write("Jobs")
        for queue, counts in state["jobs"].items():
            paused = "  PAUSED" if queue in state["paused_queues"] else ""
            self.stdout.write(f"  {queue:<20} " + "  ".join(f"{k} {v}" for k, v in counts.items())
                              + paused)
        self.stdout.write(f"Workers ({len(state['workers'])})")
        for w in state["workers"]:
            self.stdout.write(f"  {w['id']}  queues {','.join(w['queues'])}  running {w['running']}"
                              f"  last seen {w['last_seen']}")
        if state["schedules"]:
            self.stdout.write("Schedules")
            for name, sch in state["schedules"].items():
                self.stdout.write(f"  {name:<20} {sch['spec']}  last {sch['last_tick'] or '-'}"
                                  f"  next {sch['next_tick'] or '-'}")
        if state["groups"]:
            self.stdout.write("Consumer groups")
            for name, g in state["groups"].items():
                held = f"  held back by {g['held_back_by']}" if g.get("held_back_by") else ""
                self.stdout.write(f"  {name:<20} lag {g['lag']}  dead letters {g['dead_letters']}"
                                  f"{'  PAUSED' if g['paused'] else ''}{held}")
