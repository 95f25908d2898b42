"""manage.py consumer_group: replay, skip, pause and resume consumer groups."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from eventjobs.db import django_connection
from eventjobs.durations import parse_time
from eventjobs.events import control
from eventjobs.events import store as eventstore
from eventjobs.events.partitions import position_in_words
from eventjobs.events.registry import groups
from eventjobs.exceptions import GroupNotFound
from eventjobs.management.base import EventjobsCommand
from eventjobs.models import ConsumerGroup


class Command(EventjobsCommand):
    help = (
        "Control consumer groups; takes effect even while `consume` runs (the running "
        "process finishes its current batch, then reloads).\n"
        "  reset GROUP --to-beginning | --to-event ID | --to-time T | --to-end: move the "
        "group's position (--to-event re-delivers ID and everything after it; --to-time "
        "starts at the first event created at or after T, may re-deliver, never skips)\n"
        "  pause GROUP / resume GROUP: stop / restart delivery to every process of the group\n"
        "  forget GROUP: drop a retired group's cursors, so it no longer holds retention "
        "back (its dead letters stay)\n"
        "  translate [GROUP ...]: after restoring a dump into another PostgreSQL cluster, "
        "re-anchor cursors by event id (consume refuses to run until then)"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION",
                                    title="actions")
        reset = self.add_subcommand(sub, "reset", "Move a group's position (replay or skip).")
        reset.add_argument("group", metavar="GROUP", help="The consumer group to move.")
        where = reset.add_mutually_exclusive_group(required=True)
        where.add_argument("--to-beginning", action="store_true",
                           help="Re-deliver every retained event.")
        where.add_argument("--to-event", type=int, metavar="ID",
                           help="Re-deliver event ID and everything after it.")
        where.add_argument("--to-time", metavar="T",
                           help="ISO 8601 time (naive = UTC) or an age like 2h: start at the "
                                "first event created at or after it.")
        where.add_argument("--to-end", action="store_true",
                           help="Skip every event committed so far.")
        for name, help in (
                ("pause", "Stop delivering events to the group, in every process running it "
                          "(its position is kept; events wait)."),
                ("resume", "Deliver events to a paused group again, from where it stopped."),
                ("forget", "Forget a retired group: drop its cursors and membership so it no "
                           "longer holds retention back (its dead letters stay; a later "
                           "`consume` of it starts afresh).")):
            p = self.add_subcommand(sub, name, help)
            p.add_argument("group", metavar="GROUP", help="The consumer group's name.")
        translate = self.add_subcommand(
            sub, "translate", "After a dump/restore into another cluster: re-anchor cursors "
                              "by event id and move copied txids below this cluster's horizon.")
        translate.add_argument("groups", nargs="*", metavar="GROUP",
                               help="Only these groups (default: every group from the other "
                                    "cluster).")

    def run(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        alias = self.database(options)
        if action == "translate":
            for name in options["groups"]:
                self._require_stored(alias, name)
            return self._translate(alias, options["groups"])
        name = options["group"]
        try:
            if action == "forget":
                control.forget(name)
                self.stdout.write(f"group {name}: forgotten; its cursors are dropped and it no "
                                  "longer holds retention back (a `consume` of it starts "
                                  "afresh)")
            elif action in ("pause", "resume"):
                changed = (control.pause if action == "pause" else control.resume)(name)
                self.stdout.write(f"group {name}: {action}d" if changed
                                  else f"group {name}: already {action}d")
            else:
                plan = control.reset(name, self._target(options))
                self.stdout.write(
                    f"group {name}: reset to {position_in_words(plan.position)}; "
                    f"{plan.redeliveries}{'+' if plan.redeliveries_capped else ''} handled "
                    "event(s) will be delivered again by `consume`")
        except GroupNotFound:
            self._require_stored(alias, name)
            raise
        except (LookupError, ValueError) as exc:
            raise CommandError(str(exc).strip("'\"")) from None

    def _require_stored(self, alias: str, name: str) -> None:
        """CommandError unless `consume` created group `name` in the database."""
        stored = sorted(ConsumerGroup.objects.using(alias).values_list("name", flat=True))
        if name not in stored:
            registered = " (it is registered, but `consume` has not run it yet)" if (
                name in groups()) else ""
            raise CommandError(f"no consumer group {name!r} in the database{registered}; "
                               f"known: {', '.join(stored) or 'none'}")

    def _target(self, options: dict[str, Any]) -> control.Target:
        if options["to_beginning"]:
            return "beginning"
        if options["to_end"]:
            return "end"
        if options["to_event"] is not None:
            return options["to_event"]
        try:
            return parse_time(options["to_time"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None

    def _translate(self, alias: str, names: list[str]) -> None:
        with transaction.atomic(using=alias):
            conn = django_connection(alias)
            system_id = eventstore.system_identifier(conn)
            if system_id is None:
                raise CommandError("cannot read pg_control_system(); run as a superuser or a "
                                   "member of pg_monitor")
            others = ConsumerGroup.objects.using(alias).exclude(system_identifier=system_id)
            if names:
                others = others.filter(name__in=names)
            stale = list(others.values_list("name", flat=True))
            if not stale:
                self.stdout.write("every group already belongs to this cluster; nothing to do")
                return
            # Old txids are compared before they are rebased: first the cursors, then events.
            anchors = {}
            for name in stale:
                anchors[name] = [
                    eventstore.first_unhandled_id(conn, (c["txid"], c["event_id"]))
                    for c in eventstore.cursors_of_group(conn, name)]
            rebased = eventstore.rebase_events(conn)
            for name in stale:
                eventstore.translate_group(conn, group=name, system_id=system_id,
                                           first_ids=anchors[name])
                at = ", ".join(f"#{i}" for i in sorted(set(anchors[name])))
                self.stdout.write(f"group {name}: cursors re-anchored at event(s) {at}")
        self.stdout.write(f"{rebased} event(s) copied from the old cluster moved below the "
                          "horizon; consume may run again")
