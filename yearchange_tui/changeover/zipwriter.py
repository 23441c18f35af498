"""A streaming ZIP writer for the step-2 archives.

Why not :mod:`zipfile`: the archives hold tens of thousands of small pages, and the
per-archive ZIPs of students repeat the same activity pages and attachments. This
writer deflates a member once and can write the same compressed bytes into many
archives (``Member``), and its per-member cost is a few ``struct.pack`` calls. It writes
plain PKZIP 2.0 (deflate or stored, UTF-8 names, fixed 1980-01-01 dates so archives are
reproducible); :mod:`zipfile` reads and tests them (``testzip``) in the tests and in
``yearchange verify``. Members whose size is not known in advance (large attachments,
streamed) use a data descriptor; archives needing ZIP64 are refused.

Attachments are *stored* when already compressed — recognised by their extension or
first bytes (PDF, JPEG, PNG, ZIP, office documents, videos…) or, for any other file, by a
probe: its first 64 KiB deflated at level 1 keep more than 90 % of their size (a photo
saved without extension, an unknown binary). Deflating those costs CPU for nothing. The
rest (the archives' own HTML and CSV, text attachments) is deflated at
:func:`archive_level` (``YEARCHANGE_ARCHIVE_LEVEL``, default :data:`DEFAULT_LEVEL`, chosen
by measurement). Both decisions depend only on the member's name and bytes, so an
interrupted and resumed step 2 writes the same archives byte for byte.
"""

from __future__ import annotations

import functools
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_DESCRIPTOR = struct.Struct("<IIII")
_UTF8 = 0x0800
_STREAMED = 0x0008
_DEFLATE = 8
_STORED = 0
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
_DOS_TIME = 0
_VERSION = 20
_LIMIT = 0xFFFFFFFF
MEASURED = -1
"""Method of a member that was only measured (the dry run): no bytes, never written."""
STREAM_THRESHOLD = 1 << 20
_JOINED = 1 << 14


class ArchiveTooLargeError(Exception):
    """The archive would need ZIP64 (over 65,535 members or 4 GiB)."""


class _Sink(Protocol):
    def write(self, data: bytes) -> int: ...


LEVEL_VARIABLE = "YEARCHANGE_ARCHIVE_LEVEL"
DEFAULT_LEVEL = 1
"""Chosen by measurement (README, « Archive compression »). The distinct HTML and CSV
members of a one-establishment realistic sample's archives (13,000 pages, 8.8 MB; 56 CSV,
4.7 MB) deflated with :func:`deflate_raw`, CPU time (the machine's load was 17 on 2 cores,
so not wall time), best of 3, 7 December 2026:

=====  ==========  ===========  ========  =========  =======================================
level  pages MB/s  pages ratio  CSV MB/s  CSV ratio  archives, all members and copies
=====  ==========  ===========  ========  =========  =======================================
1      39.7        0.441        252       0.141      681.1 MB
3      37.8        0.436        194       0.113      680.8 MB
6      33.5        0.429        89        0.088      680.5 MB
=====  ==========  ===========  ========  =========  =======================================

Level 1 deflates the CSV 2.8× and the pages 1.2× faster than level 6; the archives are
0.1 % larger, stored attachments being 99 % of their bytes."""

PROBE_BYTES = 1 << 16
"""How much of a file the compressibility probe deflates (at level 1)."""
PROBE_STORE_RATIO = 0.9
"""A file whose probe keeps more than this share of its size is stored."""

INCOMPRESSIBLE_SUFFIXES = frozenset({
    ".pdf", ".jpg", ".jpeg", ".png", ".gif", ".webp", ".heic", ".zip", ".gz", ".tgz", ".bz2",
    ".xz", ".7z", ".rar", ".docx", ".xlsx", ".pptx", ".odt", ".ods", ".odp", ".odg", ".epub",
    ".mp3", ".m4a", ".ogg", ".opus", ".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi",
})
"""Extensions of formats that are already compressed."""

_INCOMPRESSIBLE_MAGIC = (
    b"%PDF", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"PK\x03\x04",
    b"\x1f\x8b", b"7z\xbc\xaf\x27\x1c", b"\xfd7zXZ\x00", b"Rar!", b"OggS", b"\x1a\x45\xdf\xa3",
)
"""First bytes of the same formats (a photo saved without its extension)."""


class ArchiveLevelError(ValueError):
    """``YEARCHANGE_ARCHIVE_LEVEL`` is not a deflate level (French message)."""


@functools.cache
def archive_level() -> int:
    """The deflate level of the archives: ``YEARCHANGE_ARCHIVE_LEVEL`` (1 to 9), else
    :data:`DEFAULT_LEVEL`.

    Raises:
        ArchiveLevelError: the variable is set to something else than 1 to 9.
    """
    value = os.environ.get(LEVEL_VARIABLE, "").strip()
    if not value:
        return DEFAULT_LEVEL
    if value not in {str(level) for level in range(1, 10)}:
        raise ArchiveLevelError(
            f"[ARCHIVE-NIVEAU-INVALIDE] {LEVEL_VARIABLE} « {value} » : niveau de compression "
            "de 1 (rapide) à 9 (compact) attendu.")
    return int(value)


