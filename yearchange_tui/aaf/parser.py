"""Streaming reader of AAF ``ficAlimMENESR`` files, with the safety and encoding rules.

- lxml ``iterparse`` with ``resolve_entities=False``, ``no_network=True``,
  ``load_dtd=False``, ``huge_tree=False``; each request element is cleared and
  removed from the tree once read, so memory stays flat whatever the file size.
- The prologue is checked before parsing: only the standard
  ``<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">`` is accepted (no internal
  subset, no entity declaration, no other system or public identifier: nothing is
  ever fetched or expanded); the root must be ``ficAlimMENESR``; binary content is
  refused.
- Encodings as real deliveries have them: the XML declaration is honoured (raw
  Latin-1 bytes under an ISO-8859-1 declaration), no declaration means UTF-8,
  numeric character references are decoded by the parser, and HTML named entities
  (``&eacute;``…), which real deliveries have carried, are turned into numeric
  references on the fly, in UTF-16 and UTF-32 files too. Any other named entity
  refuses the file.

A problem with a whole file raises :class:`AafFileError` (stable code, French
message, file and line). Runs on the caller's thread.
"""

from __future__ import annotations

import codecs
import hashlib
import html.entities
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from lxml import etree

from yearchange_tui.aaf.rules import RULE_BOOK
from yearchange_tui.importing.xmlsafe import (
    SAFE_PARSER_OPTIONS,
    FileRefusals,
    RefusedFileError,
    line_of,
)

ROOT_TAG = "ficAlimMENESR"
REQUEST_TAGS: dict[str, str] = {"addRequest": "add", "modifyRequest": "modify",
                                "deleteRequest": "delete"}
_REQUEST_TAG_TUPLE = tuple(REQUEST_TAGS)
STANDARD_DOCTYPE = re.compile(
    rb"""<!DOCTYPE\s+ficAlimMENESR\s+SYSTEM\s+(["'])ficAlimMENESR\.dtd\1\s*>""")
_HEADER_FIELD = re.compile(r"""([A-Za-z][A-Za-z0-9_]*)\s*=\s*"([^"]*)\"""")
_ENTITY = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos);)([A-Za-z][A-Za-z0-9]{0,31});")
_XML_ENTITIES = frozenset((b"amp", b"lt", b"gt", b"quot", b"apos"))
_HTML_ENTITIES: dict[bytes, bytes] = {
    name.encode("ascii"): f"&#{codepoint};".encode("ascii")
    for name, codepoint in html.entities.name2codepoint.items()
    if name.encode("ascii") not in _XML_ENTITIES
}
_PROLOGUE_BYTES = 64 * 1024
_PRESCAN_LIMIT = 4 * 1024 * 1024
_PRESCAN_STEP = 4096
_READ_BYTES = 256 * 1024


class AafFileError(RefusedFileError):
    """A file (or the delivery) refused whole, with a code of :mod:`~yearchange_tui.aaf.rules`."""

    rule_book = RULE_BOOK


_REFUSE = FileRefusals(AafFileError, not_found="AAF-LIVRAISON-INTROUVABLE",
                       malformed="AAF-XML-MALFORME", binary="AAF-FICHIER-BINAIRE",
                       encoding="AAF-ENCODAGE-INVALIDE")


MALFORMED = "AAF-XML-MALFORME"


def malformed_refusal(path: Path, file: str) -> AafFileError | None:
    """Parse a whole file only to check that it is well formed: its refusal, or None.

    Only malformed XML counts here (another problem is found again by the import).
    Read with the same safe parser as the import, holding one element at a time.
    """
    declared: str | None = None
    try:
        prologue = inspect_prologue(path, file)
        declared = prologue.declared_encoding
        with path.open("rb") as handle:
            stream = entity_stream(handle, file, prologue)
            parser = etree.XMLPullParser(events=("end",), remove_comments=True,
                                         **SAFE_PARSER_OPTIONS)
            for chunk in iter(lambda: stream.read(_READ_BYTES), b""):
                parser.feed(chunk)
                for _event, element in parser.read_events():
                    element.clear()
                    parent = element.getparent()
                    if parent is not None and parent.getparent() is None:
                        parent.remove(element)
            parser.close()
    except etree.XMLSyntaxError as error:
        refusal = _REFUSE.refuse_syntax_error(error, file, declared)
        return refusal if refusal.code == MALFORMED else None
    except AafFileError as error:
        return error if error.code == MALFORMED else None
    except OSError:
        return None
    return None


