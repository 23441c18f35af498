"""``yearchange bench``: throughput against the machine's floor, measured in the same run.

- Step 3: rows deleted per second by the engine, against raw SQL ``DELETE`` statements of
  the same rows on a copy of the same database.
- Step 2: archive throughput (uncompressed MB/s) on a sample with realistic attachments,
  against the machine's floor for the same archives with the same number of processes
  (:mod:`yearchange_tui.bench.step2_floor`). With the same processes on both sides, the
  ratio is also the per-core ratio.
- AAF import (when the AAF package provides ``bench_aaf``): records per second end to
  end, against a bare lxml ``iterparse`` of the same files.

Figures are ratios to the floor (1.0 = as fast as the floor); absolute numbers are shown
for context only, each with the machine's 1-minute load average taken right after it
(a shared machine flatters neither side, but say so beside the figures).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from yearchange_tui.bench.aaf import bench_aaf
from yearchange_tui.bench.dry_run import bench_dry_run
from yearchange_tui.bench.step2_floor import floor_work, step2_floor
from yearchange_tui.changeover.runner import ChangeoverRunner
from yearchange_tui.changeover.verify import CHECK_THREADS, archive_problems
from yearchange_tui.changeover.zipwriter import archive_level
from yearchange_tui.ent.database import open_database
from yearchange_tui.sample.build import build_sample
from yearchange_tui.workflow.models import ArchiveManifest, Step
from yearchange_tui.workflow.units import current_school_year

STEP3_COUNT_SUFFIX = "supprimé"

# The same rows step 3 deletes, as plain SQL (the floor). :e establishment, :y year N.
# ``doomed_files`` (a temporary table) collects the stored files whose owners go.
_CLEAR_DOOMED = "DELETE FROM doomed_files"
_RAW_STEP3 = (
    ("DELETE FROM rubric_rights WHERE group_id IN (SELECT id FROM groups WHERE establishment_id=:e "
     "AND ((kind='free' AND lifetime='school_year') OR kind='option'))"),
    ("DELETE FROM group_managers WHERE group_id IN (SELECT id FROM groups WHERE establishment_id=:e "
     "AND ((kind='free' AND lifetime='school_year') OR kind='option'))"),
    ("DELETE FROM group_memberships WHERE group_id IN (SELECT id FROM groups WHERE "
     "establishment_id=:e AND ((kind='free' AND lifetime='school_year') OR kind='option'))"),
    ("DELETE FROM groups WHERE establishment_id=:e AND ((kind='free' AND lifetime='school_year')"
     " OR kind='option')"),
    "DELETE FROM course_replacements WHERE establishment_id=:e AND school_year_id<=:y",
    "DELETE FROM attendance_events WHERE establishment_id=:e AND school_year_id<=:y",
    "DELETE FROM roll_calls WHERE establishment_id=:e AND school_year_id<=:y",
    "DELETE FROM courses WHERE establishment_id=:e AND school_year_id<=:y",
    "DELETE FROM teaching_services WHERE establishment_id=:e AND school_year_id<=:y",
    "DELETE FROM alternations WHERE establishment_id=:e AND school_year_id<=:y",
    ("DELETE FROM grades WHERE assessment_id IN (SELECT id FROM assessments WHERE "
     "establishment_id=:e AND school_year_id<=:y)"),
    "DELETE FROM assessments WHERE establishment_id=:e AND school_year_id<=:y",
    ("DELETE FROM report_card_lines WHERE report_card_id IN (SELECT id FROM report_cards WHERE "
     "establishment_id=:e AND school_year_id<=:y)"),
    "DELETE FROM report_cards WHERE establishment_id=:e AND school_year_id<=:y",
    "DELETE FROM report_card_templates WHERE establishment_id=:e AND school_year_id<=:y",
    "DELETE FROM skill_assessments WHERE establishment_id=:e AND school_year_id<=:y",
    "DELETE FROM end_of_cycle_reports WHERE establishment_id=:e AND school_year_id<=:y",
    "DELETE FROM sanctions WHERE establishment_id=:e AND school_year_id<=:y",
    "DELETE FROM punishments WHERE establishment_id=:e AND school_year_id<=:y",
    "DELETE FROM mail_merges WHERE establishment_id=:e AND school_year_id<=:y",
    ("DELETE FROM epi_members WHERE epi_id IN (SELECT id FROM epis WHERE establishment_id=:e "
     "AND school_year_id<=:y)"),
    "DELETE FROM epis WHERE establishment_id=:e AND school_year_id<=:y",
    "DELETE FROM class_councils WHERE establishment_id=:e AND school_year_id<=:y",
    "DELETE FROM head_teachers WHERE establishment_id=:e AND school_year_id<=:y",
    "DELETE FROM periods WHERE establishment_id=:e AND school_year_id<=:y",
    "DELETE FROM opening_dates WHERE establishment_id=:e AND school_year_id<=:y",
    ("DELETE FROM class_memberships WHERE class_id IN (SELECT id FROM classes WHERE "
     "establishment_id=:e AND school_year_id<=:y)"),
    "DELETE FROM classes WHERE establishment_id=:e AND school_year_id<=:y",
    "DELETE FROM import_reports WHERE establishment_id=:e AND school_year_id<=:y",
    _CLEAR_DOOMED,
    ("INSERT INTO doomed_files SELECT stored_file_id FROM credentials_files WHERE "
     "establishment_id=:e AND school_year_id<=:y"),
    "DELETE FROM credentials_files WHERE establishment_id=:e AND school_year_id<=:y",
    ("DELETE FROM message_copies WHERE folder_id IN (SELECT f.id FROM message_folders f JOIN "
     "people p ON p.id=f.owner_id WHERE f.kind='archived' AND p.establishment_id=:e "
     "AND p.message_archive_policy='school_year')"),
    "DELETE FROM address_book_entries WHERE establishment_id=:e",
    ("INSERT INTO doomed_files SELECT stored_file_id FROM photos WHERE establishment_id=:e AND "
     "person_id IN (SELECT id FROM people WHERE kind='student')"),
    ("DELETE FROM photos WHERE establishment_id=:e AND person_id IN (SELECT id FROM people WHERE "
     "kind='student')"),
    "DELETE FROM stored_files WHERE id IN (SELECT id FROM doomed_files)",
)


def _rows_deleted(counts: dict[str, int]) -> int:
    """Rows step 3 deleted (files on disk are not rows)."""
    return sum(value for key, value in counts.items()
               if STEP3_COUNT_SUFFIX in key and "(disque)" not in key)


def _raw_step3(db_path: Path, establishment_ids: list[int], year_start: int) -> tuple[int, float]:
    connection = sqlite3.connect(db_path)
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    year = connection.execute("SELECT id FROM school_years WHERE start_year=?",
                              (year_start,)).fetchone()[0]
    connection.execute("CREATE TEMP TABLE doomed_files (id INTEGER)")
    deleted = 0
    started = time.perf_counter()
    for establishment_id in establishment_ids:
        with connection:
            for statement in _RAW_STEP3:
                cursor = connection.execute(statement, {"e": establishment_id, "y": year})
                if statement.startswith("DELETE") and statement != _CLEAR_DOOMED:
                    deleted += cursor.rowcount
    elapsed = time.perf_counter() - started
    connection.close()
    return deleted, elapsed


def archive_check(database: Any, storage: Path, establishment_ids: list[int]
                  ) -> tuple[float, int]:
    """Step 3's archive check alone, as its guard makes it before deleting (the SHA-256 of
    every step-2 archive, a rule of the model the raw floor does not pay): its wall
    seconds and the bytes hashed. Measured on its own, beside the engine's run."""
    with database.session() as session:
        year_id = current_school_year(session).id
        started = time.perf_counter()
        for establishment_id in establishment_ids:
            archive_problems(session, storage, establishment_id, year_id)
        seconds = time.perf_counter() - started
        hashed = session.scalar(select(func.coalesce(func.sum(ArchiveManifest.size), 0)).where(
            ArchiveManifest.school_year_id == year_id,
            ArchiveManifest.establishment_id.in_(establishment_ids)))
    return seconds, int(hashed or 0)


