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
# What a `manage.py runworker` is called before it names itself (`python3.12 manage.py`,
# `./manage.py`, `django-admin`): only these have their command line read.
_LAUNCHERS = (b"python", b"manage.py", b"django-admin")


def name_process(name: bytes) -> None:
    """Set this process's (main thread's) name, where Linux allows it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(15, ctypes.c_char_p(name))  # SET_NAME


def supervisors_here() -> int:
    """Live runworker supervisors on this host (this one included; at least 1): those that
    named themselves, and default `runworker` commands still setting up Django (two
    started together would otherwise each see only itself, and both run every CPU's
    children until the next check)."""
    me = os.getpid()
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
                name = f.read().strip()
            if name == SUPERVISOR_NAME or (name.startswith(_LAUNCHERS) and int(entry) != me
                                           and _default_runworker_starting(entry)):
                count += 1
    return max(count, 1)


def _default_runworker_starting(pid: str) -> bool:
    """Whether process `pid` is `manage.py runworker` without --concurrency that has not
    named itself yet (and is not a supervisor's child a moment before it renames itself)."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        args = f.read().decode("utf-8", "replace").split("\0")
    if "runworker" not in args:
        return False
    launcher = args[args.index("runworker") - 1] if args.index("runworker") else ""
    if not (launcher.endswith(("manage.py", "django-admin")) or launcher == "django"):
        return False
    if any(a in ("-c", "--concurrency") or a.startswith(("--concurrency=", "-c"))
           for a in args[args.index("runworker") + 1:]):
        return False
    with open(f"/proc/{pid}/stat", "rb") as f:
        parent = f.read().rsplit(b")", 1)[1].split()[1].decode()
    with open(f"/proc/{parent}/comm", "rb") as f:
        return f.read().strip() != SUPERVISOR_NAME


def fair_share(cpus: int | None = None) -> int:
    """Children for this supervisor: the CPU count split among the host's supervisors."""
    return max(1, (cpus or os.cpu_count() or 1) // supervisors_here())
