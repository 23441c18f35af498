"""The archive writer produces ZIPs that any reader opens, entry for entry."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from yearchange_tui.changeover.zipwriter import ArchiveTooLargeError, ZipWriter, deflate


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