def archive_check_floor(database: Any, storage: Path, establishment_ids: list[int]) -> float:
    """The machine's floor for step 3's archive check: the same archive files read and
    SHA-256-hashed (``hashlib.file_digest``) on as many threads as the engine's check
    (:data:`~yearchange_tui.changeover.verify.CHECK_THREADS`), nothing else: its wall
    seconds. Any program that deletes year N only once its archives are proven intact
    (« vérifiées », product rule) pays this."""
    with database.session() as session:
        year_id = current_school_year(session).id
        paths = [storage / path for path in session.scalars(
            select(ArchiveManifest.relative_path).where(
                ArchiveManifest.school_year_id == year_id,
                ArchiveManifest.establishment_id.in_(establishment_ids)))]

    def digest(path: Path) -> str:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CHECK_THREADS) as pool:
        list(pool.map(digest, paths))
    return time.perf_counter() - started


def same_work_ratio(engine_seconds: float, rows_floor_seconds: float,
                    check_floor_seconds: float) -> float | None:
    """Step 3 against the floor of the same work: the rows' floor plus the archive check's
    floor (:func:`archive_check_floor`)."""
    if engine_seconds <= 0:
        return None
    return round((rows_floor_seconds + check_floor_seconds) / engine_seconds, 3)


def step3_without_check(rows: int, engine_seconds: float, check_seconds: float,
                        floor_seconds: float) -> float | None:
    """Engine/floor ratio once the archive check is taken out of the engine's time (an
    estimate: the check is timed apart); None when nothing is left to compare."""
    left = engine_seconds - check_seconds
    if left <= 0 or not rows:
        return None
    return round(floor_seconds / left, 3)


