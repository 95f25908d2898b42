"""The demo's processes (web server, worker, consumers) as one tree under this process.

Each child runs in its own process group, so a Ctrl+C in the terminal reaches only
this leader, which then asks every child once (SIGTERM: runworker and consume finish
what they are doing and hand over). A second Ctrl+C, or a child that outlives the
grace period, gets SIGKILL. Whatever is left in a child's process group afterwards
(e.g. a worker's own children) is killed too, so nothing keeps running. On Linux each
child also gets SIGTERM if this leader dies without cleaning up.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the leader dies (Linux only)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@dataclass
class Child:
    name: str
    args: list[str]
    popen: subprocess.Popen | None = None
    pump: threading.Thread | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid


def _pump(child: Child, width: int, write: Callable[[str], None]) -> None:
    """Copy a child's output to ours, each line prefixed with the child's name."""
    assert child.popen is not None and child.popen.stdout is not None
    prefix = f"{child.name:<{width}} | "
    for line in iter(child.popen.stdout.readline, b""):
        write(prefix + line.decode(errors="replace").rstrip("\n") + "\n")


class ProcessTree:
    """Start children, wait for a signal or a child's death, stop them all."""

    def __init__(self, children: list[Child], env: dict[str, str], cwd: str,
                 grace_seconds: float = 40.0):
        self.children = children
        self.env = env
        self.cwd = cwd
        self.grace_seconds = grace_seconds
        self.stop_requested = threading.Event()
        self.signals = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            sys.stdout.write(text)
            sys.stdout.flush()

    def start(self) -> None:
        # Every child first, then the output threads: preexec_fn is only safe to run
        # while this process has no other threads.
        for child in self.children:
            child.popen = subprocess.Popen(
                child.args, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        width = max(len(c.name) for c in self.children)
        for child in self.children:
            child.pump = threading.Thread(target=_pump, args=(child, width, self.write),
                                          daemon=True)
            child.pump.start()

    def install_signals(self) -> None:
        def on_signal(signum, frame):
            self.signals += 1
            if self.signals == 1:
                self.write("\nstopping the demo (Ctrl+C again to stop at once)...\n")
                self.stop_requested.set()
            else:
                self._kill_all()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

    def wait(self, poll: float = 0.2) -> Child | None:
        """Until a stop is asked for (None) or a child exits on its own (that child)."""
        while not self.stop_requested.wait(poll):
            for child in self.children:
                if child.popen is not None and child.popen.poll() is not None:
                    return child
        return None

    def stop(self) -> None:
        """SIGTERM each running child, wait up to the grace period, then SIGKILL what is
        left, and empty every child's process group."""
        for child in self.children:
            if child.popen is not None and child.popen.poll() is None:
                try:
                    child.popen.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + self.grace_seconds
        for child in self.children:
            if child.popen is None:
                continue
            try:
                child.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.write(f"{child.name} did not stop within {self.grace_seconds:.0f}s; "
                           "killing it\n")
                self._kill_group(child)
                child.popen.wait()
        for child in self.children:
            self._empty_group(child)
            if child.pump is not None:
                child.pump.join(timeout=2)

    def _kill_all(self) -> None:
        for child in self.children:
            self._kill_group(child)

    @staticmethod
    def _kill_group(child: Child) -> None:
        if child.popen is None:
            return
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _empty_group(self, child: Child, wait_seconds: float = 3.0) -> None:
        """Give a child's own children a moment to exit after it, then kill the rest."""
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            try:
                os.killpg(child.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.1)
        self.write(f"{child.name}: processes left in its group after it exited; killing "
                   "them\n")
        self._kill_group(child)
