"""How many `runworker` processes share this host, for the default concurrency.

With `--concurrency` left to its default, each `runworker` runs the host's CPU count of
children *shared among the runworker processes on the host*: two runworkers on a 2-core
machine run one child each, not two. On that machine four children for two cores (beside
PostgreSQL) drained no-op jobs a fifth slower than two. Supervisors name their process
(`eventjobs-super`, as `ps -o comm` and `top` show it) so they can count one another;
the count is re-read every second, so a runworker that starts or stops later is seen.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

SUPERVISOR_NAME = b"eventjobs-super"  # at most 15 bytes (Linux task names)
CHILD_NAME = b"eventjobs-child"


def name_process(name: bytes) -> None:
    """Set this process's (main thread's) name, where Linux allows it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(15, ctypes.c_char_p(name))  # SET_NAME


def supervisors_here() -> int:
    """Live runworker supervisors on this host (this one included; at least 1)."""
    count = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 1
    for entry in entries:
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry}/comm", "rb") as f:
                if f.read().strip() == SUPERVISOR_NAME:
                    count += 1
    return max(count, 1)


def fair_share(cpus: int | None = None) -> int:
    """Children for this supervisor: the CPU count split among the host's supervisors."""
    return max(1, (cpus or os.cpu_count() or 1) // supervisors_here())
