"""The supervisor's view of its worker children, shared by its threads.

Each child has two pipes (reports in, notices out), a shared-memory slot saying which job
it runs now, and a gate (a process-shared lock) it holds for the instant it picks its next
job. `held` is every attempt the child claimed and has not reported finished: the
heartbeat renews their leases, and when the child dies the collector knows which one was
running (charged: WorkerLost) and which never started (released, uncharged).
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from uuid import UUID

from eventjobs.jobs.completer import Attempt
from eventjobs.jobs.slot import JobSlot

logger = logging.getLogger("eventjobs.worker")


@dataclass(eq=False)
class ChildLink:
    """One child process as the supervisor sees it."""

    index: int
    pid: int
    report: Connection  # the child writes, the collector reads
    control: Connection  # the supervisor writes notices, the child reads
    slot: JobSlot
    gate: Any  # multiprocessing Lock
    process: Any = None  # multiprocessing Process (its exit code, once it is gone)
    worker_id: str | None = None
    wants_confirmations: bool = False
    held: dict[int, Attempt] = field(default_factory=dict)
    # Attempts whose lease is lost (the child was told so): no longer renewed, and their
    # outcome is not recorded: the rescuer charges WorkerLost and the job runs again.
    lost: set[int] = field(default_factory=set)
    registered: bool = False  # its worker row exists (the heartbeat writes it)
    report_fd: int = -1  # the report pipe's descriptor (kept: it outlives a close)
    _poller: Any = None
    gone: bool = False
    send_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.report_fd = self.report.fileno()
        self._poller = select.poll()
        self._poller.register(self.report_fd, select.POLLIN)

    def readable(self) -> bool:
        """A report (or the pipe's end) is waiting."""
        return bool(self._poller.poll(0))


def stopped(pid: int) -> bool:
    """True when the process is stopped (SIGSTOP, a debugger) or already a zombie: its
    leases must not be renewed for it (Linux /proc; False where it cannot tell)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("T", "t", "Z", "X")


class Children:
    """Every live child, with one lock for what more than one thread touches."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._links: dict[int, ChildLink] = {}
        self._departed: list[str] = []  # worker ids whose rows the heartbeat deletes

    def add(self, link: ChildLink) -> None:
        with self.lock:
            self._links[link.pid] = link

    def remove(self, link: ChildLink) -> None:
        with self.lock:
            self._links.pop(link.pid, None)
            link.gone = True
            if link.worker_id:
                self._departed.append(link.worker_id)

    def all(self) -> list[ChildLink]:
        with self.lock:
            return list(self._links.values())

    def __len__(self) -> int:
        with self.lock:
            return len(self._links)

    def take_departed(self) -> list[str]:
        with self.lock:
            departed, self._departed = self._departed, []
            return departed

    # -- held attempts -------------------------------------------------------------------
    def hold(self, link: ChildLink, attempts: Iterable[Attempt]) -> None:
        with self.lock:
            link.held.update((a.job_id, a) for a in attempts)

    def unhold(self, link: ChildLink, job_id: int) -> Attempt | None:
        """The attempt the child reports finished, if it still holds its lease."""
        with self.lock:
            attempt = link.held.pop(job_id, None)
            if attempt is None and job_id in link.lost:
                link.lost.discard(job_id)
                logger.warning("job %s: its lease was lost while it ran; its outcome is not "
                               "recorded (it is rescued and runs again)", job_id)
            return attempt

    def held(self) -> list[tuple[ChildLink, Attempt]]:
        with self.lock:
            return [(link, a) for link in self._links.values() for a in link.held.values()]

    def drop_if_held(self, link: ChildLink, job_id: int, token: UUID) -> bool:
        """Forget an attempt whose lease was lost, unless it finished meanwhile."""
        with self.lock:
            attempt = link.held.get(job_id)
            if attempt is None or attempt.token != token:
                return False
            del link.held[job_id]
            link.lost.add(job_id)
            return True

    # -- notices to a child ----------------------------------------------------------------
    @staticmethod
    def tell(link: ChildLink, kind: str, body: Any) -> None:
        """Send a notice; a child that is gone is not told (it has nothing to act on)."""
        with link.send_lock, contextlib.suppress(OSError, ValueError):
            link.control.send((kind, body))
