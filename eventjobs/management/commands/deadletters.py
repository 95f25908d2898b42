"""manage.py deadletters: list, reprocess or discard the events groups gave up on."""

from __future__ import annotations

import json

from django.core.management.base import CommandError

from eventjobs.conf import database_alias
from eventjobs.events.deadletters import discard_dead_letters, reprocess_dead_letters
from eventjobs.management.subcommands import SubcommandCommand


class Command(SubcommandCommand):
    help = (
        "Dead letters: events whose handlers kept failing (after max_attempts) in a group.\n"
        "  list [--group G] [--status open|resolved|discarded|all] [--json]\n"
        "  reprocess (ID ... | --group G): run the group's handlers again (after a fix); "
        "success resolves the dead letter in the same transaction; idempotent\n"
        "  discard (ID ... | --group G): give up on them (kept as discarded)"
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="Show dead letters.")
        listing.add_argument("--group")
        listing.add_argument("--status", default="open",
                             choices=["open", "resolved", "discarded", "all"])
        listing.add_argument("--json", action="store_true")
        for name in ("reprocess", "discard"):
            p = sub.add_parser(name, help=f"{name.capitalize()} open dead letters.")
            p.add_argument("ids", nargs="*", type=int, metavar="ID")
            p.add_argument("--group", help="All open dead letters of this group.")

    def handle(self, *args, **options):
        action = options["action"]
        if action == "list":
            return self._list(options)
        ids = options["ids"] or None
        if ids is None and not options["group"]:
            raise CommandError(f"{action}: name dead letter IDs or --group G")
        if action == "reprocess":
            result = reprocess_dead_letters(ids, group=options["group"])
            self.stdout.write(f"resolved {len(result['resolved'])}, failed again "
                              f"{len(result['failed'])}"
                              + (f": {result['failed']}" if result["failed"] else ""))
            if result["failed"]:
                raise SystemExit(1)
        else:
            self.stdout.write(f"discarded {discard_dead_letters(ids, group=options['group'])}")

    def _list(self, options):
        from eventjobs.models import DeadLetter

        qs = DeadLetter.objects.using(database_alias()).order_by("id")
        if options["group"]:
            qs = qs.filter(group=options["group"])
        if options["status"] != "all":
            qs = qs.filter(status=options["status"].upper())
        rows = [{"id": d.id, "group": d.group, "event_id": d.event_id, "type": d.event_type,
                 "key": d.event_key, "attempts": d.attempts, "status": d.status,
                 "error": d.error, "created_at": d.created_at.isoformat()} for d in qs]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        for r in rows:
            self.stdout.write(f"{r['id']:>6}  {r['group']:<20} event #{r['event_id']} "
                              f"{r['type']}  attempts {r['attempts']}  {r['status']}  "
                              f"{r['error'][:120]}")
        self.stdout.write(f"{len(rows)} dead letter(s)")
