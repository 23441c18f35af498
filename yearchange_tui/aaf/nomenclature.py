"""Subjects (MatiereEducNat) and MEF (MefEducNat) records, by batch.

Both are nomenclatures keyed by code: a new code is inserted, a changed label
updated; a deleteRequest changes nothing. The codes known after each batch are what
students' MEF and teachers' subjects are checked against.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from yearchange_tui.aaf import directory as db
from yearchange_tui.aaf.delivery import KIND_MATIERE, KIND_MEF
from yearchange_tui.aaf.prepare import Prepared
from yearchange_tui.aaf.run import ImportRun, RecordRef, count
from yearchange_tui.ent.models import Mef, Subject

subjects_table = Subject.__table__
mefs_table = Mef.__table__


def load_subject_ids(connection: Connection) -> dict[str, int]:
    """The subjects known before the import, by code."""
    return {row.code: row.id for row in connection.execute(
        select(subjects_table.c.code, subjects_table.c.id))}


def load_mef_codes(connection: Connection) -> set[str]:
    """The MEF codes known before the import."""
    return set(connection.execute(select(mefs_table.c.code)).scalars())


def apply_nomenclature(run: ImportRun, raw: Prepared, ref: RecordRef) -> None:
    """Add one subject or MEF record to its batch (a deleteRequest changes nothing)."""
    if raw.request == "delete":
        count(run, ref.kind, "imported")
        return
    run.group.batches[ref.kind].append(raw.row)


def write_nomenclature(run: ImportRun, kind: str, batch: list[Any]) -> None:
    """Insert new codes and update changed labels of one batch, set-based."""
    table = subjects_table if kind == KIND_MATIERE else mefs_table
    connection = run.connection
    codes = [row.code for row in batch]
    existing: dict[str, Any] = {}
    for part in db.chunks(codes):
        for row in connection.execute(select(table).where(table.c.code.in_(part))):
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
        count(run, kind, "imported")
    if inserts:
        connection.execute(insert(table), inserts)
    if updates:
        columns: dict[str, Any] = {"label": bindparam("b_label")}
        if kind == KIND_MEF:
            columns["level_label"] = bindparam("b_level")
        connection.execute(update(table).where(table.c.code == bindparam("b_code"))
                           .values(columns), updates)
    if kind == KIND_MATIERE:
        for part in db.chunks(codes):
            for row in connection.execute(
                    select(table.c.code, table.c.id).where(table.c.code.in_(part))):
                run.subject_ids[row.code] = row.id
    else:
        run.mef_codes.update(codes)
