"""The AAF import's parse floor: lxml ``iterparse`` of a delivery's files, in one process
or in as many processes as the import used (issue 16: like with like).

The import reads the delivery in reader processes beside the importing one
(:mod:`yearchange_tui.aaf.pipeline`); its wall clock is compared with the same files
parsed by the same number of processes (files dealt to them largest first, each to the
least loaded), processes started inside the timing as the import's readers are.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from lxml import etree

from yearchange_tui.aaf.importer import cyclic_gc_paused

REQUESTS = ("addRequest", "modifyRequest", "deleteRequest")


def parse_files(files: list[Path]) -> int:
    """Bare ``iterparse`` of ``files`` (as hardened as the import's reader); the requests
    counted."""
    count = 0
    with cyclic_gc_paused():
        for path in files:
            for _event, element in etree.iterparse(str(path), events=("end",),
                                                   resolve_entities=False, no_network=True,
                                                   load_dtd=False, huge_tree=False):
                if element.tag in REQUESTS:
                    count += 1
                    element.clear()
    return count


def deal(files: list[Path], processes: int) -> list[list[Path]]:
    """``files`` dealt to ``processes`` lists, largest first, each to the least loaded."""
    shares: list[list[Path]] = [[] for _ in range(max(1, processes))]
    loads = [0] * len(shares)
    for path in sorted(files, key=lambda p: p.stat().st_size, reverse=True):
        least = loads.index(min(loads))
        shares[least].append(path)
        loads[least] += path.stat().st_size
    return [share for share in shares if share]


def _parse_share(share: list[str]) -> int:
    return parse_files([Path(name) for name in share])


def parallel_parse_floor(delivery: Path, processes: int) -> tuple[int, float]:
    """The delivery's XML files parsed by ``processes`` processes: (requests, seconds).

    One process parses in this one (no process to start); more are forked, started
    inside the timing.
    """
    files = sorted(Path(delivery).glob("*.xml"))
    if processes <= 1:
        started = time.perf_counter()
        count = parse_files(files)
        return count, time.perf_counter() - started
    shares = [[str(path) for path in share] for share in deal(files, processes)]
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    with context.Pool(len(shares)) as pool:
        count = sum(pool.map(_parse_share, shares, chunksize=1))
    return count, time.perf_counter() - started
