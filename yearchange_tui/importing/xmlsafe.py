"""Hostile or broken XML, refused the same way by the AAF and the timetable importers.

Each importer names its own codes in a :class:`FileRefusals` and raises its own subclass
of :class:`RefusedFileError`; the checks of the first bytes (empty or binary content, byte
order mark, declared encoding) and the reading of parser errors (bad bytes for the
encoding, malformed or truncated XML) are the same. Each importer keeps its own DOCTYPE
and entity policy. Runs on the caller's thread.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, ClassVar

from lxml import etree

from yearchange_tui.french import os_error_text
from yearchange_tui.importing.rules import RuleBook

SAFE_PARSER_OPTIONS = {"resolve_entities": False, "no_network": True, "load_dtd": False,
                       "huge_tree": False, "remove_pis": True}
"""lxml parser options: nothing is ever fetched, loaded or expanded."""

XML_DECLARATION = re.compile(rb"""^<\?xml\s[^>]*?encoding\s*=\s*(["'])([A-Za-z0-9._:-]+)\1""")
BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
        (codecs.BOM_UTF8, "UTF-8"), (codecs.BOM_UTF16_LE, "UTF-16"),
        (codecs.BOM_UTF16_BE, "UTF-16"))
ENCODING_HINTS = ("encoding", "utf-8", "utf8", "not proper", "bytes", "char 0x",
                  "invalid character", "codec")
"""Words of a parser message that point at bytes not matching the encoding."""


class RefusedFileError(Exception):
    """A file refused whole: stable ``code``, French message, file and line.

    Subclasses set :attr:`rule_book`, the rules the code belongs to.

    Attributes:
        code: a file-level code of the importer's rules.
        file: the file name as shown to operators.
        line: the offending line, when known.
        message: the French explanation.
        action: what to do.
        params: the template values (tests and JSON output).
    """

    rule_book: ClassVar[RuleBook]

    def __init__(self, code: str, file: str = "", line: int | None = None,
                 **params: object) -> None:
        self.code = code
        self.file = file
        self.line = line
        self.params = params
        self.message, self.action = self.rule_book.explain(code, **params)
        where = file + (f", ligne {line}" if line else "")
        super().__init__(f"[{code}] {where + ' : ' if where else ''}{self.message}")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"code": self.code, "file": self.file, "line": self.line,
                "message": self.message, "action": self.action}


def line_of(data: bytes, position: int) -> int:
    """The line (from 1) of a byte offset."""
    return data.count(b"\n", 0, position) + 1


def parser_message(error: etree.XMLSyntaxError) -> tuple[str, int | None]:
    """The message and line of a parser error."""
    message = str(error.msg if getattr(error, "msg", None) else error)
    line = getattr(error, "lineno", None) or getattr(error, "position", (None,))[0]
    return message, line


def parser_column(error: etree.XMLSyntaxError) -> int | None:
    """The column of a parser error, when the library gives one."""
    position = getattr(error, "position", None)
    column = position[1] if position and len(position) > 1 else getattr(error, "offset", None)
    return column or None


# What the parser's English messages mean, in French (the message itself follows as
# « détail technique »). Matched in order on the lower-cased message.
_SYNTAX_EXPLANATIONS = (
    ("opening and ending tag mismatch", "une balise fermante ne correspond pas à l'ouvrante"),
    ("premature end of data", "le fichier s'arrête au milieu d'un élément (fichier tronqué)"),
    ("not well balanced", "le fichier s'arrête au milieu d'un élément (fichier tronqué)"),
    ("endtag: '</' not found", "une balise fermante manque (fichier tronqué)"),
    ("truncated", "le fichier est tronqué"),
    ("extra content at the end", "du contenu suit la fin du document"),
    ("document is empty", "le document est vide"),
    ("start tag expected", "le document ne commence par aucun élément XML"),
    ("xmlparseentityref: no name", "un « & » isolé (il doit s'écrire &amp;)"),
    ("entityref: expecting ';'", "une référence d'entité sans « ; » final"),
    ("attributes construct error", "un attribut mal écrit"),
    ("couldn't find end of start tag", "une balise ouvrante inachevée"),
    ("invalid element name", "un nom d'élément invalide"),
    ("specification mandates value for attribute", "un attribut sans valeur"),
    ("unescaped '<' not allowed", "un « < » non échappé dans une valeur d'attribut"),
    ("attribute redefined", "un attribut répété dans la même balise"),
    ("comment not terminated", "un commentaire non terminé"),
)


