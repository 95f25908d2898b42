"""manage.py deadletters: list, reprocess or discard the events groups gave up on."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, CommandParser

from eventjobs.events.deadletters import discard_dead_letters, reprocess_dead_letters
from eventjobs.management.base import EventjobsCommand, Progress

# Dead letters reprocessed per call (each one is its own transaction anyway).
BATCH = 100


def no_such(what: str, ids: list[int]) -> str:
    """'no dead letter with id 9' / 'no dead letters with ids 8, 9'."""
    if len(ids) == 1:
        return f"no {what} with id {ids[0]}"
    return f"no {what}s with ids {', '.join(map(str, ids))}"


def known_groups(alias: str) -> set[str]:
    """Groups registered here, created by `consume`, or holding dead letters."""
    from eventjobs.events.registry import groups
    from eventjobs.models import ConsumerGroup, DeadLetter

    return (set(groups())
            | set(ConsumerGroup.objects.using(alias).values_list("name", flat=True))
            | set(DeadLetter.objects.using(alias).values_list("group", flat=True).distinct()))


def require_group(alias: str, name: str) -> None:
    """CommandError unless a consumer group `name` is known."""
    known = known_groups(alias)
    if name not in known:
        raise CommandError(f"no consumer group {name!r} (known: "
                           f"{', '.join(sorted(known)) or 'none'})")


class Command(EventjobsCommand):
    help = (
        "Dead letters: events whose handlers kept failing (after max_attempts) in a "
        "consumer group, which then moved on.\n"
        "  list [--group G] [--status open|resolved|discarded|all] [--json]\n"
        "  reprocess (ID ... | --group G): run the group's handlers again (after a fix); "
        "success resolves the dead letter in the same transaction; idempotent\n"
        "  discard (ID ... | --group G): give up on them (kept, marked discarded)"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION",
                                    title="actions")
        listing = self.add_subcommand(sub, "list", "Show dead letters, oldest first.")
        listing.add_argument("--group", metavar="G", help="Only this consumer group's.")
        listing.add_argument("--status", default="open",
                             choices=["open", "resolved", "discarded", "all"],
                             help="Only dead letters in this state (default: %(default)s).")
        listing.add_argument("--json", action="store_true",
                             help="Print a JSON list, one object per dead letter.")
        for name, help in (
                ("reprocess", "Run the group's handlers again for open dead letters (after "
                              "a fix); success resolves each in its handlers' transaction."),
                ("discard", "Give up on open dead letters (kept, marked discarded).")):
            p = self.add_subcommand(sub, name, help)
            p.add_argument("ids", nargs="*", type=int, metavar="ID",
                           help="Dead letter id(s), as `deadletters list` shows them.")
            p.add_argument("--group", metavar="G", help="Every open dead letter of this group.")

    def run(self, *args: Any, **options: Any) -> None:
        alias = self.database(options)
        if options["group"]:
            require_group(alias, options["group"])
        if options["action"] == "list":
            return self._list(alias, options)
        ids = options["ids"] or None
        if ids is None and not options["group"]:
            raise CommandError(f"{options['action']}: name dead letter IDs or --group G")
        self._report_skipped(alias, ids)
        if options["action"] == "reprocess":
            return self._reprocess(alias, ids, options["group"])
        discarded = discard_dead_letters(ids, group=options["group"])
        self.stdout.write(f"discarded {discarded} dead letter(s)")

    def _report_skipped(self, alias: str, ids: list[int] | None) -> None:
        """CommandError for ids no dead letter has; name those that are not open."""
        from eventjobs.models import DeadLetter, DeadLetterStatus

        if not ids:
            return
        states = dict(DeadLetter.objects.using(alias).filter(id__in=ids)
                      .values_list("id", "status"))
        missing = [i for i in dict.fromkeys(ids) if i not in states]
        if missing:
            raise CommandError(no_such("dead letter", missing))
        closed = [f"{i} ({status})" for i, status in states.items()
                  if status != DeadLetterStatus.OPEN]
        if closed:
            self.stdout.write(f"left as they are (not open): {', '.join(closed)}")

    def _reprocess(self, alias: str, ids: list[int] | None, group: str | None) -> None:
        from eventjobs.models import DeadLetter, DeadLetterStatus

        open_letters = DeadLetter.objects.using(alias).filter(status=DeadLetterStatus.OPEN)
        if ids is not None:
            open_letters = open_letters.filter(id__in=ids)
        if group is not None:
            open_letters = open_letters.filter(group=group)
        # In log order, as the group met them; in batches, to show progress.
        todo = list(open_letters.order_by("event_txid", "event_id").values_list("id", flat=True))
        progress = Progress(self.stdout.write, "reprocessed", "dead letter(s)")
        resolved: list[int] = []
        failed: list[int] = []
        for start in range(0, len(todo), BATCH):
            chunk = todo[start:start + BATCH]
            try:
                result = reprocess_dead_letters(chunk)
            except ImproperlyConfigured as exc:  # the group has no handlers here
                raise CommandError(str(exc)) from None
            resolved += result["resolved"]
            failed += result["failed"]
            progress.add(len(chunk))
        self.stdout.write(f"resolved {len(resolved)}, failed again {len(failed)}"
                          + (f": {', '.join(map(str, failed))}" if failed else "")
                          + f" ({progress.timing()})")
        if failed:
            raise SystemExit(1)

    def _list(self, alias: str, options: dict[str, Any]) -> None:
        from eventjobs.models import DeadLetter

        qs = DeadLetter.objects.using(alias).order_by("id")
        if options["group"]:
            qs = qs.filter(group=options["group"])
        if options["status"] != "all":
            qs = qs.filter(status=options["status"].upper())
        rows: list[dict[str, Any]] = [
            {"id": d.id, "group": d.group, "event_id": d.event_id, "type": d.event_type,
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
