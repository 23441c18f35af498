"""Write the sample académie's N+1 AAF delivery in the real ``ficAlimMENESR`` format.

The roster (:mod:`yearchange_tui.sample.roster`) says who is where in year N+1;
this module renders it as the académie's AAF "complet d'initialisation", the
files the rectorat drops for the ENT in the second half of August:

- six kinds of files (EtabEducNat, MatiereEducNat, MefEducNat, Eleve,
  PersRelEleve, PersEducNat), named ``ENT_<académie>_Complet_<YYYYMMDD>_<Kind>_<NNNN>.xml``
  and split into numbered chunks of at most :data:`MAX_RECORDS_PER_FILE` records;
- the ``ficAlimMENESR.dtd`` the files point to, written beside them;
- the encodings real deliveries mix (:data:`FILE_FORMATS`): declared
  ISO-8859-1 with raw Latin-1 bytes, declared ISO-8859-15 with accents as numeric
  character references, no declaration at all (UTF-8 bytes), declared UTF-8,
  LF or CRLF line ends.

The Eleve files carry the students with a class next year; the PersRelEleve
files their relatives plus the relatives no student of the roster references
(the planted orphans), not the relatives only of leavers; PersEducNat every
member of staff, with their N+1 services.

Every compound value (``struct$code…``) uses the structure's jointure id, never
its UAI, as the real exports do. The anomalies the roster plants (empty birth
date, duplicate INE, a leaver left in a year-N class, a teacher attached to a
class that no longer exists, an orphan relative) are written as they are, so
that the importer meets them.

Documents are streamed record by record to disk (plain text with XML escaping),
never built whole in memory. The output depends only on the roster: the same
roster gives byte-identical files. Runs on the caller's thread.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from yearchange_tui.ent.uai import make_uai
from yearchange_tui.sample.roster import (
    COLLEGE,
    LEVELS,
    LYCEE,
    MEFS,
    SUBJECT_BY_CODE,
    SUBJECTS,
    SampleAcademy,
    SampleClass,
    SampleEstablishment,
    SampleLevel,
    SamplePersonnel,
    SampleRelative,
    SampleService,
    SampleStudent,
)

__all__ = [
    "AAF_VERSION",
    "DTD_FILE_NAME",
    "FILE_FORMATS",
    "KINDS",
    "MAX_RECORDS_PER_FILE",
    "SDET_VERSION",
    "AafFileFormat",
    "aaf_file_name",
    "write_aaf_delivery",
]

AAF_VERSION = "AAF-VE2407"
SDET_VERSION = "Annexe 4bis version 6.4"
DTD_FILE_NAME = "ficAlimMENESR.dtd"

KIND_ETAB = "EtabEducNat"
KIND_MATIERE = "MatiereEducNat"
KIND_MEF = "MefEducNat"
KIND_ELEVE = "Eleve"
KIND_PERS_REL_ELEVE = "PersRelEleve"
KIND_PERS_EDUC_NAT = "PersEducNat"

KINDS: tuple[str, ...] = (KIND_ETAB, KIND_MATIERE, KIND_MEF, KIND_ELEVE, KIND_PERS_REL_ELEVE,
                          KIND_PERS_EDUC_NAT)
"""The six file kinds, in the order they are written (and imported)."""

MAX_RECORDS_PER_FILE: dict[str, int] = {
    KIND_ETAB: 500,
    KIND_MATIERE: 1000,
    KIND_MEF: 1000,
    KIND_ELEVE: 800,
    KIND_PERS_REL_ELEVE: 1200,
    KIND_PERS_EDUC_NAT: 500,
}
"""Maximum number of records in one chunk file, per kind."""


@dataclass(frozen=True)
class AafFileFormat:
    """How the files of one kind look on disk.

    Attributes:
        kind: the file kind (``Eleve``…), as in the file name.
        category_attribute: name of the operational attribute (``categoriePersonne``…).
        category_value: its value (``Eleve``, ``MatEducNat``…).
        declared_encoding: encoding named in the XML declaration; None for a file
            without declaration (whose bytes are then UTF-8, the XML default).
        codec: Python codec used for the bytes.
        ascii_only: write every non-ASCII character as a numeric character reference.
        newline: line end (``"\\n"`` or ``"\\r\\n"``).
    """

    kind: str
    category_attribute: str
    category_value: str
    declared_encoding: str | None
    codec: str
    ascii_only: bool
    newline: str


FILE_FORMATS: dict[str, AafFileFormat] = {
    KIND_ETAB: AafFileFormat(KIND_ETAB, "categorieStructure", "EtabEducNat",
                             "ISO-8859-1", "latin-1", False, "\n"),
    KIND_MATIERE: AafFileFormat(KIND_MATIERE, "categorieMatiere", "MatEducNat",
                                "UTF-8", "utf-8", False, "\r\n"),
    KIND_MEF: AafFileFormat(KIND_MEF, "categorieMef", "MefEducNat",
                            "UTF-8", "utf-8", False, "\r\n"),
    KIND_ELEVE: AafFileFormat(KIND_ELEVE, "categoriePersonne", "Eleve",
                              "ISO-8859-15", "iso8859-15", True, "\n"),
    KIND_PERS_REL_ELEVE: AafFileFormat(KIND_PERS_REL_ELEVE, "categoriePersonne", "PersRelEleve",
                                       None, "utf-8", False, "\r\n"),
    KIND_PERS_EDUC_NAT: AafFileFormat(KIND_PERS_EDUC_NAT, "categoriePersonne", "PersEducNat",
                                      "UTF-8", "utf-8", False, "\n"),
}
"""The on-disk look of each kind, as seen in real deliveries (background doc §1.2)."""

# The DTD of the real deliveries, rewritten from its grammar; it declares no entity.
_DTD_TEXT = """\
<!-- ficAlimMENESR: AAF feed file (Annuaire Academique Federateur) -->
<!ELEMENT ficAlimMENESR (addRequest | modifyRequest | deleteRequest)*>
<!ELEMENT addRequest (operationalAttributes, identifier, attributes)>
<!ELEMENT modifyRequest (operationalAttributes, identifier, modifications)>
<!ELEMENT deleteRequest (operationalAttributes, identifier)>
<!ELEMENT operationalAttributes (attr)>
<!ELEMENT identifier (id)>
<!ELEMENT attributes (attr+)>
<!ELEMENT attr (value+)>
<!ATTLIST attr name CDATA #REQUIRED>
<!ELEMENT modifications (modification+)>
<!ELEMENT modification (value+)>
<!ATTLIST modification
    name CDATA #REQUIRED
    operation (replace) #REQUIRED>