def syntax_explanation(message: str) -> str:
    """A French explanation of a parser message (a generic one when it is not known)."""
    lowered = message.lower()
    return next((french for english, french in _SYNTAX_EXPLANATIONS if english in lowered),
                "le texte ne respecte pas la syntaxe XML")


def malformed_detail(file: str, line: int | None, column: int | None, message: str) -> str:
    """Where a file is malformed and why, in French, the parser's own words marked as such.

    ``« Eleve.xml », ligne 12, colonne 5 : une balise fermante ne correspond pas à la balise
    ouverte (détail technique : Opening and ending tag mismatch: …)``.
    """
    place = ", ".join(part for part in (f"« {file} »" if file else "",
                                        f"ligne {line}" if line else "",
                                        f"colonne {column}" if column else "") if part)
    technical = " ".join(message.split())
    explanation = syntax_explanation(technical)
    detail = f"{place} : {explanation}" if place else explanation
    return f"{detail} (détail technique : {technical})" if technical else detail


@dataclass(frozen=True)
class FileRefusals:
    """The checks that refuse a file whole, raising one importer's error with its codes.

    Attributes:
        error: the importer's :class:`RefusedFileError` subclass.
        not_found: the file cannot be opened.
        malformed: empty, malformed or truncated XML.
        binary: not an XML document.
        encoding: unknown encoding, or bytes that do not match it.
        encoding_hints: words of a parser message that mean ``encoding``.
    """

    error: type[RefusedFileError]
    not_found: str
    malformed: str
    binary: str
    encoding: str
    encoding_hints: tuple[str, ...] = ENCODING_HINTS

    def open(self, path: Path, file: str) -> BinaryIO:
        """Open a file for reading bytes.

        Raises:
            RefusedFileError: ``not_found``, the file cannot be opened.
        """
        try:
            return path.open("rb")
        except OSError as error:
            raise self.error(self.not_found, file, value=file,
                             detail=f" ({os_error_text(error)})") from error

    def byte_order_mark(self, head: bytes, file: str) -> str | None:
        """Refuse an empty document; return the encoding its byte order mark names, if any.

        Raises:
            RefusedFileError: ``malformed``, nothing but white space.
        """
        if not head.strip():
            raise self.error(self.malformed, file, 1,
                             detail=f"« {file} » : le fichier est vide" if file
                             else "le fichier est vide")
        return next((name for mark, name in BOMS if head.startswith(mark)), None)

    def check_text_head(self, body: bytes, file: str, *,
                        declaration_after_space: bool = False) -> str | None:
        """Check the first bytes of a document in an ASCII-compatible encoding.

        Args:
            body: the first bytes, after a UTF-8 byte order mark if there is one.
            file: the file name as shown to operators.
            declaration_after_space: also read an XML declaration preceded by white space.

        Returns:
            The declared encoding (``None`` without a declaration).

        Raises:
            RefusedFileError: ``binary`` (null bytes, or not starting with ``<``) or
                ``encoding`` (an encoding Python does not know).
        """
        if b"\x00" in body:
            raise self.error(self.binary, file, line_of(body, body.index(b"\x00")),
                             detail="octets nuls (contenu binaire)")
        start = body.lstrip()
        if not start.startswith(b"<"):
            raise self.error(self.binary, file, 1,
                             detail="le contenu ne commence pas par « < »")
        declaration = XML_DECLARATION.match(start if declaration_after_space else body)
        declared = declaration.group(2).decode("ascii") if declaration else None
        if declared is not None:
            try:
                codecs.lookup(declared)
            except LookupError as error:
                raise self.error(self.encoding, file, 1, value=declared,
                                 detail="encodage inconnu") from error
        return declared

    def refuse_message(self, message: str, line: int | None, file: str,
                       declared: str | None, column: int | None = None) -> RefusedFileError:
        """The refusal for a parser message: ``encoding`` if it speaks of bytes, else ``malformed``.

        A malformed file's explanation is French, with the file, line and column; the
        parser's own (English) message follows as « détail technique ».
        """
        lowered = message.lower()
        if any(hint in lowered for hint in self.encoding_hints):
            return self.error(self.encoding, file, line,
                              value=declared or "UTF-8 (aucune déclaration)", detail=message)
        return self.error(self.malformed, file, line, column=column,
                          detail=malformed_detail(file, line, column, message))

    def refuse_syntax_error(self, error: etree.XMLSyntaxError, file: str,
                            declared: str | None) -> RefusedFileError:
        """The refusal for a parser error (see :meth:`refuse_message`)."""
        message, line = parser_message(error)
        return self.refuse_message(message, line, file, declared, parser_column(error))
