"""A streaming ZIP writer for the step-2 archives.

Why not :mod:`zipfile`: the archives hold tens of thousands of small pages, and the
per-archive ZIPs of students repeat the same activity pages and attachments. This
writer deflates a member once and can write the same compressed bytes into many
archives (``Member``), and its per-member cost is a few ``struct.pack`` calls. It writes
plain PKZIP 2.0 (deflate, UTF-8 names, fixed 1980-01-01 dates so archives are
reproducible); :mod:`zipfile` reads and tests them (``testzip``) in the tests and in
``yearchange verify``. Members whose size is not known in advance (large attachments,
streamed) use a data descriptor; archives needing ZIP64 are refused.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_DESCRIPTOR = struct.Struct("<IIII")
_UTF8 = 0x0800
_STREAMED = 0x0008
_DEFLATE = 8
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
_DOS_TIME = 0
_VERSION = 20
_LIMIT = 0xFFFFFFFF
STREAM_THRESHOLD = 1 << 20


class ArchiveTooLargeError(Exception):
    """The archive would need ZIP64 (over 65,535 members or 4 GiB)."""


class _Sink(Protocol):
    def write(self, data: bytes) -> int: ...


@dataclass(frozen=True)
class Member:
    """A member deflated once, writable into any number of archives."""

    crc: int
    compressed: bytes
    size: int


def deflate(data: bytes) -> Member:
    """Compress ``data`` as a ZIP member (raw deflate, default level)."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return Member(zlib.crc32(data), compressor.compress(data) + compressor.flush(), len(data))


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
                header_offset: int) -> None:
        if compressed > _LIMIT or size > _LIMIT or header_offset > _LIMIT:
            raise ArchiveTooLargeError("archive de plus de 4 Gio : ZIP64 non pris en charge")
        if len(self.central) >= 0xFFFF:
            raise ArchiveTooLargeError("archive de plus de 65 535 fichiers")
        self.central.append(_CENTRAL.pack(
            0x02014B50, _VERSION, _VERSION, flags, _DEFLATE, _DOS_TIME, _DOS_DATE, crc,
            compressed, size, len(name), 0, 0, 0, 0, 0, header_offset) + name)

    def add_member(self, name: str, member: Member) -> None:
        """Write an already deflated member."""
        encoded = name.encode("utf-8")
        header_offset = self.offset
        self._write(_LOCAL.pack(0x04034B50, _VERSION, _UTF8, _DEFLATE, _DOS_TIME, _DOS_DATE,
                                member.crc, len(member.compressed), member.size, len(encoded),
                                0) + encoded)
        self._write(member.compressed)
        self._record(encoded, _UTF8, member.crc, len(member.compressed), member.size,
                     header_offset)

    def add_bytes(self, name: str, data: bytes) -> None:
        """Deflate and write ``data``."""
        self.add_member(name, deflate(data))

    def add_file(self, name: str, path: Path) -> None:
        """Write a file; large files are streamed with a data descriptor."""
        if path.stat().st_size <= STREAM_THRESHOLD:
            self.add_bytes(name, path.read_bytes())
            return
        encoded = name.encode("utf-8")
        flags = _UTF8 | _STREAMED
        header_offset = self.offset
        self._write(_LOCAL.pack(0x04034B50, _VERSION, flags, _DEFLATE, _DOS_TIME, _DOS_DATE,
                                0, 0, 0, len(encoded), 0) + encoded)
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        crc = size = compressed = 0
        with path.open("rb") as source:
            while chunk := source.read(1 << 16):
                crc = zlib.crc32(chunk, crc)
                size += len(chunk)
                block = compressor.compress(chunk)
                compressed += len(block)
                self._write(block)
        block = compressor.flush()
        compressed += len(block)
        self._write(block)
        self._write(_DESCRIPTOR.pack(0x08074B50, crc, compressed, size))
        self._record(encoded, flags, crc, compressed, size, header_offset)

    def close(self) -> None:
        """Write the central directory and the end record."""
        start = self.offset
        for entry in self.central:
            self._write(entry)
        count = len(self.central)
        self._write(_END.pack(0x06054B50, 0, 0, count, count, self.offset - start, start, 0))