def delivery_refusal(error: AafFileError,
                     files: Sequence[tuple[Path, str]]) -> AafFileError:
    """The refusal of a delivery where ``error`` was met.

    A malformed file is never alone to be named: every malformed file of the delivery
    is listed in one refusal (the operator asks the rectorat for all of them at once).
    Any other refusal is returned as it is.

    Args:
        error: the first refusal met.
        files: every file of the delivery (path, name as shown).
    """
    if error.code != MALFORMED:
        return error
    refusals: list[AafFileError] = []
    for path, name in files:
        found = error if name == error.file else malformed_refusal(path, name)
        if found is not None:
            refusals.append(found)
    if len(refusals) < 2:
        return error
    details = " ; ".join(str(refusal.params.get("detail", "")) for refusal in refusals)
    return AafFileError(MALFORMED, ", ".join(refusal.file for refusal in refusals), None,
                        detail=f"{len(refusals)} fichiers de la livraison — {details}",
                        files=[refusal.file for refusal in refusals])


class RawRecord:
    """One request of a file, as read (values are strings, ``""`` for empty values).

    ``attributes`` maps each attribute name to its values (read on first access,
    see :class:`LazyAttributes`); ``names`` is every attribute name the record
    carries. The element stays available (for :meth:`raw_xml` and values not read
    yet) only until the reader moves on.
    """

    __slots__ = (
        "_raw",
        "attributes",
        "category",
        "element",
        "file",
        "identifier",
        "line",
        "names",
        "operations",
        "request",
        "unexpected",
    )

    def __init__(self, file: str, line: int, request: str, category: tuple[str, str],
                 identifier: str, attributes: dict[str, list[str]],
                 names: Collection[str] | None = None, operations: dict[str, str] | None = None,
                 unexpected: list[str] | None = None,
                 element: etree._Element | None = None) -> None:
        self.file = file
        self.line = line
        self.request = request  # add, modify, delete; "unknown" for an unexpected element
        self.category = category
        self.identifier = identifier
        self.attributes = attributes
        self.names = attributes.keys() if names is None else names
        self.operations = operations or {}
        self.unexpected = unexpected or []
        self.element = element
        self._raw: str | None = None

    def release(self) -> None:
        """Forget the elements of values not read (the reader has moved on)."""
        attributes = self.attributes
        if isinstance(attributes, LazyAttributes):
            self.names = tuple(self.names)
            attributes.release()
        self.element = None

    def raw_xml(self) -> str:
        """The record's XML text (captured on first call, while the element is alive)."""
        if self._raw is None:
            if self.element is None:
                return ""
            self._raw = etree.tostring(self.element, encoding="unicode", with_tail=False)
        return self._raw

    def raw_xml_utf8(self) -> bytes:
        """:meth:`raw_xml` encoded in UTF-8 (serialised about twice as fast)."""
        if self._raw is not None:
            return self._raw.encode("utf-8")
        if self.element is None:
            return b""
        return etree.tostring(self.element, encoding="utf-8", with_tail=False)


def _values(attr: etree._Element) -> list[str]:
    # Comments are removed by the parser; <attr> holds only <value> children.
    return [value.text or "" for value in attr]


