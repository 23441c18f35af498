"""Measuring helpers shared by the benches."""

from __future__ import annotations

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
