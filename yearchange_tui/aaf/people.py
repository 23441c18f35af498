"""Person records (Eleve, PersRelEleve, PersEducNat) until they wait in their batch.

Each person record is attached to its establishment, checked against what the
import knows (structures, classes, groups, MEF) and either refused with its reasons
or added to its kind's batch (written by :mod:`yearchange_tui.aaf.person_batches`).
Staff records are resolved by :mod:`yearchange_tui.aaf.staff`. A deleteRequest waits
with the batch too (:mod:`yearchange_tui.aaf.absent`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from yearchange_tui.aaf.absent import note_present
from yearchange_tui.aaf.contexts import establishment_context, establishment_of, resolve
from yearchange_tui.aaf.delivery import KIND_ELEVE, KIND_PERS_EDUC_NAT, KIND_PERS_REL_ELEVE
from yearchange_tui.aaf.links import relative_establishment, stage_refused_links
from yearchange_tui.aaf.prepare import Prepared
from yearchange_tui.aaf.records import Issue, PersonRow
from yearchange_tui.aaf.rejects import record_issues, reject
from yearchange_tui.aaf.run import ImportRun, PendingPerson, RecordRef, count
from yearchange_tui.aaf.staff import apply_staff
from yearchange_tui.ent.models import Profile

PersonHandler = Callable[[ImportRun, Prepared, RecordRef, PersonRow, list[Issue], str],
                         PendingPerson | None]


def apply_person(run: ImportRun, raw: Prepared, ref: RecordRef) -> None:
    """Check one person record and add it (or its deleteRequest) to its kind's batch."""
    kind, jointure = ref.kind, ref.identifier
    group = run.group
    if raw.request == "delete":
        group.deletes[kind].append((ref, None))
        group.batch_ids[kind].add(jointure)
        return
    row: PersonRow | None = raw.row
    attachment = None
    if row is not None and row.structure is not None:
        attachment = row.structure
    elif row is None:
        attachment = raw.hint or None
    establishment_id = establishment_of(run, attachment) if attachment else None
    if establishment_id is not None:
        context = establishment_context(run, establishment_id)
        if not context.in_scope and kind == KIND_ELEVE:
            note_present(run, ref)
            count(run, kind, "skipped")
            return
    if row is None:
        _refuse_unreadable(run, raw, ref, establishment_id)
        return
    pending = PERSON_HANDLERS[kind](run, raw, ref, row, raw.issues, raw.name)
    if pending is None:
        if kind == KIND_ELEVE:
            stage_refused_links(run, ref, row.relatives or [], establishment_id)
        note_present(run, ref)
        return
    pending.name = raw.name
    group.batches[kind].append(pending)
    group.batch_ids[kind].add(jointure)


def _refuse_unreadable(run: ImportRun, raw: Prepared, ref: RecordRef,
                       establishment_id: int | None) -> None:
    """A record its own checks refused: store why, under the establishment it most likely is."""
    kind = ref.kind
    if kind == KIND_PERS_REL_ELEVE:
        establishment_id = relative_establishment(run, ref.identifier)
    record_issues(run, raw.issues, ref, raw, establishment_id, raw.name)
    if kind == KIND_ELEVE:
        # Staged so that a relative only refused students cite is refused naming them.
        stage_refused_links(run, ref, raw.links or [], establishment_id)
    note_present(run, ref)
    count(run, kind, "refused", establishment_id)


# students -------------------------------------------------------------------------------

def _student(run: ImportRun, raw: Prepared, ref: RecordRef, row: PersonRow,
             issues: list[Issue], name: str) -> PendingPerson | None:
    """The student waiting for their batch, or None when refused or skipped."""
    structure = row.structure
    if structure == "" and row.classes:
        structure = row.classes[0][0]
    establishment_id: int | None = None
    if structure is not None:
        kept, establishment_id = _student_establishment(run, raw, ref, structure, issues, name)
        if not kept:
            return None
    pending = PendingPerson(row, ref, establishment_id)
    if establishment_id is not None:
        pending.establishments.add(establishment_id)
        pending.profiles.add((establishment_id, Profile.STUDENT.value, "ELE"))
    if row.classes is not None:
        _student_classes(run, pending, row.classes, issues, establishment_id)
    if row.groups is not None:
        _student_groups(run, pending, row.groups, issues, establishment_id)
    if row.mef and row.mef not in run.mef_codes:
        issues.append(Issue("AAF-MEF-INCONNU", "ENTEleveMEF", row.mef))
    record_issues(run, issues, ref, raw, establishment_id, name)
    return pending


