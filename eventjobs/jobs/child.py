"""A worker child's entry point and configuration, importable before Django is set up.

Children are forked from the supervisor at start (Django already set up) and spawned when
restarted (a fresh interpreter that must unpickle its arguments, then set Django up), so
this module imports nothing of Django's at import time.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Any

from eventjobs.conf import JobOptions


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a child needs; picklable."""

    backend_alias: str
    db_params: dict[str, Any]
    queues: tuple[str, ...] | None  # None: every queue
    options: JobOptions  # the backend's OPTIONS
    burst: bool
    settings_module: str
    # With --burst --max-wait: keep waiting for scheduled/leased jobs until this time.time().
    burst_deadline: float | None = None


def main(config: WorkerConfig, report: Any, control: Any, slot: Any, gate: Any,
         forked: bool, inherited: list[Any]) -> None:
    """Run one worker child until it is told to stop (or, with burst, runs out of work).
    `inherited`: the supervisor's pipe ends a forked child got by accident; closed first."""
    for end in inherited:
        end.close()
    from eventjobs.jobs.host import CHILD_NAME, name_process

    name_process(CHILD_NAME)  # a forked child would otherwise count as a supervisor
    # Ctrl-C reaches the whole process group; the supervisor decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ["DJANGO_SETTINGS_MODULE"] = config.settings_module
    if not forked:
        import django

        django.setup()
    from django.tasks.signals import task_finished

    from eventjobs.logs import quiet_unheard

    quiet_unheard("django.tasks")  # per-task INFO lines nobody would see

    from eventjobs.jobs import current
    from eventjobs.jobs import worker as worker_module
    from eventjobs.jobs.reporting import PipeReporter, SupervisorGone
    from eventjobs.jobs.supervisor import die_with_parent

    die_with_parent()
    reporter = PipeReporter(report, control, wants_confirmations=task_finished.has_listeners())
    worker = worker_module.ChildWorker(config, reporter, slot=slot, gate=gate)
    reporter.fallback = lambda: worker.session.conn
    reporter.on_orphaned = worker.request_stop
    current.activate(worker)
    signal.signal(signal.SIGTERM, lambda *_: worker.request_stop())
    try:
        worker.run()
    except SupervisorGone:
        # Nobody can record outcomes any more: stop; leases bring the jobs back.
        worker_module.logger.error("worker %s: supervisor gone; exiting", worker.worker_id)