class LazyAttributes(dict):  # type: ignore[type-arg]
    """A record's attributes (name → values), each read from the XML on first access.

    Indexing a name the record does not carry raises ``KeyError``; ``keys()`` and
    ``in`` cover every name the record carries, read or not. Values must be read
    before the reader moves to the next record (the element is then cleared).
    """

    __slots__ = ("_elements",)

    def __init__(self, elements: dict[str, etree._Element]) -> None:
        super().__init__()
        self._elements = elements

    def __missing__(self, name: str) -> list[str]:
        element = self._elements[name]
        if element is None:
            raise LookupError(f"{name} : valeur lue après le passage du lecteur")
        values = _values(element)
        self[name] = values
        return values

    def release(self) -> None:
        """Drop the elements (names stay known; values not read yet are no longer readable)."""
        self._elements = dict.fromkeys(self._elements)

    def __contains__(self, name: object) -> bool:
        return name in self._elements

    def keys(self):  # type: ignore[no-untyped-def, override]
        """Every attribute name the record carries."""
        return self._elements.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self._elements)

    def __len__(self) -> int:
        return len(self._elements)

    def get(self, name: str, default: object = None) -> object:  # type: ignore[override]
        """The values of ``name``, or ``default`` when the record does not carry it."""
        try:
            return self[name]
        except KeyError:
            return default


@dataclass
class Prologue:
    """What the start of a file says: encoding, doctype, root and first record category."""

    declared_encoding: str | None
    bom_encoding: str | None
    doctype: str
    root_tag: str
    category: tuple[str, str] | None
    comments: list[str] = field(default_factory=list)

    @property
    def ascii_compatible(self) -> bool:
        """True when named entities can be rewritten in the raw bytes."""
        name = (self.bom_encoding or self.declared_encoding or "utf-8").lower()
        return not (name.startswith(("utf-16", "utf-32", "ucs")))


def parse_header_comment(text: str) -> dict[str, str]:
    """Return the ``key="value"`` pairs of a header comment (``versionAF``…)."""
    return {key: value for key, value in _HEADER_FIELD.findall(text)}


class HtmlEntityFilter:
    """A binary stream that rewrites HTML named entities as numeric character references.

    ``&eacute;`` becomes ``&#233;`` (same meaning, valid XML); the five XML entities
    are left alone; any other named entity raises :class:`AafFileError`. Line ends
    are untouched, so parser line numbers stay right.

    A file in an encoding that is not ASCII-compatible (UTF-16, UTF-32: ``encoding``)
    goes through the same rewriting: its bytes are decoded as they are read, rewritten
    and encoded again in that encoding (with its byte order mark, as the file has one).
    """

    def __init__(self, raw: BinaryIO, file: str, digest: Any = None,
                 encoding: str | None = None) -> None:
        self._raw = raw
        self._file = file
        self._digest = digest
        self._pending = b""
        self._lines_before = 1
        self._eof = False
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)() if encoding else None
        self._encoder = codecs.getincrementalencoder(encoding)() if encoding else None

    def _replace(self, block: bytes) -> bytes:
        if b"&" not in block:
            return block

        def substitute(match: re.Match[bytes]) -> bytes:
            name = match.group(1)
            replacement = _HTML_ENTITIES.get(name)
            if replacement is None:
                line = self._lines_before + block.count(b"\n", 0, match.start())
                raise AafFileError("AAF-ENTITE-INCONNUE", self._file, line,
                                   value=match.group(0).decode("ascii"))
            return replacement

        return _ENTITY.sub(substitute, block)

    def _utf8(self, chunk: bytes) -> bytes:
        """``chunk`` as UTF-8 (a file in UTF-16 or UTF-32 is decoded as it is read)."""
        if self._decoder is None:
            return chunk
        try:
            return self._decoder.decode(chunk, final=not chunk).encode("utf-8")
        except UnicodeDecodeError as error:
            raise AafFileError("AAF-ENCODAGE-INVALIDE", self._file, self._lines_before,
                               value=self._encoding,
                               detail="octets invalides pour cet encodage") from error

    def _encoded(self, block: bytes) -> bytes:
        if self._encoder is None:
            return block
        return self._encoder.encode(block.decode("utf-8"))

    def read(self, size: int = -1) -> bytes:
        """Read up to about ``size`` bytes of rewritten content (``b""`` at the end)."""
        while True:
            if self._eof:
                block, self._pending = self._pending, b""
            else:
                chunk = self._raw.read(_READ_BYTES if size is None or size < 0 else
                                       max(size, 4096))
                if chunk and self._digest is not None:
                    self._digest.update(chunk)
                text = self._utf8(chunk)
                if not chunk:
                    self._eof = True
                    block, self._pending = self._pending + text, b""
                else:
                    data = self._pending + text
                    # Keep back a possibly cut entity reference for the next read.
                    cut = data.rfind(b"&", max(0, len(data) - 40))
                    if cut != -1 and b";" not in data[cut:]:
                        block, self._pending = data[:cut], data[cut:]
                    else:
                        block, self._pending = data, b""
                    if not block:
                        continue
            out = self._replace(block)
            self._lines_before += block.count(b"\n")
            return self._encoded(out)


