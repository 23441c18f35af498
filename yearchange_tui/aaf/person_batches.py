"""A batch of person records written, set-based.

Before the write: addRequests of an identifier already accepted in this dated
delivery are duplicates, a modifyRequest of an unknown person is refused, a
student's INE held by someone else is refused (a changed one is a warning), and
relatives are attached to their children's establishments (one no student cites is
an orphan). Then people are inserted or updated, and their profiles, classes, groups,
head-teacher classes, subjects and (students) relative links follow.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from sqlalchemy import select

from yearchange_tui.aaf import directory as db
from yearchange_tui.aaf.absent import note_present
from yearchange_tui.aaf.classes import ensure_classes_and_groups
from yearchange_tui.aaf.contexts import establishment_context
from yearchange_tui.aaf.delivery import KIND_ELEVE, KIND_PERS_EDUC_NAT, KIND_PERS_REL_ELEVE
from yearchange_tui.aaf.links import (
    citations,
    orphan_detail,
    stage_refused_links,
    stage_student_links,
)
from yearchange_tui.aaf.rejects import reject
from yearchange_tui.aaf.run import MODE_INIT, ImportRun, PendingPerson, count, person_counts
from yearchange_tui.ent.models import ClassRole, Profile


def write_people(run: ImportRun, kind: str, batch: list[PendingPerson]) -> None:
    """Check the batch against the database, then write its people and their links."""
    connection = run.connection
    batch = _drop_duplicates(run, batch)
    existing = db.fetch_people(connection, [p.row.jointure for p in batch])
    accepted = _drop_unknown_modifies(run, batch, existing)
    if kind == KIND_ELEVE:
        accepted = _check_ines(run, accepted, existing)
    if kind == KIND_PERS_REL_ELEVE:
        accepted = _place_relatives(run, accepted, existing)
    new, updates = _person_rows(run, kind, accepted, existing)
    if updates:
        db.update_people(connection, updates)
    ids = {jointure: row.id for jointure, row in existing.items()}
    created = db.insert_new_people(connection, new)
    ids.update(created)
    new_ids = set(created.values())  # nothing to look up for them below
    run.records["imported"] += len(accepted)
    run.records_by_kind[kind]["imported"] += len(accepted)
    for pending in accepted:
        note_present(run, pending.ref, accepted_add=pending.ref.request == "add")
    if kind == KIND_ELEVE:
        ensure_classes_and_groups(run, accepted)
    _sync_memberships(run, kind, accepted, ids, new_ids)
    if kind == KIND_ELEVE:
        stage_student_links(run, accepted, ids)


def _refused_at_flush(run: ImportRun, pending: PendingPerson) -> None:
    """Account for a record refused when its batch is written."""
    count(run, pending.ref.kind, "refused", pending.establishment_id)
    note_present(run, pending.ref)
    if pending.ref.kind == KIND_ELEVE and pending.row.relatives:
        stage_refused_links(run, pending.ref, pending.row.relatives, pending.establishment_id)


def _drop_duplicates(run: ImportRun, batch: list[PendingPerson]) -> list[PendingPerson]:
    """Refuse addRequests whose identifier was accepted earlier in this delivery."""
    adds = [p.row.jointure for p in batch if p.ref.request == "add"]
    first = db.first_occurrences(run.connection, adds) if adds else {}
    if not first:
        return batch
    kept: list[PendingPerson] = []
    for pending in batch:
        where = first.get(pending.row.jointure) if pending.ref.request == "add" else None
        if where is None:
            kept.append(pending)
            continue
        reject(run, "AAF-IDENTIFIANT-EN-DOUBLE", pending.ref, deferred=True,
               establishment_id=pending.establishment_id,
               detail=f"{where[0]}, ligne {where[1]}")
        _refused_at_flush(run, pending)
    return kept


def _drop_unknown_modifies(run: ImportRun, batch: list[PendingPerson],
                           existing: dict[str, Any]) -> list[PendingPerson]:
    """Refuse a modifyRequest of a person the directory does not hold."""
    accepted: list[PendingPerson] = []
    for pending in batch:
        current = existing.get(pending.row.jointure)
        if pending.ref.request == "modify" and current is None:
            reject(run, "AAF-IDENTIFIANT-INCONNU", pending.ref, deferred=True,
                   establishment_id=pending.establishment_id, name=pending.name)
            _refused_at_flush(run, pending)
            continue
        if pending.establishment_id is None and current is not None:
            pending.establishment_id = current.establishment_id
        accepted.append(pending)
    return accepted


def _check_ines(run: ImportRun, batch: list[PendingPerson],
                existing: dict[str, Any]) -> list[PendingPerson]:
    """Refuse a student whose INE another person holds; warn when a known INE changes.

    Earlier batches are already in the database, so the database answers for them;
    within the batch the first record wins.
    """
    ines = {str(p.row.columns["ine"]) for p in batch if p.row.columns.get("ine")}
    if not ines:
        return batch
    owners = db.fetch_ine_owners(run.connection, ines)
    in_batch: dict[str, PendingPerson] = {}
    kept: list[PendingPerson] = []
    for pending in batch:
        row = pending.row
        ine = row.columns.get("ine")
        current = existing.get(row.jointure)
        if ine:
            holder = _ine_holder(owners.get(ine), in_batch.get(str(ine)), row.jointure)
            if holder is not None:
                reject(run, "AAF-INE-PARTAGE", pending.ref, deferred=True,
                       establishment_id=pending.establishment_id,
                       attribute="ENTEleveINE", value=str(ine), name=pending.name,
                       other=holder)
                _refused_at_flush(run, pending)
                continue
            in_batch[str(ine)] = pending
            if current is not None and current.ine and current.ine != ine:
                reject(run, "AAF-INE-MODIFIE", pending.ref, deferred=True,
                       establishment_id=pending.establishment_id,
                       attribute="ENTEleveINE", value=str(ine), name=pending.name,
                       other=current.ine)
        kept.append(pending)
    return kept


def _ine_holder(owner: Any, other: PendingPerson | None, jointure: str) -> str | None:
    """Who else holds the INE: a person of the directory, or a student earlier in the batch."""
    if owner is not None and owner.aaf_jointure != jointure:
        return f"l'élève {owner.aaf_jointure or owner.id} " \
               f"({owner.last_name} {owner.first_name})"
    if other is not None and other.row.jointure != jointure:
        return f"l'élève {other.row.jointure} ({other.name})"
    return None


def _place_relatives(run: ImportRun, batch: list[PendingPerson],
                     existing: dict[str, Any]) -> list[PendingPerson]:
    """Attach relatives to their children's establishments; refuse orphans.

    Who cites a relative is read from the staging table (students come first). One
    rule: a relative is created only when a written student cites it. A relative no
    student of this delivery cites, or only refused students, is an orphan (its reject
    says which); in a Delta, one already linked in the directory is not.
    """
    citing = citations(run, [p.row.jointure for p in batch])
    cited = {jointure: entry.written for jointure, entry in citing.items() if entry.written}
    uncited_known = [existing[p.row.jointure].id for p in batch
                     if p.row.jointure not in cited and p.row.jointure in existing]
    linked: set[int] = set()
    for part in db.chunks(uncited_known):
        linked.update(run.connection.execute(
            select(db.relatives.c.relative_id).where(db.relatives.c.relative_id.in_(part))
        ).scalars())
    kept: list[PendingPerson] = []
    for pending in batch:
        establishments = cited.get(pending.row.jointure)
        current = existing.get(pending.row.jointure)
        if establishments is None and pending.ref.request == "add" and (
                run.group.is_complet or current is None or current.id not in linked):
            entry = citing.get(pending.row.jointure)
            establishment_id = entry.refused_establishment if entry is not None else None
            _relative_issues(run, pending, establishment_id)
            reject(run, "AAF-RESPONSABLE-ORPHELIN", pending.ref, name=pending.name,
                   establishment_id=establishment_id, detail=orphan_detail(entry),
                   raw_xml=pending.raw_xml, deferred=pending.raw_xml is None)
            count(run, pending.ref.kind, "refused", establishment_id)
            note_present(run, pending.ref)
            continue
        if not _attach_relative(run, pending, establishments, current):
            count(run, pending.ref.kind, "skipped")
            note_present(run, pending.ref)
            continue
        _relative_issues(run, pending, pending.establishment_id)
        kept.append(pending)
    return kept


def _attach_relative(run: ImportRun, pending: PendingPerson,
                     establishments: list[int | None] | None, current: Any) -> bool:
    """Attach a relative to the establishments of the students citing it; False if out of scope.

    A relative no student of this delivery cites keeps its establishment.
    """
    known = [e for e in establishments or () if e is not None]
    if known:
        # Out of scope, or every establishment's step 4 refused (not a Complet).
        if not any(establishment_context(run, e).in_scope for e in known):
            return False
        pending.establishment_id = known[0]
        pending.establishments.update(known)
        pending.profiles.update((e, Profile.RELATIVE.value, "") for e in known)
    elif current is not None:
        pending.establishment_id = current.establishment_id
    return True


def _relative_issues(run: ImportRun, pending: PendingPerson,
                     establishment_id: int | None) -> None:
    """Store a relative's own issues, once its establishment is known."""
    for issue in pending.issues:
        reject(run, issue.code, pending.ref, establishment_id=establishment_id,
               attribute=issue.attribute, value=issue.value, name=pending.name,
               raw_xml=pending.raw_xml, deferred=pending.raw_xml is None,
               **issue.params)


