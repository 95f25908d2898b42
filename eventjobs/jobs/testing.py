"""Running jobs inside a test, on the test's own connection and transaction.

`run_jobs()` is what `runworker --burst` does, in-process: it claims every due job (of
`queue`, or of every queue), runs it and records its outcome, all on the caller's database
connection, so it works inside Django's `TestCase` and pytest-django's `db` fixture, where
the jobs a test enqueued are not committed yet. Public as `eventjobs.testing.run_jobs`.
"""

from __future__ import annotations

from dataclasses import replace

from django.conf import settings
from django.tasks import task_backends

from eventjobs.backends import PostgresBackend
from eventjobs.db import django_connection
from eventjobs.jobs.child import WorkerConfig
from eventjobs.jobs.reporting import DirectReporter
from eventjobs.jobs.worker import ChildWorker


def run_jobs(*, queue: str | None = None, backend: str = "default",
             raise_errors: bool = True) -> int:
    """Run every job that is due now, in order, until none is left; returns how many ran.

    With `raise_errors` (the default) the first task that raises re-raises here after its
    failed attempt is recorded, so a test sees the real error; otherwise failures are
    recorded (retries scheduled with their backoff, FAILED when spent) and it goes on.
    Jobs deferred to later, or waiting for a retry's backoff, are left. Never use it while
    a `runworker` serves the same database: it claims like one.
    """
    tasks_backend = task_backends[backend]
    if not isinstance(tasks_backend, PostgresBackend):
        raise TypeError(f"run_jobs(backend={backend!r}): TASKS[{backend!r}] is "
                        f"{type(tasks_backend).__name__}, not eventjobs.backends.PostgresBackend "
                        "(only its jobs are stored to run)")
    conn = django_connection(tasks_backend.database)
    config = WorkerConfig(
        backend_alias=backend, db_params={}, queues=(queue,) if queue else None,
        options=replace(tasks_backend.job_options, listen=False), burst=True,
        settings_module=settings.SETTINGS_MODULE)
    worker = ChildWorker(config, DirectReporter(conn), conn=conn)
    worker.start()
    try:
        while worker.run_once():
            if raise_errors and worker.last_exception is not None:
                raise worker.last_exception
    finally:
        worker.shutdown()
    return worker.ran