def entity_stream(handle: BinaryIO, file: str, prologue: Prologue,
                  digest: Any = None) -> HtmlEntityFilter:
    """The stream every reading of an AAF file parses: HTML named entities rewritten (an
    unknown one refuses the file) whatever the file's encoding."""
    encoding = None if prologue.ascii_compatible else (prologue.bom_encoding
                                                        or prologue.declared_encoding)
    return HtmlEntityFilter(handle, file, digest, encoding)


def inspect_prologue(path: Path, file: str) -> Prologue:
    """Check the start of a file and read its root and first record category.

    Args:
        path: the file.
        file: its name as shown to operators.

    Raises:
        AafFileError: binary content, unknown encoding, forbidden DOCTYPE or DTD,
            malformed start, wrong root element.
    """
    with _REFUSE.open(path, file) as handle:
        head = handle.read(_PROLOGUE_BYTES)
        bom_encoding = _REFUSE.byte_order_mark(head, file)
        if bom_encoding is None or bom_encoding == "UTF-8":
            body = head[len(codecs.BOM_UTF8):] if bom_encoding else head
            declared = _REFUSE.check_text_head(body, file)
            doctype = _check_doctype(body, file)
        else:
            declared = None
            doctype = ""
        prologue = Prologue(declared, bom_encoding, doctype, "", None)
        handle.seek(0)
        _prescan_tree(handle, file, prologue)
    return prologue


def _check_doctype(body: bytes, file: str) -> str:
    entity = body.find(b"<!ENTITY")
    start = body.find(b"<!DOCTYPE")
    if start == -1:
        if entity != -1:
            raise AafFileError("AAF-DTD-INTERNE", file, line_of(body, entity),
                               detail="déclaration <!ENTITY")
        return ""
    end = body.find(b">", start)
    declaration = body[start:end + 1] if end != -1 else body[start:start + 200]
    shown = declaration.decode("latin-1")[:200]
    if b"[" in declaration or entity != -1:
        raise AafFileError("AAF-DTD-INTERNE", file, line_of(body, start),
                           detail="sous-ensemble interne [ … ] ou <!ENTITY")
    if STANDARD_DOCTYPE.fullmatch(declaration) is None:
        raise AafFileError("AAF-DOCTYPE-INTERDIT", file, line_of(body, start), value=shown)
    return shown


def _check_docinfo(root: etree._Element, file: str) -> None:
    """What the parser itself saw of the DOCTYPE (whatever its place in the file)."""
    docinfo = root.getroottree().docinfo
    internal = docinfo.internalDTD
    if internal is not None and (list(internal.entities()) or list(internal.elements())):
        raise AafFileError("AAF-DTD-INTERNE", file, root.sourceline,
                           detail="déclarations dans le DOCTYPE")
    if docinfo.doctype and (docinfo.public_id or docinfo.system_url != "ficAlimMENESR.dtd"):
        raise AafFileError("AAF-DOCTYPE-INTERDIT", file, root.sourceline,
                           value=docinfo.doctype[:200])


