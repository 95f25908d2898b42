"""The job running in this process, as its task can ask about it: `eventjobs.lease_lost()`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eventjobs.jobs.worker import ChildWorker

_active: ChildWorker | None = None


def activate(worker: ChildWorker) -> None:
    """Make `worker` the one `lease_lost()` asks (one per child process)."""
    global _active
    _active = worker


def lease_lost() -> bool:
    """True once the running attempt's lease is known lost (its worker could not renew it
    and another worker may run the job): a long task should stop; its outcome will not be
    recorded. False outside a worker."""
    worker = _active
    if worker is None or worker.current is None:
        return False
    return worker.lease_lost()