def is_incompressible(name: str, head: bytes) -> bool:
    """True when a member named ``name`` starting with ``head`` is of an already
    compressed format (by extension or magic bytes)."""
    if PurePosixPath(name).suffix.lower() in INCOMPRESSIBLE_SUFFIXES:
        return True
    if head[4:8] == b"ftyp":  # MP4, MOV, HEIC
        return True
    return head.startswith(_INCOMPRESSIBLE_MAGIC)


def should_store(name: str, head: bytes) -> bool:
    """True when a file member is better stored than deflated: an already compressed
    format, or its first :data:`PROBE_BYTES` (``head``) barely compress at level 1."""
    return is_incompressible(name, head[:16]) or _probe(head[:PROBE_BYTES]) is None


def _probe(sample: bytes) -> bytes | None:
    """``sample`` deflated at level 1, or None when that keeps more than
    :data:`PROBE_STORE_RATIO` of its size (better stored)."""
    probed = deflate_raw(sample, 1)
    return None if sample and len(probed) > PROBE_STORE_RATIO * len(sample) else probed


_SMALL_MEMBER = (1 << 13) - 262


def _compressor(level: int, size: int) -> zlib._Compress:
    """A raw-deflate compressor for ``size`` bytes (-1: unknown).

    Members under 8 KiB (most of the archives' pages) get a window that still covers them
    and a smaller hash (``memLevel`` 7): zlib's default state (256 KiB) costs about 65 µs
    to set up here, more than deflating a 1 KiB page; the small one about 3 µs, for the
    same compressed size to 0.1 % on the sample's pages (any inflater reads a smaller
    window)."""
    if 0 <= size < _SMALL_MEMBER:
        return zlib.compressobj(level, zlib.DEFLATED, -max(9, (size + 262).bit_length()), 7)
    return zlib.compressobj(level, zlib.DEFLATED, -15)


def deflate_raw(data: bytes, level: int) -> bytes:
    """``data`` as raw deflate at ``level`` (what a ZIP member holds); the bench's floor
    uses it too."""
    compressor = _compressor(level, len(data))
    return compressor.compress(data) + compressor.flush()


@dataclass(frozen=True)
class Member:
    """A member compressed once, writable into any number of archives."""

    crc: int
    compressed: bytes
    size: int
    method: int = _DEFLATE


_measuring: ContextVar[bool] = ContextVar("yearchange_zip_measuring", default=False)


@contextmanager
def measuring() -> Iterator[None]:
    """Within: :func:`deflate`, :func:`store` and :func:`pack` only measure (the dry run).

    Members come back with their uncompressed size and no bytes (method :data:`MEASURED`):
    no compression, no CRC. :class:`ZipWriter` refuses them, so a measured member can never
    reach a real archive.
    """
    archive_level()  # a bad YEARCHANGE_ARCHIVE_LEVEL is still reported by the dry run
    token = _measuring.set(True)
    try:
        yield
    finally:
        _measuring.reset(token)


def is_measuring() -> bool:
    """True inside :func:`measuring`."""
    return _measuring.get()


def _measured(data: bytes) -> Member:
    return Member(0, b"", len(data), MEASURED)


def deflate(data: bytes) -> Member:
    """Compress ``data`` as a ZIP member (raw deflate at :func:`archive_level`)."""
    if _measuring.get():
        return _measured(data)
    return Member(zlib.crc32(data), deflate_raw(data, archive_level()), len(data))


def store(data: bytes) -> Member:
    """``data`` as a stored (uncompressed) ZIP member."""
    if _measuring.get():
        return _measured(data)
    return Member(zlib.crc32(data), data, len(data), _STORED)


def pack(name: str, data: bytes) -> Member:
    """A file's ``data`` stored when already compressed (:func:`should_store`), else
    deflated."""
    if _measuring.get():
        return _measured(data)
    if is_incompressible(name, data[:16]):
        return store(data)
    probed = _probe(data[:PROBE_BYTES])
    if probed is None:
        return store(data)
    if len(data) <= PROBE_BYTES and archive_level() == 1:
        return Member(zlib.crc32(data), probed, len(data))  # the probe was the deflate
    return deflate(data)


