"""Step 2's honest floor: the machine's own cost for the same archive bytes.

What any program writing the same archives must do, with the engine's number of
processes (so the ratio is also the per-core ratio):

- deflate, at the engine's level (:func:`archive_level`, with the engine's own raw-deflate
  call :func:`deflate_raw`), each *distinct* member the engine deflated — once per
  establishment, however many of its archives hold it (a classeur activity's page and
  attachment are in every student's archive, and the engine too compresses them once);
- store the members the engine stored (already compressed attachments): no CPU but
  their writing;
- write every archive byte (duplicates included: each archive holds its copy) into as
  many files of the same sizes, and make them durable the way the engine does: the
  disk's writeback started as each file is complete (:func:`start_writeback`, so the
  disk writes while the next files are made), then one :func:`sync_filesystem` per
  process (the engine syncs once per phase before recording its files).

Processes take whole establishments, like the engine's (the runner's unit of work is an
establishment: one process writes all of an establishment's archives). The floor gives
each process a share of establishments balanced by their bytes (largest first to the
least loaded process; the engine's pool takes them in its own order) — not a share of
single archives: with 3
establishments on 2 processes, archives spread evenly would give the slowest floor
process 1.5 establishments of bytes while any engine's slowest process has 2, and the
ratio would read 0.75 of the per-core truth. With many establishments the two agree.

Not in the floor: reading the database, rendering the pages, reading the attachments
from the storage, the CRC of stored members, the SHA-256 of each archive (the
manifest), the temporary name and rename of each file — the engine's own work, which the
ratio measures.
"""

from __future__ import annotations

import multiprocessing
import shutil
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from yearchange_tui.changeover.effects import start_writeback, sync_filesystem
from yearchange_tui.changeover.zipwriter import archive_level, deflate_raw


@dataclass
class FloorWork:
    """What step 2's floor does: the distinct members of the archives, and bytes to write."""

    uncompressed: int = 0
    """Bytes of every member of every archive (what the engine's throughput counts)."""
    written: int = 0
    """Bytes of the archives on disk (what the floor writes, then syncs)."""
    archive_sizes: list[int] = field(default_factory=list)
    """Size of each archive file (the floor writes as many files of these sizes)."""
    to_deflate: list[bytes] = field(default_factory=list)
    """Distinct members the engine deflated (each deflated once, like the engine)."""
    stored: int = 0
    """Bytes of the distinct members the engine stored (already compressed)."""
    stored_members: int = 0
    """How many distinct stored members."""
    archive_units: list[str] = field(default_factory=list)
    """The establishment of each archive (its path's first folder; ``""`` when none)."""
    deflate_units: list[str] = field(default_factory=list)
    """The establishment of each member of ``to_deflate``."""


def _unit(relative_path: str) -> str:
    """The establishment an archive belongs to: the first folder of its path (the UAI)."""
    head, separator, _ = relative_path.partition("/")
    return head if separator else ""


def floor_work(storage: Path, relative_paths: list[str]) -> FloorWork:
    """Read the archives step 2 wrote: the work of its floor, duplicates counted once per
    establishment.

    Two members are the same when their CRC, size and compression method match (the
    engine writes the same compressed bytes for the same content).
    """
    seen: set[tuple[str, int, int, int]] = set()
    work = FloorWork()
    for relative_path in relative_paths:
        if not relative_path.endswith(".zip"):
            continue
        size = (storage / relative_path).stat().st_size
        work.written += size
        work.archive_sizes.append(size)
        unit = _unit(relative_path)
        work.archive_units.append(unit)
        with zipfile.ZipFile(storage / relative_path) as archive:
            for info in archive.infolist():
                work.uncompressed += info.file_size
                key = (unit, info.CRC, info.file_size, info.compress_type)
                if key in seen:
                    continue
                seen.add(key)
                if info.compress_type == zipfile.ZIP_STORED:
                    work.stored += info.file_size
                    work.stored_members += 1
                else:
                    work.to_deflate.append(archive.read(info))
                    work.deflate_units.append(unit)
    return work


def _floor_share(payloads: list[bytes], level: int, sizes: list[int], folder: str) -> float:
    """One process's share of the floor: deflate its members, write its share of the
    archive files (their sizes, compressed bytes first, then zeros) and sync them.
    Seconds, measured inside the process."""
    started = time.perf_counter()
    blocks = [deflate_raw(payload, level) for payload in payloads]
    padding = memoryview(bytes(1 << 20))
    source = iter(blocks)
    pending: bytes | memoryview = b""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for number, size in enumerate(sizes):
        with open(target / f"{number}.zip", "wb") as sink:
            left = size
            while left > 0:
                if not pending:
                    pending = next(source, b"") or padding
                piece = pending[:left]
                sink.write(piece)
                left -= len(piece)
                pending = pending[len(piece):] if pending is not padding else b""
            start_writeback(sink)
    sync_filesystem(target)
    return time.perf_counter() - started


def _balanced(items: list[int], workers: int) -> list[list[int]]:
    """Indexes of ``items`` (sizes) in ``workers`` shares of about equal total, largest first."""
    shares: list[list[int]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for index in sorted(range(len(items)), key=lambda i: items[i], reverse=True):
        lightest = loads.index(min(loads))
        shares[lightest].append(index)
        loads[lightest] += items[index]
    return shares


def floor_shares(work: FloorWork, workers: int) -> tuple[list[list[bytes]], list[list[int]]]:
    """Each process's members to deflate and archive sizes to write: whole establishments,
    balanced by their archives' bytes (largest first)."""
    units = sorted(set(work.archive_units))
    unit_bytes = [0] * len(units)
    position = {unit: index for index, unit in enumerate(units)}
    for unit, size in zip(work.archive_units, work.archive_sizes, strict=True):
        unit_bytes[position[unit]] += size
    share_of = {units[i]: number
                for number, share in enumerate(_balanced(unit_bytes, workers)) for i in share}
    payload_shares: list[list[bytes]] = [[] for _ in range(workers)]
    for unit, payload in zip(work.deflate_units, work.to_deflate, strict=True):
        payload_shares[share_of[unit]].append(payload)
    size_shares: list[list[int]] = [[] for _ in range(workers)]
    for unit, size in zip(work.archive_units, work.archive_sizes, strict=True):
        size_shares[share_of[unit]].append(size)
    return payload_shares, size_shares


def step2_floor(work: FloorWork, workers: int, folder: Path) -> float:
    """Step 2's floor with the engine's number of processes: seconds of the slowest share.

    Each process takes whole establishments (balanced by their archives' bytes, largest
    first), deflates their distinct members at the engine's level and writes (then syncs)
    their archive files; stored members cost their writing.
    """
    payload_shares, size_shares = floor_shares(work, workers)
    level = archive_level()
    targets = [str(folder / f"plancher-{index}") for index in range(workers)]
    try:
        if workers == 1:
            return _floor_share(payload_shares[0], level, size_shares[0], targets[0])
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            times = list(pool.map(_floor_share, payload_shares, [level] * workers,
                                  size_shares, targets))
        return max(times)
    finally:
        for target in targets:
            shutil.rmtree(target, ignore_errors=True)
