"""`@task(atomic=True)`: exactly-once jobs for database work.

The task body runs inside `transaction.atomic()` on the backend's database, and the same
transaction records the job SUCCESSFUL, fenced by the attempt's lease token. If the task
raises (or snoozes), if the lease was lost (the job was rescued and may run elsewhere), or
if the worker dies before the commit, both roll back together. So a task whose effects are
all in that database takes effect exactly once, however often it is re-run after crashes.

The price: a transaction open for the task's whole duration (holding its row locks and the
cluster's snapshot horizon, which delays vacuum and event consumers): keep such tasks short.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from django.db import transaction
from django.tasks import Task, TaskResult

from eventjobs.db import django_connection
from eventjobs.exceptions import describe
from eventjobs.jobs import store as jobstore
from eventjobs.jobs.executor import Outcome, execute


def execute_atomic(task: Task, task_result: TaskResult, sender: type, alias: str,
                   job_id: int, token: UUID, started: float,
                   now: Callable[[], float]) -> Outcome:
    """Run the attempt and, if it returns, record its success in its own transaction.
    `outcome.recorded` says the outcome is in the database already (ok: SUCCESSFUL; not
    ok: the lease was lost and everything rolled back)."""
    try:
        # One transaction for the body and its outcome: both commit, or neither.
        with transaction.atomic(using=alias):
            outcome = execute(task, task_result, sender)
            if not outcome.ok:
                transaction.set_rollback(True, using=alias)
                return outcome
            assert outcome.return_json is not None  # an attempt that returned has its JSON
            kept = jobstore.finish_successes(django_connection(alias), [
                (job_id, token, outcome.return_json, started, now())])
            outcome.recorded = True
            if job_id not in kept:  # rescued from us: undo the task's work too
                outcome.ok = False
                transaction.set_rollback(True, using=alias)
            else:
                outcome.limit_key = kept[job_id]
    except Exception as exc:  # noqa: BLE001 - the commit failed, or the task broke the transaction
        return Outcome(ok=False, error=describe(exc), exception=exc)
    return outcome
