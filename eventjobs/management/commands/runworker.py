"""manage.py runworker: run eventjobs background jobs."""

from __future__ import annotations

import os
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, CommandParser
from django.tasks import task_backends
from django.tasks.exceptions import InvalidTaskBackend

from eventjobs.backends import PostgresBackend
from eventjobs.db import connection_params
from eventjobs.jobs.child import WorkerConfig
from eventjobs.jobs.supervisor import Supervisor
from eventjobs.management.base import EventjobsCommand


class Command(EventjobsCommand):
    help = (
        "Run eventjobs background jobs. Starts --concurrency child processes, each running "
        "one job at a time; wakes through LISTEN/NOTIFY and polls as a fallback. Logs to "
        "the console at -v when the project configured no logging for `eventjobs`. First "
        "SIGTERM/SIGINT: stop claiming, let running jobs finish within "
        "SHUTDOWN_GRACE_SECONDS, release the rest, exit 0. A second one exits at once."
    )
    logs_to_console = True
    refuse_in_transaction = (
        "runworker cannot run inside an open transaction (e.g. call_command in a TestCase "
        "or an atomic block): its worker processes have their own connections and cannot "
        "see jobs this transaction has not committed. In tests, call "
        "eventjobs.testing.run_jobs(), or use eventjobs.backends.ImmediateBackend.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queue", "-q", action="append", dest="queues", metavar="Q",
            help="Queue to take jobs from; repeat for several (default: every queue of the "
                 "backend's QUEUES, or every queue when QUEUES is []).")
        parser.add_argument(
            "--concurrency", "-c", type=int, default=None, metavar="N",
            help="Number of child processes, each running one job at a time (default: this "
                 f"host's {os.cpu_count() or 1} CPUs shared among the runworker processes "
                 "running on it, followed as they start and stop; set it higher for tasks "
                 "that mostly wait on the network).")
        parser.add_argument(
            "--burst", action="store_true",
            help="Exit once nothing is running and no job of these queues is due now. "
                 "Deferred jobs, retries waiting for backoff and jobs leased by other workers "
                 "are left (and counted in the exit line).")
        parser.add_argument(
            "--max-wait", type=float, metavar="S",
            help="With --burst: also wait up to S seconds in total for deferred, retrying and "
                 "elsewhere-leased jobs of these queues to become due and finish.")
        parser.add_argument(
            "--backend", default="default", metavar="ALIAS",
            help="TASKS alias of the eventjobs backend (default: %(default)s).")

    def backend(self, options: dict[str, Any]) -> PostgresBackend:
        alias = options["backend"]
        try:
            backend = task_backends[alias]
        except InvalidTaskBackend:
            raise CommandError(f"TASKS has no backend {alias!r} (--backend); it has "
                               f"{', '.join(task_backends.settings) or 'none'}") from None
        if not isinstance(backend, PostgresBackend):
            raise CommandError(
                f"TASKS[{alias!r}] uses {type(backend).__module__}.{type(backend).__name__}; "
                "runworker needs eventjobs.backends.PostgresBackend")
        return backend

    def database(self, options: dict[str, Any]) -> str:
        return self.backend(options).database

    def queues(self, backend: PostgresBackend, named: list[str] | None) -> list[str] | None:
        """The queues to run; None means every queue (a backend whose QUEUES is [])."""
        if not named:
            return sorted(backend.queues) or None
        unknown = sorted(set(named) - backend.queues) if backend.queues else []
        if unknown:
            raise CommandError(f"unknown queue(s) {', '.join(unknown)}; "
                               f"TASKS[{backend.alias!r}]['QUEUES'] is "
                               f"{', '.join(sorted(backend.queues))}")
        return named

    def run(self, *args: Any, **options: Any) -> None:
        backend = self.backend(options)
        queues = self.queues(backend, options["queues"])
        if options["concurrency"] is not None and options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        if options["max_wait"] is not None and not options["burst"]:
            raise CommandError("--max-wait only applies with --burst")
        try:
            job_options = backend.job_options
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        config = WorkerConfig(
            backend_alias=options["backend"],
            db_params=connection_params(backend.database),
            queues=tuple(queues) if queues is not None else None,
            options=job_options,
            burst=options["burst"],
            settings_module=os.environ.get("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE),
            burst_deadline=(time.time() + options["max_wait"]
                            if options["max_wait"] is not None else None),
        )
        code = Supervisor(config, options["concurrency"]).run()
        if code:
            raise SystemExit(code)

