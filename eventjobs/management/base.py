"""The base of every eventjobs command.

Each command parses its arguments and implements `run()`; before it runs, `handle()`
checks that eventjobs' migrations are applied (one line saying "run `manage.py
migrate`" otherwise), refuses at once to start inside an open transaction where that
could only hang, and sends the `eventjobs` loggers to the console at `-v` when the
project configured no logging. Help text is wrapped to the terminal (one line per
sub-command kept), and sub-commands accept Django's common options after them
(`deadletters list --settings mysite.settings`).
"""

from __future__ import annotations

import argparse
import logging
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    DjangoHelpFormatter,
)
from django.db import DatabaseError, OperationalError, connections

from eventjobs.conf import database_alias
from eventjobs.logs import console_logging

logger = logging.getLogger("eventjobs")

# Long commands print their progress at most this often (seconds).
PROGRESS_EVERY_SECONDS = 2.0


class HelpFormatter(DjangoHelpFormatter):
    """Wraps each line of a description to the terminal width, keeping line breaks (a
    help text lists one sub-command per line); continuation lines are indented."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            body = line.lstrip()
            lead = indent + line[: len(line) - len(body)]
            if not body:
                lines.append("")
                continue
            lines.extend(textwrap.wrap(body, width, initial_indent=lead,
                                       subsequent_indent=lead + ("    " if lead else "")))
        return "\n".join(lines)


def _common_options(parser: argparse.ArgumentParser) -> None:
    """Django's options every command takes, accepted after a sub-command too. SUPPRESS:
    an option not given after the sub-command keeps the value given before it."""
    quiet = argparse.SUPPRESS
    parser.add_argument("-v", "--verbosity", type=int, choices=[0, 1, 2, 3], default=quiet,
                        help="Verbosity level; 0=minimal output, 1=normal output, 2=verbose "
                             "output, 3=very verbose output")
    parser.add_argument("--settings", default=quiet,
                        help='The Python path to a settings module, e.g. "mysite.settings".')
    parser.add_argument("--pythonpath", default=quiet,
                        help="A directory to add to the Python path.")
    parser.add_argument("--traceback", action="store_true", default=quiet,
                        help="Display a full stack trace on CommandError exceptions.")
    parser.add_argument("--no-color", action="store_true", default=quiet,
                        help="Don't colorize the command output.")
    parser.add_argument("--force-color", action="store_true", default=quiet,
                        help="Force colorization of the command output.")
    parser.add_argument("--skip-checks", action="store_true", default=quiet,
                        help="Skip system checks.")


def positive_int(text: str) -> int:
    """argparse `type=` for counts like --batch-size: a whole number of at least 1 (0 would
    delete nothing, batch after batch, forever)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def missing_migrations(alias: str) -> list[str]:
    """eventjobs' migrations not applied to database `alias`, in order. Reads the migration
    files' names and the recorder's table (loading every app's migration graph would cost
    a worker's start-up tens of milliseconds)."""
    from django.db.migrations.recorder import MigrationRecorder

    import eventjobs.migrations

    on_disk = {path.stem for path in Path(eventjobs.migrations.__file__).parent.glob("0*.py")}
    recorder = MigrationRecorder(connections[alias])
    if not recorder.has_table():
        return sorted(on_disk)
    applied = set(recorder.migration_qs.filter(app="eventjobs").values_list("name", flat=True))
    return sorted(on_disk - applied)


def require_migrations(alias: str, wait: bool = False) -> None:
    """CommandError (one line) unless every eventjobs migration is applied on `alias`.
    With `wait` (long-running commands), a database that does not answer yet (restarting,
    out of connections) is waited for, with one log line and a growing pause, like the
    running processes do; without it the command fails at once."""
    started = time.monotonic()
    while True:
        try:
            missing = missing_migrations(alias)
            break
        except OperationalError as exc:
            reason = " ".join(str(exc).split())
            if not wait:
                raise CommandError(f"cannot read database {alias!r}: {reason}") from None
            if time.monotonic() - started < 0.1:
                logger.error("database %r unavailable (%s); waiting for it", alias, reason)
            connections[alias].close()
            time.sleep(min(5.0, 0.5 + (time.monotonic() - started) / 4))
        except DatabaseError as exc:
            reason = " ".join(str(exc).split())
            raise CommandError(f"cannot read database {alias!r}: {reason}") from None
    if missing:
        raise CommandError(f"database {alias!r} lacks eventjobs migration(s) "
                           f"{', '.join(missing)}; run `manage.py migrate`")


class EventjobsCommand(BaseCommand):
    """Parses arguments, checks the set-up, then calls `run()`."""

    # `runworker` and `consume` cannot work inside the caller's open transaction: say why
    # at once instead of waiting on rows that transaction has not committed.
    refuse_in_transaction: str | None = None
    # Long-running commands log to the console when the project configured no logging.
    logs_to_console = False

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        return super().create_parser(prog_name, subcommand, formatter_class=HelpFormatter,
                                     **kwargs)

    def add_subcommand(self, subparsers: argparse._SubParsersAction, name: str, help: str,
                       description: str = "") -> argparse.ArgumentParser:
        """A sub-command with its own wrapped help and Django's common options."""
        parser = subparsers.add_parser(name, help=help, description=description or help,
                                       formatter_class=HelpFormatter)
        _common_options(parser)
        return parser

    def database(self, options: dict[str, Any]) -> str:
        """The database alias the command works on."""
        return database_alias()

    def handle(self, *args: Any, **options: Any) -> None:
        alias = self.database(options)
        if self.refuse_in_transaction and connections[alias].in_atomic_block:
            raise CommandError(self.refuse_in_transaction)
        if not self.logs_to_console:
            require_migrations(alias)
            return self.run(*args, **options)
        with console_logging(options.get("verbosity", 1)):
            # The long-running commands wait for a database that does not answer yet.
            require_migrations(alias, wait=True)
            return self.run(*args, **options)

    def run(self, *args: Any, **options: Any) -> None:
        raise NotImplementedError


class Progress:
    """Counts what a long command has done: prints the count and rate at most every
    PROGRESS_EVERY_SECONDS, and a summary line at the end."""

    def __init__(self, write: Callable[[str], None], done: str, unit: str):
        self.write = write
        self.done = done  # "deleted"
        self.unit = unit  # "SUCCESSFUL job(s)"
        self.count = 0
        self.started = self.shown = time.monotonic()

    def add(self, n: int) -> None:
        """`n` more done."""
        self.reached(self.count + n)

    def reached(self, total: int) -> None:
        """`total` done so far."""
        self.count = total
        now = time.monotonic()
        if now - self.shown >= PROGRESS_EVERY_SECONDS:
            self.shown = now
            self.write(f"  {self.done} {self.count} {self.unit} so far, {self.rate(now)}")

    def rate(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.started, 1e-6)
        return f"{self.count / elapsed:,.0f}/s"

    def timing(self) -> str:
        """'in 1.2s, 4,100/s'."""
        return f"in {time.monotonic() - self.started:.1f}s, {self.rate()}"

    def summary(self) -> str:
        """'deleted 5 event(s) in 1.2s, 4,100/s'."""
        return f"{self.done} {self.count} {self.unit} {self.timing()}"