class ZipWriter:
    """Writes a ZIP archive to a forward-only sink."""

    def __init__(self, sink: _Sink) -> None:
        self.sink = sink
        self.offset = 0
        self.central: list[bytes] = []

    def _write(self, data: bytes) -> None:
        self.sink.write(data)
        self.offset += len(data)

    def _record(self, name: bytes, flags: int, crc: int, compressed: int, size: int,
                header_offset: int, method: int = _DEFLATE) -> None:
        if compressed > _LIMIT or size > _LIMIT or header_offset > _LIMIT:
            raise ArchiveTooLargeError("archive de plus de 4 Gio : ZIP64 non pris en charge")
        if len(self.central) >= 0xFFFF:
            raise ArchiveTooLargeError("archive de plus de 65 535 fichiers")
        self.central.append(_CENTRAL.pack(
            0x02014B50, _VERSION, _VERSION, flags, method, _DOS_TIME, _DOS_DATE, crc,
            compressed, size, len(name), 0, 0, 0, 0, 0, header_offset) + name)

    def add_member(self, name: str, member: Member) -> None:
        """Write an already compressed (or stored) member."""
        if member.method == MEASURED:
            raise ValueError(f"membre seulement mesuré (passage à blanc) : {name}")
        encoded = name.encode("utf-8")
        header_offset = self.offset
        header = _LOCAL.pack(0x04034B50, _VERSION, _UTF8, member.method, _DOS_TIME, _DOS_DATE,
                             member.crc, len(member.compressed), member.size, len(encoded),
                             0) + encoded
        if len(member.compressed) < _JOINED:
            self._write(header + member.compressed)  # one write for a small member
        else:
            self._write(header)
            self._write(member.compressed)
        self._record(encoded, _UTF8, member.crc, len(member.compressed), member.size,
                     header_offset, member.method)

    def add_bytes(self, name: str, data: bytes) -> None:
        """Deflate and write ``data``."""
        self.add_member(name, deflate(data))

    def add_file(self, name: str, path: Path) -> None:
        """Write a file (stored when already compressed); large files are streamed with a
        data descriptor."""
        if path.stat().st_size <= STREAM_THRESHOLD:
            self.add_member(name, pack(name, path.read_bytes()))
            return
        encoded = name.encode("utf-8")
        flags = _UTF8 | _STREAMED
        header_offset = self.offset
        with path.open("rb") as source:
            chunk = source.read(1 << 16)
            method = _STORED if should_store(name, chunk) else _DEFLATE
            self._write(_LOCAL.pack(0x04034B50, _VERSION, flags, method, _DOS_TIME, _DOS_DATE,
                                    0, 0, 0, len(encoded), 0) + encoded)
            compressor = (_compressor(archive_level(), -1) if method == _DEFLATE else None)
            crc = size = compressed = 0
            while chunk:
                crc = zlib.crc32(chunk, crc)
                size += len(chunk)
                block = compressor.compress(chunk) if compressor is not None else chunk
                compressed += len(block)
                self._write(block)
                chunk = source.read(1 << 16)
        if compressor is not None:
            block = compressor.flush()
            compressed += len(block)
            self._write(block)
        self._write(_DESCRIPTOR.pack(0x08074B50, crc, compressed, size))
        self._record(encoded, flags, crc, compressed, size, header_offset, method)

    def close(self) -> None:
        """Write the central directory and the end record."""
        start = self.offset
        for entry in self.central:
            self._write(entry)
        count = len(self.central)
        self._write(_END.pack(0x06054B50, 0, 0, count, count, self.offset - start, start, 0))


class MeasuringZip:
    """Stands for :class:`ZipWriter` in the dry run: counts members and sums sizes, writes
    nothing, compresses nothing, hashes nothing.

    ``size`` is exact for the archive with every member stored: the members' uncompressed
    sizes plus the ZIP framing :class:`ZipWriter` would write (local and central headers
    with the name, data descriptors of streamed files, end record); the written archive is
    smaller by what deflate saves on compressible members. The exception: members added
    unrendered (:meth:`add_unrendered`, the school-life documents, whose queries and
    formatting the dry run skips) count their headers only.
    """

    def __init__(self) -> None:
        self.size = 0
        self.members = 0
        self.unrendered = 0

    def _count(self, name: str, size: int, streamed: bool = False) -> None:
        if self.members >= 0xFFFF:
            raise ArchiveTooLargeError("archive de plus de 65 535 fichiers")
        if size > _LIMIT:
            raise ArchiveTooLargeError("archive de plus de 4 Gio : ZIP64 non pris en charge")
        encoded = len(name.encode("utf-8"))
        self.size += _LOCAL.size + _CENTRAL.size + 2 * encoded + size
        if streamed:
            self.size += _DESCRIPTOR.size
        self.members += 1

    def add_member(self, name: str, member: Member) -> None:
        """Count a member (measured or really compressed) by its uncompressed size."""
        self._count(name, member.size)

    def add_bytes(self, name: str, data: bytes) -> None:
        self._count(name, len(data))

    def add_unrendered(self, name: str) -> None:
        """Count a member whose bytes were not made (a school-life document): headers only."""
        self._count(name, 0)
        self.unrendered += 1

    def add_file(self, name: str, path: Path) -> None:
        """Count a stored file by its size on disk (not read)."""
        size = path.stat().st_size
        self._count(name, size, streamed=size > STREAM_THRESHOLD)

    def close(self) -> None:
        self.size += _END.size
