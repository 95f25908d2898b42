"""Helpers for your project's tests: run pending events and jobs in the test's own process,
connection and transaction (Django's TestCase, pytest-django's `db` fixture).

    from eventjobs.testing import run_consumers, run_jobs

`manage.py consume` and `runworker` cannot do this: they commit on their own and would
wait for rows your test has not committed. See docs/testing.md.
"""

from __future__ import annotations

__all__ = ["run_consumers", "run_jobs"]


def run_consumers(*groups: str, raise_errors: bool = True) -> int:
    """Handle every pending event of the named consumer groups (all registered groups when
    none is named) on this connection, inside the current transaction, and advance their
    positions; returns how many handler calls ran. A failing handler's exception is
    raised; with `raise_errors=False` the event is retried and dead-lettered instead."""
    from eventjobs.events.testing import run_consumers as run

    return run(*groups, raise_errors=raise_errors)


def run_jobs(*, queue: str | None = None, raise_errors: bool = True,
             backend: str | None = None) -> int:
    """Run every job that is due (of `queue`, or of every queue) on this connection, inside
    the current transaction, recording outcomes; returns how many ran. A failing task's
    exception is raised after its attempt is recorded; with `raise_errors=False` failures
    are only recorded (a retry, or FAILED). `backend`: a TASKS alias other than default."""
    from eventjobs.jobs.testing import run_jobs as run

    extra = {} if backend is None else {"backend": backend}
    return run(queue=queue, raise_errors=raise_errors, **extra)
