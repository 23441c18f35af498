"""Benchmark of the AAF import against the machine's floor (``yearchange bench``).

- Throughput: records per second (wall clock, and CPU time for a ratio insensitive to
  other load on the machine) of the whole import (parse, validate, write into
  a fresh SQLite database, commit) against lxml ``iterparse`` of the same files in
  the same run, the parse floor: for the wall clock with as many processes as the
  import used (:mod:`yearchange_tui.bench.aaf_floor`), for CPU time one process (the
  same parse has the same CPU however it is split). Target: a ratio of at least 0.5. The
  import is timed in a child process after a warm-up import of the same delivery
  into a scratch database (steady state, as in a long delivery); the first, cold
  import of a fresh process is reported too. The import reads the delivery in
  reader processes (:mod:`yearchange_tui.aaf.pipeline`): its CPU time is that of
  the importing process plus its readers (``ratio_cpu``); the importing process
  alone is shown too, and the CPU seconds of each side (``cpu_importer_s``,
  ``cpu_readers_s``, ``cpu_floor_s``). On PostgreSQL (``bench --db``) the CPU of the
  server's backends for the bench's database is read too when the server runs on
  this machine (``cpu_server_s``, ``ratio_cpu_with_server``). Where the import reads
  inline (:data:`~yearchange_tui.aaf.pipeline.MIN_CPUS`), the same import with reader
  processes forced is measured too (``ratio_cpu_readers_forced`` and its CPU split).
- Memory: peak resident memory of an import of the sample's delivery and of a
  delivery ten times larger, each in its own process: the importing process, its
  largest reader process, and their sum (a forked reader also counts the pages it
  shares with the importer: an upper bound). Target: the larger within 1.5 times
  the smaller (streaming keeps memory flat), on the sum.

Runs on the caller's thread; imports run in child processes.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from yearchange_tui.aaf.delivery import open_delivery
from yearchange_tui.aaf.importer import import_delivery
from yearchange_tui.aaf.pipeline import READER_ENV, reader_count, reader_method
from yearchange_tui.bench.aaf_floor import parallel_parse_floor
from yearchange_tui.bench.measure import peak_memory_kib
from yearchange_tui.ent.database import open_database
from yearchange_tui.sample.aaf_writer import write_aaf_delivery
from yearchange_tui.sample.roster import build_academy

TARGET_RATIO = 0.5
TARGET_MEMORY_RATIO = 1.5


def parse_floor(delivery: Path) -> tuple[int, float]:
    """Raw lxml ``iterparse`` of every XML file of a delivery in this one process:
    (requests, seconds) (:func:`~yearchange_tui.bench.aaf_floor.parse_files`, with the
    cyclic garbage collector paused as in the import)."""
    return parallel_parse_floor(delivery, 1)


def parse_floor_cpu(delivery: Path) -> tuple[int, float]:
    """:func:`parse_floor` timed in CPU seconds of this process (insensitive to other load)."""
    started = time.process_time()
    count, _ = parse_floor(delivery)
    return count, time.process_time() - started


def child_import(delivery: str, database_url: str,
                 warmup_url: str | None = None) -> dict[str, Any]:
    """Import a delivery into a fresh database; runs in a child process.

    Args:
        delivery: the delivery folder.
        database_url: the database timed.
        warmup_url: when given, a first import into this database warms the process.

    Returns:
        records, seconds (import only), CPU seconds (the importing process and its
        reader processes, and the importing process alone) and peak resident memory
        in MiB (the importing process, its largest reader process).
    """

    if warmup_url is not None:
        scratch = open_database(warmup_url)
        import_delivery(scratch, [delivery])
        scratch.dispose()
    with open_delivery([delivery]) as opened:
        groups = opened.groups()
        method = reader_method(sum(f.size for f in opened.files))
        readers = f"{reader_count(groups)} ({method})" if method else "0 (en ligne)"
        processes = 1 + (reader_count(groups) if method else 0)
    database = open_database(database_url)
    server_before = _server_cpu(database)
    children = _children_cpu()
    started = time.perf_counter()
    cpu_started = time.process_time()
    result = import_delivery(database, [delivery])
    seconds = time.perf_counter() - started
    own_cpu = time.process_time() - cpu_started
    readers_cpu = _children_cpu() - children
    server_seconds = _server_cpu_since(database, server_before)
    database.dispose()
    return {"records": result.records["total"], "seconds": seconds,
            "cpu_seconds": own_cpu + readers_cpu, "importer_cpu_seconds": own_cpu,
            "readers_cpu_seconds": readers_cpu, "server_cpu_seconds": server_seconds,
            "peak_mib": peak_memory_kib() / 1024,
            "reader_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "readers": readers, "processes": processes,
            "rejects": sum(result.rejects_by_code.values())}


def _server_cpu(database: Any) -> dict[int, float] | None:
    """CPU seconds so far of the PostgreSQL server processes of the bench's database (None:
    SQLite, or a server not on this machine)."""
    if database.engine.dialect.name != "postgresql":
        return None
    # Imported here: bench.postgres imports this module.
    from yearchange_tui.bench.postgres import server_cpu

    with database.engine.connect() as connection:
        return server_cpu(connection)


def _server_cpu_since(database: Any, before: dict[int, float] | None) -> float | None:
    """Server CPU seconds spent since ``before`` by the backends still open (a lower bound:
    a connection closed during the import takes its CPU with it)."""
    if before is None:
        return None
    # bench.postgres imports this module: imported on use, not at load (no cycle).
    from yearchange_tui.bench.postgres import cpu_between

    return cpu_between(before, _server_cpu(database))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_child(delivery: Path, work: Path, label: str, warm: bool,
               fresh_url: Callable[[str], str] | None = None,
               reader: str | None = None) -> dict[str, Any]:
    databases = [work / f"{label}.db", work / f"{label}-warmup.db"]
    for database in databases:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
    urls = ([fresh_url(name) for name in (label, f"{label}-warmup")[:2 if warm else 1]]
            if fresh_url is not None else [f"sqlite:///{database}" for database in databases])
    code = ("import json, sys; from yearchange_tui.bench.aaf import child_import; "
            "print(json.dumps(child_import(sys.argv[1], sys.argv[2], "
            "sys.argv[3] if len(sys.argv) > 3 else None)))")
    arguments = [str(delivery), urls[0]]
    if warm:
        arguments.append(urls[1])
    env = None if reader is None else {**os.environ, READER_ENV: reader}
    completed = subprocess.run([sys.executable, "-c", code, *arguments], capture_output=True,
                               text=True, check=False, env=env)
    if completed.returncode != 0:
        raise RuntimeError(f"import AAF du banc d'essai en échec : {completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _larger_delivery(sample_dir: Path, factor: int, target: Path) -> Path:
    summary = json.loads((sample_dir / "sample.json").read_text(encoding="utf-8"))
    count = len(summary["establishments"])
    year = int(summary["school_year"].split("-")[0])
    write_aaf_delivery(build_academy(count * factor, int(summary["seed"]), year), target)
    return target


def bench_aaf(out_dir_of_a_sample: Path, quick: bool,
              fresh_url: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Measure the AAF import of a sample académie's delivery and of one 10 times larger.

    Args:
        out_dir_of_a_sample: a ``yearchange sample`` output folder (its ``aaf/`` and
            ``sample.json`` are read; its database is not touched).
        quick: fewer repetitions.
        fresh_url: gives the URL of a new, empty database for a label (``bench --db``:
            PostgreSQL); default a SQLite file in a temporary folder.

    Returns:
        Records per second (import and parse floor) and their ratio for both sizes,
        peak memory of each import and the memory ratio, with the targets.
    """
    sample_dir = Path(out_dir_of_a_sample)
    delivery = sample_dir / "aaf"
    repeats = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="yearchange-bench-aaf-") as folder:
        work = Path(folder)
        larger = _larger_delivery(sample_dir, 10, work / "aaf-x10")
        runs_small = [_run_child(delivery, work, f"small-{i}", warm=True,
                                 fresh_url=fresh_url)
                      for i in range(repeats)]
        # The wall-clock floor parses with as many processes as the import used.
        processes = runs_small[0]["processes"]
        floor_small = min((parallel_parse_floor(delivery, processes)
                           for _ in range(repeats + 1)), key=lambda r: r[1])
        floor_small_cpu = min((parse_floor_cpu(delivery) for _ in range(repeats + 1)),
                              key=lambda r: r[1])
        cold_small = _run_child(delivery, work, "small-cold", warm=False,
                                fresh_url=fresh_url)
        # Read inline on this machine: the reader processes' cost is measured too.
        runs_forced = ([_run_child(delivery, work, f"small-readers-{i}", warm=True,
                                   fresh_url=fresh_url, reader="process")
                        for i in range(repeats)]
                       if runs_small[0]["readers"].startswith("0") else [])
        # Fixed costs are small against ten times the records: one cold run gives both
        # the throughput and the peak memory.
        cold_large = _run_child(larger, work, "large-cold", warm=False,
                                fresh_url=fresh_url)
        floor_large = min((parallel_parse_floor(larger, cold_large["processes"])
                           for _ in range(repeats)), key=lambda r: r[1])
        runs_large = [cold_large]
    best_small = min(runs_small, key=lambda r: r["seconds"])
    best_small_cpu = min(r["cpu_seconds"] for r in runs_small)
    best_small_importer_cpu = min(r["importer_cpu_seconds"] for r in runs_small)
    cpu_run = min(runs_small, key=lambda r: r["cpu_seconds"])
    server_cpu = cpu_run["server_cpu_seconds"]
    best_large = min(runs_large, key=lambda r: r["seconds"])
    small_rate = best_small["records"] / best_small["seconds"]
    large_rate = best_large["records"] / best_large["seconds"]
    floor_small_rate = floor_small[0] / floor_small[1]
    floor_large_rate = floor_large[0] / floor_large[1]
    # Peak memory of one import in a fresh process (no warm-up): importer and readers.
    peak_small = cold_small["peak_mib"] + cold_small["reader_peak_mib"]
    peak_large = cold_large["peak_mib"] + cold_large["reader_peak_mib"]
    forced = {}
    if runs_forced:
        forced_run = min(runs_forced, key=lambda r: r["cpu_seconds"])
        forced = {"readers_forced": forced_run["readers"],
                  "ratio_cpu_readers_forced": round(floor_small_cpu[1]
                                                    / forced_run["cpu_seconds"], 3),
                  "cpu_importer_s_readers_forced": round(forced_run["importer_cpu_seconds"], 3),
                  "cpu_readers_s_readers_forced": round(forced_run["readers_cpu_seconds"], 3)}
    return {
        "records": best_small["records"],
        "import_records_per_s": round(small_rate),
        "floor_records_per_s": round(floor_small_rate),
        "ratio": round(small_rate / floor_small_rate, 3),
        "ratio_cpu": round(floor_small_cpu[1] / best_small_cpu, 3),
        "ratio_cpu_importer_only": round(floor_small_cpu[1] / best_small_importer_cpu, 3),
        "readers": best_small["readers"],
        "floor_processes": processes,
        "floor_processes_x10": cold_large["processes"],
        # The CPU split of the best run (seconds): importing process, reader processes,
        # the floor (one bare iterparse), and the PostgreSQL server's backends (None on SQLite).
        "cpu_floor_s": round(floor_small_cpu[1], 3),
        "cpu_importer_s": round(cpu_run["importer_cpu_seconds"], 3),
        "cpu_readers_s": round(cpu_run["readers_cpu_seconds"], 3),
        "cpu_server_s": None if server_cpu is None else round(server_cpu, 3),
        "ratio_cpu_with_server": (None if server_cpu is None else
                                  round(floor_small_cpu[1] / (cpu_run["cpu_seconds"]
                                                              + server_cpu), 3)),
        "import_records_per_s_first_run": round(cold_small["records"] / cold_small["seconds"]),
        "records_x10": best_large["records"],
        "import_records_per_s_x10": round(large_rate),
        "floor_records_per_s_x10": round(floor_large_rate),
        "ratio_x10": round(large_rate / floor_large_rate, 3),
        "target_ratio": TARGET_RATIO,
        "peak_memory_mib": round(peak_small, 1),
        "peak_memory_mib_x10": round(peak_large, 1),
        "peak_memory_importer_mib": round(cold_small["peak_mib"], 1),
        "peak_memory_importer_mib_x10": round(cold_large["peak_mib"], 1),
        "peak_memory_reader_mib": round(cold_small["reader_peak_mib"], 1),
        "peak_memory_reader_mib_x10": round(cold_large["reader_peak_mib"], 1),
        "memory_ratio": round(peak_large / peak_small, 3),
        "target_memory_ratio": TARGET_MEMORY_RATIO,
        **forced,
        "rejects": best_small["rejects"],
        "repeats": repeats,
    }
