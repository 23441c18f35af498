"""The dry run measures archives instead of building them (SQLite and PostgreSQL).

Same report as the former full build, nothing under the storage root, and a measured
member can never reach a real archive written later by the same process.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from changeover_support import make_academy, storage_files
from sqlalchemy import select

from yearchange_tui.bench.dry_run import FullBuildEffects, report_rows
from yearchange_tui.changeover.dry_run import dry_run_units
from yearchange_tui.changeover.effects import ZipBuilder
from yearchange_tui.changeover.runner import DRY_RUN_STEPS
from yearchange_tui.changeover.verify import verify
from yearchange_tui.changeover.zipwriter import (
    MeasuringZip,
    ZipWriter,
    deflate,
    measuring,
    pack,
    store,
)
from yearchange_tui.workflow.models import ArchiveManifest, Step
from yearchange_tui.workflow.units import current_school_year


def _snapshot(storage: Path) -> tuple[dict[str, str], set[str]]:
    """Files with their hashes, and every folder (a dry run must not even make one)."""
    return storage_files(storage), {p.relative_to(storage).as_posix()
                                    for p in storage.rglob("*") if p.is_dir()}


def test_measured_dry_run_reports_what_the_full_build_reported(database_url: str,
                                                               tmp_path: Path) -> None:
    academy = make_academy(database_url, tmp_path / "storage", establishments=2)
    try:
        runner = academy.runner()
        establishments = runner.establishments()
        before = _snapshot(academy.storage)
        full = dry_run_units(runner, establishments, DRY_RUN_STEPS, effects=FullBuildEffects)
        measured = runner.dry_run(establishments)
        in_workers = runner.dry_run(establishments, workers=2)
        assert report_rows(measured) == report_rows(full)
        assert report_rows(in_workers) == report_rows(full)
        archive = [o for o in measured if o.step is Step.ARCHIVE]
        assert len(archive) == 2 and all(o.counts["archives cahier de textes"] > 5
                                         for o in archive)
        assert all(o.lists["archives écrites"] for o in archive)
        assert _snapshot(academy.storage) == before
    finally:
        academy.database.dispose()


def test_real_archives_after_a_dry_run_in_the_same_process_verify(database_url: str,
                                                                  tmp_path: Path) -> None:
    academy = make_academy(database_url, tmp_path / "storage")
    try:
        runner = academy.runner()
        establishments = runner.establishments()
        planned = {o.step: o.counts for o in runner.dry_run(establishments)}
        for step in (Step.PURGE_TRASH, Step.ARCHIVE):
            [outcome] = runner.run(step, establishments)
            assert outcome.status == "done" and outcome.counts == planned[step]
        with academy.database.session() as session:
            year = current_school_year(session)
            [report] = verify(session, academy.storage, [1], year.id)
            paths = session.scalars(select(ArchiveManifest.relative_path)).all()
        assert report.problems == [] and report.archives_checked == len(paths) > 20
        for relative_path in paths:
            if relative_path.endswith(".zip"):
                with zipfile.ZipFile(academy.storage / relative_path) as written:
                    assert written.testzip() is None
                    if "style.css" in written.namelist():  # cached per process: not measured
                        assert b"font-family" in written.read("style.css")
    finally:
        academy.database.dispose()


def test_measured_size_is_the_archive_with_every_member_stored(tmp_path: Path) -> None:
    big = tmp_path / "video.mp4"
    big.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 5000)  # streamed
    small = tmp_path / "note.txt"
    small.write_text("devoir à rendre\n" * 30, encoding="utf-8")

    def build(builder: ZipBuilder) -> None:
        builder.add_text("index.html", "<h1>Classeur — élève</h1>" * 50)
        builder.add_member("style.css", store(b"body { color: #111; }"))
        builder.add_file("pièces/note.txt", small)
        builder.add_file("pièces/vidéo.mp4", big)

    class StoringWriter(ZipWriter):
        def add_bytes(self, name: str, data: bytes) -> None:
            self.add_member(name, store(data))

        def add_file(self, name: str, path: Path) -> None:
            if path.stat().st_size <= 1 << 20:
                self.add_member(name, store(path.read_bytes()))
            else:
                super().add_file(name, path)  # streamed, stored (an .mp4)

    buffer = io.BytesIO()
    stored = StoringWriter(buffer)
    build(ZipBuilder(stored))
    stored.close()
    measured = MeasuringZip()
    with measuring():
        builder = ZipBuilder(measured)
        build(builder)
    measured.close()
    assert builder.entries == 4
    assert measured.size == len(buffer.getvalue())
    with zipfile.ZipFile(buffer) as archive:
        assert archive.testzip() is None and len(archive.namelist()) == 4


def test_a_measured_member_cannot_enter_a_real_archive() -> None:
    with measuring():
        members = [deflate(b"x" * 1000), store(b"y" * 10), pack("a.pdf", b"%PDF-1.4")]
    assert [m.size for m in members] == [1000, 10, 8]
    assert all(m.compressed == b"" for m in members)
    writer = ZipWriter(io.BytesIO())
    for member in members:
        with pytest.raises(ValueError, match="mesuré"):
            writer.add_member("x", member)
    assert deflate(b"x" * 1000).compressed  # outside: compressed again
