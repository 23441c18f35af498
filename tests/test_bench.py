"""``yearchange bench`` for steps 2 and 3: what it measures (no timing threshold here)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from yearchange_tui.bench.changeover import floor_work, run_bench, step2_floor
from yearchange_tui.changeover.zipwriter import ZipWriter, deflate, pack

# A measurement: run by CI, left out of the inner loop (`pytest -m "not slow"`).
pytestmark = pytest.mark.slow


def test_bench_measures_steps_2_and_3_against_their_floors(tmp_path: Path) -> None:
    result = run_bench(2, tmp_path, repeats=2, workers=2, attachments="small")
    step2, step3 = result["step2"], result["step3"]
    assert step2["all_done"] and step3["all_done"]
    assert step2["workers"] == 2 and len(step2["engine_seconds"]) == 2
    # The floor compressed exactly the bytes the archives hold.
    storage = tmp_path / "academie" / "storage"
    archives = sorted(storage.glob("*/archives/*/**/*.zip"))
    assert archives
    held = 0
    for path in archives:
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None
            held += sum(info.file_size for info in archive.infolist())
    assert step2["uncompressed_bytes"] == held
    # The second attempt wrote new files: no temporary file is left behind.
    assert not list(storage.glob("**/.*.part"))
    # Step 3 deleted the very rows the raw SQL floor deletes.
    assert step3["rows_engine"] == step3["rows_raw_sql"] > 0
    for key in ("engine_mb_per_s", "zlib_mb_per_s", "ratio"):
        assert step2[key] > 0, key
    for key in ("engine_rows_per_s", "raw_sql_rows_per_s", "ratio"):
        assert step3[key] > 0, key
    # Step 3's archive check (SHA-256 of every archive step 2 wrote), timed apart.
    assert len(step3["archive_check_seconds"]) == 2
    assert step3["archive_check_bytes"] >= sum(path.stat().st_size for path in archives)
    # Like with like: the same processes, the machine's load beside every figure.
    assert step2["zlib_mb_per_s_per_core"] == pytest.approx(step2["zlib_mb_per_s"] / 2, abs=0.01)
    # The dry run against the former full build: the same report, three timings each.
    dry = result["dry_run"]
    assert dry["same_report"] and len(dry["seconds"]["full_build"]) == 2
    for part in (step2, step3, result["aaf"], dry):
        assert "load" in part


def test_step2_floor_deflates_each_distinct_member_once_and_stores_the_rest(
        tmp_path: Path) -> None:
    """Two archives sharing a page and a PDF: the floor deflates the page once and only
    writes the PDF, like the engine (issue 16)."""
    page = b"<html>" + b"<p>activite commune</p>" * 400 + b"</html>"
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 40
    written = 0
    for index in (1, 2):
        path = tmp_path / f"eleve-{index}.zip"
        with path.open("wb") as sink:
            writer = ZipWriter(sink)
            writer.add_member("activite.html", deflate(page))
            writer.add_member("sujet.pdf", pack("sujet.pdf", pdf))
            writer.add_bytes(f"eleve-{index}.html", f"<p>{index}</p>".encode())
            writer.close()
        written += path.stat().st_size
    work = floor_work(tmp_path, ["eleve-1.zip", "eleve-2.zip"])
    assert work.uncompressed == 2 * (len(page) + len(pdf)) + len(b"<p>1</p>") * 2
    assert work.written == written
    assert sorted(work.to_deflate, key=len) == [b"<p>1</p>", b"<p>2</p>", page]
    assert work.stored == len(pdf)
    assert step2_floor(work, 2, tmp_path) > 0
    assert not list(tmp_path.glob("plancher-*"))
