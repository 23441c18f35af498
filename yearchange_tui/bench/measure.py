"""Measuring helpers shared by the benches."""

from __future__ import annotations

import os
import resource
import time
from multiprocessing import forkserver


def peak_memory_kib() -> int:
    """Peak resident memory of this process in KiB.

    ``VmHWM`` from ``/proc/self/status`` where available: unlike ``ru_maxrss`` it
    is not inherited from the parent across ``exec``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def cpu_seconds() -> float:
    """CPU time of this process and of its children that ended (reaped worker processes),
    including the runner's workers forked by multiprocessing's fork server (they are its
    children, not ours: its reaped children's time is read from ``/proc``)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
            + _fork_server_children_cpu())


def _fork_server_children_cpu() -> float:
    """CPU seconds of the fork server's children that ended (0 without a fork server).

    Waits (up to 2 s) for the server to reap the workers that just ended."""
    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    if not pid:
        return 0.0
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as listing:
                if not listing.read().strip():
                    break
        except OSError:
            break
        time.sleep(0.01)
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[13]) + int(fields[14])) / _TICKS


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of a local process so far (None: no such process)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def local_postgres_cpu(pid: int) -> float | None:
    """CPU seconds of a local PostgreSQL process (None: not on this machine, or another
    program that happens to have a remote backend's pid here)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            command = cmdline.read()
    except OSError:
        return None
    if not command.startswith(b"postgres"):
        return None
    return process_cpu(pid)
