"""Attachments of the sample académie: a seeded mix of types and sizes like a real ENT.

Teachers attach office documents, PDFs, photos and scans, a few videos and some plain
text to their cahier de textes sessions, homework and classeur activities. Each
attachment draws its type by share, then its size from a log-normal distribution of
that type (``median · exp(sigma · N(0, 1))``, capped):

=========  ======  ==========  =====  ========  =================================
type       share   median      sigma  cap       bytes
=========  ======  ==========  =====  ========  =================================
``.pdf``   34 %    90 KB       1.0    20 MB     ``%PDF-1.7`` header, random stream
``.docx``  15 %    30 KB       0.8    10 MB     real ZIP (Word parts + stored image)
``.odt``   6 %     25 KB       0.8    10 MB     real ZIP (``mimetype`` stored first)
``.xlsx``  5 %     20 KB       0.8    10 MB     real ZIP (sheet XML + stored media)
``.jpg``   14 %    180 KB      0.8    8 MB      JFIF header, random scan data
``.png``   7 %     60 KB       1.0    8 MB      valid chunks, random IDAT
``.txt``   9 %     3 KB        0.8    200 KB    French text (compressible)
``.html``  4 %     8 KB        0.8    500 KB    French HTML page (compressible)
``.csv``   4 %     6 KB        1.0    1 MB      French ``;`` CSV (compressible)
``.mp4``   2 %     12 MB       0.6    200 MB    ``ftyp`` + ``mdat`` boxes, random
=========  ======  ==========  =====  ========  =================================

These figures are **assumptions**, not measurements of a real ENT: typical sizes of a
one-to-three-page PDF handout, a short word-processor document, a phone photo resized
by the upload, a screenshot, and a classroom video clip. Videos go only to the cahier de
textes (a teacher links a clip in a session; the share above is among those
attachments); a classeur activity's attachment draws from the other types (shares
renormalised), since each one is copied into every student's classeur archive.

Compressed formats carry seeded random bytes after a correct magic header, so they do not
compress (as real ones); the office documents are real ZIP containers any tool opens.
Text formats carry French text, which deflates like real pages.

Profiles: ``realistic`` uses the table; ``small`` (the default of ``yearchange sample``,
the demo and the tests) divides every size by 256 (at least 200 bytes, at most 64 KiB):
the same types and headers, a few MB per académie, so building one stays quick.
``yearchange bench`` uses ``realistic``: about 100 KB per classeur attachment on average,
so about 0.5 GB of classeur archives per establishment.

Everything derives from the ``random.Random`` given, so the same seed gives the same
bytes.
"""

from __future__ import annotations

import io
import math
import random
import struct
import zipfile
import zlib
from dataclasses import dataclass

PROFILES = ("small", "realistic")
DEFAULT_PROFILE = "small"
SMALL_DIVISOR = 256
SMALL_MIN, SMALL_MAX = 200, 64 << 10
_KB, _MB = 1_000, 1_000_000


@dataclass(frozen=True)
class AttachmentType:
    """One kind of attachment and its size distribution (see the module table)."""

    extension: str
    media_type: str
    share: float
    median: int
    sigma: float
    cap: int
    compressible: bool
    in_classeur: bool = True


