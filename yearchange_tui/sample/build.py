"""Build a sample académie on disk: database, storage, AAF delivery, timetables.

Layout of the output folder (the CLI contract of ``yearchange sample``)::

    DIR/yearchange.db      SQLite database with year N content (unless ``--db`` names
                           another, empty, database: PostgreSQL for an académie at scale)
    DIR/storage/           documents, attachments, photos, credentials files
    DIR/aaf/               the N+1 AAF "complet d'initialisation" (ficAlimMENESR)
    DIR/timetables/        the N+1 timetable exports (STS-web, UDT, EDT)
    DIR/sample.json        what was built (seed, year, counts)
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from yearchange_tui.ent.database import (
    Database,
    DatabaseError,
    display_url,
    open_database,
    refresh_statistics,
    tables_changed_in_transaction,
)
from yearchange_tui.sample.aaf_writer import write_aaf_delivery
from yearchange_tui.sample.attachments import DEFAULT_PROFILE
from yearchange_tui.sample.fill import (
    FillStats,
    SampleDatabaseNotEmptyError,
    fill_database,
    refuse_filled_database,
)
from yearchange_tui.sample.roster import SampleAcademy, build_academy
from yearchange_tui.sample.timetable_writer import write_timetables

MARKER_FILE = ".yearchange-sample"
_OWNED = ("yearchange.db", "yearchange.db-wal", "yearchange.db-shm", "storage", "aaf",
          "timetables", "sample.json", MARKER_FILE)


class SampleOutputError(Exception):
    """The output folder cannot receive a sample (French message)."""


@dataclass
class SampleResult:
    """What ``build_sample`` produced."""

    out_dir: Path
    db_url: str
    storage_dir: Path
    academy: SampleAcademy
    stats: FillStats
    aaf_files: list[Path]
    timetable_files: list[Path]
    seconds: float
    attachments: str = DEFAULT_PROFILE

    def summary(self) -> dict[str, object]:
        """A JSON-ready description."""
        return {
            "seed": self.academy.seed,
            "school_year": self.academy.year_label,
            "next_school_year": self.academy.next_year_label,
            "establishments": [
                {"uai": e.uai, "name": e.name, "kind": e.kind,
                 "students": sum(1 for s in e.students if s.class_code_n is not None),
                 "classes": len(e.classes_n), "anomalies_in_aaf": e.anomalies}
                for e in self.academy.establishments
            ],
            "rows": dict(sorted(self.stats.rows_per_table.items())),
            "files": self.stats.files,
            "bytes": self.stats.bytes,
            "attachments": self.attachments,
            "aaf_files": [path.name for path in self.aaf_files],
            "timetable_files": [path.name for path in self.timetable_files],
            "db": display_url(self.db_url),
            "storage": str(self.storage_dir),
        }


def _prepare(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise SampleOutputError(f"« {out_dir} » existe et n'est pas un dossier.")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / MARKER_FILE).is_file():
            raise SampleOutputError(
                f"Le dossier « {out_dir} » n'est pas vide et ne contient pas d'académie "
                "d'exemple : choisissez un dossier vide.")
        for name in _OWNED:
            path = out_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER_FILE).write_text("académie d'exemple yearchange_tui\n", encoding="utf-8")


def _open_empty(db_url: str, progress: Callable[[str], None] | None) -> Database:
    """Open (creating the schema of) a database given with ``--db``; it must hold nothing."""
    try:
        database = open_database(db_url, report=progress)
    except DatabaseError as error:
        raise SampleOutputError(error.message) from error
    try:
        with database.engine.connect() as connection:
            refuse_filled_database(connection)
    except SampleDatabaseNotEmptyError as error:
        database.dispose()
        raise SampleOutputError(f"{display_url(db_url)} : {error}") from error
    return database


def build_sample(out_dir: Path, establishment_count: int, seed: int, year: int | None = None,
                 progress: Callable[[str], None] | None = None,
                 db_url: str | None = None,
                 attachments: str = DEFAULT_PROFILE) -> SampleResult:
    """Write a sample académie into ``out_dir`` (an empty folder or a previous sample).

    Args:
        out_dir: destination folder.
        establishment_count: number of establishments.
        seed: random seed; the same seed and year give byte-identical AAF files.
        year: start year of school year N (default: the school year in progress).
        progress: receives French progress lines.
        db_url: the database to fill (``--db``; it must be empty); default a SQLite
            ``yearchange.db`` in ``out_dir``.
        attachments: size profile of the attachments, ``small`` (default: quick) or
            ``realistic`` (the bench; :mod:`yearchange_tui.sample.attachments`).

    Raises:
        SampleOutputError: when ``out_dir`` holds something else than a sample.
    """

    started = time.perf_counter()
    out_dir = out_dir.expanduser().resolve()
    given = _open_empty(db_url, progress) if db_url is not None else None
    try:
        _prepare(out_dir)
    except BaseException:
        if given is not None:
            given.dispose()
        raise
    academy = build_academy(establishment_count, seed, year)
    if db_url is None:
        db_url = f"sqlite:///{out_dir / 'yearchange.db'}"
    storage_dir = out_dir / "storage"
    database = given or open_database(db_url, report=progress)
    try:
        with database.engine.begin() as connection:
            stats = fill_database(connection, storage_dir, academy, progress, attachments)
            changed = tables_changed_in_transaction(connection)
        # VACUUM too: a freshly filled table has no visibility map, so the planner prices
        # index-only scans like heap reads and full-scans grades per establishment.
        refresh_statistics(database, changed, vacuum=True, report=progress)
    finally:
        database.dispose()
    aaf_files = write_aaf_delivery(academy, out_dir / "aaf")
    timetable_files = write_timetables(academy, out_dir / "timetables")
    result = SampleResult(out_dir, db_url, storage_dir, academy, stats, aaf_files,
                          timetable_files, time.perf_counter() - started, attachments)
    (out_dir / "sample.json").write_text(
        json.dumps(result.summary(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return result
