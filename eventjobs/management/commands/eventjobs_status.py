"""manage.py eventjobs_status: jobs per queue and status, live workers, consumer groups."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from eventjobs.management.base import EventjobsCommand
from eventjobs.status import collect


class Command(EventjobsCommand):
    help = ("Show jobs per queue and status, live worker processes and consumer groups "
            "(position, lag, dead letters). --json prints the stable machine-readable shape.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true",
                            help="Print JSON (shape version 1; every key is described in "
                                 "the operations guide).")

    def run(self, *args: Any, **options: Any) -> None:
        state = collect()
        if options["json"]:
            self.stdout.write(json.dumps(state, indent=2))
            return
        self.stdout.write("Jobs")
        if not state["jobs"]:
            self.stdout.write("  (none)")
        for queue, counts in state["jobs"].items():
            paused = "  PAUSED" if queue in state["paused_queues"] else ""
            self.stdout.write(f"  {queue:<20} " + "  ".join(f"{k} {v}" for k, v in counts.items())
                              + paused)
        self.stdout.write(f"Workers ({len(state['workers'])})")
        for w in state["workers"]:
            self.stdout.write(f"  {w['id']}  queues {', '.join(w['queues'])}  running "
                              f"{w['running']}  last seen {w['last_seen']}")
        if state["schedules"]:
            self.stdout.write("Schedules")
            for name, sch in state["schedules"].items():
                self.stdout.write(f"  {name:<20} {sch['spec']}  last {sch['last_tick'] or '-'}"
                                  f"  next {sch['next_tick'] or '-'}")
        if state["limits"]:
            self.stdout.write("Limited tasks (by limit key)")
            for key, lim in state["limits"].items():
                bounds = [f"concurrency {lim['concurrency']}"] if lim["concurrency"] else []
                bounds += [f"rate {lim['rate']}"] if lim["rate"] else []
                self.stdout.write(f"  {key:<20} {lim['task']}  {', '.join(bounds)}  waiting "
                                  f"{lim['waiting']}  ready {lim['ready']}  running "
                                  f"{lim['running']}")
        if state["groups"]:
            self.stdout.write("Consumer groups")
            for name, group in state["groups"].items():
                self.stdout.write(f"  {name:<20} {_group_line(group)}")


def _group_line(group: dict) -> str:
    lag = f"lag {group['lag']}{'+' if group.get('lag_capped') else ''}"
    parts = [lag if group.get("started", True) else f"not started, {lag} (pending)",
             f"dead letters {group['dead_letters']}"]
    if group["paused"]:
        parts.append("PAUSED")
    held = group.get("held_back_by")
    if held:
        who = f"pid {held['pid']}" if held.get("pid") else f"transaction {held.get('xid')}"
        parts.append(f"held back by {who} since {held.get('since')}")
    return "  ".join(parts)
