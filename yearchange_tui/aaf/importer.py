"""Apply an AAF delivery to the directory: validate, reject with reasons, update set-based.

One delivery is one transaction: a file refused whole (:class:`AafFileError`) or a
guard refusal (:class:`~yearchange_tui.workflow.guards.GuardRefused`) rolls
everything back, so the database is unchanged. Records are streamed file by file
in dependency order and written in batches; refused records are stored as rejects
with their file, line, raw XML, establishment and a French explanation.

Reading and what a record decides alone (its own checks and normalisation,
:mod:`yearchange_tui.aaf.prepare`) come from a source of
:mod:`yearchange_tui.aaf.pipeline`: inline for a small delivery, else reader
processes that parse the next records while this module checks cross-references
and writes. Both give the same result; this module applies prepared records in
file order either way.

Per establishment the import either updates the directory of the current school
year, or — once the establishment's step 3 is done — initialises year N+1: that is
step 4, whose unit (begin, checkpoint, finish, audit) is kept by the change-over
runner (:mod:`yearchange_tui.changeover.steps.init_directory`). Classes and groups
are created only from students. People absent from a Complet for an establishment
it covers are flagged (``disappeared_at``), and restored when they come back.

Memory stays flat whatever the delivery size: what must be remembered across
records (identifiers already read, who cites which relative) goes by batch into two
temporary staging tables, and the checks that need it (duplicates, orphans,
unknown relatives, absent people) and the relative links are done in SQL.

Runs on the caller's thread (the CLI's, or a scheduler thread through step 4).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, delete, exists, insert, literal, not_, select, update
from sqlalchemy.orm import Session

from yearchange_tui.aaf import directory as db
from yearchange_tui.aaf.classes_n1 import likely_previous_year_classes
from yearchange_tui.aaf.delivery import (
    COMPLET,
    KIND_ELEVE,
    KIND_ETAB,
    KIND_MATIERE,
    KIND_MEF,
    KIND_PERS_EDUC_NAT,
    KIND_PERS_REL_ELEVE,
    Delivery,
    DeliveryFile,
    open_delivery,
)
from yearchange_tui.aaf.models import AafStructure
from yearchange_tui.aaf.parser import AafFileReader, record_excerpts
from yearchange_tui.aaf.pipeline import FileOutcome, open_source
from yearchange_tui.aaf.prepare import Prepared
from yearchange_tui.aaf.records import (
    FUNCTION_PROFILES,
    Issue,
    PersonRow,
    StructureRow,
)
from yearchange_tui.aaf.rules import RULES, Severity, explain
from yearchange_tui.ent.database import Database
from yearchange_tui.ent.models import (
    ClassMembership,
    ClassRole,
    Establishment,
    EstablishmentKind,
    GroupKind,
    HeadTeacher,
    ImportReport,
    ImportSource,
    Mef,
    Person,
    PersonKind,
    Profile,
    Project,
    Rubric,
    RubricKind,
    RubricRight,
    RubricRole,
    SchoolYear,
    Subject,
)
from yearchange_tui.ent.models import Group as GroupModel
from yearchange_tui.ent.uai import InvalidUAIError, validate_uai
from yearchange_tui.importing.models import AafImport, AafImportFile, AafReject
from yearchange_tui.workflow.audit import operator_identity
from yearchange_tui.workflow.events import NullObserver, Observer, UnitProgressed
from yearchange_tui.workflow.guards import check_aaf_import_allowed, unit_statuses
from yearchange_tui.workflow.models import Step, UnitStatus
from yearchange_tui.workflow.units import next_school_year, utcnow

BATCH_SIZE = 1000
"""Records written per batch."""

MODE_IMPORT = "import"
MODE_INIT = "step-4"

PERSON_KINDS = (KIND_ELEVE, KIND_PERS_REL_ELEVE, KIND_PERS_EDUC_NAT)
KIND_LABELS = {KIND_ELEVE: "l'élève", KIND_PERS_REL_ELEVE: "le responsable",
               KIND_PERS_EDUC_NAT: "le personnel", KIND_ETAB: "la structure",
               KIND_MATIERE: "la matière", KIND_MEF: "le MEF"}
REQUEST_LABELS = {"add": "d'ajout (addRequest)", "modify": "de modification (modifyRequest)",
                  "delete": "de suppression (deleteRequest)", "unknown": "inconnue"}

establishments_table = Establishment.__table__
structures_table = AafStructure.__table__
subjects_table = Subject.__table__
mefs_table = Mef.__table__
rejects_table = AafReject.__table__
rubrics_table = Rubric.__table__
rights_table = RubricRight.__table__

ProgressCallback = Callable[[str], None]


@dataclass
class StructureInfo:
    """A structure known to the import (delivered now or earlier)."""

    jointure: str
    uai: str
    name: str
    establishment_id: int | None
    refused: str | None = None
    classes: dict[str, tuple[str, str]] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    is_school: bool = True


@dataclass
class EstablishmentContext:
    """How the import treats one establishment: scope, mode, target school year, counts."""

    id: int
    uai: str
    name: str
    project_id: int
    in_scope: bool
    mode: str = MODE_IMPORT
    year_id: int = 0
    year_label: str = ""
    year_starts_on: dt.date | None = None
    previous_year_id: int | None = None
    overridden: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    classes: dict[str, int] | None = None
    groups: dict[str, int] | None = None
    created_class_ids: set[int] = field(default_factory=set)


class RecordRef(NamedTuple):
    """Where a record is, for rejects decided after its element is gone."""

    file: str
    line: int
    identifier: str
    kind: str
    request: str


class _Pending:
    """A person record accepted so far, waiting for its batch to be written."""

    __slots__ = (
        "class_keys",
        "classes",
        "establishment_id",
        "establishments",
        "group_keys",
        "groups",
        "heads",
        "issues",
        "name",
        "profiles",
        "raw_xml",
        "ref",
        "row",
        "subjects",
    )

    def __init__(self, row: PersonRow, ref: RecordRef, establishment_id: int | None) -> None:
        self.row = row
        self.ref = ref
        self.establishment_id = establishment_id
        self.establishments: set[int] = set()
        self.classes: dict[int, set[int]] | None = None  # year -> class ids
        self.groups: dict[int, set[int]] | None = None
        self.class_keys: list[tuple[int, str]] = []  # classes to create (students)
        self.group_keys: list[tuple[int, str]] = []
        self.profiles: set[tuple[int, str, str]] = set()
        self.heads: dict[int, list[dict[str, Any]]] | None = None
        self.subjects: dict[int, list[dict[str, Any]]] | None = None
        self.name = ""
        self.issues: list[Issue] = []  # relatives: stored once their establishment is known
        self.raw_xml: str | None = None


@dataclass
class ImportResult:
    """What an import did (or, for a dry run, would do)."""

    import_id: int | None
    dry_run: bool
    source: list[str]
    delivery_type: str
    files: list[dict[str, Any]]
    records: dict[str, int]
    records_by_kind: dict[str, dict[str, int]]
    establishments: list[dict[str, Any]]
    rejects_by_code: dict[str, int]
    unknown_attributes: dict[str, int]
    header: dict[str, Any]
    step4_uais: list[str]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "import_id": self.import_id, "dry_run": self.dry_run, "source": self.source,
            "delivery_type": self.delivery_type, "files": self.files, "records": self.records,
            "records_by_kind": self.records_by_kind, "establishments": self.establishments,
            "rejects_by_code": self.rejects_by_code,
            "unknown_attributes": self.unknown_attributes, "header": self.header,
            "step4": self.step4_uais,
        }


class _Importer:
    """One run over one delivery, inside one session/transaction."""

    def __init__(self, session: Session, delivery: Delivery, *, scope: set[int] | None,
                 step4: bool, now: dt.datetime, observer: Observer,
                 progress: ProgressCallback | None, dry_run: bool = False) -> None:
        self.session = session
        self.dry_run = dry_run
        self.connection = session.connection()
        self.delivery = delivery
        self.scope = scope
        self.step4 = step4
        self.now = now
        self.observer = observer
        self.progress = progress
        self.files_by_name = {f.name: f for f in delivery.files}
        self.structures: dict[str, StructureInfo] = {}
        self.contexts: dict[int, EstablishmentContext] = {}
        self.subject_ids: dict[str, int] = {}
        self.mef_codes: set[str] = set()
        self.records: Counter[str] = Counter()
        self.records_by_kind: dict[str, Counter[str]] = defaultdict(Counter)
        self.rejects: list[dict[str, Any]] = []
        self.deferred: list[tuple[RecordRef, dict[str, Any]]] = []
        self.reject_counts: dict[int | None, Counter[str]] = defaultdict(Counter)
        self.unknown: dict[tuple[str, str], list[Any]] = {}
        self.teacher_only: dict[tuple[int, str], list[Any]] = {}
        self.file_rows: list[dict[str, Any]] = []
        self.projects: list[Any] | None = None
        self.bytes_total = sum(f.size for f in delivery.files) or 1
        self.bytes_done = 0

    # --- set-up ------------------------------------------------------------------------

    def _current_year(self) -> SchoolYear:
        year = self.session.scalar(select(SchoolYear).where(SchoolYear.is_current.is_(True)))
        if year is not None:
            return year
        day = self.delivery.newest_date or self.now.date()
        start = day.year if day.month >= 8 else day.year - 1
        year = self.session.scalar(select(SchoolYear).where(SchoolYear.start_year == start))
        if year is None:
            year = SchoolYear(start_year=start, label=f"{start}-{start + 1}",
                              starts_on=dt.date(start, 9, 1), ends_on=dt.date(start + 1, 8, 31),
                              is_current=True)
            self.session.add(year)
        year.is_current = True
        self.session.flush()
        return year

    def _load_known(self) -> None:
        for row in self.connection.execute(
                select(establishments_table.c.id, establishments_table.c.uai,
                       establishments_table.c.name, establishments_table.c.aaf_jointure)
                .where(establishments_table.c.aaf_jointure.is_not(None))):
            self.structures[row.aaf_jointure] = StructureInfo(row.aaf_jointure, row.uai, row.name,
                                                              row.id)
        for row in self.connection.execute(select(structures_table)):
            if row.jointure not in self.structures:
                self.structures[row.jointure] = StructureInfo(
                    row.jointure, row.uai, row.name, row.establishment_id,
                    is_school=row.establishment_id is not None)
        self.subject_ids = {row.code: row.id for row in self.connection.execute(
            select(subjects_table.c.code, subjects_table.c.id))}
        self.mef_codes = set(self.connection.execute(select(mefs_table.c.code)).scalars())

    def run(self) -> ImportResult:
        """Apply the whole delivery and return what was done."""
        groups = self.delivery.groups()
        # Started first: a reader process parses while the database is prepared.
        self.source = open_source(groups)
        try:
            return self._run(groups)
        finally:
            self.source.close()

    def _run(self, groups: list[list[DeliveryFile]]) -> ImportResult:
        self.year_n = self._current_year()
        self.import_row = AafImport(
            started_at=self.now, source="\n".join(self.delivery.source),
            source_kind=self.delivery.source_kind, delivery_type=self.delivery.delivery_type,
            delivery_date=self.delivery.newest_date, mode=MODE_IMPORT,
            operator=operator_identity()["os_user"], header="{}", summary="{}",
            unknown_attributes="{}")
        self.session.add(self.import_row)
        self.session.flush()
        self.import_id = self.import_row.id
        db.create_staging(self.connection)
        self._load_known()
        for position, group in enumerate(groups):
            self._run_group(group, position)
        self._finish()
        return self._result()

    # --- contexts ----------------------------------------------------------------------

    def _context(self, establishment_id: int) -> EstablishmentContext:
        context = self.contexts.get(establishment_id)
        if context is not None:
            return context
        row = self.connection.execute(
            select(establishments_table.c.uai, establishments_table.c.name,
                   establishments_table.c.project_id)
            .where(establishments_table.c.id == establishment_id)).one()
        in_scope = self.scope is None or establishment_id in self.scope
        context = EstablishmentContext(establishment_id, row.uai, row.name, row.project_id,
                                       in_scope)
        self.contexts[establishment_id] = context
        if not in_scope:
            return context
        year_n = self.year_n
        if self.step4:
            mode, target = MODE_INIT, next_school_year(self.session, year_n)
        else:
            context.overridden = check_aaf_import_allowed(self.session, [establishment_id],
                                                          year_n.id)
            statuses = unit_statuses(self.session, establishment_id, year_n.id)
            if statuses[Step.INIT_DIRECTORY] is UnitStatus.DONE:
                mode, target = MODE_IMPORT, next_school_year(self.session, year_n)
            elif statuses[Step.DELETE_OBSOLETE] is UnitStatus.DONE:
                mode, target = MODE_INIT, next_school_year(self.session, year_n)
            else:
                mode, target = MODE_IMPORT, year_n
        context.mode = mode
        context.year_id = target.id
        context.year_label = target.label
        context.year_starts_on = target.starts_on
        previous = self.session.scalar(select(SchoolYear.id).where(
            SchoolYear.start_year == target.start_year - 1))
        context.previous_year_id = previous
        return context

    def _class_cache(self, context: EstablishmentContext) -> dict[str, int]:
        if context.classes is None:
            context.classes = db.load_classes(self.connection, context.id, context.year_id)
        return context.classes

    def _group_cache(self, context: EstablishmentContext) -> dict[str, int]:
        if context.groups is None:
            context.groups = db.load_groups(self.connection, context.id, context.year_id)
        return context.groups

    # --- rejects -----------------------------------------------------------------------

    def _reject(self, code: str, ref: RecordRef, *, raw: Prepared | None = None,
                establishment_id: int | None = None, attribute: str = "", value: str = "",
                name: str = "", deferred: bool = False, raw_xml: str | None = None,
                **params: object) -> None:
        if establishment_id is None and raw is not None and ref.kind in PERSON_KINDS:
            establishment_id = self._establishment_hint(raw, ref)
        label = KIND_LABELS.get(ref.kind, "l'enregistrement")
        record = f"{label} {ref.identifier}" if ref.identifier else label
        context = self.contexts.get(establishment_id) if establishment_id is not None else None
        uai = context.uai if context is not None else ""
        message, action = explain(
            code, record=record, Record=record[:1].upper() + record[1:], name=name or "?",
            value=value, attribute=attribute, kind=ref.kind, uai=uai or "?",
            request=REQUEST_LABELS.get(ref.request, ref.request), **params)
        row = {"import_id": self.import_id, "file_name": ref.file[:500], "line": ref.line or None,
               "record_id": ref.identifier[:64], "kind": ref.kind, "request": ref.request,
               "establishment_id": establishment_id, "uai": uai, "code": code,
               "severity": RULES[code].severity.value, "attribute": attribute[:100],
               "raw_value": value, "message": message, "action": action, "raw_xml": ""}
        self.reject_counts[establishment_id][code] += 1
        if raw_xml is not None:
            row["raw_xml"] = raw_xml
            self.rejects.append(row)
        elif deferred or raw is None:
            self.deferred.append((ref, row))
        else:
            row["raw_xml"] = raw.raw_xml()
            self.rejects.append(row)
        if len(self.rejects) >= BATCH_SIZE:
            self._write_rejects()

    def _establishment_hint(self, raw: Prepared, ref: RecordRef) -> int | None:
        """The establishment a refused person record most likely belongs to, if any."""
        structure = raw.hint
        establishment_id = self._establishment_of(structure) if structure else None
        if establishment_id is None and ref.identifier and ref.request != "add":
            establishment_id = self.connection.execute(
                select(db.people.c.establishment_id).where(
                    db.people.c.aaf_jointure == ref.identifier)).scalar()
        if establishment_id is not None:
            self._context(establishment_id)
        return establishment_id

    def _write_rejects(self) -> None:
        if self.rejects:
            db.bulk_insert(self.connection, rejects_table, self.rejects)
            self.rejects = []

    def _issues(self, issues: list[Issue], ref: RecordRef, raw: Prepared,
                establishment_id: int | None, name: str) -> bool:
        """Store the issues of a record; return True when one refuses it."""
        refused = False
        for issue in issues:
            if RULES[issue.code].severity is Severity.ERROR:
                refused = True
            self._reject(issue.code, ref, raw=raw, establishment_id=establishment_id,
                         attribute=issue.attribute, value=issue.value, name=name, **issue.params)
        return refused

    def _count(self, kind: str, outcome: str, establishment_id: int | None = None) -> None:
        self.records[outcome] += 1
        self.records_by_kind[kind][outcome] += 1
        if establishment_id is not None and outcome == "refused":
            context = self.contexts.get(establishment_id)
            if context is not None:
                context.counts["refused"] += 1

    # --- groups of files ---------------------------------------------------------------

    def _run_group(self, files: list[DeliveryFile], position: int) -> None:
        self.is_complet = any(f.delivery_type == COMPLET for f in files)
        self.group_has_structures = any(f.kind == KIND_ETAB for f in files)
        # Person identifiers and links of this dated delivery go to the staging tables
        # by batch (see directory.create_staging): nothing per record stays in memory.
        db.clear_staging(self.connection)
        self.present_rows: list[tuple[str, int, str, int]] = []
        self.link_rows: list[tuple[Any, ...]] = []
        self.covered: set[int] = set()
        self.batches: dict[str, list[Any]] = defaultdict(list)
        self.batch_ids: dict[str, set[str]] = defaultdict(set)
        self.deletes: dict[str, list[tuple[RecordRef, Prepared | None]]] = defaultdict(list)
        handlers = {KIND_ETAB: self._structure, KIND_MATIERE: self._subject, KIND_MEF: self._mef,
                    KIND_ELEVE: self._person, KIND_PERS_REL_ELEVE: self._person,
                    KIND_PERS_EDUC_NAT: self._person}
        precheck = self._precheck
        self.source.new_group()
        for delivery_file in files:
            records, outcome = self.source.open_file(delivery_file)
            handler = handlers[delivery_file.kind]
            kind = delivery_file.kind
            batch = self.batches[kind]
            for prepared in records:
                ref = precheck(prepared)
                if ref is not None:
                    handler(prepared, ref)
                    if len(batch) >= BATCH_SIZE:
                        self._flush(kind)
            self.records["total"] += outcome.record_count
            self.records_by_kind[kind]["total"] += outcome.record_count
            self._flush(kind)
            self._file_done(delivery_file, outcome)
        self._apply_links()
        if self.is_complet:
            self._flag_absent()

    def _file_done(self, delivery_file: DeliveryFile,
                   reader: AafFileReader | FileOutcome) -> None:
        if reader.sha256:
            delivery_file._sha256 = reader.sha256
        fields = reader.header.fields
        generated = fields.get("dateGenerationExport", "")
        self.file_rows.append({
            "import_id": self.import_id, "position": len(self.file_rows),
            "name": delivery_file.name[:500], "path": str(delivery_file.path),
            "kind": delivery_file.kind, "delivery_type": delivery_file.delivery_type,
            "delivery_date": delivery_file.delivery_date, "chunk": delivery_file.chunk,
            "declared_encoding": (delivery_file.prologue.declared_encoding
                                  or delivery_file.prologue.bom_encoding or "")[:40],
            "size": delivery_file.size, "sha256": delivery_file.sha256,
            "record_count": reader.record_count,
            "version_af": fields.get("versionAF", "")[:50],
            "version_sdet": fields.get("versionSDET", "")[:200],
            "academy_code": fields.get("codeAcademieExport", "")[:10],
            "degree": fields.get("degre", "")[:10], "generated_on": generated[:20],
            "comments": "\n".join(reader.header.comments)})
        self.bytes_done += delivery_file.size
        for context in self.contexts.values():
            if context.mode == MODE_INIT:
                self.observer.notify(UnitProgressed(context.uai, Step.INIT_DIRECTORY.value,
                                                    self.bytes_done, self.bytes_total,
                                                    dry_run=self.dry_run))
        if self.progress is not None:
            self.progress(f"{delivery_file.name} : {reader.record_count} enregistrement(s) lus.")

    # --- per record --------------------------------------------------------------------

    def _precheck(self, prepared: Prepared) -> RecordRef | None:
        """Account for what the record alone decided; return where it is, or None when refused.

        The checks themselves (request, category, identifier, operations, unknown
        attributes, duplicate structures, subjects and MEF) are made by
        :class:`~yearchange_tui.aaf.prepare.Preparer`.
        """
        kind = prepared.kind
        ref = RecordRef(prepared.file, prepared.line, prepared.identifier, kind, prepared.request)
        if prepared.unknown:
            for name in prepared.unknown:
                entry = self.unknown.get((kind, name))
                if entry is None:
                    self.unknown[(kind, name)] = [1, ref, prepared.raw_xml()]
                else:
                    entry[0] += 1
        if prepared.reject is not None:
            code, attribute, value, params = prepared.reject
            self._reject(code, ref, raw=prepared, attribute=attribute, value=value, **params)
            self._count(kind, "refused")
            return None
        return ref

    # structures, subjects, MEF ---------------------------------------------------------

    def _structure(self, raw: Prepared, ref: RecordRef) -> None:
        kind, jointure = ref.kind, ref.identifier
        if raw.request == "delete":
            self._count(kind, "imported")
            return
        self._in_file_order(kind, jointure)
        issues: list[Issue] = raw.issues
        row: StructureRow = raw.row
        existing = self.structures.get(jointure)
        if raw.request == "modify" and existing is not None:
            # A modifyRequest carries only what changes: keep the rest.
            present = row.present
            if not row.uai:
                row.uai = existing.uai
            if "ENTStructureNomCourant" not in present:
                row.name = existing.name
            if "ENTStructureClasses" not in present:
                row.classes = existing.classes
            if "ENTStructureGroupes" not in present:
                row.groups = existing.groups
            if "ENTStructureTypeStruct" not in present:
                row.is_school = existing.is_school
        try:
            validate_uai(row.uai)
        except InvalidUAIError as error:
            detail = str(error).split(" : ", 1)[-1].rstrip(".")
            self._issues(issues, ref, raw, None, row.name)
            self._reject("AAF-UAI-INVALIDE", ref, raw=raw, attribute="ENTStructureUAI",
                         value=row.uai, name=row.name, detail=detail)
            self.structures[jointure] = StructureInfo(jointure, row.uai, row.name, None,
                                                      refused=f"UAI « {row.uai} » invalide")
            self._count(kind, "refused")
            return
        self._issues(issues, ref, raw, None, row.name)
        info = StructureInfo(jointure, row.uai, row.name, existing.establishment_id
                             if existing else None, None, row.classes, row.groups,
                             row.is_school)
        self.structures[jointure] = info
        self.batches[kind].append((row, ref))

    def _subject(self, raw: Prepared, ref: RecordRef) -> None:
        if raw.request == "delete":
            self._count(ref.kind, "imported")
            return
        self.batches[ref.kind].append(raw.row)

    def _in_file_order(self, kind: str, identifier: str) -> None:
        """Requests on one identifier apply in file order (a Delta may add then modify).

        A batch is written with what the database held before it: an identifier already
        waiting in the batch sends the batch to the database first, so the second request
        finds the first one written (an update, never a second insert).
        """
        if identifier in self.batch_ids[kind]:
            self._flush(kind)
        self.batch_ids[kind].add(identifier)

    _mef = _subject

    # people ------------------------------------------------------------------------------

    def _resolve(self, structure: str) -> tuple[StructureInfo | None, str | None]:
        """(info, None) for a usable structure, else (info or None, rule code)."""
        info = self.structures.get(structure)
        if info is None:
            return None, "AAF-STRUCTURE-INCONNUE"
        if info.refused is not None:
            return info, "AAF-STRUCTURE-REFUSEE"
        return info, None

    def _establishment_of(self, structure: str) -> int | None:
        info = self.structures.get(structure)
        if info is None or info.refused is not None:
            return None
        return info.establishment_id

    def _person(self, raw: Prepared, ref: RecordRef) -> None:
        kind, jointure = ref.kind, ref.identifier
        # Requests on one person apply in file order (a Delta may add, modify, delete).
        if jointure in self.batch_ids[kind] or (self.deletes[kind] and raw.request != "delete"):
            self._flush(kind)
        if raw.request == "delete":
            self.deletes[kind].append((ref, None))
            self.batch_ids[kind].add(jointure)
            return
        issues = raw.issues
        row: PersonRow | None = raw.row
        name = raw.name
        attachment = None
        if row is not None and row.structure is not None:
            attachment = row.structure
        elif row is None:
            attachment = raw.hint or None
        establishment_id = self._establishment_of(attachment) if attachment else None
        if establishment_id is not None:
            context = self._context(establishment_id)
            if not context.in_scope and kind == KIND_ELEVE:
                self._present(ref)
                self._count(kind, "skipped")
                return
        if row is None:
            if kind == KIND_PERS_REL_ELEVE:
                establishment_id = self._relative_establishment(jointure)
            self._issues(issues, ref, raw, establishment_id, name)
            if kind == KIND_ELEVE:
                # Relatives cited by a refused student are not orphans: its reject says why.
                self._stage_refused_links(ref, raw.links or [], establishment_id)
            self._present(ref)
            self._count(kind, "refused", establishment_id)
            return
        if kind == KIND_ELEVE:
            pending = self._student(raw, ref, row, issues, name)
        elif kind == KIND_PERS_REL_ELEVE:
            pending = self._relative(raw, ref, row, issues, name)
        else:
            pending = self._staff(raw, ref, row, issues, name)
        if pending is None:
            if kind == KIND_ELEVE:
                self._stage_refused_links(ref, row.relatives or [], establishment_id)
            self._present(ref)
            return
        pending.name = name
        self.batches[kind].append(pending)
        self.batch_ids[kind].add(jointure)

    def _present(self, ref: RecordRef) -> None:
        """Note a person record that will not be written (for the absent-people rule)."""
        self.present_rows.append((ref.identifier, 0, ref.file, ref.line))

    def _stage_refused_links(self, ref: RecordRef, links: list[Any],
                             establishment_id: int | None) -> None:
        for link in links:
            self.link_rows.append((None, ref.identifier, link.relative, link.link_code,
                                   link.legal, int(link.financial), int(link.contact),
                                   establishment_id, ref.file, ref.line))

    def _relative_establishment(self, jointure: str) -> int | None:
        """The establishment of a student citing this relative, if one was read."""
        found = db.referencing_establishments(self.connection, [jointure]).get(jointure) or []
        return next((e for e in found if e is not None), None)

    def _student(self, raw: Prepared, ref: RecordRef, row: PersonRow, issues: list[Issue],
                 name: str) -> _Pending | None:
        structure = row.structure
        if structure == "" and row.classes:
            structure = row.classes[0][0]
        establishment_id: int | None = None
        if structure is not None:
            info, problem = self._resolve(structure)
            if problem is None and info is not None and info.establishment_id is None:
                if info.is_school and self.scope is not None:
                    self._count(ref.kind, "skipped")
                    return None
                problem = "AAF-STRUCTURE-REFUSEE"
            if problem is not None or not structure:
                detail = (info.refused if info is not None and info.refused else
                          "structure administrative, pas un établissement")
                self._issues(issues, ref, raw, None, name)
                self._reject(problem or "AAF-STRUCTURE-INCONNUE", ref, raw=raw,
                             attribute="ENTPersonStructRattach", value=structure or "",
                             name=name, detail=detail)
                self._count(ref.kind, "refused")
                return None
            establishment_id = info.establishment_id if info else None
        pending = _Pending(row, ref, establishment_id)
        if establishment_id is not None:
            pending.establishments.add(establishment_id)
            pending.profiles.add((establishment_id, Profile.STUDENT.value, "ELE"))
        if row.classes is not None:
            pending.classes = {}
            for struct, code in row.classes:
                class_establishment = self._establishment_of(struct)
                if class_establishment is None:
                    issues.append(Issue("AAF-REFERENCE-STRUCTURE-INCONNUE", "ENTEleveClasses",
                                        f"{struct}${code}"))
                    continue
                context = self._context(class_establishment)
                if not context.in_scope:
                    continue
                pending.class_keys.append((class_establishment, code))
                pending.classes.setdefault(context.year_id, set())
            if not pending.class_keys:
                issues.append(Issue("AAF-ELEVE-SANS-CLASSE", "ENTEleveClasses", ""))
                if establishment_id is not None:
                    pending.classes.setdefault(self._context(establishment_id).year_id, set())
        if row.groups is not None:
            pending.groups = {}
            for struct, code in row.groups:
                group_establishment = self._establishment_of(struct)
                if group_establishment is None:
                    issues.append(Issue("AAF-REFERENCE-STRUCTURE-INCONNUE", "ENTEleveGroupes",
                                        f"{struct}${code}"))
                    continue
                context = self._context(group_establishment)
                if not context.in_scope:
                    continue
                pending.group_keys.append((group_establishment, code))
                pending.groups.setdefault(context.year_id, set())
            if establishment_id is not None:
                pending.groups.setdefault(self._context(establishment_id).year_id, set())
        if row.mef and row.mef not in self.mef_codes:
            issues.append(Issue("AAF-MEF-INCONNU", "ENTEleveMEF", row.mef))
        self._issues(issues, ref, raw, establishment_id, name)
        return pending

    def _relative(self, raw: Prepared, ref: RecordRef, row: PersonRow, issues: list[Issue],
                  name: str) -> _Pending | None:
        """A relative waits for its batch: who cites it is known from the staging table."""
        pending = _Pending(row, ref, None)
        pending.issues = issues
        pending.raw_xml = raw.raw_xml() if issues else None
        return pending

    def _staff(self, raw: Prepared, ref: RecordRef, row: PersonRow, issues: list[Issue],
               name: str) -> _Pending | None:
        establishment_id: int | None = None
        if row.structure:
            info, problem = self._resolve(row.structure)
            if problem is not None:
                self._issues(issues, ref, raw, None, name)
                self._reject(problem, ref, raw=raw, attribute="ENTPersonStructRattach",
                             value=row.structure, name=name,
                             detail=info.refused if info is not None else "")
                self._count(ref.kind, "refused")
                return None
            assert info is not None
            establishment_id = info.establishment_id
        unknown: dict[str, list[str]] = defaultdict(list)
        pending = _Pending(row, ref, establishment_id)
        related: set[int] = {establishment_id} if establishment_id is not None else set()
        if row.function_structures is not None:
            for struct, function_code in row.function_structures:
                if struct in ("", "-"):
                    continue
                function_establishment = self._establishment_of(struct)
                if struct not in self.structures or (self.structures[struct].refused is not None):
                    unknown["ENTPersonFonctions"].append(struct)
                    continue
                if function_establishment is None:
                    continue
                related.add(function_establishment)
                profile = FUNCTION_PROFILES.get(function_code, Profile.NON_TEACHING)
                pending.profiles.add((function_establishment, profile.value, function_code[:16]))
            if establishment_id is None and related:
                establishment_id = min(related)
                pending.establishment_id = establishment_id
            if establishment_id is not None and not any(p[0] == establishment_id
                                                        for p in pending.profiles):
                profile = Profile.TEACHER if row.is_teacher else Profile.NON_TEACHING
                pending.profiles.add((establishment_id, profile.value,
                                      "ENS" if row.is_teacher else ""))
        if row.teacher_classes is not None:
            pending.classes = {}
            pending.subjects = {}
            for struct, code, subject in row.teacher_classes:
                class_establishment = self._establishment_of(struct)
                if class_establishment is None:
                    if struct not in self.structures or self.structures[struct].refused:
                        unknown["ENTAuxEnsClassesMatieres"].append(struct)
                    continue
                context = self._context(class_establishment)
                if not context.in_scope:
                    continue
                related.add(class_establishment)
                year = context.year_id
                pending.classes.setdefault(year, set())
                pending.subjects.setdefault(year, [])
                class_id = self._class_cache(context).get(code)
                if class_id is None:
                    self._teacher_only(context, code, ref, raw, name)
                    continue
                pending.classes[year].add(class_id)
                if subject:
                    if subject not in self.subject_ids:
                        issues.append(Issue("AAF-MATIERE-INCONNUE", "ENTAuxEnsClassesMatieres",
                                            subject))
                    pending.subjects[year].append({
                        "establishment_id": class_establishment, "school_year_id": year,
                        "class_id": class_id, "group_id": None,
                        "subject_id": self.subject_ids.get(subject),
                        "subject_code": subject[:16]})
        if row.teacher_groups is not None:
            pending.groups = {}
            if pending.subjects is None:
                pending.subjects = {}
            for struct, code, subject in row.teacher_groups:
                group_establishment = self._establishment_of(struct)
                if group_establishment is None:
                    if struct not in self.structures or self.structures[struct].refused:
                        unknown["ENTAuxEnsGroupesMatieres"].append(struct)
                    continue
                context = self._context(group_establishment)
                if not context.in_scope:
                    continue
                related.add(group_establishment)
                year = context.year_id
                pending.groups.setdefault(year, set())
                group_id = self._group_cache(context).get(code)
                if group_id is None:
                    continue
                pending.groups[year].add(group_id)
                if subject:
                    if subject not in self.subject_ids:
                        issues.append(Issue("AAF-MATIERE-INCONNUE", "ENTAuxEnsGroupesMatieres",
                                            subject))
                    pending.subjects.setdefault(year, []).append({
                        "establishment_id": group_establishment, "school_year_id": year,
                        "class_id": None, "group_id": group_id,
                        "subject_id": self.subject_ids.get(subject),
                        "subject_code": subject[:16]})
        if row.head_classes is not None:
            pending.heads = {}
            for struct, code in row.head_classes:
                class_establishment = self._establishment_of(struct)
                if class_establishment is None:
                    continue
                context = self._context(class_establishment)
                if not context.in_scope:
                    continue
                year = context.year_id
                pending.heads.setdefault(year, [])
                class_id = self._class_cache(context).get(code)
                if class_id is None:
                    self._teacher_only(context, code, ref, raw, name)
                    continue
                pending.heads[year].append({"establishment_id": class_establishment,
                                            "school_year_id": year, "class_id": class_id})
        for attribute, structs in unknown.items():
            issues.append(Issue("AAF-REFERENCE-STRUCTURE-INCONNUE", attribute,
                                ", ".join(dict.fromkeys(structs))))
        if self.scope is not None:
            in_scope = [e for e in related if self._context(e).in_scope]
            if not in_scope:
                self._count(ref.kind, "skipped")
                return None
        # A list the record carries replaces the old one in every establishment it relates to,
        # so a teacher who no longer teaches there loses the old links.
        for establishment in related:
            context = self._context(establishment)
            if not context.in_scope:
                continue
            for links in (pending.classes, pending.groups, pending.heads):
                if links is not None:
                    links.setdefault(context.year_id, set() if links is not pending.heads else [])
            if pending.subjects is not None:
                pending.subjects.setdefault(context.year_id, [])
        pending.establishments = related
        self._issues(issues, ref, raw, establishment_id, name)
        return pending

    def _teacher_only(self, context: EstablishmentContext, code: str, ref: RecordRef,
                      raw: Prepared, name: str) -> None:
        key = (context.id, code)
        entry = self.teacher_only.get(key)
        if entry is None:
            self.teacher_only[key] = [ref, raw.raw_xml(), [f"{ref.identifier} {name}".strip()]]
        elif len(entry[2]) < 5 and ref.identifier not in entry[2][-1]:
            entry[2].append(f"{ref.identifier} {name}".strip())

    # --- batches -----------------------------------------------------------------------

    def _flush(self, kind: str) -> None:
        pending = self.batches[kind]
        batch = pending[:]
        pending.clear()  # the same list object: the reading loop keeps its reference
        self.batch_ids[kind] = set()
        deletes = self.deletes.get(kind) or []
        self.deletes[kind] = []
        if batch:
            if kind == KIND_ETAB:
                self._write_structures(batch)
            elif kind in (KIND_MATIERE, KIND_MEF):
                self._write_nomenclature(kind, batch)
            else:
                self._write_people(kind, batch)
        if deletes:
            self._apply_deletes(kind, deletes)
        if self.present_rows:
            db.stage_seen(self.connection, self.present_rows)
            self.present_rows = []
        if self.link_rows:
            db.stage_links(self.connection, self.link_rows)
            self.link_rows = []

    def _project_id(self, row: StructureRow) -> int:
        if self.projects is None:
            self.projects = list(self.connection.execute(
                select(Project.id, Project.code, Project.academy_code).order_by(Project.id)))
        if len(self.projects) == 1:
            return self.projects[0].id
        wanted = row.academy_code.lstrip("0")
        for project in self.projects:
            if wanted and (project.academy_code or "").lstrip("0") == wanted:
                return project.id
        if self.projects:
            return self.projects[0].id
        code = f"AAF-{row.academy_code or 'ACADEMIE'}"
        academy = row.academy_name.title() or row.academy_code or "inconnue"
        result = self.connection.execute(insert(Project.__table__).values(
            code=code, name=f"ENT de l'académie {academy}", ent_name="ENT",
            academy_code=row.academy_code[:8],
            group_lifetime_url_template="https://ent.example.fr/groupes/{group_id}/duree-de-vie",
            newest_timetable_versions_enabled=False, automatic_timetable_import=False,
            access_block_message="", access_block_profiles="National_ELV,National_TUT",
            access_block_override_allowed=False))
        self.projects = None
        return int(result.inserted_primary_key[0])

    def _write_structures(self, batch: list[tuple[StructureRow, RecordRef]]) -> None:
        jointures = [row.jointure for row, _ in batch]
        uais = [row.uai for row, _ in batch]
        by_jointure: dict[str, Any] = {}
        by_uai: dict[str, Any] = {}
        columns = [establishments_table.c.id, establishments_table.c.uai,
                   establishments_table.c.aaf_jointure, establishments_table.c.name,
                   establishments_table.c.town, establishments_table.c.postal_code]
        for part in db.chunks(jointures):
            for row in self.connection.execute(select(*columns).where(
                    establishments_table.c.aaf_jointure.in_(part))):
                by_jointure[row.aaf_jointure] = row
        for part in db.chunks(uais):
            for row in self.connection.execute(select(*columns).where(
                    establishments_table.c.uai.in_(part))):
                by_uai[row.uai] = row
        known_structures = {jointure for part in db.chunks(jointures)
                            for jointure in self.connection.execute(
                                select(structures_table.c.jointure).where(
                                    structures_table.c.jointure.in_(part))).scalars()}
        updates: list[dict[str, Any]] = []
        structure_inserts: list[dict[str, Any]] = []
        structure_updates: list[dict[str, Any]] = []
        for row, _ref in batch:
            info = self.structures[row.jointure]
            establishment_id: int | None = None
            if row.is_school:
                existing = by_jointure.get(row.jointure) or by_uai.get(row.uai)
                if existing is None and self.scope is None:
                    kind = (EstablishmentKind.COLLEGE if "COLLEGE" in row.type_label.upper()
                            else EstablishmentKind.LYCEE if "LYCEE" in row.type_label.upper()
                            else EstablishmentKind.OTHER)
                    result = self.connection.execute(insert(establishments_table).values(
                        project_id=self._project_id(row), uai=row.uai, aaf_jointure=row.jointure,
                        name=row.name, kind=kind, town=row.town, postal_code=row.postal_code,
                        closing_date=None, access_block_starts_on=None,
                        access_block_ends_on=None))
                    establishment_id = int(result.inserted_primary_key[0])
                    by_uai[row.uai] = by_jointure[row.jointure] = None
                    self._context(establishment_id).counts["establishment_created"] = 1
                elif existing is not None:
                    establishment_id = existing.id
                    in_scope = self.scope is None or establishment_id in self.scope
                    same_name = _fold(existing.name) == _fold(row.name)
                    name = existing.name if same_name else row.name
                    changed = (existing.aaf_jointure != row.jointure or not same_name
                               or (row.town and existing.town != row.town)
                               or (row.postal_code and existing.postal_code != row.postal_code))
                    if in_scope and changed:
                        updates.append({"b_id": existing.id, "b_jointure": row.jointure,
                                        "b_name": name, "b_town": row.town or existing.town,
                                        "b_postal": row.postal_code or existing.postal_code})
            info.establishment_id = establishment_id
            if row.jointure in known_structures:
                structure_updates.append({"b_jointure": row.jointure, "b_uai": row.uai,
                                          "b_name": row.name, "b_type": row.type_label,
                                          "b_establishment": establishment_id})
            else:
                structure_inserts.append({"jointure": row.jointure, "uai": row.uai,
                                          "name": row.name, "type_label": row.type_label,
                                          "establishment_id": establishment_id,
                                          "last_import_id": self.import_id})
            if establishment_id is not None:
                context = self._context(establishment_id)
                if self.is_complet and context.in_scope:
                    self.covered.add(establishment_id)
                self._count(KIND_ETAB, "skipped" if not context.in_scope else "imported")
            else:
                self._count(KIND_ETAB, "imported")
        if structure_updates:
            self.connection.execute(
                update(structures_table)
                .where(structures_table.c.jointure == bindparam("b_jointure"))
                .values(uai=bindparam("b_uai"), name=bindparam("b_name"),
                        type_label=bindparam("b_type"),
                        establishment_id=bindparam("b_establishment"),
                        last_import_id=self.import_id), structure_updates)
        if structure_inserts:
            self.connection.execute(insert(structures_table), structure_inserts)
        if updates:
            self.connection.execute(
                update(establishments_table).where(establishments_table.c.id == bindparam("b_id"))
                .values(aaf_jointure=bindparam("b_jointure"), name=bindparam("b_name"),
                        town=bindparam("b_town"), postal_code=bindparam("b_postal")), updates)

    def _write_nomenclature(self, kind: str, batch: list[Any]) -> None:
        table = subjects_table if kind == KIND_MATIERE else mefs_table
        codes = [row.code for row in batch]
        existing: dict[str, Any] = {}
        for part in db.chunks(codes):
            for row in self.connection.execute(select(table).where(table.c.code.in_(part))):
                existing[row.code] = row
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for row in batch:
            values = {"code": row.code, "label": row.label}
            if kind == KIND_MATIERE:
                values["short_label"] = ""
            else:
                values["level_label"] = row.level_label
            current = existing.get(row.code)
            if current is None:
                inserts.append(values)
            elif current.label != row.label or (kind == KIND_MEF
                                                and current.level_label != row.level_label):
                updates.append({"b_code": row.code, "b_label": row.label,
                                "b_level": row.level_label})
            self._count(kind, "imported")
        if inserts:
            self.connection.execute(insert(table), inserts)
        if updates:
            values = {"label": bindparam("b_label")}
            if kind == KIND_MEF:
                values["level_label"] = bindparam("b_level")
            self.connection.execute(update(table).where(table.c.code == bindparam("b_code"))
                                    .values(values), updates)
        if kind == KIND_MATIERE:
            for part in db.chunks(codes):
                for row in self.connection.execute(
                        select(table.c.code, table.c.id).where(table.c.code.in_(part))):
                    self.subject_ids[row.code] = row.id
        else:
            self.mef_codes.update(codes)

    def _ensure_classes_and_groups(self, batch: list[_Pending]) -> None:
        """Create the classes and groups students are in (only students create them)."""
        class_rows: dict[tuple[int, int, str], dict[str, Any]] = {}
        group_rows: dict[tuple[int, int, str], dict[str, Any]] = {}
        for pending in batch:
            for establishment_id, code in pending.class_keys:
                context = self.contexts[establishment_id]
                if code in self._class_cache(context):
                    continue
                key = (establishment_id, context.year_id, code)
                if key not in class_rows:
                    info = self._structure_info(establishment_id)
                    label, mef = info.classes.get(code, ("", "")) if info else ("", "")
                    class_rows[key] = {"establishment_id": establishment_id,
                                       "school_year_id": context.year_id, "code": code,
                                       "label": label or code,
                                       "mef_code": mef or pending.row.mef[:16]}
            for establishment_id, code in pending.group_keys:
                context = self.contexts[establishment_id]
                if code in self._group_cache(context):
                    continue
                key = (establishment_id, context.year_id, code)
                if key not in group_rows:
                    info = self._structure_info(establishment_id)
                    label = info.groups.get(code, "") if info else ""
                    group_rows[key] = {"establishment_id": establishment_id,
                                       "school_year_id": context.year_id, "code": code,
                                       "name": label or code}
        if class_rows:
            created = db.create_classes(self.connection, list(class_rows.values()))
            for (establishment_id, _, code), class_id in created.items():
                context = self.contexts[establishment_id]
                self._class_cache(context)[code] = class_id
                context.created_class_ids.add(class_id)
                context.counts["classes_created"] += 1
        if group_rows:
            created = db.create_groups(self.connection, list(group_rows.values()))
            for (establishment_id, _, code), group_id in created.items():
                context = self.contexts[establishment_id]
                cache = self._group_cache(context)
                if code not in cache:
                    context.counts["groups_created"] += 1
                cache[code] = group_id
        for pending in batch:
            if pending.classes is not None:
                for establishment_id, code in pending.class_keys:
                    context = self.contexts[establishment_id]
                    pending.classes[context.year_id].add(self._class_cache(context)[code])
            if pending.groups is not None:
                for establishment_id, code in pending.group_keys:
                    context = self.contexts[establishment_id]
                    pending.groups[context.year_id].add(self._group_cache(context)[code])

    def _structure_info(self, establishment_id: int) -> StructureInfo | None:
        found: StructureInfo | None = None
        for info in self.structures.values():
            if info.establishment_id == establishment_id and info.refused is None:
                found = info
                if info.classes or info.groups:
                    return info
        return found

    def _write_people(self, kind: str, batch: list[_Pending]) -> None:
        connection = self.connection
        batch = self._drop_duplicates(kind, batch)
        existing = db.fetch_people(connection, [p.row.jointure for p in batch])
        accepted: list[_Pending] = []
        for pending in batch:
            current = existing.get(pending.row.jointure)
            if pending.ref.request == "modify" and current is None:
                self._reject("AAF-IDENTIFIANT-INCONNU", pending.ref, deferred=True,
                             establishment_id=pending.establishment_id, name=pending.name)
                self._refused_at_flush(pending)
                continue
            if pending.establishment_id is None and current is not None:
                pending.establishment_id = current.establishment_id
            accepted.append(pending)
        if kind == KIND_ELEVE:
            accepted = self._check_ines(accepted, existing)
        if kind == KIND_PERS_REL_ELEVE:
            accepted = self._place_relatives(accepted, existing)
        new: list[tuple[str, dict[str, Any]]] = []
        updates: list[dict[str, Any]] = []
        for pending in accepted:
            row = pending.row
            current = existing.get(row.jointure)
            columns = dict(row.columns)
            columns["establishment_id"] = pending.establishment_id
            if pending.ref.request == "add" or kind != KIND_PERS_EDUC_NAT:
                columns.setdefault("kind", row.kind)
            counts = self.contexts[pending.establishment_id].counts \
                if pending.establishment_id in self.contexts else Counter()
            if current is None:
                new.append((row.jointure, columns))
                counts["created"] += 1
                continue
            merged = dict(zip(db.PERSON_COLUMNS, current[2:], strict=True))
            for name, value in columns.items():
                if name == "ine" and not value:
                    continue
                merged[name] = value
            if pending.establishment_id is None:
                merged["establishment_id"] = current[3]
            merged["disappeared_at"] = None
            before = tuple(map(str, current[2:]))
            after = tuple(str(merged[name]) for name in db.PERSON_COLUMNS)
            if current[-1] is not None:
                counts["restored"] += 1
            if before != after:
                updates.append({"id": current.id, **merged})
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
        if updates:
            db.update_people(connection, updates)
        ids = {jointure: row.id for jointure, row in existing.items()}
        created = db.insert_new_people(connection, new)
        ids.update(created)
        new_ids = set(created.values())  # nothing to look up for them below
        self.records["imported"] += len(accepted)
        self.records_by_kind[kind]["imported"] += len(accepted)
        present = self.present_rows
        for pending in accepted:
            ref = pending.ref
            present.append((ref.identifier, 1 if ref.request == "add" else 0, ref.file, ref.line))
        if kind == KIND_ELEVE:
            self._ensure_classes_and_groups(accepted)
        profile_sets = {ids[p.row.jointure]: p.profiles for p in accepted
                        if p.profiles or p.ref.request == "add"}
        db.sync_profiles(connection, profile_sets, new_ids)
        role = ClassRole.STUDENT if kind == KIND_ELEVE else ClassRole.TEACHER
        class_sets = {ids[p.row.jointure]: p.classes for p in accepted if p.classes is not None}
        if class_sets:
            db.sync_class_memberships(connection, role, class_sets, self._entered_on(), new_ids)
        group_sets = {ids[p.row.jointure]: p.groups for p in accepted if p.groups is not None}
        if group_sets:
            db.sync_group_memberships(connection, group_sets, new_ids)
        if kind == KIND_PERS_EDUC_NAT:
            heads = {ids[p.row.jointure]: {year: [{**r, "teacher_id": ids[p.row.jointure]}
                                                  for r in rows]
                                           for year, rows in p.heads.items()}
                     for p in accepted if p.heads is not None}
            db.replace_head_teachers(connection, heads)
            subjects = {ids[p.row.jointure]: {year: [{**r, "person_id": ids[p.row.jointure]}
                                                     for r in rows]
                                              for year, rows in p.subjects.items()}
                        for p in accepted if p.subjects is not None}
            db.replace_teacher_subjects(connection, subjects)
        if kind == KIND_ELEVE:
            replaced: list[int] = []
            for pending in accepted:
                if pending.row.relatives is None:
                    continue
                student_id = ids[pending.row.jointure]
                replaced.append(student_id)
                ref = pending.ref
                self.link_rows.append((student_id, ref.identifier, None, None, None, None, None,
                                       pending.establishment_id, ref.file, ref.line))
                for link in pending.row.relatives:
                    self.link_rows.append((student_id, ref.identifier, link.relative,
                                           link.link_code, link.legal, int(link.financial),
                                           int(link.contact), pending.establishment_id,
                                           ref.file, ref.line))
            db.stage_links(connection, self.link_rows, replaced)
            self.link_rows = []

    def _refused_at_flush(self, pending: _Pending) -> None:
        """Account for a record refused when its batch is written."""
        self._count(pending.ref.kind, "refused", pending.establishment_id)
        self._present(pending.ref)
        if pending.ref.kind == KIND_ELEVE and pending.row.relatives:
            self._stage_refused_links(pending.ref, pending.row.relatives,
                                      pending.establishment_id)

    def _drop_duplicates(self, kind: str, batch: list[_Pending]) -> list[_Pending]:
        """Refuse addRequests whose identifier was accepted earlier in this delivery."""
        adds = [p.row.jointure for p in batch if p.ref.request == "add"]
        first = db.first_occurrences(self.connection, adds) if adds else {}
        if not first:
            return batch
        kept: list[_Pending] = []
        for pending in batch:
            where = first.get(pending.row.jointure) if pending.ref.request == "add" else None
            if where is None:
                kept.append(pending)
                continue
            self._reject("AAF-IDENTIFIANT-EN-DOUBLE", pending.ref, deferred=True,
                         establishment_id=pending.establishment_id,
                         detail=f"{where[0]}, ligne {where[1]}")
            self._refused_at_flush(pending)
        return kept

    def _entered_on(self) -> dt.date:
        today = self.now.date()
        starts = [c.year_starts_on for c in self.contexts.values()
                  if c.mode == MODE_INIT and c.year_starts_on]
        return max([today, *starts]) if starts else today

    def _check_ines(self, batch: list[_Pending], existing: dict[str, Any]) -> list[_Pending]:
        """Refuse a student whose INE another person holds; warn when a known INE changes.

        Earlier batches are already in the database, so the database answers for them;
        within the batch the first record wins.
        """
        ines = {str(p.row.columns["ine"]) for p in batch if p.row.columns.get("ine")}
        if not ines:
            return batch
        owners = db.fetch_ine_owners(self.connection, ines)
        in_batch: dict[str, _Pending] = {}
        kept: list[_Pending] = []
        for pending in batch:
            row = pending.row
            ine = row.columns.get("ine")
            current = existing.get(row.jointure)
            if ine:
                owner = owners.get(ine)
                other = in_batch.get(str(ine))
                holder = None
                if owner is not None and owner.aaf_jointure != row.jointure:
                    holder = f"l'élève {owner.aaf_jointure or owner.id} " \
                             f"({owner.last_name} {owner.first_name})"
                elif other is not None and other.row.jointure != row.jointure:
                    holder = f"l'élève {other.row.jointure} ({other.name})"
                if holder is not None:
                    self._reject("AAF-INE-PARTAGE", pending.ref, deferred=True,
                                 establishment_id=pending.establishment_id,
                                 attribute="ENTEleveINE", value=str(ine), name=pending.name,
                                 other=holder)
                    self._refused_at_flush(pending)
                    continue
                in_batch[str(ine)] = pending
                if current is not None and current.ine and current.ine != ine:
                    self._reject("AAF-INE-MODIFIE", pending.ref, deferred=True,
                                 establishment_id=pending.establishment_id,
                                 attribute="ENTEleveINE", value=str(ine), name=pending.name,
                                 other=current.ine)
            kept.append(pending)
        return kept

    def _place_relatives(self, batch: list[_Pending],
                         existing: dict[str, Any]) -> list[_Pending]:
        """Attach relatives to their children's establishments; refuse orphans.

        Who cites a relative is read from the staging table (students come first).
        A relative no student of this delivery cites is an orphan in a Complet; in a
        Delta, one already linked in the directory is not.
        """
        cited = db.referencing_establishments(self.connection, [p.row.jointure for p in batch])
        uncited_known = [existing[p.row.jointure].id for p in batch
                         if p.row.jointure not in cited and p.row.jointure in existing]
        linked: set[int] = set()
        for part in db.chunks(uncited_known):
            linked.update(self.connection.execute(
                select(db.relatives.c.relative_id).where(db.relatives.c.relative_id.in_(part))
            ).scalars())
        kept: list[_Pending] = []
        for pending in batch:
            establishments = cited.get(pending.row.jointure)
            current = existing.get(pending.row.jointure)
            if establishments is None and pending.ref.request == "add" and (
                    self.is_complet or current is None or current.id not in linked):
                self._relative_issues(pending, None)
                self._reject("AAF-RESPONSABLE-ORPHELIN", pending.ref, name=pending.name,
                             raw_xml=pending.raw_xml, deferred=pending.raw_xml is None)
                self._count(pending.ref.kind, "refused")
                self._present(pending.ref)
                continue
            known = [e for e in establishments or () if e is not None]
            if known:
                if self.scope is not None and not any(self._context(e).in_scope for e in known):
                    self._count(pending.ref.kind, "skipped")
                    self._present(pending.ref)
                    continue
                pending.establishment_id = known[0]
                pending.establishments.update(known)
                pending.profiles.update((e, Profile.RELATIVE.value, "") for e in known)
            elif current is not None:
                pending.establishment_id = current.establishment_id
            self._relative_issues(pending, pending.establishment_id)
            kept.append(pending)
        return kept

    def _relative_issues(self, pending: _Pending, establishment_id: int | None) -> None:
        for issue in pending.issues:
            self._reject(issue.code, pending.ref, establishment_id=establishment_id,
                         attribute=issue.attribute, value=issue.value, name=pending.name,
                         raw_xml=pending.raw_xml, deferred=pending.raw_xml is None,
                         **issue.params)

    def _apply_deletes(self, kind: str, deletes: list[tuple[RecordRef, Prepared | None]]) -> None:
        existing = db.fetch_people(self.connection, [ref.identifier for ref, _ in deletes])
        flag: list[int] = []
        for ref, _raw in deletes:
            self._present(ref)
            current = existing.get(ref.identifier)
            if current is None:
                self._reject("AAF-IDENTIFIANT-INCONNU", ref, deferred=True)
                self._count(kind, "refused")
                continue
            if self.scope is not None and current.establishment_id not in self.scope:
                self._count(kind, "skipped")
                continue
            flag.append(current.id)
            if current.establishment_id is not None:
                self._context(current.establishment_id).counts["flagged_absent"] += \
                    1 if current.disappeared_at is None else 0
            self._count(kind, "imported")
        db.flag_disappeared(self.connection, flag, self.now)

    def _apply_links(self) -> None:
        """Link students and relatives from the staging table, set-based; warn on unknown ones."""
        db.apply_staged_links(self.connection)
        for file, line, student, relative, establishment_id, last, first in \
                db.unknown_relatives(self.connection):
            ref = RecordRef(file or "", line or 0, student, KIND_ELEVE, "")
            self._reject("AAF-RESPONSABLE-INCONNU", ref, deferred=True,
                         establishment_id=establishment_id, attribute="ENTElevePersRelEleve",
                         value=relative, name=f"{last or ''} {first or ''}".strip())

    def _flag_absent(self) -> None:
        covered = set(self.covered)
        if not self.group_has_structures:
            covered = {e for e, c in self.contexts.items() if c.in_scope}
        for establishment_id in sorted(covered):
            context = self._context(establishment_id)
            if context.in_scope:
                context.counts["flagged_absent"] += db.flag_absent(self.connection,
                                                                   establishment_id, self.now)

    # --- end of the import ---------------------------------------------------------------

    def _finish(self) -> None:
        for (establishment_id, code), (ref, raw_xml, teachers) in sorted(
                self.teacher_only.items(), key=lambda item: (item[0][0], item[0][1])):
            context = self.contexts[establishment_id]
            if code in self._class_cache(context):
                continue
            self._reject("AAF-CLASSE-ENSEIGNANTS-SEULS", ref, deferred=True,
                         establishment_id=establishment_id, attribute="ENTAuxEnsClassesMatieres",
                         value=code, detail=", ".join(teachers))
            self.deferred[-1][1]["raw_xml"] = raw_xml
        for (_kind, name), (count, ref, raw_xml) in sorted(self.unknown.items()):
            self._reject("AAF-ATTRIBUT-INCONNU", ref, deferred=True, attribute=name,
                         count=count)
            self.deferred[-1][1]["raw_xml"] = raw_xml
        self._class_rubrics([context for context in self.contexts.values()
                             if context.in_scope and context.year_id])
        for context in self.contexts.values():
            if not context.in_scope or not context.year_id:
                continue
            db.snapshot_class_history(self.connection, context.id, context.year_id)
            for finding in likely_previous_year_classes(self.connection, context.id,
                                                        context.year_id,
                                                        context.previous_year_id):
                ref = RecordRef("", 0, finding.code, "", "")
                self._reject("AAF-CLASSE-N-1-PROBABLE", ref, deferred=True,
                             establishment_id=context.id, attribute="ENTEleveClasses",
                             value=finding.code, detail=finding.reason)
                self.deferred[-1][1]["raw_xml"] = ""
        self._write_rejects()
        self._write_deferred()
        db.drop_staging(self.connection)
        if self.file_rows:
            self.connection.execute(insert(AafImportFile.__table__), self.file_rows)
        for context in self.contexts.values():
            if context.in_scope and context.year_id:
                self._import_report(context)
        self._enable_newest_timetable_versions()
        self.import_row.finished_at = utcnow()
        self.import_row.mode = MODE_INIT if any(c.mode == MODE_INIT for c in self.contexts.values()
                                                if c.in_scope) else MODE_IMPORT
        counts = Counter()
        for code_counts in self.reject_counts.values():
            for code, count in code_counts.items():
                counts[RULES[code].severity.value] += count
        self.import_row.record_count = self.records["total"]
        self.import_row.error_count = counts[Severity.ERROR.value]
        self.import_row.warning_count = counts[Severity.WARNING.value]
        self.import_row.info_count = counts[Severity.INFO.value]
        self.import_row.header = json.dumps(self._header(), ensure_ascii=False, sort_keys=True)
        self.import_row.summary = json.dumps(
            {"establishments": self._establishment_summaries(),
             "records": dict(self.records)}, ensure_ascii=False, sort_keys=True, default=str)
        self.import_row.unknown_attributes = json.dumps(self._unknown_summary(),
                                                        ensure_ascii=False, sort_keys=True)
        self.session.flush()

    def _write_deferred(self) -> None:
        if not self.deferred:
            return
        wanted: dict[str, set[int]] = defaultdict(set)
        for ref, row in self.deferred:
            if not row["raw_xml"] and ref.file and ref.line:
                wanted[ref.file].add(ref.line)
        found: dict[tuple[str, int], str] = {}
        for name, lines in wanted.items():
            delivery_file = self.files_by_name.get(name)
            if delivery_file is None:
                continue
            excerpts = record_excerpts(delivery_file.path, delivery_file.prologue, lines)
            found.update(((name, line), text) for line, text in excerpts.items())
        rows = []
        for ref, row in self.deferred:
            if not row["raw_xml"]:
                row["raw_xml"] = found.get((ref.file, ref.line), "")
            rows.append(row)
        for part in db.chunks(rows, BATCH_SIZE):
            db.bulk_insert(self.connection, rejects_table, part)
        self.deferred = []

    def _class_rubrics(self, contexts: list[EstablishmentContext]) -> None:
        """Class rubrics for classes without one, and the rights the portal gives them.

        A few statements for all the establishments of a school year at once.
        """
        classes = db.classes
        connection = self.connection
        by_year: dict[int, list[int]] = defaultdict(list)
        for context in contexts:
            by_year[context.year_id].append(context.id)
        parts = [(year_id, part) for year_id, ids in by_year.items() for part in db.chunks(ids)]
        missing: dict[int, list[Any]] = defaultdict(list)
        for year_id, ids in parts:
            with_rubric = set(connection.execute(select(rubrics_table.c.class_id).where(
                rubrics_table.c.establishment_id.in_(ids),
                rubrics_table.c.school_year_id == year_id,
                rubrics_table.c.kind == RubricKind.CLASS,
                rubrics_table.c.class_id.is_not(None))).scalars())
            for row in connection.execute(
                    select(classes.c.id, classes.c.code, classes.c.establishment_id).where(
                        classes.c.establishment_id.in_(ids),
                        classes.c.school_year_id == year_id).order_by(classes.c.id)):
                if row.id not in with_rubric:
                    missing[row.establishment_id].append(row)
        rows = []
        for context in contexts:
            for row in missing.get(context.id, ()):
                rows.append({"establishment_id": context.id, "school_year_id": context.year_id,
                             "kind": RubricKind.CLASS,
                             "name": f"Classe {row.code} {context.year_label}",
                             "class_id": row.id, "archive_kind": None, "owner_id": None,
                             "created_at": self.now})
            context.counts["rubrics_created"] += len(missing.get(context.id, ()))
        if rows:
            connection.execute(insert(rubrics_table), rows)
        for year_id, ids in parts:
            grant_class_rubric_rights(connection, ids, year_id)

    def _import_report(self, context: EstablishmentContext) -> None:
        counts = context.counts
        rejected = sum(n for code, n in self.reject_counts.get(context.id, Counter()).items()
                       if RULES[code].severity is Severity.ERROR)
        what = "initialisation" if context.mode == MODE_INIT else "mise à jour"
        summary = (f"Import AAF {self.delivery.delivery_type or ''} — {what} "
                   f"{context.year_label} : {counts['created']} créé(s), "
                   f"{counts['updated']} mis à jour, "
                   f"{counts['flagged_absent']} absent(s) signalé(s), {rejected} rejet(s).")
        self.connection.execute(insert(ImportReport.__table__).values(
            establishment_id=context.id, school_year_id=context.year_id,
            source=ImportSource.AAF, source_name=(self.delivery.source[0] if self.delivery.source
                                                  else "")[:500],
            started_at=self.now, finished_at=utcnow(), created_count=counts["created"],
            updated_count=counts["updated"], rejected_count=rejected, summary=summary))

    def _enable_newest_timetable_versions(self) -> None:
        """The AAF initialisation import activates the newest timetable versions."""
        for context in self.contexts.values():
            if context.mode != MODE_INIT or not context.in_scope:
                continue
            project = self.session.get(Project, context.project_id)
            if project is not None and not project.newest_timetable_versions_enabled:
                project.newest_timetable_versions_enabled = True

    def _summary_of(self, context: EstablishmentContext) -> dict[str, Any]:
        counts = context.counts
        rejects = dict(sorted(self.reject_counts.get(context.id, Counter()).items()))
        return {"uai": context.uai, "name": context.name, "mode": context.mode,
                "school_year": context.year_label, "created": counts["created"],
                "updated": counts["updated"], "unchanged": counts["unchanged"],
                "restored": counts["restored"], "flagged_absent": counts["flagged_absent"],
                "refused": counts["refused"], "classes_created": counts["classes_created"],
                "groups_created": counts["groups_created"],
                "rubrics_created": counts["rubrics_created"], "rejects": rejects,
                "guard_override": context.overridden,
                "establishment_created": bool(counts["establishment_created"])}

    def _establishment_summaries(self) -> list[dict[str, Any]]:
        summaries = [self._summary_of(c) for c in sorted(self.contexts.values(),
                                                         key=lambda c: c.uai) if c.in_scope]
        orphans = self.reject_counts.get(None)
        if orphans:
            summaries.append({"uai": "", "name": "sans établissement", "mode": "",
                              "school_year": "", "created": 0, "updated": 0, "unchanged": 0,
                              "restored": 0, "flagged_absent": 0, "refused": 0,
                              "classes_created": 0, "groups_created": 0, "rubrics_created": 0,
                              "rejects": dict(sorted(orphans.items())), "guard_override": False})
        return summaries

    def _unknown_summary(self) -> dict[str, int]:
        return {f"{kind}.{name}": entry[0] for (kind, name), entry in sorted(self.unknown.items())}

    def _header(self) -> dict[str, Any]:
        names = {"version_af": "versionAF", "version_sdet": "versionSDET",
                 "academy_code": "codeAcademieExport", "degree": "degre",
                 "generated_on": "dateGenerationExport"}
        per_file = {row["name"]: {label: row[key] for key, label in names.items() if row[key]}
                    for row in self.file_rows}
        values = list(per_file.values())
        common = {key: value for key, value in (values[0].items() if values else ())
                  if all(v.get(key) == value for v in values)}
        return {"common": common, "files": per_file}

    def _result(self) -> ImportResult:
        rejects_by_code: Counter[str] = Counter()
        for code_counts in self.reject_counts.values():
            rejects_by_code.update(code_counts)
        return ImportResult(
            self.import_id, False, self.delivery.source, self.delivery.delivery_type,
            [{"name": row["name"], "kind": row["kind"], "records": row["record_count"],
              "encoding": row["declared_encoding"], "sha256": row["sha256"],
              "version_af": row["version_af"]} for row in self.file_rows],
            {key: self.records[key] for key in ("total", "imported", "refused", "skipped")},
            {kind: {key: counts[key] for key in ("total", "imported", "refused", "skipped")}
             for kind, counts in self.records_by_kind.items()},
            self._establishment_summaries(), dict(sorted(rejects_by_code.items())),
            self._unknown_summary(), self._header(),
            sorted(c.uai for c in self.contexts.values() if c.mode == MODE_INIT and c.in_scope))


def _fold(text: str) -> str:
    """Compare names without case or accents (``Collège`` = ``COLLEGE``)."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def grant_class_rubric_rights(connection: Any, establishment_id: int | Sequence[int],
                              school_year_id: int) -> None:
    """Give class rubrics of a year the rights the portal gives them, set-based.

    The establishment's "administrateurs" group and the class's head teachers are
    gestionnaire, the class's teachers rédacteur, its students visiteur. Student
    and teacher rights of people no longer in the class are removed; other rights
    (given by hand in the portal) are left alone. ``establishment_id`` may be a list
    (the same statements for all of them).
    """
    memberships = ClassMembership.__table__
    heads = HeadTeacher.__table__
    groups = GroupModel.__table__
    people = Person.__table__
    role_type = rights_table.c.role.type
    establishment_ids = ([establishment_id] if isinstance(establishment_id, int)
                         else list(establishment_id))
    rubric_filter = and_(rubrics_table.c.establishment_id.in_(establishment_ids),
                         rubrics_table.c.school_year_id == school_year_id,
                         rubrics_table.c.kind == RubricKind.CLASS,
                         rubrics_table.c.class_id.is_not(None))

    def missing(person_column: Any, role: RubricRole) -> Any:
        return not_(exists().where(rights_table.c.rubric_id == rubrics_table.c.id,
                                   rights_table.c.person_id == person_column,
                                   rights_table.c.role == role))

    for class_role, rubric_role in ((ClassRole.STUDENT, RubricRole.VISITOR),
                                    (ClassRole.TEACHER, RubricRole.WRITER)):
        source = (select(rubrics_table.c.id, memberships.c.person_id,
                         literal(rubric_role, type_=role_type))
                  .join(memberships, and_(memberships.c.class_id == rubrics_table.c.class_id,
                                          memberships.c.role == class_role))
                  .where(rubric_filter, missing(memberships.c.person_id, rubric_role))
                  .distinct())
        connection.execute(rights_table.insert().from_select(
            ["rubric_id", "person_id", "role"], source))
        kind = PersonKind.STUDENT if class_role is ClassRole.STUDENT else PersonKind.TEACHER
        stale = (select(rights_table.c.id)
                 .join(rubrics_table, rubrics_table.c.id == rights_table.c.rubric_id)
                 .join(people, people.c.id == rights_table.c.person_id)
                 .where(rubric_filter, rights_table.c.role == rubric_role, people.c.kind == kind,
                        not_(exists().where(memberships.c.class_id == rubrics_table.c.class_id,
                                            memberships.c.person_id == rights_table.c.person_id,
                                            memberships.c.role == class_role))))
        connection.execute(delete(rights_table).where(
            rights_table.c.id.in_(stale.correlate(None))))
    source = (select(rubrics_table.c.id, heads.c.teacher_id,
                     literal(RubricRole.MANAGER, type_=role_type))
              .join(heads, and_(heads.c.class_id == rubrics_table.c.class_id,
                                heads.c.school_year_id == school_year_id))
              .where(rubric_filter, missing(heads.c.teacher_id, RubricRole.MANAGER))
              .distinct())
    connection.execute(rights_table.insert().from_select(
        ["rubric_id", "person_id", "role"], source))
    admins = (select(rubrics_table.c.id, groups.c.id,
                     literal(RubricRole.MANAGER, type_=role_type))
              .join(groups, and_(groups.c.establishment_id == rubrics_table.c.establishment_id,
                                 groups.c.kind == GroupKind.ADMINS))
              .where(rubric_filter, not_(exists().where(
                  rights_table.c.rubric_id == rubrics_table.c.id,
                  rights_table.c.group_id == groups.c.id,
                  rights_table.c.role == RubricRole.MANAGER))))
    connection.execute(rights_table.insert().from_select(
        ["rubric_id", "group_id", "role"], admins))


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during an import.

    An import allocates millions of short-lived tuples, lists and dicts that
    reference counting frees at once; the cyclic collector would re-scan every
    live object many times over (about a third of the import time), for no
    garbage. It is switched back on afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def import_delivery(database: Database, paths: Sequence[Path | str], *,
                    scope: set[int] | None = None, step4: bool = False, dry_run: bool = False,
                    observer: Observer | None = None, progress: ProgressCallback | None = None,
                    now: dt.datetime | None = None) -> ImportResult:
    """Validate and apply an AAF delivery in one transaction.

    Args:
        database: the open database.
        paths: a folder, an archive, or files.
        scope: establishment ids to update (others are skipped); None for all.
        step4: initialise year N+1 for the establishments in scope (step 4; the
            caller has checked the step-order guard).
        dry_run: do everything, report, then roll back (nothing changes).
        observer: receives the import's progress, file by file, for establishments
            initialised (step 4).
        progress: receives one French line per file read.
        now: the time recorded (tests).

    Returns:
        What was imported, refused and flagged.

    Raises:
        AafFileError: a file or the delivery is refused whole (nothing changed).
        GuardRefused: an establishment is between its steps 1 and 3 (nothing changed).
    """
    observer = observer or NullObserver()
    moment = now or utcnow()
    with open_delivery(paths) as delivery, cyclic_gc_paused():
        session = database.sessions()
        importer: _Importer | None = None
        try:
            importer = _Importer(session, delivery, scope=scope, step4=step4, now=moment,
                                 observer=observer, progress=progress, dry_run=dry_run)
            result = importer.run()
            if dry_run:
                session.rollback()
                result.import_id = None
                result.dry_run = True
            else:
                session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
    return result
