"""Staff records (PersEducNat): attachment, functions, taught classes and groups, head classes.

A staff member relates to every establishment they hold a function in, teach in or
head a class of; each list the record carries replaces the old one in every such
establishment (a teacher who no longer teaches there loses the old links). A class
a teacher cites that no student is in is not created (noted, reported at the end).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from yearchange_tui.aaf.contexts import (
    class_cache,
    establishment_context,
    establishment_of,
    group_cache,
    resolve,
)
from yearchange_tui.aaf.prepare import Prepared
from yearchange_tui.aaf.records import FUNCTION_PROFILES, Issue, PersonRow
from yearchange_tui.aaf.rejects import note_teacher_only, record_issues, reject
from yearchange_tui.aaf.run import (
    EstablishmentContext,
    ImportRun,
    PendingPerson,
    RecordRef,
    count,
)
from yearchange_tui.ent.models import Profile

UnknownStructures = dict[str, list[str]]
"""Structures cited but unknown or refused, by attribute (one warning per attribute)."""


def apply_staff(run: ImportRun, raw: Prepared, ref: RecordRef, row: PersonRow,
                issues: list[Issue], name: str) -> PendingPerson | None:
    """The staff member waiting for their batch, or None when refused or out of scope."""
    establishment_id: int | None = None
    if row.structure:
        info, problem = resolve(run, row.structure)
        if problem is not None:
            record_issues(run, issues, ref, raw, None, name)
            reject(run, problem, ref, raw=raw, attribute="ENTPersonStructRattach",
                   value=row.structure, name=name,
                   detail=info.refused if info is not None else "")
            count(run, ref.kind, "refused")
            return None
        assert info is not None
        establishment_id = info.establishment_id
    unknown: UnknownStructures = defaultdict(list)
    pending = PendingPerson(row, ref, establishment_id)
    related: set[int] = {establishment_id} if establishment_id is not None else set()
    if row.function_structures is not None:
        _functions(run, pending, row.function_structures, related, unknown)
        establishment_id = pending.establishment_id
    if row.teacher_classes is not None:
        _taught_classes(run, pending, raw, name, related, unknown, issues)
    if row.teacher_groups is not None:
        _taught_groups(run, pending, related, unknown, issues)
    if row.head_classes is not None:
        _head_classes(run, pending, raw, name)
    for attribute, structs in unknown.items():
        issues.append(Issue("AAF-REFERENCE-STRUCTURE-INCONNUE", attribute,
                            ", ".join(dict.fromkeys(structs))))
    if run.scope is not None:
        in_scope = [e for e in related if establishment_context(run, e).in_scope]
        if not in_scope:
            count(run, ref.kind, "skipped")
            return None
    _replace_in_every_establishment(run, pending, related)
    pending.establishments = related
    record_issues(run, issues, ref, raw, establishment_id, name)
    return pending


def _functions(run: ImportRun, pending: PendingPerson,
               function_structures: list[tuple[str, str]], related: set[int],
               unknown: UnknownStructures) -> None:
    """Profiles from the functions held; without an attachment, the first establishment."""
    for struct, function_code in function_structures:
        if struct in ("", "-"):
            continue
        function_establishment = establishment_of(run, struct)
        if struct not in run.structures or (run.structures[struct].refused is not None):
            unknown["ENTPersonFonctions"].append(struct)
            continue
        if function_establishment is None:
            continue
        related.add(function_establishment)
        profile = FUNCTION_PROFILES.get(function_code, Profile.NON_TEACHING)
        pending.profiles.add((function_establishment, profile.value, function_code[:16]))
    establishment_id = pending.establishment_id
    if establishment_id is None and related:
        establishment_id = min(related)
        pending.establishment_id = establishment_id
    if establishment_id is not None and not any(p[0] == establishment_id
                                                for p in pending.profiles):
        is_teacher = pending.row.is_teacher
        profile = Profile.TEACHER if is_teacher else Profile.NON_TEACHING
        pending.profiles.add((establishment_id, profile.value, "ENS" if is_teacher else ""))


def _taught_context(run: ImportRun, struct: str, attribute: str,
                    unknown: UnknownStructures) -> EstablishmentContext | None:
    """The context of a taught class's or group's establishment, if it is in scope."""
    establishment = establishment_of(run, struct)
    if establishment is None:
        if struct not in run.structures or run.structures[struct].refused:
            unknown[attribute].append(struct)
        return None
    context = establishment_context(run, establishment)
    return context if context.in_scope else None


def _subject_row(run: ImportRun, context: EstablishmentContext, subject: str, attribute: str,
                 issues: list[Issue], class_id: int | None,
                 group_id: int | None) -> dict[str, Any]:
    """A subject taught in a class or group; an unknown subject is a warning."""
    if subject not in run.subject_ids:
        issues.append(Issue("AAF-MATIERE-INCONNUE", attribute, subject))
    return {"establishment_id": context.id, "school_year_id": context.year_id,
            "class_id": class_id, "group_id": group_id,
            "subject_id": run.subject_ids.get(subject), "subject_code": subject[:16]}


def _taught_classes(run: ImportRun, pending: PendingPerson, raw: Prepared, name: str,
                    related: set[int], unknown: UnknownStructures,
                    issues: list[Issue]) -> None:
    """The classes taught and their subjects; a class no student is in yet is noted."""
    attribute = "ENTAuxEnsClassesMatieres"
    classes: dict[int, set[int]] = {}
    subjects: dict[int, list[dict[str, Any]]] = {}
    pending.classes = classes
    pending.subjects = subjects
    for struct, code, subject in pending.row.teacher_classes or ():
        context = _taught_context(run, struct, attribute, unknown)
        if context is None:
            continue
        related.add(context.id)
        year = context.year_id
        classes.setdefault(year, set())
        subjects.setdefault(year, [])
        class_id = class_cache(run, context).get(code)
        if class_id is None:
            note_teacher_only(run, context, code, pending.ref, raw, name)
            continue
        classes[year].add(class_id)
        if subject:
            subjects[year].append(_subject_row(run, context, subject, attribute, issues,
                                               class_id, None))


def _taught_groups(run: ImportRun, pending: PendingPerson, related: set[int],
                   unknown: UnknownStructures, issues: list[Issue]) -> None:
    """The groups taught and their subjects; a group that does not exist is left out."""
    attribute = "ENTAuxEnsGroupesMatieres"
    groups: dict[int, set[int]] = {}
    pending.groups = groups
    if pending.subjects is None:
        pending.subjects = {}
    subjects = pending.subjects
    for struct, code, subject in pending.row.teacher_groups or ():
        context = _taught_context(run, struct, attribute, unknown)
        if context is None:
            continue
        related.add(context.id)
        year = context.year_id
        groups.setdefault(year, set())
        group_id = group_cache(run, context).get(code)
        if group_id is None:
            continue
        groups[year].add(group_id)
        if subject:
            subjects.setdefault(year, []).append(
                _subject_row(run, context, subject, attribute, issues, None, group_id))


def _head_classes(run: ImportRun, pending: PendingPerson, raw: Prepared, name: str) -> None:
    """The classes the staff member is head teacher of (professeur principal)."""
    heads: dict[int, list[dict[str, Any]]] = {}
    pending.heads = heads
    for struct, code in pending.row.head_classes or ():
        class_establishment = establishment_of(run, struct)
        if class_establishment is None:
            continue
        context = establishment_context(run, class_establishment)
        if not context.in_scope:
            continue
        year = context.year_id
        heads.setdefault(year, [])
        class_id = class_cache(run, context).get(code)
        if class_id is None:
            note_teacher_only(run, context, code, pending.ref, raw, name)
            continue
        heads[year].append({"establishment_id": class_establishment,
                            "school_year_id": year, "class_id": class_id})


def _replace_in_every_establishment(run: ImportRun, pending: PendingPerson,
                                    related: set[int]) -> None:
    """A list the record carries replaces the old one in every establishment it relates to."""
    for establishment in related:
        context = establishment_context(run, establishment)
        if not context.in_scope:
            continue
        for links in (pending.classes, pending.groups):
            if links is not None:
                links.setdefault(context.year_id, set())
        if pending.heads is not None:
            pending.heads.setdefault(context.year_id, [])
        if pending.subjects is not None:
            pending.subjects.setdefault(context.year_id, [])
