"""Record-local stage of the AAF import: the checks and normalisation a record alone decides.

:class:`Preparer` turns each :class:`~yearchange_tui.aaf.parser.RawRecord` into a
:class:`Prepared` record: where it is (file, line, request, identifier), the refusal
the record earns by itself if any (unknown request, category contradicting the file,
missing or inconsistent identifier, operation other than ``replace``, identifier of a
structure, subject or MEF already added in the same dated delivery), the attribute
names no dictionary knows, and the normalised row with its issues
(:mod:`yearchange_tui.aaf.records`). Everything that needs the database or other
kinds of records (structures, classes, relatives, INE owners…) stays in
:mod:`yearchange_tui.aaf.importer`, which applies prepared records in file order.

The only state is what earlier records of the same delivery said (identifiers
already added per dated delivery, unknown attribute names already met), so the
stage gives the same result whether it runs in the importing process or in the
reader process of :mod:`yearchange_tui.aaf.pipeline`.

A prepared record carries the raw XML text the importer may store with a reject.
Inline, it is read from the live element on demand (:meth:`Prepared.raw_xml`); in
the reader process it is captured beforehand for every record the importer could
reject with it (:meth:`Preparer.capture_xml`). Runs on the caller's thread.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from yearchange_tui.aaf.delivery import (
    CATEGORY_KINDS,
    KIND_ELEVE,
    KIND_ETAB,
    KIND_MATIERE,
    KIND_MEF,
    KIND_PERS_EDUC_NAT,
    KIND_PERS_REL_ELEVE,
)
from yearchange_tui.aaf.parser import RawRecord
from yearchange_tui.aaf.records import (
    JOINTURE_ATTRIBUTE,
    KNOWN_ATTRIBUTES,
    MAX_ID_LENGTH,
    Issue,
    first_value,
    normalise_mef,
    normalise_relative,
    normalise_staff,
    normalise_structure,
    normalise_student,
    normalise_subject,
    relative_links,
)

Reject = tuple[str, str, str, dict[str, Any]]
"""A refusal decided by the record alone: ``(code, attribute, value, params)``."""

_NAMESPACES = {KIND_ETAB: "structure", KIND_MATIERE: "subject", KIND_MEF: "mef"}
_NORMALISE_PERSON = {KIND_ELEVE: normalise_student, KIND_PERS_REL_ELEVE: normalise_relative,
                     KIND_PERS_EDUC_NAT: normalise_staff}


class Prepared:
    """One record after the record-local stage (see the module docstring).

    Attributes:
        file, line, request, kind: where the record is and what it asks.
        identifier: the record identifier (the jointure when ``<id>`` is empty).
        reject: the refusal decided by the record alone, or None.
        unknown: attribute names no dictionary of the kind knows (None: none, or
            not checked because the record was refused before).
        row: the normalised row (None for a delete, a refusal, or a person refused
            by its own fields, then ``issues`` say why).
        issues: what normalisation found.
        name: ``LAST First`` of a person, for messages.
        hint: the first non-empty ``ENTPersonStructRattach`` of a person (``""``).
        links: the relatives of a student refused by its own fields.
    """

    __slots__ = ("file", "hint", "identifier", "issues", "kind", "line", "links", "name", "raw",
                 "reject", "request", "row", "unknown", "xml")

    def __init__(self, file: str, kind: str, line: int, request: str, identifier: str,
                 reject: Reject | None = None, unknown: tuple[str, ...] | None = None,
                 row: Any = None, issues: list[Issue] | None = None, name: str = "",
                 hint: str = "", links: list[Any] | None = None,
                 xml: str | bytes | memoryview | None = None,
                 raw: RawRecord | None = None) -> None:
        self.file = file
        self.kind = kind
        self.line = line
        self.request = request
        self.identifier = identifier
        self.reject = reject
        self.unknown = unknown
        self.row = row
        self.issues = issues if issues is not None else []
        self.name = name
        self.hint = hint
        self.links = links
        self.xml = xml
        self.raw = raw

    def raw_xml(self) -> str:
        """The record's XML text (read from the live element, or as captured)."""
        xml = self.xml
        if xml is None:
            raw = self.raw
            if raw is None:
                return ""
            xml = self.xml = raw.raw_xml()
        elif not isinstance(xml, str):
            xml = self.xml = str(xml, "utf-8")
        return xml

    def wire(self) -> tuple[Any, ...]:
        """What crosses the process boundary, but the captured XML (see :func:`wire_batch`).

        File and kind are known on the other side; the last item is the length of the
        captured XML (None: nothing captured).
        """
        xml = self.xml
        return (self.line, self.request, self.identifier, self.reject, self.unknown, self.row,
                self.issues, self.name, self.hint, self.links,
                None if xml is None else len(xml))

    @classmethod
    def from_wire(cls, file: str, kind: str, values: tuple[Any, ...],
                  xml: memoryview | None = None) -> Prepared:
        """Rebuild a prepared record sent by :meth:`wire` (``xml``: its captured XML)."""
        return cls(file, kind, *values[:10], xml=xml)


def wire_batch(batch: list[Prepared]) -> tuple[list[tuple[Any, ...]], bytes]:
    """A batch as it crosses the process boundary: the records, and their XML in one blob.

    Captured XML (UTF-8, about 3 KB a student) is most of a batch's bytes: sent as one
    blob beside the pickled records, it is neither copied into the pickle nor parsed back.
    """
    records = [prepared.wire() for prepared in batch]
    blob = b"".join(prepared.xml for prepared in batch  # type: ignore[misc]
                    if prepared.xml is not None)
    return records, blob


