"""Measuring helpers shared by the benches."""

from __future__ import annotations

import os
import resource


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
    """CPU time of this process and of its children that ended (reaped worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


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
