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
step 4, recorded on the establishment's ``init-directory`` unit. Classes and groups
are created only from students. People absent from a Complet for an establishment
it covers are flagged (``disappeared_at``), and restored when they come back.

Memory stays flat whatever the delivery size: what must be remembered across
records (identifiers already read, who cites which relative) goes by batch into two
temporary staging tables, and the checks that need it (duplicates, orphans,
unknown relatives, absent people) and the relative links are done in SQL.

This module drives the run; the run's state is one
:class:`~yearchange_tui.aaf.run.ImportRun`, and each rule lives with what it is about:

- :mod:`~yearchange_tui.aaf.contexts`: which establishment a structure is; per
  establishment, scope, mode (update or step 4) and target year;
- :mod:`~yearchange_tui.aaf.init_units`: what a step-4 import reports to its units;
- :mod:`~yearchange_tui.aaf.rejects`: rejects, their explanations and excerpts;
- :mod:`~yearchange_tui.aaf.structures`, :mod:`~yearchange_tui.aaf.nomenclature`:
  structures, subjects and MEF;
- :mod:`~yearchange_tui.aaf.people`, :mod:`~yearchange_tui.aaf.staff`: person
  records until their batch; :mod:`~yearchange_tui.aaf.person_batches`: a batch
  written; :mod:`~yearchange_tui.aaf.classes`: classes from students only;
- :mod:`~yearchange_tui.aaf.batches`: when a batch is written, and what that does;
- :mod:`~yearchange_tui.aaf.links`: student → relative links;
- :mod:`~yearchange_tui.aaf.absent`: deleteRequests and people absent from a Complet;
- :mod:`~yearchange_tui.aaf.finish`, :mod:`~yearchange_tui.aaf.rubrics`,
  :mod:`~yearchange_tui.aaf.summaries`: the end of the import, class rubrics, the
  summaries.