<!ELEMENT value (#PCDATA)>
<!ELEMENT id (#PCDATA)>
"""

# Roster kind -> (ENTStructureTypeStruct, ENTStructureCodeTypeStruct, type prefix of the name).
_STRUCTURE_TYPES: dict[str, tuple[str, str, str]] = {
    COLLEGE: ("COLLEGE", "340", "CLG"),
    LYCEE: ("LYCEE GENERAL ET TECHNOLOGIQUE", "300", "LYC"),
}
_MINISTRY_LABEL = "MINISTERE DE L'EDUCATION NATIONALE"
_MINISTRY_CODE = "06"
_RECTORAT_JOINTURE = "1000"
_DSDEN_JOINTURE = "1001"
_NO_DISCIPLINE = ("-", "SANS OBJET")
_MEF_BY_CODE = {mef.code: mef for mef in MEFS}

_ESCAPES = {
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;",
    "\t": "&#9;", "\n": "&#10;", "\r": "&#13;",
}
_ESCAPE_PATTERN = re.compile("[&<>\"'\t\n\r]")

AttributeValues = tuple[str, Sequence[str]]


@dataclass(frozen=True)
class _Record:
    """One ``addRequest``: the identifier and the attributes in file order."""

    identifier: str
    attributes: Sequence[AttributeValues]


def aaf_file_name(academy_code: str, delivery_date: dt.date, kind: str, chunk: int) -> str:
    """Return the real name of one chunk of a complete delivery.

    Args:
        academy_code: the académie code (``10`` for Lyon).
        delivery_date: the date of the delivery.
        kind: the file kind (``Eleve``…).
        chunk: the chunk number, from 0.

    Returns:
        ``ENT_<académie>_Complet_<YYYYMMDD>_<Kind>_<NNNN>.xml``.
    """
    return f"ENT_{academy_code}_Complet_{delivery_date:%Y%m%d}_{kind}_{chunk:04d}.xml"


def _escape(text: str) -> str:
    """Escape a value or attribute for XML text, with ``&apos;`` like the real files."""
    return _ESCAPE_PATTERN.sub(lambda match: _ESCAPES[match.group()], text)


def _render_attribute(name: str, values: Sequence[str]) -> str:
    written = [value for value in values if value != ""]
    if not written:
        return f'<attr name="{_escape(name)}"><value/></attr>'
    inner = "".join(f"<value>{_escape(value)}</value>" for value in written)
    return f'<attr name="{_escape(name)}">{inner}</attr>'


class _ChunkedKindWriter:
    """Streams the records of one kind into numbered chunk files.

    Each chunk is written to a ``.part`` file, flushed to disk and renamed once
    complete, so a reader never sees half a file under the real name.
    """

    def __init__(self, out_dir: Path, academy: SampleAcademy, file_format: AafFileFormat,
                 max_records: int) -> None:
        self._out_dir = out_dir
        self._academy = academy
        self._format = file_format
        self._max_records = max_records
        self._handle: BinaryIO | None = None
        self._current_path: Path | None = None
        self._records_in_chunk = 0
        self._chunk = -1
        self.paths: list[Path] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abandon()

    def _encode(self, text: str) -> bytes:
        codec = "ascii" if self._format.ascii_only else self._format.codec
        return text.replace("\n", self._format.newline).encode(codec, "xmlcharrefreplace")

    def _write(self, text: str) -> None:
        assert self._handle is not None
        self._handle.write(self._encode(text))

    def _open_chunk(self) -> None:
        self._chunk += 1
        name = aaf_file_name(self._academy.academy_code, self._academy.delivery_date,
                             self._format.kind, self._chunk)
        self._current_path = self._out_dir / name
        part = self._current_path.with_name(name + ".part")
        self._handle = part.open("wb")
        self._records_in_chunk = 0
        header: list[str] = []
        if self._format.declared_encoding is not None:
            header.append(f'<?xml version="1.0" encoding="{self._format.declared_encoding}"?>')
        header.append(f'<!DOCTYPE ficAlimMENESR SYSTEM "{DTD_FILE_NAME}">')
        header.append("<ficAlimMENESR>")
        header.append(
            f'<!-- versionAF="{AAF_VERSION}" versionSDET="{SDET_VERSION}" '
            f'codeAcademieExport="{self._academy.academy_code}" degre="2D" '
            f'dateGenerationExport="{self._academy.delivery_date:%d/%m/%Y}" -->')
        self._write("\n".join(header) + "\n\n")

    def _close_chunk(self) -> None:
        assert self._handle is not None and self._current_path is not None
        self._write("</ficAlimMENESR>\n")
        handle = self._handle
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(self._current_path.with_name(self._current_path.name + ".part"),
                   self._current_path)
        self.paths.append(self._current_path)
        self._handle = None

    def _abandon(self) -> None:
        if self._handle is not None and self._current_path is not None:
            self._handle.close()
            self._current_path.with_name(self._current_path.name + ".part").unlink(
                missing_ok=True)
            self._handle = None

    def write(self, record: _Record) -> None:
        """Append one record, starting a new chunk when the current one is full."""
        if self._handle is None:
            self._open_chunk()
        elif self._records_in_chunk >= self._max_records:
            self._close_chunk()
            self._open_chunk()
        lines = [
            "<addRequest>",
            (f'<operationalAttributes><attr name="{self._format.category_attribute}">'
             f"<value>{self._format.category_value}</value></attr></operationalAttributes>"),
            f"<identifier><id>{_escape(record.identifier)}</id></identifier>",
            "<attributes>",
            *(_render_attribute(name, values) for name, values in record.attributes),
            "</attributes>",
            "</addRequest>",
        ]
        self._write("\n".join(lines) + "\n\n")
        self._records_in_chunk += 1

    def close(self) -> None:
        """Finish the last chunk (an empty kind still gets one file with no record)."""
        if self._handle is None and not self.paths:
            self._open_chunk()
        if self._handle is not None:
            self._close_chunk()


# --- helpers over the roster ------------------------------------------------------------


def _date(value: dt.date | None) -> str:
    return "" if value is None else f"{value:%d/%m/%Y}"


def _flag(value: bool) -> str:
    return "O" if value else "N"


def _class_level(establishment: SampleEstablishment, class_code: str) -> SampleLevel | None:
    """Return the level of a class of year N+1, else of year N (a class that disappeared)."""
    for school_class in (*establishment.classes_next, *establishment.classes_n):
        if school_class.code == class_code:
            return school_class.level
    return None


def _student_level(establishment: SampleEstablishment,
                   student: SampleStudent) -> SampleLevel | None:
    for level in LEVELS[establishment.kind]:
        if level.key == student.level_next:
            return level
    if student.level_next == "old" and student.class_code_n:
        # Still in SIECLE under last year's class: last year's MEF.
        return _class_level(establishment, student.class_code_n)
    return _class_level(establishment, student.class_code_next or "")


def _mef_label(mef_code: str, fallback: str) -> str:
    mef = _MEF_BY_CODE.get(mef_code)
    return mef.label if mef is not None else fallback


def _mef_filiere(mef_code: str) -> str:
    return "COLLEGE" if mef_code.startswith("1") else "VOIE GENERALE ET TECHNOLOGIQUE"


def _subject_label(code: str) -> str:
    subject = SUBJECT_BY_CODE.get(code)
    return subject.label if subject is not None else ""


def _delivered_students(establishment: SampleEstablishment) -> Iterator[SampleStudent]:
    """The students the N+1 delivery carries: those with a class next year."""
    return (student for student in establishment.students
            if student.class_code_next is not None)


def _free_uai(digits: int, used: set[str]) -> str:
    """Return the first valid UAI from ``digits`` upwards that no establishment uses."""
    while True:
        uai = make_uai(f"{digits:07d}")
        if uai not in used:
            used.add(uai)
            return uai
        digits += 1


# --- records, kind by kind ---------------------------------------------------------------


def _class_values(classes: Iterable[SampleClass]) -> list[str]:
    return [f"{c.code}${c.label}${c.level.mef_code}" for c in classes]


def _structure_records(academy: SampleAcademy) -> Iterator[_Record]:
    used_uais = {establishment.uai for establishment in academy.establishments}
    academy_code = f"{int(academy.academy_code):03d}" if academy.academy_code.isdigit() \
        else academy.academy_code
    mail_domain = f"ac-{academy.academy_name.lower()}.fr"
    for establishment in academy.establishments:
        type_label, type_code, short_type = _STRUCTURE_TYPES[establishment.kind]
        digits = establishment.uai[:7]
        yield _Record(establishment.jointure, (
            ("ENTStructureJointure", [establishment.jointure]),
            ("ENTStructureUAI", [establishment.uai]),
            ("ENTEtablissementUAI", [establishment.uai]),
            ("ENTStructureSIREN", [f"19{digits}{establishment.index + 1:05d}"]),
            ("ENTStructureNomCourant",
             [f"{short_type}${establishment.name.upper()}${establishment.town}"]),
            ("ENTStructureTypeStruct", [type_label]),
            ("ENTStructureCodeTypeStruct", [type_code]),
            ("ENTEtablissementMinistereTutelle", [_MINISTRY_LABEL]),
            ("ENTEtablissementCodeMinistereTutelle", [_MINISTRY_CODE]),
            ("ENTEtablissementContrat", ["PU"]),
            ("postOfficeBox", [""]),
            ("street", [f"{2 + establishment.index * 4} rue de l'École"]),
            ("postalCode", [establishment.postal_code]),
            ("l", [establishment.town]),
            ("telephoneNumber", [f"+33 4 78 {digits[1:3]} {digits[3:5]} {digits[5:7]}"]),
            ("facsimileTelephoneNumber", [f"+33 4 72 {digits[1:3]} {digits[3:5]} {digits[5:7]}"]),
            ("ENTStructureMailSI", [f"ce.{establishment.uai.lower()}@{mail_domain}"]),
            ("ENTEtablissementStructRattachFctl", [""]),
            ("ENTEtablissementBassin",
             [f"{academy.academy_code}{establishment.postal_code}$BASSIN DE {establishment.town}"]),
            ("ENTServAcAcademie", [academy.academy_name]),
            ("ENTServAcCodeAcademie", [academy_code]),
            ("ENTStructureClasses", _class_values(establishment.classes_next)),
            ("ENTStructureGroupes",
             ["$".join((group.code, group.label, *group.class_codes))
              for group in establishment.option_groups_next]),
        ))
    # Real exports also carry the académie's administrative structures.
    name = academy.academy_name
    administrations = (
        (_RECTORAT_JOINTURE, _free_uai(699990, used_uais), "RECTORAT",
         f"RECTORAT$RECTORAT DE L'ACADÉMIE DE {name}${name}", "RECTORAT", ""),
        (_DSDEN_JOINTURE, _free_uai(699980, used_uais), "INSPECTIONS ACADEMIQUES",
         f"DSDEN$SERVICES DÉPARTEMENTAUX DE L'ÉDUCATION NATIONALE${name}", "DSDEN",
         _RECTORAT_JOINTURE),
    )
    for jointure, uai, type_label, current_name, mail_prefix, parent in administrations:
        yield _Record(jointure, (
            ("ENTStructureJointure", [jointure]),
            ("ENTStructureUAI", [uai]),
            ("ENTEtablissementUAI", [uai]),
            ("ENTStructureSIREN", [""]),
            ("ENTStructureNomCourant", [current_name]),
            ("ENTStructureTypeStruct", [type_label]),
            ("ENTStructureCodeTypeStruct", [""]),
            ("ENTEtablissementMinistereTutelle", [_MINISTRY_LABEL]),
            ("ENTEtablissementCodeMinistereTutelle", [_MINISTRY_CODE]),
            ("ENTEtablissementContrat", ["PU"]),
            ("postOfficeBox", [""]),
            ("street", [""]),
            ("postalCode", [""]),
            ("l", [name]),
            ("telephoneNumber", [""]),
            ("facsimileTelephoneNumber", [""]),
            ("ENTStructureMailSI", [f"{mail_prefix.lower()}@{mail_domain}"]),
            ("ENTEtablissementStructRattachFctl", [parent]),
            ("ENTEtablissementBassin", [""]),
            ("ENTServAcAcademie", [name]),
            ("ENTServAcCodeAcademie", [academy_code]),
            ("ENTStructureClasses", [""]),
            ("ENTStructureGroupes", [""]),
        ))


def _subject_records() -> Iterator[_Record]:
    for subject in SUBJECTS:
        yield _Record(subject.code, (
            ("ENTMatJointure", [subject.code]),
            ("ENTLibelleMatiere", [subject.label]),
            ("ENTMatiereRattach", [subject.code]),
        ))


def _mef_records() -> Iterator[_Record]:
    for mef in MEFS:
        yield _Record(mef.code, (
            ("ENTMefJointure", [mef.code]),
            ("ENTLibelleMef", [mef.label]),
            ("ENTMEFRattach", [mef.code]),
            ("ENTMEFSTAT11", [mef.stat11]),
            ("ENTNivFormation", [mef.level_label]),
            ("ENTFiliere", [_mef_filiere(mef.code)]),
        ))


def _student_record(establishment: SampleEstablishment, student: SampleStudent,
                    relatives: dict[str, SampleRelative]) -> _Record:
    struct = establishment.jointure
    links = student.relatives
    parents = [link.relative_jointure for link in links if link.link_code in ("10", "20")]
    fathers = [link.relative_jointure for link in links if link.link_code == "10"]
    mothers = [link.relative_jointure for link in links if link.link_code == "20"]
    others = [link for link in links if link.link_code not in ("10", "20")]
    # The deprecated single-valued pairs for up to two relatives who are not parents.
    others_values: list[AttributeValues] = []
    for position in (1, 2):
        other = others[position - 1] if len(others) >= position else None
        quality = "" if other is None else ("FINANCIER" if other.financial else "CONTACT")
        others_values.append((f"ENTElevePersRelEleve{position}",
                              [other.relative_jointure if other else ""]))
        others_values.append((f"ENTEleveQualitePersRelEleve{position}", [quality]))
    address_relative = next((relatives[link.relative_jointure] for link in links
                             if link.legal == 1 and link.relative_jointure in relatives), None)

    level = _student_level(establishment, student)
    mef_code = level.mef_code if level is not None else ""
    mef_label = _mef_label(mef_code, level.label if level is not None else "")
    subject_codes = list(level.subject_codes) if level is not None else []
    groups = {group.code: group for group in establishment.option_groups_next}
    for group_code in student.option_group_codes_next:
        group = groups.get(group_code)
        if group is not None and group.subject_code not in subject_codes:
            subject_codes.append(group.subject_code)

    return _Record(student.jointure, (
        ("ENTPersonJointure", [student.jointure]),
        ("ENTEleveINE", [student.ine]),
        ("ENTEleveStructRattachId", [student.sconet_id]),
        ("ENTPersonDateNaissance", [_date(student.birth_date)]),
        ("ENTPersonNomPatro", [student.last_name]),
        ("sn", [student.last_name]),
        ("givenName", [student.first_name]),
        ("ENTPersonAutresPrenoms", list(student.other_first_names)),
        ("personalTitle", [student.title]),
        ("ENTEleveParents", parents),
        ("ENTElevePere", fathers[:1]),
        ("ENTEleveMere", mothers[:1]),
        ("ENTEleveAutoriteParentale",
         [link.relative_jointure for link in links if link.legal == 1]),
        *others_values,
        ("ENTElevePersRelEleve",
         [f"{link.relative_jointure}${link.link_code}${int(link.financial)}${link.legal}"
          f"${int(link.contact)}${int(link.payment)}" for link in links]),
        ("ENTEleveBoursier", [_flag(student.grant_holder)]),
        ("ENTEleveRegime", [student.regime]),
        ("ENTEleveTransport", ["N"]),
        ("ENTEleveStatutEleve", ["SCOLAIRE"]),
        ("ENTEleveMEF", [mef_code]),
        ("ENTEleveLibelleMEF", [mef_label]),
        ("ENTEleveNivFormation", [mef_label]),
        ("ENTEleveFiliere", [_mef_filiere(mef_code) if mef_code else ""]),
        ("ENTEleveEnseignements", [_subject_label(code) for code in subject_codes]),
        ("ENTEleveCodeEnseignements", subject_codes),
        ("ENTPersonStructRattach", [struct]),
        ("ENTEleveClasses", [f"{struct}${student.class_code_next}"]),
        ("ENTEleveGroupes", [f"{struct}${code}" for code in student.option_group_codes_next]),
        ("ENTPersonAdresse", [address_relative.address if address_relative else ""]),
        ("ENTPersonCodePostal", [address_relative.postal_code if address_relative else ""]),
        ("ENTPersonVille", [address_relative.town if address_relative else ""]),
        ("ENTPersonPays", ["FRANCE" if address_relative else ""]),
        ("ENTEleveAdresseRel", [address_relative.jointure if address_relative else ""]),
    ))


def _student_records(academy: SampleAcademy) -> Iterator[_Record]:
    for establishment in academy.establishments:
        relatives = {relative.jointure: relative for relative in establishment.relatives}
        for student in _delivered_students(establishment):
            yield _student_record(establishment, student, relatives)


def _relative_records(academy: SampleAcademy) -> Iterator[_Record]:
    """The relatives of the delivered students, and those no student of the roster has.

    Relatives only of leavers are left out, as in a real delivery, so that the
    relatives nobody references are exactly the orphans the roster plants.
    """
    written: set[str] = set()
    for establishment in academy.establishments:
        students_of: dict[str, list[str]] = {}
        for student in _delivered_students(establishment):
            for link in student.relatives:
                students_of.setdefault(link.relative_jointure, []).append(student.jointure)
        known = {link.relative_jointure for student in establishment.students
                 for link in student.relatives}
        for relative in establishment.relatives:
            delivered = relative.jointure in students_of or relative.jointure not in known
            if not delivered or relative.jointure in written:
                continue
            written.add(relative.jointure)
            yield _Record(relative.jointure, (
                ("ENTPersonJointure", [relative.jointure]),
                ("ENTPersonDateNaissance", [""]),
                ("ENTPersonNomPatro", [relative.last_name]),
                ("sn", [relative.last_name]),
                ("givenName", [relative.first_name]),
                ("ENTPersonAutresPrenoms", [""]),
                ("personalTitle", [relative.title]),
                ("homePhone", [relative.home_phone]),
                ("telephoneNumber", [""]),
                ("ENTPersonAdresse", [relative.address]),
                ("ENTPersonCodePostal", [relative.postal_code]),
                ("ENTPersonVille", [relative.town]),
                ("ENTPersonPays", ["FRANCE"]),
                ("ENTPersonAdresseDiffusion", ["N"]),
                ("mobile", [relative.mobile]),
                ("mail", [relative.email]),
                ("ENTPersonMobileSMS", [relative.mobile]),
                ("ENTAuxPersRelEleveEleve", students_of.get(relative.jointure, [])),
            ))


def _distinct(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _personnel_record(establishment: SampleEstablishment, person: SamplePersonnel,
                      services: Sequence[SampleService]) -> _Record:
    struct = establishment.jointure
    groups = {group.code: group for group in establishment.option_groups_next}
    class_services = [s for s in services if s.class_code is not None]
    group_services = [s for s in services if s.group_code is not None]

    taught_classes = [s.class_code for s in services if s.class_code is not None]
    for service in group_services:
        group = groups.get(service.group_code or "")
        if group is not None:
            taught_classes.extend(group.class_codes)
    mef_values: list[str] = []
    for class_code in _distinct(taught_classes):
        level = _class_level(establishment, class_code)
        if level is not None:
            label = _mef_label(level.mef_code, level.label)
            mef_values.append(f"{struct}${level.mef_code}${label}")

    if person.discipline_code:
        discipline = (person.discipline_code, _subject_label(person.discipline_code))
    else:
        discipline = _NO_DISCIPLINE
    function = f"{struct}${person.function_code}${person.function_label}${discipline[0]}" \
               f"${discipline[1]}"
    return _Record(person.jointure, (
        ("ENTPersonJointure", [person.jointure]),
        ("ENTPersonDateNaissance", [_date(person.birth_date)]),
        ("ENTPersonNomPatro", [person.last_name]),
        ("sn", [person.last_name]),
        ("givenName", [person.first_name]),
        ("ENTPersonAutresPrenoms", [""]),
        ("personalTitle", [person.title]),
        ("mail", [person.email]),
        ("ENTPersonStructRattach", [struct]),
        ("ENTAuxEnsCategoDiscipline",
         [f"{discipline[0]}${discipline[1]}"] if person.discipline_code else [""]),
        ("ENTAuxEnsDisciplinesPoste",
         [f"{discipline[1]}${discipline[0]}"] if person.discipline_code else [""]),
        ("ENTAuxEnsMEF", _distinct(mef_values)),
        ("ENTAuxEnsMatiereEnseignEtab",
         _distinct(f"{struct}${_subject_label(s.subject_code)}" for s in services)),
        ("ENTAuxEnsClasses", [f"{struct}${s.class_code}" for s in class_services]),
        ("ENTAuxEnsGroupes", [f"{struct}${s.group_code}" for s in group_services]),
        ("ENTAuxEnsClassesMatieres",
         [f"{struct}${s.class_code}${s.subject_code}" for s in class_services]),
        ("ENTAuxEnsGroupesMatieres",
         [f"{struct}${s.group_code}${s.subject_code}" for s in group_services]),
        ("ENTAuxEnsClassesPrincipal",
         [f"{struct}${person.head_of_class_next}"] if person.head_of_class_next else [""]),
        ("ENTPersonFonctions", [function]),
        ("ENTEnsFonctionDir", [struct] if person.function_code == "DIR" else [""]),
        ("PersEducNatPresenceDevantEleves", [_flag(person.is_teacher)]),
        ("ENTPersonCategorieEnseignant", [_flag(person.is_teacher)]),
    ))


def _personnel_records(academy: SampleAcademy) -> Iterator[_Record]:
    for establishment in academy.establishments:
        services_of: dict[str, list[SampleService]] = {}
        for service in establishment.services_next:
            services_of.setdefault(service.teacher_jointure, []).append(service)
        for person in establishment.personnel:
            yield _personnel_record(establishment, person, services_of.get(person.jointure, []))


# --- the delivery -------------------------------------------------------------------------


def _remove_previous_delivery(out_dir: Path, academy_code: str) -> None:
    """Delete the files of an earlier delivery of this académie left in ``out_dir``.

    A folder holding two deliveries would be imported as one; only files whose
    name follows this writer's pattern for the same académie are removed.
    """
    pattern = re.compile(
        rf"^ENT_{re.escape(academy_code)}_Complet_\d{{8}}_(?:{'|'.join(KINDS)})_\d{{4}}\.xml"
        r"(?:\.part)?$")
    for path in sorted(out_dir.iterdir()):
        if path.is_file() and pattern.match(path.name):
            path.unlink()


def write_aaf_delivery(academy: SampleAcademy, out_dir: Path) -> list[Path]:
    """Write the académie's AAF "complet d'initialisation" for year N+1.

    Writes, into ``out_dir`` (created if needed), every kind of
    :data:`KINDS` as ``ENT_<académie>_Complet_<YYYYMMDD>_<Kind>_<NNNN>.xml``
    chunks (YYYYMMDD is ``academy.delivery_date``), then ``ficAlimMENESR.dtd``.
    Files of an earlier delivery of the same académie in ``out_dir`` are
    replaced. The same roster always gives byte-identical files.

    Args:
        academy: the sample académie roster.
        out_dir: the delivery folder (``DIR/aaf/`` of ``yearchange sample``).

    Returns:
        The paths written: the XML chunks in kind order (EtabEducNat,
        MatiereEducNat, MefEducNat, Eleve, PersRelEleve, PersEducNat), chunk
        number ascending, then the DTD.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_previous_delivery(out_dir, academy.academy_code)
    sources: dict[str, Iterable[_Record]] = {
        KIND_ETAB: _structure_records(academy),
        KIND_MATIERE: _subject_records(),
        KIND_MEF: _mef_records(),
        KIND_ELEVE: _student_records(academy),
        KIND_PERS_REL_ELEVE: _relative_records(academy),
        KIND_PERS_EDUC_NAT: _personnel_records(academy),
    }
    written: list[Path] = []
    for kind in KINDS:
        with _ChunkedKindWriter(out_dir, academy, FILE_FORMATS[kind],
                                MAX_RECORDS_PER_FILE[kind]) as writer:
            for record in sources[kind]:
                writer.write(record)
        written.extend(writer.paths)
    dtd_path = out_dir / DTD_FILE_NAME
    dtd_path.write_bytes(_DTD_TEXT.encode("ascii"))
    written.append(dtd_path)
    return written