def _prescan_tree(handle: BinaryIO, file: str, prologue: Prologue) -> None:
    """Read the root tag and the first record's category with a pull parser.

    The events the parser gives only once it is closed (a short file, a root element
    at the very end) are read like the others: the root check applies whatever the size.
    """
    parser = etree.XMLPullParser(events=("start", "end", "comment"), **SAFE_PARSER_OPTIONS)
    stream = entity_stream(handle, file, prologue)
    state = {"operational": False, "request": False}

    def read_events() -> bool:
        """Read the pending events; True once the first record's category is known."""
        for event, element in parser.read_events():
            if event == "comment":
                if prologue.root_tag and not state["request"]:
                    prologue.comments.append((element.text or "").strip())
                continue
            tag = element.tag if isinstance(element.tag, str) else ""
            if event == "start" and tag in REQUEST_TAGS:
                state["request"] = True
            if event == "start" and not prologue.root_tag:
                prologue.root_tag = tag
                _check_docinfo(element, file)
                if tag != ROOT_TAG:
                    raise AafFileError("AAF-RACINE-INATTENDUE", file, element.sourceline,
                                       value=tag or "?")
            elif event == "start" and tag == "operationalAttributes":
                state["operational"] = True
            elif event == "end" and state["operational"] and tag == "attr":
                value = element.findtext("value") or ""
                prologue.category = (element.get("name") or "", value.strip())
                return True
            elif event == "end" and tag in REQUEST_TAGS:
                prologue.category = ("", "")
                return True
        return False

    read = 0
    try:
        while read < _PRESCAN_LIMIT:
            chunk = stream.read(_PRESCAN_STEP)
            if not chunk:
                break
            read += len(chunk)
            parser.feed(chunk)
            if read_events():
                return
        else:
            return
        parser.close()
        read_events()
    except etree.XMLSyntaxError as error:
        raise _REFUSE.refuse_syntax_error(error, file, prologue.declared_encoding) from error


@dataclass
class FileHeader:
    """The header comments of a file (``versionAF="…"`` and others)."""

    comments: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_prologue(cls, prologue: Prologue) -> FileHeader:
        """The header of a file from the comments its prologue read."""
        header = cls(list(prologue.comments))
        for comment in prologue.comments:
            header.fields.update(parse_header_comment(comment))
        return header