Runs on the caller's thread (the CLI's, or a scheduler thread through step 4, whose unit
is kept by :mod:`yearchange_tui.changeover.steps.init_directory`).
"""

from __future__ import annotations

import datetime as dt
import gc
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from yearchange_tui.aaf import directory as db
from yearchange_tui.aaf.absent import flag_absent
from yearchange_tui.aaf.batches import flush, must_flush_first
from yearchange_tui.aaf.delivery import (
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
from yearchange_tui.aaf.finish import finish
from yearchange_tui.aaf.init_units import notify_progress, step4_refusals
from yearchange_tui.aaf.links import apply_links
from yearchange_tui.aaf.nomenclature import (
    apply_nomenclature,
    load_mef_codes,
    load_subject_ids,
)
from yearchange_tui.aaf.parser import AafFileError, AafFileReader, delivery_refusal
from yearchange_tui.aaf.people import apply_person
from yearchange_tui.aaf.pipeline import FileOutcome, InlineSource, ProcessSource, open_source
from yearchange_tui.aaf.prepare import Prepared
from yearchange_tui.aaf.rejects import precheck
from yearchange_tui.aaf.rubrics import grant_class_rubric_rights
from yearchange_tui.aaf.run import (
    BATCH_SIZE,
    MODE_IMPORT,
    MODE_INIT,
    FileGroup,
    ImportRun,
    ProgressCallback,
    RecordRef,
)
from yearchange_tui.aaf.structures import apply_structure, load_structures
from yearchange_tui.aaf.summaries import establishment_summaries, header, unknown_summary
from yearchange_tui.ent.base import utcnow
from yearchange_tui.ent.database import (
    Database,
    refresh_statistics,
    tables_changed_in_transaction,
)
from yearchange_tui.ent.models import SchoolYear
from yearchange_tui.ent.school_year import (
    school_year_bounds,
    school_year_carried_by_aaf,
    school_year_label,
)
from yearchange_tui.importing.identity import AlreadyImportedError, previous_import
from yearchange_tui.importing.models import AafImport
from yearchange_tui.importing.outcome import ImportOutcome, ImportStatus
from yearchange_tui.workflow.audit import operator_identity
from yearchange_tui.workflow.events import NullObserver, Observer

__all__ = ["ImportResult", "ProgressCallback", "cyclic_gc_paused", "grant_class_rubric_rights",
           "import_delivery"]

RecordHandler = Callable[[ImportRun, Prepared, RecordRef], None]

HANDLERS: dict[str, RecordHandler] = {
    KIND_ETAB: apply_structure, KIND_MATIERE: apply_nomenclature, KIND_MEF: apply_nomenclature,
    KIND_ELEVE: apply_person, KIND_PERS_REL_ELEVE: apply_person,
    KIND_PERS_EDUC_NAT: apply_person}
"""What applies a record, by file kind."""


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
    step4_refused: list[dict[str, Any]] = field(default_factory=list)
    deactivation_notices: list[str] = field(default_factory=list)
    """French lines, per establishment, of the deactivation notices sent or suspended
    after the import (filled by the change-over's import, seed §6.4)."""
    reimport_of: int | None = None  # --reimport: the earlier import of the same delivery

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "import_id": self.import_id, "dry_run": self.dry_run, "source": self.source,
            "delivery_type": self.delivery_type, "files": self.files, "records": self.records,
            "records_by_kind": self.records_by_kind, "establishments": self.establishments,
            "rejects_by_code": self.rejects_by_code,
            "unknown_attributes": self.unknown_attributes, "header": self.header,
            "step4": self.step4_uais, "step4_refused": self.step4_refused,
            "deactivation_notices": self.deactivation_notices,
            "reimport_of": self.reimport_of,
        }

    def outcome(self) -> ImportOutcome:
        """The typed outcome: counts and rejects per establishment, a French summary."""
        counts = {summary["uai"]: {key: value for key, value in summary.items()
                                   if isinstance(value, int) and not isinstance(value, bool)}
                  for summary in self.establishments}
        rejects = {summary["uai"]: dict(summary["rejects"]) for summary in self.establishments
                   if summary["rejects"]}
        head = ("Import AAF à blanc" if self.dry_run
                else f"Import AAF n° {self.import_id}")
        records = self.records
        summary = (f"{head} — {records['total']} enregistrement(s) : {records['imported']} "
                   f"importé(s), {records['refused']} refusé(s), {records['skipped']} hors "
                   f"périmètre ; {sum(self.rejects_by_code.values())} rejet(s)")
        if self.step4_refused:
            summary += (f" ; étape 4 refusée pour {len(self.step4_refused)} établissement(s) "
                        f"[{self.step4_refused[0]['code']}] : "
                        + ", ".join(refusal["uai"] for refusal in self.step4_refused))
        details: dict[str, Any] = {"records": self.records, "step4": self.step4_uais,
                                   "step4_refused": self.step4_refused}
        if self.reimport_of is not None:
            # Audited: the operator imported a delivery already imported (--reimport).
            summary += f" ; réimport de la livraison de l'import n° {self.reimport_of}"
            details["reimport_of"] = self.reimport_of
        return ImportOutcome("aaf", ImportStatus.DONE, summary, import_id=self.import_id,
                             dry_run=self.dry_run, counts=counts, rejects=rejects,
                             rejects_by_code=dict(self.rejects_by_code), details=details)


def _result(run: ImportRun) -> ImportResult:
    """The result of a finished run."""
    rejects_by_code: Counter[str] = Counter()
    for code_counts in run.reject_counts.values():
        rejects_by_code.update(code_counts)
    return ImportResult(
        run.import_id, False, run.delivery.source, run.delivery.delivery_type,
        [{"name": row["name"], "kind": row["kind"], "records": row["record_count"],
          "encoding": row["declared_encoding"], "sha256": row["sha256"],
          "version_af": row["version_af"]} for row in run.file_rows],
        {key: run.records[key] for key in ("total", "imported", "refused", "skipped")},
        {kind: {key: counts[key] for key in ("total", "imported", "refused", "skipped")}
         for kind, counts in run.records_by_kind.items()},
        establishment_summaries(run), dict(sorted(rejects_by_code.items())),
        unknown_summary(run), header(run),
        sorted(c.uai for c in run.contexts.values() if c.mode == MODE_INIT and c.in_scope),
        step4_refusals(run))


