"""Rejects of an import: recorded with a French explanation and the record's XML.

A reject decided while its record is read carries the record's XML at once; one
decided later (at a batch write, or at the end of the import) is deferred, and its
excerpt is cut from the file in one pass per file (:func:`write_deferred`). Rejects
are written by batch; counts by establishment and code feed the summaries.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select

from yearchange_tui.aaf import directory as db
from yearchange_tui.aaf.contexts import class_cache, establishment_context, establishment_of
from yearchange_tui.aaf.delivery import (
    KIND_ELEVE,
    KIND_ETAB,
    KIND_MATIERE,
    KIND_MEF,
    KIND_PERS_EDUC_NAT,
    KIND_PERS_REL_ELEVE,
)
from yearchange_tui.aaf.parser import record_excerpts
from yearchange_tui.aaf.prepare import Prepared
from yearchange_tui.aaf.records import Issue
from yearchange_tui.aaf.rules import RULES, Severity, explain
from yearchange_tui.aaf.run import (
    BATCH_SIZE,
    PERSON_KINDS,
    EstablishmentContext,
    ImportRun,
    RecordRef,
    count,
)
from yearchange_tui.ent.folding import reject_search_text
from yearchange_tui.french import plural
from yearchange_tui.importing.models import AafReject

KIND_LABELS = {KIND_ELEVE: "l'élève", KIND_PERS_REL_ELEVE: "le responsable",
               KIND_PERS_EDUC_NAT: "le personnel", KIND_ETAB: "la structure",
               KIND_MATIERE: "la matière", KIND_MEF: "le MEF"}
REQUEST_LABELS = {"add": "d'ajout (addRequest)", "modify": "de modification (modifyRequest)",
                  "delete": "de suppression (deleteRequest)", "unknown": "inconnue"}

rejects_table = AafReject.__table__


def precheck(run: ImportRun, prepared: Prepared) -> RecordRef | None:
    """Account for what the record alone decided; return where it is, or None when refused.

    The checks themselves (request, category, identifier, operations, unknown
    attributes, duplicate structures, subjects and MEF) are made by
    :class:`~yearchange_tui.aaf.prepare.Preparer`.
    """
    kind = prepared.kind
    ref = RecordRef(prepared.file, prepared.line, prepared.identifier, kind, prepared.request)
    if prepared.unknown:
        for name in prepared.unknown:
            entry = run.unknown.get((kind, name))
            if entry is None:
                run.unknown[(kind, name)] = [1, ref, prepared.raw_xml()]
            else:
                entry[0] += 1
    if prepared.reject is not None:
        code, attribute, value, params = prepared.reject
        establishment_id = reject(run, code, ref, raw=prepared, attribute=attribute,
                                  value=value, **params)
        count(run, kind, "refused", establishment_id)
        return None
    return ref


def reject(run: ImportRun, code: str, ref: RecordRef, *, raw: Prepared | None = None,
           establishment_id: int | None = None, attribute: str = "", value: str = "",
           name: str = "", deferred: bool = False, raw_xml: str | None = None,
           **params: object) -> int | None:
    """Record one reject with its French explanation; return the establishment it is under.

    Args:
        run: the import run.
        code: the rule's stable code.
        ref: where the record is.
        raw: the record, when it is at hand (its XML is stored at once).
        establishment_id: the establishment the reject belongs to, if known.
        attribute: the attribute at fault.
        value: its value.
        name: the person's or structure's name.
        deferred: cut the record's XML from its file at the end of the import.
        raw_xml: the record's XML, kept from when it was read.
        **params: the rule's own message parameters.
    """
    if establishment_id is None and raw is not None and ref.kind in PERSON_KINDS:
        establishment_id = _establishment_hint(run, raw, ref)
    label = KIND_LABELS.get(ref.kind, "l'enregistrement")
    record = f"{label} {ref.identifier}" if ref.identifier else label
    context = run.contexts.get(establishment_id) if establishment_id is not None else None
    uai = context.uai if context is not None else ""
    message, action = explain(
        code, record=record, Record=record[:1].upper() + record[1:], name=name or "?",
        value=value, attribute=attribute, kind=ref.kind, uai=uai or "?",
        request=REQUEST_LABELS.get(ref.request, ref.request), **params)
    row = {"import_id": run.import_id, "file_name": ref.file[:500], "line": ref.line or None,
           "record_id": ref.identifier[:64], "kind": ref.kind, "request": ref.request,
           "establishment_id": establishment_id, "uai": uai, "code": code,
           "severity": RULES[code].severity.value, "attribute": attribute[:100],
           "raw_value": value, "message": message, "action": action, "raw_xml": "",
           "search_folded": reject_search_text(code, ref.identifier[:64], attribute[:100],
                                               value, message, name)}
    run.reject_counts[establishment_id][code] += 1
    if raw_xml is not None:
        row["raw_xml"] = raw_xml
        run.rejects.append(row)
    elif deferred or raw is None:
        run.deferred.append((ref, row))
    else:
        row["raw_xml"] = raw.raw_xml()
        run.rejects.append(row)
    if len(run.rejects) >= BATCH_SIZE:
        write_rejects(run)
    return establishment_id


def _establishment_hint(run: ImportRun, raw: Prepared, ref: RecordRef) -> int | None:
    """The establishment a refused person record most likely belongs to, if any."""
    structure = raw.hint
    establishment_id = establishment_of(run, structure) if structure else None
    if establishment_id is None and ref.identifier and ref.request != "add":
        establishment_id = run.connection.execute(
            select(db.people.c.establishment_id).where(
                db.people.c.aaf_jointure == ref.identifier)).scalar()
    if establishment_id is not None:
        establishment_context(run, establishment_id)
    return establishment_id


def record_issues(run: ImportRun, issues: list[Issue], ref: RecordRef, raw: Prepared,
                  establishment_id: int | None, name: str) -> bool:
    """Store the issues of a record; return True when one refuses it."""
    refused = False
    for issue in issues:
        if RULES[issue.code].severity is Severity.ERROR:
            refused = True
        reject(run, issue.code, ref, raw=raw, establishment_id=establishment_id,
               attribute=issue.attribute, value=issue.value, name=name, **issue.params)
    return refused


def note_teacher_only(run: ImportRun, context: EstablishmentContext, code: str,
                      ref: RecordRef, raw: Prepared, name: str) -> None:
    """Note a class a teacher cites that no student is in (so far): checked at the end."""
    key = (context.id, code)
    entry = run.teacher_only.get(key)
    if entry is None:
        run.teacher_only[key] = [ref, raw.raw_xml(), [f"{ref.identifier} {name}".strip()]]
    elif len(entry[2]) < 5 and ref.identifier not in entry[2][-1]:
        entry[2].append(f"{ref.identifier} {name}".strip())


def reject_collected(run: ImportRun) -> None:
    """Reject what was collected while reading: classes of teachers only, unknown attributes."""
    for (establishment_id, code), (ref, raw_xml, teachers) in sorted(
            run.teacher_only.items(), key=lambda item: (item[0][0], item[0][1])):
        context = run.contexts[establishment_id]
        if code in class_cache(run, context):
            continue
        reject(run, "AAF-CLASSE-ENSEIGNANTS-SEULS", ref, deferred=True,
               establishment_id=establishment_id, attribute="ENTAuxEnsClassesMatieres",
               value=code, detail=", ".join(teachers))
        run.deferred[-1][1]["raw_xml"] = raw_xml
    for (_kind, name), (occurrences, ref, raw_xml) in sorted(run.unknown.items()):
        reject(run, "AAF-ATTRIBUT-INCONNU", ref, deferred=True, attribute=name,
               count=occurrences, occurrences=plural(occurrences, "occurrence"))
        run.deferred[-1][1]["raw_xml"] = raw_xml


def write_rejects(run: ImportRun) -> None:
    """Write the rejects waiting with their XML."""
    if run.rejects:
        db.bulk_insert(run.connection, rejects_table, run.rejects)
        run.rejects = []


def write_deferred(run: ImportRun) -> None:
    """Write the deferred rejects, their XML cut from the files in one pass per file."""
    if not run.deferred:
        return
    wanted: dict[str, set[int]] = defaultdict(set)
    for ref, row in run.deferred:
        if not row["raw_xml"] and ref.file and ref.line:
            wanted[ref.file].add(ref.line)
    found: dict[tuple[str, int], str] = {}
    for name, lines in wanted.items():
        delivery_file = run.files_by_name.get(name)
        if delivery_file is None:
            continue
        excerpts = record_excerpts(delivery_file.path, delivery_file.prologue, lines)
        found.update(((name, line), text) for line, text in excerpts.items())
    rows: list[dict[str, Any]] = []
    for ref, row in run.deferred:
        if not row["raw_xml"]:
            row["raw_xml"] = found.get((ref.file, ref.line), "")
        rows.append(row)
    for part in db.chunks(rows, BATCH_SIZE):
        db.bulk_insert(run.connection, rejects_table, part)
    run.deferred = []