class AafFileReader:
    """Streams the records of one AAF file.

    Iterate :meth:`records`; the header comments are in :attr:`header` once the
    first record (or the end of the file) has been reached.
    """

    def __init__(self, path: Path, file: str, prologue: Prologue,
                 eager: Collection[str] = ()) -> None:
        self.path = path
        self.file = file
        self.prologue = prologue
        # Attributes read from every record: extracted at once, cheaper than one by one.
        self.eager = tuple(eager)
        self.header = FileHeader.from_prologue(prologue)
        self.record_count = 0
        self.sha256 = ""

    def _take_preceding(self, root: etree._Element,
                        stop: etree._Element | None) -> Iterator[RawRecord]:
        """Remove the nodes before ``stop`` from the tree; yield unexpected elements."""
        while len(root) and root[0] is not stop:
            node = root[0]
            tag = node.tag
            if isinstance(tag, str) and tag not in REQUEST_TAGS:
                self.record_count += 1
                yield RawRecord(self.file, node.sourceline or 0, "unknown", ("", ""), "", {},
                                unexpected=[tag], element=node)
            del root[0]

    def records(self) -> Iterator[RawRecord]:
        """Yield every request (and unexpected element) of the file, in order.

        Raises:
            AafFileError: malformed or truncated XML, bad bytes for the encoding,
                unknown named entity.
        """
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            stream = entity_stream(handle, self.file, self.prologue, digest)
            # End events of requests only: one Python step per record.
            context = etree.iterparse(stream, events=("end",), tag=_REQUEST_TAG_TUPLE,
                                      remove_comments=True, **SAFE_PARSER_OPTIONS)
            root: etree._Element | None = None
            try:
                build = self._build
                for _event, element in context:
                    parent = element.getparent()
                    if parent is not root:
                        if root is None:
                            root = element.getroottree().getroot()
                        if parent is not root:
                            continue  # a request nested in another element: reported with it
                    if element.getprevious() is not None:
                        # Something else before it (an unexpected element): report it first.
                        yield from self._take_preceding(root, element)
                    record = build(element)
                    self.record_count += 1
                    yield record
                    # Release the record's element proxies while their nodes are still in
                    # the tree (cheap), then free the nodes in one go.
                    record.release()
                    element.clear()
                    # Drop the record at once: the tree never holds more than one (memory
                    # stays flat whatever the file size).
                    root.remove(element)
                if root is None:
                    root = context.root
                if root is not None:
                    yield from self._take_preceding(root, None)
                for block in iter(lambda: handle.read(_READ_BYTES), b""):
                    digest.update(block)
                self.sha256 = digest.hexdigest()
            except etree.XMLSyntaxError as error:
                raise _REFUSE.refuse_syntax_error(error, self.file,
                                                  self.prologue.declared_encoding) from error

    def _build(self, element: etree._Element) -> RawRecord:
        request = REQUEST_TAGS[element.tag]
        category = ("", "")
        identifier = ""
        elements: dict[str, etree._Element] = {}
        multiple: dict[str, list[etree._Element]] = {}
        operations: dict[str, str] = {}
        unexpected: list[str] = []
        for child in element:
            tag = child.tag
            if tag == "attributes":
                # Fast path: one <attr> per name and nothing else (every real file).
                elements = {attr.get("name"): attr for attr in child}
                if len(elements) == len(child) and None not in elements:
                    continue
            if tag == "attributes" or tag == "modifications":
                elements = {}
                for attr in child:
                    attr_tag = attr.tag
                    if attr_tag != "attr" and attr_tag != "modification":
                        if isinstance(attr_tag, str):
                            unexpected.append(attr_tag)
                        continue
                    name = attr.get("name") or ""
                    if name in elements:
                        multiple.setdefault(name, [elements[name]]).append(attr)
                    else:
                        elements[name] = attr
                    if tag == "modifications":
                        operations[name] = attr.get("operation") or ""
            elif tag == "identifier":
                # Direct iteration: cheaper than ElementPath's find()/findtext().
                for sub in child:
                    if sub.tag == "id":
                        identifier = (sub.text or "").strip()
                        break
            elif tag == "operationalAttributes":
                for attr in child:
                    if attr.tag == "attr":
                        value = ""
                        for sub in attr:
                            if sub.tag == "value":
                                value = (sub.text or "").strip()
                                break
                        category = (attr.get("name") or "", value)
                        break
            elif isinstance(tag, str):
                unexpected.append(tag)
        attributes = LazyAttributes(elements)
        store = dict.__setitem__
        for name in self.eager:
            attr = elements.get(name)
            if attr is not None:
                store(attributes, name, [value.text or "" for value in attr])
        for name, attrs in multiple.items():
            store(attributes, name, [value for attr in attrs for value in _values(attr)])
        return RawRecord(self.file, element.sourceline or 0, request, category, identifier,
                         attributes, elements.keys(), operations, unexpected, element)


_REQUEST_START = re.compile(rb"<(addRequest|modifyRequest|deleteRequest)[\s>]")
_START_OVERLAP = len(b"<deleteRequest>")  # a start tag cut between two reads: kept back
_EXCERPT_FALLBACK = 20_000  # bytes kept after a start tag whose end tag never comes


def _after_line_ends(data: bytearray, count: int) -> int:
    """The offset just after the ``count``-th line end of ``data`` (it has at least as many).

    Whole blocks are counted by ``bytes.count`` (C speed); only the last block is walked
    line by line.
    """
    block = 8192
    start = 0
    while True:
        in_block = data.count(b"\n", start, start + block)
        if in_block >= count:
            break
        count -= in_block
        start += block
    found = start
    for _ in range(count):
        found = data.index(b"\n", found) + 1
    return found


