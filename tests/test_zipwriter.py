"""The archive writer produces ZIPs that any reader opens, entry for entry."""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from pathlib import Path

import pytest

from yearchange_tui.changeover.zipwriter import (
    DEFAULT_LEVEL,
    LEVEL_VARIABLE,
    STREAM_THRESHOLD,
    ArchiveLevelError,
    ArchiveTooLargeError,
    ZipWriter,
    archive_level,
    deflate,
    pack,
)


def test_members_read_back_identical_with_zipfile(tmp_path: Path) -> None:
    big = tmp_path / "vidéo.bin"
    big.write_bytes(os.urandom(3 << 20))  # streamed with a data descriptor
    small = tmp_path / "fiche.txt"
    small.write_bytes("Séance du 12/03 : « fractions »\n".encode())
    shared = deflate(b"<html>page commune</html>")
    buffer = io.BytesIO()
    writer = ZipWriter(buffer)
    writer.add_bytes("index.html", "Cahier de textes — 6ᵉ A".encode())
    writer.add_member("activites/1.html", shared)
    writer.add_member("copie/1.html", shared)
    writer.add_file("pièces-jointes/vidéo.bin", big)
    writer.add_file("pièces-jointes/fiche.txt", small)
    writer.add_bytes("vide.txt", b"")
    writer.close()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["index.html", "activites/1.html", "copie/1.html",
                                      "pièces-jointes/vidéo.bin", "pièces-jointes/fiche.txt",
                                      "vide.txt"]
        assert archive.read("pièces-jointes/vidéo.bin") == big.read_bytes()
        assert archive.read("copie/1.html") == b"<html>page commune</html>"
        assert archive.read("index.html").decode() == "Cahier de textes — 6ᵉ A"
        assert archive.read("vide.txt") == b""
        assert archive.getinfo("index.html").date_time == (1980, 1, 1, 0, 0, 0)


def test_same_content_gives_the_same_bytes() -> None:
    def build() -> bytes:
        buffer = io.BytesIO()
        writer = ZipWriter(buffer)
        writer.add_bytes("a.txt", b"contenu")
        writer.close()
        return buffer.getvalue()

    assert build() == build()


def test_an_archive_needing_zip64_is_refused() -> None:
    writer = ZipWriter(io.BytesIO())
    member = deflate(b"")
    with pytest.raises(ArchiveTooLargeError):
        for number in range(0x10000):
            writer.add_member(f"{number}.txt", member)


def test_already_compressed_attachments_are_stored_the_rest_deflated(tmp_path: Path) -> None:
    """PDF, JPEG, office files… are stored (by extension or first bytes); text is deflated,
    and every member reads back identical (issue 16)."""
    pdf = tmp_path / "sujet.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + os.urandom(4000))
    photo = tmp_path / "sans-extension"
    photo.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(4000))
    video = tmp_path / "sortie.mp4"  # large: streamed, stored with a data descriptor
    video.write_bytes(os.urandom(STREAM_THRESHOLD + 12345))
    big_text = tmp_path / "journal.txt"  # large: streamed, deflated
    big_text.write_bytes(b"ligne de texte\n" * (STREAM_THRESHOLD // 10))
    note = tmp_path / "note.txt"
    note.write_bytes(b"a" * 5000)
    buffer = io.BytesIO()
    writer = ZipWriter(buffer)
    for path in (pdf, photo, video, big_text, note):
        writer.add_file(f"pj/{path.name}", path)
    writer.add_member("pj/copie.docx", pack("pj/copie.docx", b"PK\x03\x04" + b"x" * 3000))
    writer.close()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        assert archive.testzip() is None
        methods = {info.filename: info.compress_type for info in archive.infolist()}
        for path in (pdf, photo, video, big_text, note):
            assert archive.read(f"pj/{path.name}") == path.read_bytes()
    assert methods == {"pj/sujet.pdf": zipfile.ZIP_STORED,
                       "pj/sans-extension": zipfile.ZIP_STORED,
                       "pj/sortie.mp4": zipfile.ZIP_STORED,
                       "pj/journal.txt": zipfile.ZIP_DEFLATED,
                       "pj/note.txt": zipfile.ZIP_DEFLATED,
                       "pj/copie.docx": zipfile.ZIP_STORED}


def test_the_deflate_level_is_configurable_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    text = b"<tr><td>Dupont</td><td>12,5</td></tr>\n" * 2000
    sizes = {}
    for level in ("1", "9"):
        monkeypatch.setenv(LEVEL_VARIABLE, level)
        archive_level.cache_clear()
        assert archive_level() == int(level)
        member = deflate(text)
        assert zlib.decompress(member.compressed, -15) == text
        sizes[level] = len(member.compressed)
    assert sizes["9"] < sizes["1"]
    monkeypatch.setenv(LEVEL_VARIABLE, "rapide")
    archive_level.cache_clear()
    with pytest.raises(ArchiveLevelError, match="ARCHIVE-NIVEAU-INVALIDE"):
        archive_level()
    monkeypatch.delenv(LEVEL_VARIABLE)
    archive_level.cache_clear()
    assert archive_level() == DEFAULT_LEVEL == 1
