"""Safe streaming XML for the timetable readers, with the AAF importer's rules.

- lxml ``iterparse`` with ``resolve_entities=False``, ``no_network=True``,
  ``load_dtd=False``, ``huge_tree=False``: nothing is ever fetched or expanded.
- No timetable format has a DOCTYPE: any ``<!DOCTYPE`` or ``<!ENTITY`` refuses the
  file, and so does a reference to a named entity other than the five of XML.
- Binary content, an unknown declared encoding, bytes that do not match it and
  malformed or truncated XML refuse the file with a stable code and the line.

A refused file raises :class:`TimetableFileError`. Runs on the caller's thread.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from yearchange_tui.importing.xmlsafe import (
    ENCODING_HINTS,
    SAFE_PARSER_OPTIONS,
    FileRefusals,
    RefusedFileError,
    line_of,
    parser_message,
)
from yearchange_tui.timetable.rules import RULE_BOOK

PARSER_OPTIONS = {**SAFE_PARSER_OPTIONS, "remove_comments": True}
_HEAD_BYTES = 64 * 1024
_ENTITY_HINT = re.compile(r"[Ee]ntity '([^']*)'")
RAW_XML_LIMIT = 4000


class TimetableFileError(RefusedFileError):
    """A timetable file refused whole, with a code of :mod:`~yearchange_tui.timetable.rules`."""

    rule_book = RULE_BOOK


_REFUSE = FileRefusals(TimetableFileError, not_found="EDT-FICHIER-INTROUVABLE",
                       malformed="EDT-XML-MALFORME", binary="EDT-FICHIER-BINAIRE",
                       encoding="EDT-ENCODAGE-INVALIDE",
                       encoding_hints=(*ENCODING_HINTS, "input conversion"))


def local_name(tag: object) -> str:
    """The tag without its namespace (``""`` for comments and processing instructions)."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def check_head(head: bytes, file: str) -> str | None:
    """Check the first bytes of an XML document; return its declared encoding.

    Raises:
        TimetableFileError: empty or binary content, unknown encoding, DOCTYPE or ENTITY.
    """
    bom = _REFUSE.byte_order_mark(head, file)
    if bom in ("UTF-16", "UTF-32"):
        text = head.decode(bom.lower(), "replace").encode("utf-8", "replace")
        declared = bom
    else:
        text = head[len(codecs.BOM_UTF8):] if bom else head
        declared = _REFUSE.check_text_head(text, file, declaration_after_space=True)
    for marker, what in ((b"<!DOCTYPE", "<!DOCTYPE"), (b"<!ENTITY", "<!ENTITY")):
        position = text.find(marker)
        if position != -1:
            raise TimetableFileError("EDT-DTD-INTERDITE", file, line_of(text, position),
                                     detail=f"déclaration {what}")
    return declared


def syntax_error(error: etree.XMLSyntaxError, file: str, declared: str | None,
                 log: object = None) -> RefusedFileError:
    """Turn a parser error into the right refusal (entity, encoding or malformed).

    ``log`` is the parser's own error log: iterparse may raise "no element found" and
    log the real cause there.
    """
    message, line = parser_message(error)
    entries = list(log or [])  # type: ignore[call-overload]
    if entries and (not line or message.startswith("no element found")):
        message, line = entries[0].message, entries[0].line or line
    entity = _ENTITY_HINT.search(message)
    if entity is not None and "not defined" in message:
        return TimetableFileError("EDT-ENTITE-INTERDITE", file, line,
                                  value=f"&{entity.group(1)};")
    return _REFUSE.refuse_message(message, line, file, declared)


def _open(source: Path | bytes, file: str) -> BinaryIO:
    if isinstance(source, bytes):
        return io.BytesIO(source)
    return _REFUSE.open(source, file)


def iter_xml(source: Path | bytes, file: str, *, events: Iterable[str] = ("start", "end"),
             declared: list[str | None] | None = None
             ) -> Iterator[tuple[str, etree._Element]]:
    """Stream ``(event, element)`` pairs of a document, refusing unsafe or broken XML.

    The caller clears elements it has read. ``declared``, when given, receives the
    declared encoding.

    Raises:
        TimetableFileError: see :func:`check_head` and :func:`syntax_error`.
    """
    with _open(source, file) as handle:
        head = handle.read(_HEAD_BYTES)
        encoding = check_head(head, file)
        if declared is not None:
            declared.append(encoding)
        handle.seek(0)
        context = etree.iterparse(handle, events=tuple(events), **PARSER_OPTIONS)
        started = False
        try:
            for event, element in context:
                if not started:
                    started = True
                    if element.getroottree().docinfo.doctype:
                        raise TimetableFileError("EDT-DTD-INTERDITE", file,
                                                 element.sourceline, detail="DOCTYPE")
                yield event, element
        except etree.XMLSyntaxError as error:
            raise syntax_error(error, file, encoding, context.error_log) from error


def root_name(source: Path | bytes, file: str) -> str:
    """The local name of the root element (reads only the start of the document)."""
    for _event, element in iter_xml(source, file, events=("start",)):
        return local_name(element.tag)
    raise TimetableFileError("EDT-XML-MALFORME", file, 1, detail="aucun élément")


def excerpt(element: etree._Element) -> str:
    """The element's XML text, cut at :data:`RAW_XML_LIMIT` characters (for rejects)."""
    text = etree.tostring(element, encoding="unicode", with_tail=False)
    text = re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", text)
    return text if len(text) <= RAW_XML_LIMIT else text[:RAW_XML_LIMIT] + "…"


def text_of(element: etree._Element | None) -> str:
    """The stripped text of an element (``""`` when absent)."""
    if element is None or element.text is None:
        return ""
    return element.text.strip()
