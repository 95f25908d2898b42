"""manage.py runworker: run eventjobs background jobs."""

from __future__ import annotations

import os
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.tasks import task_backends

from eventjobs.backends import PostgresBackend
from eventjobs.db import connection_params
from eventjobs.jobs.child import WorkerConfig
from eventjobs.jobs.supervisor import Supervisor


class Command(BaseCommand):
    help = (
        "Run eventjobs background jobs. Starts --concurrency child processes, each running "
        "one job at a time; wakes through LISTEN/NOTIFY and polls as a fallback. First "
        "SIGTERM/SIGINT: stop claiming, let running jobs finish within "
        "SHUTDOWN_GRACE_SECONDS, release the rest, exit 0. A second one exits at once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--queue", "-q", action="append", dest="queues", metavar="Q",
            help="Queue to take jobs from; repeat for several (default: all of the backend's "
                 "QUEUES).")
        parser.add_argument(
            "--concurrency", "-c", type=int, default=os.cpu_count() or 1, metavar="N",
            help="Number of child processes, each running one job at a time "
                 "(default: CPU count, %(default)s here).")
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

    def handle(self, *args, **options):
        backend = task_backends[options["backend"]]
        if not isinstance(backend, PostgresBackend):
            raise CommandError(
                f"TASKS[{options['backend']!r}] uses {type(backend).__module__}."
                f"{type(backend).__name__}; runworker needs eventjobs.backends.PostgresBackend")
        # Every queue of the backend; with QUEUES empty (any name accepted), every queue.
        queues = options["queues"] or sorted(backend.queues) or None
        if backend.queues and queues is not None:
            unknown = sorted(set(queues) - backend.queues)
            if unknown:
                raise CommandError(f"unknown queue(s) {unknown}; TASKS[{options['backend']!r}]"
                                   f"['QUEUES'] is {sorted(backend.queues)}")
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        if options["max_wait"] is not None and not options["burst"]:
            raise CommandError("--max-wait only applies with --burst")
        config = WorkerConfig(
            backend_alias=options["backend"],
            db_params=connection_params(backend.database),
            queues=tuple(queues) if queues is not None else None,
            options=backend.job_options,
            burst=options["burst"],
            settings_module=os.environ.get("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE),
            burst_deadline=(time.time() + options["max_wait"]
                            if options["max_wait"] is not None else None),
        )
        code = Supervisor(config, options["concurrency"]).run()
        if code:
            raise SystemExit(code)
