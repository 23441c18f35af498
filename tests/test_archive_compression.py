"""Step 2's archives with the sample's real attachment types: already-compressed members
stored, text deflated, plain ZIPs any tool opens, and ``verify`` checking every member
(issue 16)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from changeover_support import Academy, make_academy
from sqlalchemy import select

from yearchange_tui.changeover.verify import check_archive
from yearchange_tui.changeover.zipwriter import ZipWriter, pack, should_store
from yearchange_tui.cli.main import main
from yearchange_tui.workflow.models import ArchiveManifest, Step

ALREADY_COMPRESSED = {"pdf", "docx", "odt", "xlsx", "jpg", "png", "mp4"}


@pytest.fixture
def academy(database_url: str, tmp_path: Path) -> Iterator[Academy]:
    academy = make_academy(database_url, tmp_path / "storage")
    yield academy
    academy.database.dispose()


def _archives(academy: Academy) -> list[tuple[str, int, str]]:
    with academy.database.session() as session:
        return [tuple(row) for row in session.execute(select(
            ArchiveManifest.relative_path, ArchiveManifest.size, ArchiveManifest.sha256)
            .where(ArchiveManifest.relative_path.like("%.zip")))]


def test_attachments_are_stored_or_deflated_by_type_and_archives_open_anywhere(
        academy: Academy, capsys: pytest.CaptureFixture[str]) -> None:
    runner = academy.runner()
    [outcome] = runner.run(Step.ARCHIVE, runner.establishments())
    assert outcome.status == "done"
    archives = _archives(academy)
    assert archives
    methods: dict[str, set[int]] = {}
    stored_member: tuple[str, str, int] | None = None
    for relative_path, _, _ in archives:
        path = academy.storage / relative_path
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None
            for info in archive.infolist():
                extension = info.filename.rsplit(".", 1)[-1]
                if info.filename.startswith("pieces-jointes/"):
                    methods.setdefault(extension, set()).add(info.compress_type)
                    if (stored_member is None and info.compress_type == zipfile.ZIP_STORED
                            and info.file_size > 1000):
                        stored_member = (relative_path, info.filename, info.header_offset)
                elif extension in ("html", "csv"):
                    assert info.compress_type == zipfile.ZIP_DEFLATED, info.filename
    # Every type reached an archive; compressed formats stored, text deflated (the
    # smallest text attachments, a couple hundred bytes, may be stored by the probe).
    assert set(methods) >= ALREADY_COMPRESSED | {"txt", "html", "csv"}
    for extension in ALREADY_COMPRESSED:
        assert methods[extension] == {zipfile.ZIP_STORED}, extension
    for extension in ("txt", "html", "csv"):
        assert zipfile.ZIP_DEFLATED in methods[extension], extension
    # Any tool opens them: Info-ZIP's unzip tests every member.
    unzip = shutil.which("unzip")
    if unzip is None:
        pytest.skip("unzip is not installed")
    for relative_path, _, _ in archives[:40]:
        completed = subprocess.run([unzip, "-tq", str(academy.storage / relative_path)],
                                   capture_output=True, text=True, check=False)
        assert completed.returncode == 0, completed.stdout + completed.stderr

    # verify passes, then finds a stored member whose bytes were damaged.
    base = ["--db", academy.url, "--storage", str(academy.storage)]
    assert main([*base, "verify"]) == 0
    capsys.readouterr()
    assert stored_member is not None
    relative_path, member, offset = stored_member
    path = academy.storage / relative_path
    data = bytearray(path.read_bytes())
    name_length, extra_length = (int.from_bytes(data[offset + 26:offset + 28], "little"),
                                 int.from_bytes(data[offset + 28:offset + 30], "little"))
    start = offset + 30 + name_length + extra_length
    data[start + 500] ^= 0xFF  # same size, one byte of the member's data changed
    path.write_bytes(bytes(data))
    assert main([*base, "verify"]) == 1
    assert "empreinte SHA-256 différente du manifeste" in capsys.readouterr().out
    # Past the archive's checksum (a manifest rewritten to match), the member's own CRC
    # still names it.
    problem = check_archive(academy.storage, relative_path, len(data),
                            hashlib.sha256(data).hexdigest())
    assert problem == f"entrée corrompue {member} dans {relative_path}"


def test_the_probe_stores_what_does_not_compress_whatever_its_name(tmp_path: Path) -> None:
    noise = os.urandom(200_000)  # no known extension, no magic bytes
    text = ("Séance du lundi : lire le chapitre 3 et répondre aux questions.\n" * 3000).encode()
    assert should_store("pieces-jointes/export.dat", noise)
    assert not should_store("pieces-jointes/export.dat", text)
    assert should_store("pieces-jointes/sujet.pdf", text)  # by type, however it looks
    big = tmp_path / "sans-extension"  # streamed: probed on its first block
    big.write_bytes(os.urandom(3 << 20))
    path = tmp_path / "a.zip"
    with path.open("wb") as sink:
        writer = ZipWriter(sink)
        writer.add_member("a/export.dat", pack("a/export.dat", noise))
        writer.add_member("a/notes.dat", pack("a/notes.dat", text))
        writer.add_file("a/video", big)
        writer.close()
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert {info.filename: info.compress_type for info in archive.infolist()} == {
            "a/export.dat": zipfile.ZIP_STORED, "a/notes.dat": zipfile.ZIP_DEFLATED,
            "a/video": zipfile.ZIP_STORED}
        assert archive.read("a/notes.dat") == text
        assert archive.read("a/video") == big.read_bytes()
