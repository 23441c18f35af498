"""Step 2's honest floor (``yearchange bench``): the same bytes, duplicates deflated once,
stored members only written, as many files of the same sizes (issue 16; no timing)."""

from __future__ import annotations

import os
from pathlib import Path

from yearchange_tui.bench.step2_floor import _floor_share, floor_shares, floor_work, step2_floor
from yearchange_tui.changeover.zipwriter import ZipWriter, archive_level, deflate, pack


def _classeurs(folder: Path) -> tuple[bytes, bytes, list[str]]:
    """Three student archives sharing an activity page and its PDF, each with its index."""
    page = b"<html>" + "<p>activité commune</p>".encode() * 400 + b"</html>"
    pdf = b"%PDF-1.7\n" + os.urandom(50_000)
    names = []
    for index in (1, 2, 3):
        name = f"classeur-{index}.zip"
        with (folder / name).open("wb") as sink:
            writer = ZipWriter(sink)
            writer.add_member("activites/1.html", deflate(page))
            writer.add_member("pieces-jointes/1-sujet.pdf", pack("sujet.pdf", pdf))
            writer.add_bytes("index.html", f"<p>élève {index}</p>".encode())
            writer.close()
        names.append(name)
    return page, pdf, names


def test_the_floor_counts_duplicates_once_and_writes_every_copy(tmp_path: Path) -> None:
    page, pdf, names = _classeurs(tmp_path)
    work = floor_work(tmp_path, [*names, "sanctions.csv"])  # non-ZIP files are not archives
    sizes = [(tmp_path / name).stat().st_size for name in names]
    assert work.uncompressed == 3 * (len(page) + len(pdf)) + sum(
        len(f"<p>élève {index}</p>".encode()) for index in (1, 2, 3))
    # Each distinct deflated member once; the PDF (stored) once, not three times.
    assert max(work.to_deflate, key=len) == page
    assert work.to_deflate.count(page) == 1
    assert len(work.to_deflate) == 4
    assert work.stored == len(pdf) and work.stored_members == 1
    # But every archive's bytes are written: each archive holds its copy.
    assert work.archive_sizes == sizes and work.written == sum(sizes)
    assert step2_floor(work, 2, tmp_path) > 0
    assert not list(tmp_path.glob("plancher-*"))


def test_a_floor_share_writes_files_of_the_archives_sizes(tmp_path: Path) -> None:
    _, _, names = _classeurs(tmp_path)
    work = floor_work(tmp_path, names)
    _floor_share(work.to_deflate, archive_level(), work.archive_sizes, str(tmp_path / "part"))
    written = sorted(path.stat().st_size for path in (tmp_path / "part").iterdir())
    assert written == sorted(work.archive_sizes)


def test_floor_processes_take_whole_establishments(tmp_path: Path) -> None:
    """Like the engine's processes (one establishment each at a time): three equal
    establishments on two processes give one process two of them, never 1.5 each; a
    member shared by two establishments is deflated in each (the engine does too)."""
    names = []
    for uai in ("0000001A", "0000002B", "0000003C"):
        folder = tmp_path / uai / "archives"
        folder.mkdir(parents=True)
        _, _, archives = _classeurs(folder)
        names += [f"{uai}/archives/{name}" for name in archives]
    work = floor_work(tmp_path, names)
    assert work.archive_units == [name.split("/")[0] for name in names]
    assert work.deflate_units.count("0000001A") == 4  # page + 3 index pages, once each
    assert len(work.to_deflate) == 12
    payloads, sizes = floor_shares(work, 2)
    per_process = sorted(len(share) for share in sizes)
    assert per_process == [3, 6]  # whole establishments: one process writes two of them
    assert sorted(size for share in sizes for size in share) == sorted(work.archive_sizes)
    assert sorted(len(share) for share in payloads) == [4, 8]
