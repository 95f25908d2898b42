"""Which OS processes and which database backends belong to a spawned process tree.

Every `spawn`ed manage.py runs in a session of its own (start_new_session), and its
children (runworker's spawned workers) stay in it. A backend is attributed to the tree
whose processes hold the client end of its TCP socket: /proc/<pid>/fd -> socket inode
-> /proc/net/tcp local port = pg_stat_activity.client_port. This needs no cooperation
from the code under test (application names, worker ids), so it counts every
connection, named or not.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from pathlib import Path

from tests.reliability.cluster import Backend


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    return text.rsplit(")", 1)[1].split()


def sessions(sids: Iterable[int]) -> dict[int, list[int]]:
    """{sid: live (non-zombie) processes of that session, its leader included}, from one
    scan of /proc."""
    found: dict[int, list[int]] = {sid: [] for sid in sids}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat(int(entry))
        # fields[0] = state, [1] = ppid, [2] = pgrp, [3] = session
        if fields and int(fields[3]) in found and fields[0] not in ("Z", "X"):
            found[int(fields[3])].append(int(entry))
    return {sid: sorted(pids) for sid, pids in found.items()}


def session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes of session `sid`, the session leader included."""
    return sessions([sid])[sid]


def children_of(pid: int) -> list[int]:
    """Live direct children of `pid` (runworker's worker processes)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                found.append(int(entry))
    return sorted(found)


def worker_children(pid: int) -> list[int]:
    """runworker's job-running children (forked at start, spawned when restarted), not
    multiprocessing's resource tracker."""
    found = []
    for child in children_of(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if b"resource_tracker" not in cmdline:
            found.append(child)
    return found


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except (FileNotFoundError, PermissionError):
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _tcp_ports_by_inode() -> dict[str, int]:
    ports = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            cols = line.split()
            local, inode = cols[1], cols[9]
            ports[inode] = int(local.rsplit(":", 1)[1], 16)
    return ports


def local_ports(pids: Iterable[int]) -> set[int]:
    """Local TCP ports of every socket the processes hold."""
    by_inode = _tcp_ports_by_inode()
    ports = set()
    for pid in pids:
        ports.update(by_inode[i] for i in _socket_inodes(pid) if i in by_inode)
    return ports


def backends_by_session(backends: Iterable[Backend], sids: Iterable[int]
                        ) -> dict[int, list[Backend]]:
    """{sid: the backends whose client is a process of that session}."""
    backends = list(backends)
    by_inode = _tcp_ports_by_inode()
    result = {}
    for sid, pids in sessions(sids).items():
        ports = {by_inode[i] for pid in pids for i in _socket_inodes(pid) if i in by_inode}
        result[sid] = [b for b in backends if b.client_port in ports]
    return result


def owners(backends: Iterable[Backend], sid: int) -> dict[int, int]:
    """{backend pid: pid of the process of session `sid` holding its client socket}."""
    by_inode = _tcp_ports_by_inode()
    port_owner = {by_inode[i]: pid for pid in session_pids(sid) for i in _socket_inodes(pid)
                  if i in by_inode}
    return {b.pid: port_owner[b.client_port] for b in backends if b.client_port in port_owner}


def backends_of(backends: Iterable[Backend], sid: int) -> list[Backend]:
    """The backends whose client is a process of session `sid`."""
    return backends_by_session(backends, [sid])[sid]


def sigkill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False