# --- set-up ------------------------------------------------------------------------------

def _current_year(session: Session, delivery: Delivery, now: dt.datetime) -> SchoolYear:
    """The current school year; without one, the year of the delivery date (made current)."""
    year = session.scalar(select(SchoolYear).where(SchoolYear.is_current.is_(True)))
    if year is not None:
        return year
    start = school_year_carried_by_aaf(delivery.newest_date or now.date())
    year = session.scalar(select(SchoolYear).where(SchoolYear.start_year == start))
    if year is None:
        starts_on, ends_on = school_year_bounds(start)
        year = SchoolYear(start_year=start, label=school_year_label(start),
                          starts_on=starts_on, ends_on=ends_on, is_current=True)
        session.add(year)
    year.is_current = True
    session.flush()
    return year


def _start_run(session: Session, connection: Connection, delivery: Delivery, *, scope: set[int] | None, step4: bool,
               now: dt.datetime, observer: Observer, progress: ProgressCallback | None,
               dry_run: bool) -> ImportRun:
    """Record the import's start and load what the directory already knows."""
    year_n = _current_year(session, delivery, now)
    import_row = AafImport(
        started_at=now, source="\n".join(delivery.source),
        source_kind=delivery.source_kind, delivery_type=delivery.delivery_type,
        delivery_date=delivery.newest_date, mode=MODE_IMPORT,
        operator=operator_identity()["os_user"], header="{}", summary="{}",
        unknown_attributes="{}")
    session.add(import_row)
    session.flush()
    db.create_staging(connection)
    return ImportRun(
        session=session, connection=connection, delivery=delivery, scope=scope, step4=step4,
        now=now, observer=observer, progress=progress, dry_run=dry_run, year_n=year_n,
        import_row=import_row, import_id=import_row.id,
        structures=load_structures(connection), subject_ids=load_subject_ids(connection),
        mef_codes=load_mef_codes(connection),
        files_by_name={f.name: f for f in delivery.files},
        bytes_total=sum(f.size for f in delivery.files) or 1)


# --- the run -----------------------------------------------------------------------------

class _Importer:
    """Drives one run: each dated group of files in order, each record to its kind's handler."""

    def __init__(self, run: ImportRun, source: InlineSource | ProcessSource) -> None:
        self.run = run
        self.source = source

    def apply(self, groups: list[list[DeliveryFile]]) -> None:
        """Apply every group of files, then finish the import."""
        for group in groups:
            self._run_group(group)
        finish(self.run)

    def _run_group(self, files: list[DeliveryFile]) -> None:
        """Apply one dated delivery's files, then its links and (Complet) its absent people."""
        run = self.run
        # Person identifiers and links of this dated delivery go to the staging tables
        # by batch (see directory.create_staging): nothing per record stays in memory.
        db.clear_staging(run.connection)
        run.group = FileGroup.of(files)
        self.source.new_group()
        for delivery_file in files:
            records, outcome = self.source.open_file(delivery_file)
            self._apply_records(delivery_file.kind, records)
            run.records["total"] += outcome.record_count
            run.records_by_kind[delivery_file.kind]["total"] += outcome.record_count
            self._flush(delivery_file.kind)
            self._file_done(delivery_file, outcome)
        apply_links(run)
        if run.group.is_complet:
            flag_absent(run)

    def _apply_records(self, kind: str, records: Iterable[Prepared]) -> None:
        """Hand each record of one file to its handler, writing its batch when due."""
        run = self.run
        handler = HANDLERS[kind]
        group = run.group
        batch = group.batches[kind]
        for prepared in records:
            ref = precheck(run, prepared)
            if ref is None:
                continue
            if must_flush_first(group, ref):
                self._flush(kind)
            handler(run, prepared, ref)
            if len(batch) >= BATCH_SIZE:
                self._flush(kind)

    def _flush(self, kind: str) -> None:
        """Write the kind's batch (the one place the run writes a batch)."""
        flush(self.run, kind)

    def _file_done(self, delivery_file: DeliveryFile,
                   reader: AafFileReader | FileOutcome) -> None:
        """Record the file read, and report the progress."""
        run = self.run
        if reader.sha256:
            delivery_file._sha256 = reader.sha256
        run.file_rows.append(_file_row(run, delivery_file, reader))
        run.bytes_done += delivery_file.size
        notify_progress(run)
        if run.progress is not None:
            run.progress(f"{delivery_file.name} : {reader.record_count} enregistrement(s) lus.")


