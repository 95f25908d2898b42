"""Two-step signal handling shared by `runworker` and `consume`.

First SIGTERM/SIGINT: stop taking new work and finish what runs (graceful).
Second: stop at once (what was running is recovered by leases / rolled back).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

logger = logging.getLogger("eventjobs")


class TwoStepShutdown:
    """Installs handlers; `graceful` is set on the first signal, `on_second` runs on the next."""

    def __init__(self, name: str, on_first: Callable[[], None] | None = None,
                 on_second: Callable[[], None] | None = None):
        self.name = name
        self.graceful = threading.Event()
        self.on_first = on_first
        self.on_second = on_second

    def install(self) -> TwoStepShutdown:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if not self.graceful.is_set():
            logger.info("%s: %s received; finishing running work (send again to stop at once)",
                        self.name, name)
            self.graceful.set()
            if self.on_first:
                self.on_first()
        else:
            logger.warning("%s: second %s; stopping at once", self.name, name)
            if self.on_second:
                self.on_second()