def _person_rows(run: ImportRun, kind: str, accepted: list[PendingPerson],
                 existing: dict[str, Any]
                 ) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """The people to insert and the rows to update; counts created, updated, unchanged."""
    new: list[tuple[str, dict[str, Any]]] = []
    updates: list[dict[str, Any]] = []
    for pending in accepted:
        row = pending.row
        current = existing.get(row.jointure)
        columns = dict(row.columns)
        columns["establishment_id"] = pending.establishment_id
        if pending.ref.request == "add" or kind != KIND_PERS_EDUC_NAT:
            columns.setdefault("kind", row.kind)
        counts = person_counts(run, pending.establishment_id)
        if current is None:
            new.append((row.jointure, columns))
            counts["created"] += 1
            continue
        changed = _update_of(pending, current, columns, counts)
        if changed is not None:
            updates.append(changed)
    return new, updates


def _update_of(pending: PendingPerson, current: Any, columns: dict[str, Any],
               counts: Counter[str]) -> dict[str, Any] | None:
    """The update of a known person (None when nothing changes); a flagged one is restored."""
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
        counts["updated"] += 1
        return {"id": current.id, **merged}
    counts["unchanged"] += 1
    return None


def _sync_memberships(run: ImportRun, kind: str, accepted: list[PendingPerson],
                      ids: dict[str, int], new_ids: set[int]) -> None:
    """Profiles, classes and groups of the written people; head classes and subjects of staff."""
    connection = run.connection
    profile_sets = {ids[p.row.jointure]: p.profiles for p in accepted
                    if p.profiles or p.ref.request == "add"}
    db.sync_profiles(connection, profile_sets, new_ids)
    role = ClassRole.STUDENT if kind == KIND_ELEVE else ClassRole.TEACHER
    class_sets = {ids[p.row.jointure]: p.classes for p in accepted if p.classes is not None}
    if class_sets:
        db.sync_class_memberships(connection, role, class_sets, entered_on(run), new_ids)
    group_sets = {ids[p.row.jointure]: p.groups for p in accepted if p.groups is not None}
    if group_sets:
        db.sync_group_memberships(connection, group_sets, new_ids)
    if kind == KIND_PERS_EDUC_NAT:
        _replace_teaching(run, accepted, ids)


def _replace_teaching(run: ImportRun, accepted: list[PendingPerson],
                      ids: dict[str, int]) -> None:
    """Replace the head-teacher classes and the subjects taught of the written staff."""
    heads = {ids[p.row.jointure]: {year: [{**r, "teacher_id": ids[p.row.jointure]}
                                          for r in rows]
                                   for year, rows in p.heads.items()}
             for p in accepted if p.heads is not None}
    db.replace_head_teachers(run.connection, heads)
    subjects = {ids[p.row.jointure]: {year: [{**r, "person_id": ids[p.row.jointure]}
                                             for r in rows]
                                      for year, rows in p.subjects.items()}
                for p in accepted if p.subjects is not None}
    db.replace_teacher_subjects(run.connection, subjects)


def entered_on(run: ImportRun) -> dt.date:
    """The date class memberships start: today, or the start of a year being initialised."""
    today = run.now.date()
    starts = [c.year_starts_on for c in run.contexts.values()
              if c.mode == MODE_INIT and c.year_starts_on]
    return max([today, *starts]) if starts else today