class _Window:
    """Bytes of a file read forward by absolute offset, holding only what is not dropped.

    Reads blocks in order; :meth:`drop` forgets what comes before an offset; an offset
    already dropped is read again by seeking back (rare: nested or unfinished records).
    """

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.data = bytearray()
        self.base = 0  # the file offset of data[0]

    @property
    def end(self) -> int:
        """The file offset just after the bytes held."""
        return self.base + len(self.data)

    def more(self) -> bool:
        """Read one more block (False at the end of the file)."""
        chunk = self._handle.read(_READ_BYTES)
        self.data += chunk
        return bool(chunk)

    def drop(self, offset: int) -> None:
        """Forget the bytes before ``offset`` (seek back to it if already forgotten)."""
        if offset < self.base:
            self._handle.seek(offset)
            self.data.clear()
            self.base = offset
        elif offset > self.base:
            del self.data[:offset - self.base]
            self.base = offset
            if not self.data:
                self._handle.seek(offset)

    def skip_lines(self, position: int, count: int) -> int | None:
        """The offset just after ``count`` more line ends from ``position`` (None: past the end)."""
        self.drop(position)
        while count > 0:
            in_window = self.data.count(b"\n")
            if in_window >= count:
                return self.base + _after_line_ends(self.data, count)
            count -= in_window
            self.drop(self.end)
            if not self.more():
                return None
        return position

    def search_start(self, position: int) -> re.Match[bytes] | None:
        """The first request start tag at or after ``position`` (offsets in :attr:`data`)."""
        self.drop(position)
        searched = 0
        while True:
            match = _REQUEST_START.search(self.data, searched)
            if match is not None:
                return match
            keep = max(self.base, self.end - _START_OVERLAP)
            searched = keep - self.base
            if not self.more():
                return _REQUEST_START.search(self.data, searched)
            if keep > self.base:
                self.drop(keep)
                searched = 0

    def cut_record(self, start: int, end_tag: bytes) -> bytes:
        """The bytes from ``start`` to ``end_tag`` (or a bounded excerpt when it never comes).

        Held while looked for up to the fallback size; past it the scan goes on without
        keeping the bytes, and the record is read again from ``start`` if its end comes.
        """
        self.drop(start)
        searched = 0
        kept = True
        while True:
            found = self.data.find(end_tag, searched)
            if found != -1:
                stop = self.base + found + len(end_tag)
                if kept:
                    return bytes(self.data[:stop - self.base])
                self.drop(start)
                while self.end < stop and self.more():
                    pass
                return bytes(self.data[:stop - start])
            searched = max(0, len(self.data) - len(end_tag) + 1)
            if kept and len(self.data) > _EXCERPT_FALLBACK + _READ_BYTES:
                kept = False  # an unfinished record: do not hold the rest of the file
            if not kept:
                keep = max(self.base, self.end - len(end_tag) + 1)
                self.drop(keep)
                searched = 0
            if not self.more():
                break
        self.drop(start)
        while self.end < start + _EXCERPT_FALLBACK and self.more():
            pass
        return bytes(self.data[:_EXCERPT_FALLBACK])


def record_excerpts(path: Path, prologue: Prologue, lines: Collection[int]) -> dict[int, str]:
    """The raw XML of the records starting on these lines, cut from the file's bytes.

    Used for rejects decided after their record was read (no second parse: a byte
    scan from the record's start tag to its end tag, decoded with the file's encoding).
    The file is streamed: one pass in order (a line scan and a record scan, each reading
    forward), holding a block and the excerpts asked for, never the whole file.
    Files in UTF-16 or UTF-32 are read again with the parser instead.
    """
    wanted = set(lines)
    if not wanted:
        return {}
    if not prologue.ascii_compatible:
        reader = AafFileReader(path, path.name, prologue)
        found: dict[int, str] = {}
        for raw in reader.records():
            if raw.line in wanted:
                found[raw.line] = raw.raw_xml()
            if len(found) == len(wanted):
                break
        return found
    codec = prologue.declared_encoding or "utf-8"
    found = {}
    with path.open("rb") as line_handle, path.open("rb") as record_handle:
        line_scan, record_scan = _Window(line_handle), _Window(record_handle)
        position, current = 0, 1  # the start of line ``current``
        last: tuple[int, str] | None = None  # the last record cut: (its offset, its text)
        for line in sorted(wanted):
            start = line_scan.skip_lines(position, line - current)
            if start is None:
                break
            position, current = start, line
            if last is not None and start <= last[0]:
                found[line] = last[1]  # the same next request as the line before
                continue
            match = record_scan.search_start(start)
            if match is None:
                break  # no request after this line: none after the next ones either
            offset = record_scan.base + match.start()
            end_tag = b"</" + match.group(1) + b">"
            text = record_scan.cut_record(offset, end_tag).decode(codec, "replace")
            found[line] = text
            last = (offset, text)
    return found