TYPES: tuple[AttachmentType, ...] = (
    AttachmentType("pdf", "application/pdf", 0.34, 90 * _KB, 1.0, 20 * _MB, False),
    AttachmentType("docx", "application/vnd.openxmlformats-officedocument."
                   "wordprocessingml.document", 0.15, 30 * _KB, 0.8, 10 * _MB, False),
    AttachmentType("odt", "application/vnd.oasis.opendocument.text", 0.06, 25 * _KB, 0.8,
                   10 * _MB, False),
    AttachmentType("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                   0.05, 20 * _KB, 0.8, 10 * _MB, False),
    AttachmentType("jpg", "image/jpeg", 0.14, 180 * _KB, 0.8, 8 * _MB, False),
    AttachmentType("png", "image/png", 0.07, 60 * _KB, 1.0, 8 * _MB, False),
    AttachmentType("txt", "text/plain; charset=utf-8", 0.09, 3 * _KB, 0.8, 200 * _KB, True),
    AttachmentType("html", "text/html; charset=utf-8", 0.04, 8 * _KB, 0.8, 500 * _KB, True),
    AttachmentType("csv", "text/csv; charset=utf-8", 0.04, 6 * _KB, 1.0, 1 * _MB, True),
    AttachmentType("mp4", "video/mp4", 0.02, 12 * _MB, 0.6, 200 * _MB, False,
                   in_classeur=False),
)
"""The table of the module docstring (one owner: the README quotes it)."""


@dataclass(frozen=True)
class Attachment:
    """A generated attachment: its file name, bytes and media type."""

    name: str
    content: bytes
    media_type: str
    kind: AttachmentType


def draw_size(kind: AttachmentType, rng: random.Random, profile: str) -> int:
    """A size for ``kind`` from its log-normal distribution, scaled by the profile."""
    size = min(kind.cap, max(64, round(kind.median * math.exp(kind.sigma * rng.gauss(0, 1)))))
    if profile == "small":
        size = min(SMALL_MAX, max(SMALL_MIN, size // SMALL_DIVISOR))
    return size


def make_attachment(rng: random.Random, stem: str, *, profile: str = DEFAULT_PROFILE,
                    classeur: bool = False) -> Attachment:
    """Draw an attachment's type and size and build its bytes.

    Args:
        rng: the stream every choice and byte comes from.
        stem: the file name without extension.
        profile: ``small`` or ``realistic`` (see the module docstring).
        classeur: an attachment of a classeur activity (no videos).
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown attachment profile {profile!r}")
    kinds = [kind for kind in TYPES if kind.in_classeur or not classeur]
    kind = rng.choices(kinds, weights=[k.share for k in kinds])[0]
    size = draw_size(kind, rng, profile)
    content = _BUILDERS[kind.extension](rng, size)
    return Attachment(f"{stem}.{kind.extension}", content, kind.media_type, kind)


# -- bytes of each format --------------------------------------------------------------------

_WORD_TEXT = (
    "le la les un une des du de et en à pour dans sur avec par cette ce séance cours "
    "exercice leçon devoir travail élèves classe page question réponse chapitre document "
    "lire relire rédiger calculer observer comparer expliquer justifier résumer consigne "
    "mathématiques français histoire géographie sciences physique chimie anglais espagnol "
    "allemand technologie musique arts plastiques éducation physique vie de la Terre "
    "fraction équation triangle cercle proportionnalité narration poème roman siècle carte "
    "climat énergie cellule expérience hypothèse conclusion vocabulaire grammaire "
    "conjugaison semaine prochaine lundi mardi jeudi vendredi cahier manuel fiche")
_WORDS = _WORD_TEXT.split()


def _text(rng: random.Random, size: int) -> str:
    """French-looking sentences, about ``size`` bytes of UTF-8."""
    parts: list[str] = []
    length = 0
    while length < size:
        words = rng.choices(_WORDS, k=rng.randrange(6, 18))
        sentence = " ".join(words).capitalize() + ". "
        parts.append(sentence)
        length += len(sentence.encode("utf-8"))
    return "".join(parts)


def _txt(rng: random.Random, size: int) -> bytes:
    """About ``size`` bytes of text, cut at a character boundary."""
    return _text(rng, size).encode("utf-8")[:size].decode("utf-8", "ignore").encode("utf-8")


def _html(rng: random.Random, size: int) -> bytes:
    paragraphs = []
    length = 0
    while length < size:
        paragraph = f"<p>{_text(rng, rng.randrange(200, 900))}</p>\n"
        paragraphs.append(paragraph)
        length += len(paragraph.encode("utf-8"))
    return ('<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8"><title>Document'
            "</title></head><body>\n" + "".join(paragraphs) + "</body></html>\n").encode("utf-8")


def _csv(rng: random.Random, size: int) -> bytes:
    lines = ["\ufeffÉlève;Exercice;Note;Appréciation"]
    length = 0
    while length < size:
        line = (f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS).title()};"
                f"{rng.randrange(1, 12)};{rng.randrange(0, 41) / 2:.1f}".replace(".", ",")
                + f";{_text(rng, 30).strip()}")
        lines.append(line)
        length += len(line.encode("utf-8")) + 2
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _pdf(rng: random.Random, size: int) -> bytes:
    tail = b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    length = max(0, size - 80 - len(tail))
    head = (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Length " + str(length).encode()
            + b" /Filter /FlateDecode >>\nstream\n")
    return head + rng.randbytes(max(0, size - len(head) - len(tail))) + tail


def _jpeg(rng: random.Random, size: int) -> bytes:
    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x48\x00\x48\x00\x00"
    return head + rng.randbytes(max(0, size - len(head) - 2)) + b"\xff\xd9"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _png(rng: random.Random, size: int) -> bytes:
    header = struct.pack(">IIBBBBB", 640, 480, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", rng.randbytes(max(0, size - 57))) + _chunk(b"IEND", b""))


def _mp4(rng: random.Random, size: int) -> bytes:
    ftyp = b"isom\x00\x00\x02\x00isomiso2avc1mp41"
    ftyp_box = struct.pack(">I", 8 + len(ftyp)) + b"ftyp" + ftyp
    body = max(0, size - len(ftyp_box) - 8)
    return ftyp_box + struct.pack(">I", 8 + body) + b"mdat" + rng.randbytes(body)


def _container(entries: list[tuple[str, bytes, int]]) -> bytes:
    """A ZIP container (office document) with fixed dates: same entries, same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content, method in entries:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = method
            archive.writestr(info, content)
    return buffer.getvalue()


def _xml_text(rng: random.Random, size: int) -> bytes:
    return _text(rng, size).replace("&", "et").encode("utf-8")


def _office(rng: random.Random, size: int, parts: list[tuple[str, bytes, int]],
            media: str) -> bytes:
    """An office document: its XML parts deflated, an embedded image (random JPEG bytes,
    stored) filling the rest of ``size``."""
    empty = len(_container(parts))
    image = max(0, size - empty - len(media) - 80)
    if image:
        parts = [*parts, (media, _jpeg(rng, image), zipfile.ZIP_STORED)]
    return _container(parts)


_CONTENT_TYPES = (b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.'
                  b'openxmlformats.org/package/2006/content-types"/>')


def _docx(rng: random.Random, size: int) -> bytes:
    body = _xml_text(rng, min(size // 4, 6000))
    return _office(rng, size, [
        ("[Content_Types].xml", _CONTENT_TYPES, zipfile.ZIP_DEFLATED),
        ("word/document.xml", (b'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="'
                               b"http://schemas.openxmlformats.org/wordprocessingml/2006/main"
                               b'"><w:body><w:p><w:r><w:t>') + body
         + b"</w:t></w:r></w:p></w:body></w:document>", zipfile.ZIP_DEFLATED),
    ], "word/media/image1.jpeg")


def _xlsx(rng: random.Random, size: int) -> bytes:
    rows = "".join(f'<row r="{n}"><c r="A{n}"><v>{rng.randrange(100)}</v></c></row>'
                   for n in range(1, 1 + min(size // 200, 300)))
    return _office(rng, size, [
        ("[Content_Types].xml", _CONTENT_TYPES, zipfile.ZIP_DEFLATED),
        ("xl/worksheets/sheet1.xml", b'<?xml version="1.0" encoding="UTF-8"?><worksheet>'
         b"<sheetData>" + rows.encode() + b"</sheetData></worksheet>", zipfile.ZIP_DEFLATED),
    ], "xl/media/image1.jpeg")


def _odt(rng: random.Random, size: int) -> bytes:
    body = _xml_text(rng, min(size // 4, 6000))
    return _office(rng, size, [
        ("mimetype", b"application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED),
        ("content.xml", b'<?xml version="1.0" encoding="UTF-8"?><office:document-content '
         b'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"><office:body>'
         b"<office:text>" + body + b"</office:text></office:body></office:document-content>",
         zipfile.ZIP_DEFLATED),
        ("META-INF/manifest.xml", b'<?xml version="1.0" encoding="UTF-8"?><manifest:manifest/>',
         zipfile.ZIP_DEFLATED),
    ], "Pictures/image1.jpg")


_BUILDERS = {"pdf": _pdf, "docx": _docx, "odt": _odt, "xlsx": _xlsx, "jpg": _jpeg,
             "png": _png, "txt": _txt, "html": _html, "csv": _csv, "mp4": _mp4}