def _file_row(run: ImportRun, delivery_file: DeliveryFile,
              reader: AafFileReader | FileOutcome) -> dict[str, Any]:
    """The file's ``aaf_import_files`` row: what it is and what its header declares."""
    fields = reader.header.fields
    generated = fields.get("dateGenerationExport", "")
    return {
        "import_id": run.import_id, "position": len(run.file_rows),
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
        "comments": "\n".join(reader.header.comments)}


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
                    now: dt.datetime | None = None, reimport: bool = False,
                    for_step4: bool = False) -> ImportResult:
    """Validate and apply an AAF delivery in one transaction.

    Every import path (``import-aaf``, the engine's import requests from the console,
    step 4's units) comes here, so this is where a delivery already imported is
    recognised: the same files with the same SHA-256 as an import committed before
    (:func:`~yearchange_tui.importing.identity.previous_import`) is answered
    :class:`~yearchange_tui.importing.identity.AlreadyImportedError` and nothing is
    written, unless ``reimport``. Step 4's own import (``step4``, or ``for_step4`` for the
    whole delivery read by step 4's batch phase, which decides per establishment)
    initialises year N+1, which the earlier import did not: it is never refused for that.

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
        reimport: import the delivery even if it was already imported (the result's
            ``reimport_of`` names the earlier import; the caller audits it).
        for_step4: the import is step 4's batch phase (never recognised as a repeat).

    Returns:
        What was imported, refused and flagged.

    Raises:
        AafFileError: a file or the delivery is refused whole (nothing changed).
        AlreadyImportedError: the same delivery was already imported, and ``reimport``
            was not asked (nothing changed).
        GuardRefused: an establishment is between its steps 1 and 3 (nothing changed).
    """
    observer = observer or NullObserver()
    moment = now or utcnow()
    with open_delivery(paths) as delivery, cyclic_gc_paused():
        session = database.sessions()
        run: ImportRun | None = None
        try:
            previous = None if step4 or for_step4 else previous_import(session, delivery.files)
            if previous is not None and not reimport:
                raise AlreadyImportedError.of(previous)
            reimport_of = previous.id if previous is not None else None
            connection = session.connection()
            groups = delivery.groups()
            # Started first: a reader process parses while the database is prepared.
            source = open_source(groups)
            try:
                run = _start_run(session, connection, delivery, scope=scope, step4=step4,
                                 now=moment, observer=observer, progress=progress,
                                 dry_run=dry_run)
                _Importer(run, source).apply(groups)
                result = _result(run)
                result.reimport_of = reimport_of
            finally:
                source.close()
            changed: list[str] = []
            if dry_run:
                session.rollback()
                result.import_id = None
                result.dry_run = True
            else:
                changed = tables_changed_in_transaction(connection)
                session.commit()
        except AafFileError as error:  # every malformed file named in one refusal
            session.rollback()
            raise delivery_refusal(error, [(f.path, f.name) for f in delivery.files]) from error
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
    # The planner needs statistics on what was just filled (PostgreSQL; issue 16).
    if changed:
        refresh_statistics(database, changed, report=progress)
    return result