def _student_establishment(run: ImportRun, raw: Prepared, ref: RecordRef, structure: str,
                           issues: list[Issue], name: str) -> tuple[bool, int | None]:
    """(True, establishment) for a usable attachment; (False, None) once refused or skipped.

    A student of a school outside the establishments known to a scoped import is
    skipped; one attached to an administrative structure is refused.
    """
    info, problem = resolve(run, structure)
    if problem is None and info is not None and info.establishment_id is None:
        if info.is_school and run.scope is not None:
            count(run, ref.kind, "skipped")
            return False, None
        problem = "AAF-STRUCTURE-REFUSEE"
    if problem is not None or not structure:
        detail = (info.refused if info is not None and info.refused else
                  "structure administrative, pas un établissement")
        record_issues(run, issues, ref, raw, None, name)
        reject(run, problem or "AAF-STRUCTURE-INCONNUE", ref, raw=raw,
               attribute="ENTPersonStructRattach", value=structure or "",
               name=name, detail=detail)
        count(run, ref.kind, "refused")
        return False, None
    return True, info.establishment_id if info else None


def _in_scope_keys(run: ImportRun, pairs: Sequence[tuple[str, str]], attribute: str,
                   issues: list[Issue]) -> list[tuple[int, str, int]]:
    """(establishment, code, target year) of each class or group of an establishment in scope.

    A class or group of an unknown or refused structure is a warning.
    """
    keys: list[tuple[int, str, int]] = []
    for struct, code in pairs:
        establishment = establishment_of(run, struct)
        if establishment is None:
            issues.append(Issue("AAF-REFERENCE-STRUCTURE-INCONNUE", attribute,
                                f"{struct}${code}"))
            continue
        context = establishment_context(run, establishment)
        if context.in_scope:
            keys.append((establishment, code, context.year_id))
    return keys


def _student_classes(run: ImportRun, pending: PendingPerson,
                     classes: Sequence[tuple[str, str]], issues: list[Issue],
                     establishment_id: int | None) -> None:
    """The student's classes (created from students at the batch write); none is a warning."""
    pending.classes = {}
    for establishment, code, year in _in_scope_keys(run, classes, "ENTEleveClasses", issues):
        pending.class_keys.append((establishment, code))
        pending.classes.setdefault(year, set())
    if not pending.class_keys:
        issues.append(Issue("AAF-ELEVE-SANS-CLASSE", "ENTEleveClasses", ""))
        if establishment_id is not None:
            pending.classes.setdefault(establishment_context(run, establishment_id).year_id,
                                       set())


def _student_groups(run: ImportRun, pending: PendingPerson,
                    groups: Sequence[tuple[str, str]], issues: list[Issue],
                    establishment_id: int | None) -> None:
    """The student's groups (created from students at the batch write)."""
    pending.groups = {}
    for establishment, code, year in _in_scope_keys(run, groups, "ENTEleveGroupes", issues):
        pending.group_keys.append((establishment, code))
        pending.groups.setdefault(year, set())
    if establishment_id is not None:
        pending.groups.setdefault(establishment_context(run, establishment_id).year_id, set())


# relatives ------------------------------------------------------------------------------

def _relative(run: ImportRun, raw: Prepared, ref: RecordRef, row: PersonRow,
              issues: list[Issue], name: str) -> PendingPerson | None:
    """A relative waits for its batch: who cites it is known from the staging table."""
    pending = PendingPerson(row, ref, None)
    pending.issues = issues
    pending.raw_xml = raw.raw_xml() if issues else None
    return pending


PERSON_HANDLERS: dict[str, PersonHandler] = {
    KIND_ELEVE: _student, KIND_PERS_REL_ELEVE: _relative, KIND_PERS_EDUC_NAT: apply_staff}