def load_average() -> float | None:
    """The machine's 1-minute load average (None where the system does not give it)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _copy_db(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database, with what its WAL holds: a plain file copy
    lost the commits a connection still open elsewhere (a heartbeat thread) had not
    checkpointed — step 1 then looked undone and every step-3 unit was refused."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    origin = sqlite3.connect(source)
    copy = sqlite3.connect(target)
    try:
        origin.backup(copy)
    finally:
        copy.close()
        origin.close()


def run_bench(establishments: int, work: Path, progress: Any = None, repeats: int = 3,
              workers: int | None = None, attachments: str = "realistic") -> dict[str, Any]:
    """Build a sample académie in ``work`` and measure steps 2 and 3 against their floors.

    Every measurement is repeated on a fresh copy of the same database, alternating engine
    and floor so neither gets a warmer cache; the best time of each is kept.
    """

    say = progress or (lambda line: None)
    workers = workers or min(2, os.cpu_count() or 1)
    say(f"construction d'une académie de {establishments} établissements…")
    started = time.perf_counter()
    sample = build_sample(work / "academie", establishments, seed=1, year=2025,
                          attachments=attachments)
    build_seconds = time.perf_counter() - started
    storage = work / "academie" / "storage"
    after_step1 = work / "apres-etape-1.db"
    after_step2 = work / "apres-etape-2.db"
    scratch = work / "mesure.db"

    def runner_on(path: Path) -> tuple[Any, Any]:
        database = open_database(f"sqlite:///{path}")
        return database, ChangeoverRunner(database, storage)

    database, runner = runner_on(work / "academie" / "yearchange.db")
    refs = runner.establishments()
    say("étape 1…")
    runner.run(Step.PURGE_TRASH, refs)
    database.dispose()
    _copy_db(work / "academie" / "yearchange.db", after_step1)
    _copy_db(after_step1, work / "passage-a-blanc.db")
    dry_run = bench_dry_run(*runner_on(work / "passage-a-blanc.db"), workers, repeats, say,
                            load_average)

    step2_times: list[float] = []
    manifests: Sequence[Any] = []
    for attempt in range(repeats):
        say(f"étape 2 ({workers} processus), mesure {attempt + 1}/{repeats}…")
        if attempt:
            # A real run writes new files: take away the previous attempt's archives so
            # this one does not measure replacing them.
            for relative_path, _ in manifests:
                (storage / relative_path).unlink(missing_ok=True)
        _copy_db(after_step1, scratch)
        database, runner = runner_on(scratch)
        started = time.perf_counter()
        outcomes2 = runner.run(Step.ARCHIVE, refs, workers=workers)
        step2_times.append(time.perf_counter() - started)
        with database.session() as session:
            manifests = session.execute(select(ArchiveManifest.relative_path,
                                               ArchiveManifest.size)).all()
        database.dispose()
    step2_load = load_average()
    _copy_db(scratch, after_step2)
    zlib_times: list[float] = []
    floor = floor_work(storage, [row[0] for row in manifests])
    uncompressed = floor.uncompressed
    for attempt in range(repeats):
        say(f"plancher : zlib et écriture des mêmes octets ({workers} processus), "
            f"mesure {attempt + 1}/{repeats}…")
        zlib_times.append(step2_floor(floor, workers, work))
    floor_load = load_average()

    step3_times: list[float] = []
    raw_times: list[float] = []
    check_times: list[float] = []
    check_floor_times: list[float] = []
    engine_rows = raw_rows = hashed = 0
    for attempt in range(repeats):
        say(f"étape 3 et plancher DELETE SQL bruts, mesure {attempt + 1}/{repeats}…")
        _copy_db(after_step2, scratch)
        database, runner = runner_on(scratch)
        seconds, hashed = archive_check(database, storage, [ref.id for ref in refs])
        check_times.append(seconds)
        check_floor_times.append(archive_check_floor(database, storage,
                                                     [ref.id for ref in refs]))
        started = time.perf_counter()
        outcomes3 = runner.run(Step.DELETE_OBSOLETE, refs, workers=1)
        step3_times.append(time.perf_counter() - started)
        database.dispose()
        engine_rows = sum(_rows_deleted(outcome.counts) for outcome in outcomes3)
        _copy_db(after_step2, scratch)
        raw_rows, seconds = _raw_step3(scratch, [ref.id for ref in refs], sample.academy.year)
        raw_times.append(seconds)
        step3_load = load_average()
        # Step 3 removed photo and credentials files: rebuild them for the next attempt.
        if attempt + 1 < repeats:
            _restore_deleted_files(work / "academie" / "yearchange.db", storage)

    engine_mb_s = uncompressed / 1e6 / min(step2_times)
    zlib_mb_s = uncompressed / 1e6 / min(zlib_times)
    engine_rows_s = engine_rows / min(step3_times)
    raw_rows_s = raw_rows / min(raw_times)
    result: dict[str, Any] = {
        "establishments": establishments,
        "repeats": repeats,
        "sample_build_seconds": round(build_seconds, 2),
        "step3": {"rows_engine": engine_rows, "rows_raw_sql": raw_rows,
                  "engine_seconds": [round(t, 3) for t in step3_times],
                  "raw_sql_seconds": [round(t, 3) for t in raw_times],
                  "engine_rows_per_s": round(engine_rows_s), "raw_sql_rows_per_s": round(raw_rows_s),
                  "ratio": round(engine_rows_s / raw_rows_s, 3),
                  "archive_check_seconds": [round(t, 3) for t in check_times],
                  "archive_check_bytes": hashed,
                  "ratio_without_archive_check": step3_without_check(
                      engine_rows, min(step3_times), min(check_times), min(raw_times)),
                  "archive_check_floor_seconds": [round(t, 3) for t in check_floor_times],
                  "ratio_same_work": same_work_ratio(min(step3_times), min(raw_times),
                                                     min(check_floor_times)),
                  "load": step3_load,
                  "all_done": all(o.status == "done" for o in outcomes3)},
        "step2": {"workers": workers, "archives": len(manifests),
                  "archive_bytes": sum(row[1] for row in manifests),
                  "uncompressed_bytes": uncompressed,
                  "engine_seconds": [round(t, 3) for t in step2_times],
                  "zlib_seconds": [round(t, 3) for t in zlib_times],
                  "archive_level": archive_level(),
                  "distinct_deflated_bytes": sum(map(len, floor.to_deflate)),
                  "distinct_stored_bytes": floor.stored,
                  "engine_mb_per_s": round(engine_mb_s, 2), "zlib_mb_per_s": round(zlib_mb_s, 2),
                  "engine_mb_per_s_per_core": round(engine_mb_s / workers, 2),
                  "zlib_mb_per_s_per_core": round(zlib_mb_s / workers, 2),
                  "ratio": round(engine_mb_s / zlib_mb_s, 3),
                  "load": step2_load, "floor_load": floor_load,
                  "all_done": all(o.status == "done" for o in outcomes2)},
    }
    result["dry_run"] = dry_run
    say("import AAF…")
    result["aaf"] = bench_aaf(work / "academie", quick=establishments <= 3)
    if result["aaf"]:
        result["aaf"]["load"] = load_average()
    say("console : 1 000 établissements, 8 unités en cours…")
    result["console"] = _console_in_own_process()
    if result["console"]:
        result["console"]["load"] = load_average()
    result["cores"] = os.cpu_count()
    return result


def _console_in_own_process() -> dict[str, Any] | None:
    """The console bench in a fresh process: its peak memory is the console's alone,
    not that of the académie built and imported above."""

    completed = subprocess.run(
        [sys.executable, "-m", "yearchange_tui.cli.main", "console-bench", "--establishments",
         "1000", "--running", "8", "--presses", "60", "--json"],
        capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if completed.returncode != 0:
        return None
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


def _restore_deleted_files(original_db: Path, storage: Path) -> None:
    """Put back the files step 3 deleted (photos, credentials) from the untouched sample."""
    connection = sqlite3.connect(original_db)
    rows = connection.execute(
        "SELECT f.relative_path FROM stored_files f WHERE f.id IN "
        "(SELECT stored_file_id FROM photos UNION SELECT stored_file_id FROM credentials_files)"
    ).fetchall()
    connection.close()
    for (relative_path,) in rows:
        path = storage / relative_path
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
