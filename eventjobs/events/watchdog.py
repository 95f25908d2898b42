"""Bounding a batch's time (EVENTJOBS["HANDLER_TIMEOUT_SECONDS"], Kafka's max.poll.interval).

A batch holds its cursor rows and the cluster's horizon for as long as its handlers run,
so a hung handler must not hold them forever, and must use up its attempts like any
failure. Three layers, from gentle to final:

1. In `consume` (main thread), a SIGALRM raises `HandlerTimeout` inside the running
   handler: it fails like any exception, is charged to its event, retried, dead-lettered.
2. After each handler the runner checks the clock, so a handler that swallowed the
   exception (or runs where no alarm can be set) fails the same way once it returns.
3. A handler that never returns (stuck in C code) cannot be stopped from inside: a
   watchdog thread ends the process after twice the timeout. The next owner of its
   partitions counts each delivery before running it, so the event is dead-lettered
   after its attempts.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType

logger = logging.getLogger("eventjobs.consume")


class HandlerTimeout(BaseException):
    """A handler ran longer than EVENTJOBS["HANDLER_TIMEOUT_SECONDS"] (a BaseException,
    so `except Exception` in the handler does not swallow it)."""


class BatchClock:
    """Times one batch's handlers; `alarm` arms SIGALRM (only from the main thread)."""

    def __init__(self, seconds: float, *, alarm: bool = False):
        self.seconds = seconds
        self.alarm = alarm and threading.current_thread() is threading.main_thread()
        self.started: float | None = None

    def start(self) -> None:
        self.started = time.monotonic()
        if self.alarm:
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def stop(self) -> None:
        if self.alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
        self.started = None

    def expired(self, now: float) -> bool:
        return self.started is not None and now - self.started > self.seconds

    def overdue(self, factor: float) -> bool:
        started = self.started
        return started is not None and time.monotonic() - started > self.seconds * factor


def install_alarm() -> None:
    """Make SIGALRM raise HandlerTimeout in whatever the main thread runs (a handler)."""

    def on_alarm(_signum: int, _frame: FrameType | None) -> None:
        raise HandlerTimeout(
            "the handler ran longer than EVENTJOBS['HANDLER_TIMEOUT_SECONDS']; move slow "
            "work into a job enqueued by the handler")

    signal.signal(signal.SIGALRM, on_alarm)


def start_watchdog(clock: BatchClock, factor: float = 2.0) -> threading.Thread:
    """End the process when a batch outlives `factor` x the timeout (layer 3)."""

    def watch() -> None:
        while True:
            time.sleep(min(1.0, clock.seconds / 4))
            if clock.overdue(factor):
                logger.critical("consume: a handler has run for more than %.0fs and could "
                                "not be interrupted; exiting so its batch rolls back (its "
                                "event is counted and dead-lettered after its attempts by "
                                "the next process)", clock.seconds * factor)
                os._exit(70)

    thread = threading.Thread(target=watch, name="eventjobs-watchdog", daemon=True)
    thread.start()
    return thread