def unwire_batch(file: str, kind: str, records: list[tuple[Any, ...]],
                 blob: bytes) -> Iterator[Prepared]:
    """The prepared records of a batch made by :func:`wire_batch`."""
    view = memoryview(blob)
    offset = 0
    from_wire = Prepared.from_wire
    for values in records:
        size = values[10]
        if size is None:
            yield from_wire(file, kind, values)
        else:
            yield from_wire(file, kind, values, view[offset:offset + size])
            offset += size


class Preparer:
    """The record-local stage for one import (state: what earlier records said).

    Args:
        capture: capture the raw XML of every record the importer could reject with
            it (needed when the element is gone by then, in the reader process).
    """

    def __init__(self, capture: bool = False) -> None:
        self.capture = capture
        self.unknown_seen: set[tuple[str, str]] = set()
        self.seen: dict[str, dict[str, tuple[str, int]]] = defaultdict(dict)

    def new_group(self) -> None:
        """A new dated delivery starts: identifiers may be added again."""
        self.seen = defaultdict(dict)

    def prepare(self, raw: RawRecord, kind: str) -> Prepared:
        """Check and normalise one record of a file of ``kind``."""
        prepared = self._prepare(raw, kind)
        if self.capture:
            if self.capture_xml(prepared):
                prepared.xml = raw.raw_xml_utf8()
        else:
            prepared.raw = raw
        return prepared

    def _prepare(self, raw: RawRecord, kind: str) -> Prepared:
        identifier = raw.identifier
        request = raw.request
        prepared = Prepared(raw.file, kind, raw.line, request, identifier)
        normalise = _NORMALISE_PERSON.get(kind)
        if normalise is not None:
            # Where a refused person most likely belongs (its reject's establishment).
            prepared.hint = first_value(raw.attributes, "ENTPersonStructRattach")
        if request == "unknown" or raw.unexpected:
            prepared.reject = (
                "AAF-REQUETE-INCONNUE", "", raw.unexpected[0],
                {"detail": "hors d'une requête addRequest, modifyRequest ou deleteRequest"
                 if request == "unknown" else f"dans la requête {identifier}"})
            return prepared
        category_kind = CATEGORY_KINDS.get(raw.category)
        if category_kind != kind:
            prepared.reject = ("AAF-CATEGORIE-INCOHERENTE", "",
                               "/".join(raw.category) if any(raw.category) else "(aucune)", {})
            return prepared
        attributes = raw.attributes
        jointure_attribute = JOINTURE_ATTRIBUTE[kind]
        jointure = first_value(attributes, jointure_attribute)
        if not identifier:
            if not jointure:
                prepared.reject = ("AAF-IDENTIFIANT-MANQUANT", "", "", {})
                return prepared
            identifier = jointure
            prepared.identifier = identifier
            raw.identifier = identifier
        elif jointure and jointure != identifier:
            prepared.reject = ("AAF-IDENTIFIANT-INCOHERENT", jointure_attribute, jointure, {})
            return prepared
        if len(identifier) > MAX_ID_LENGTH:
            prepared.reject = ("AAF-IDENTIFIANT-INVALIDE", "", identifier,
                               {"detail": f"plus de {MAX_ID_LENGTH} caractères"})
            return prepared
        known = KNOWN_ATTRIBUTES[kind]
        if not known.issuperset(raw.names):
            prepared.unknown = tuple(name for name in raw.names if name not in known)
        if request == "modify":
            for name, operation in raw.operations.items():
                if operation != "replace":
                    prepared.reject = ("AAF-OPERATION-INVALIDE", name, operation, {})
                    return prepared
        if request == "delete":
            return prepared
        modify = request == "modify"
        if normalise is not None:
            issues = prepared.issues
            row = normalise(attributes, identifier, modify, issues)
            prepared.row = row
            if row is not None:
                prepared.name = row.name
            else:
                last = first_value(attributes, "sn")
                first = first_value(attributes, "givenName")
                prepared.name = f"{last} {first}".strip()
                if kind == KIND_ELEVE:
                    # Staged so that a relative only refused students cite is refused naming them.
                    prepared.links = relative_links(attributes, [])
            return prepared
        if kind == KIND_ETAB:
            row = normalise_structure(attributes, identifier, modify, prepared.issues)
        if request == "add":
            seen = self.seen[_NAMESPACES[kind]]
            first_seen = seen.get(identifier)
            if first_seen is not None:
                prepared.issues = []
                prepared.reject = ("AAF-IDENTIFIANT-EN-DOUBLE", "", "",
                                   {"detail": f"{first_seen[0]}, ligne {first_seen[1]}"})
                return prepared
            seen[identifier] = (raw.file, raw.line)
        if kind == KIND_ETAB:
            prepared.row = row
        elif kind == KIND_MATIERE:
            prepared.row = normalise_subject(attributes, identifier[:16])
        else:
            prepared.row = normalise_mef(attributes, identifier[:16])
        return prepared

    def capture_xml(self, prepared: Prepared) -> bool:
        """True when the importer could store this record's raw XML with a reject.

        Every record refused by itself, the first with each unknown attribute name,
        every structure, student and staff record that is not a delete (their
        references are checked by the importer), and relatives with issues.
        """
        needed = prepared.reject is not None
        if prepared.unknown:
            for name in prepared.unknown:
                key = (prepared.kind, name)
                if key not in self.unknown_seen:
                    self.unknown_seen.add(key)
                    needed = True
        if needed:
            return True
        kind = prepared.kind
        if prepared.request == "delete" or kind in (KIND_MATIERE, KIND_MEF):
            return False
        if kind == KIND_PERS_REL_ELEVE:
            return prepared.row is None or bool(prepared.issues)
        return True
