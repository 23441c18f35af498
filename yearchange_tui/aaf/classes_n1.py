"""Likely year N-1 classes after a directory import (seed §5, "classes de l'année passée").

Some establishments take their pupils out of last year's classes only at the end
of August, so the initialisation import still carries a few of them in an old
class, which the import then creates. After the import, each class of the new
year is compared with the previous year:

- its code is the code of a class of the previous year (a class archived in
  step 2: previous-year classes still in the database, the class history kept
  by :func:`~yearchange_tui.aaf.directory.snapshot_class_history`, archived class
  rubrics in the trash, step-2 archive manifests) **and** most of its students
  were in that same class last year;
- or it has very few students compared with the establishment's other classes.

Each finding carries its reason, in French. Year N-1 groups (kept in the STS switch-over,
seed §5) are found the same way, from the group history step 3 keeps. Runs on the
caller's thread.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from sqlalchemy import Connection, and_, select

from yearchange_tui.aaf.directory import (
    class_history,
    class_memberships,
    classes,
    group_history,
    student_class_counts,
    student_group_counts,
)
from yearchange_tui.ent.models import ClassRole, Rubric, RubricKind, TrashEntry, TrashReason
from yearchange_tui.french import plural
from yearchange_tui.workflow.models import ArchiveManifest

SAME_STUDENTS_RATIO = 0.5
"""Share of a class's students who were in the same class last year that flags it."""

FEW_STUDENTS_RATIO = 0.2
"""A class with at most this share of the median class size (and at least 2) is "very few"."""

_ARCHIVED_RUBRIC_NAME = re.compile(r"^Classe (?P<code>.+?) \d{4}-\d{4}$")


@dataclass(frozen=True)
class LikelyOldClass:
    """A class of the new year that looks like last year's."""

    code: str
    students: int
    reason: str
    same_class_students: int = 0
    code_archived: bool = False


def _previous_classes(connection: Connection, establishment_id: int,
                      previous_year_id: int) -> tuple[set[str], dict[int, set[str]]]:
    """Codes of the previous year's classes and, per student, their class codes then."""
    codes: set[str] = set()
    history: dict[int, set[str]] = {}
    for row in connection.execute(
            select(class_history.c.person_id, class_history.c.class_code).where(
                class_history.c.establishment_id == establishment_id,
                class_history.c.school_year_id == previous_year_id)):
        codes.add(row.class_code)
        history.setdefault(row.person_id, set()).add(row.class_code)
    for row in connection.execute(
            select(classes.c.code, class_memberships.c.person_id)
            .select_from(classes)
            .join(class_memberships, and_(class_memberships.c.class_id == classes.c.id,
                                          class_memberships.c.role == ClassRole.STUDENT),
                  isouter=True)
            .where(classes.c.establishment_id == establishment_id,
                   classes.c.school_year_id == previous_year_id)):
        codes.add(row.code)
        if row.person_id is not None:
            history.setdefault(row.person_id, set()).add(row.code)
    rubrics = Rubric.__table__
    trash = TrashEntry.__table__
    for row in connection.execute(
            select(rubrics.c.name).join(trash, trash.c.rubric_id == rubrics.c.id).where(
                trash.c.establishment_id == establishment_id,
                trash.c.school_year_id == previous_year_id,
                trash.c.reason == TrashReason.YEAR_ARCHIVE,
                rubrics.c.kind == RubricKind.CLASS)):
        match = _ARCHIVED_RUBRIC_NAME.match(row.name or "")
        if match:
            codes.add(match.group("code"))
    manifests = ArchiveManifest.__table__
    for row in connection.execute(
            select(manifests.c.archive_key).where(
                manifests.c.establishment_id == establishment_id,
                manifests.c.school_year_id == previous_year_id,
                manifests.c.archive_key.like("cahier-de-textes:%"))):
        codes.add(row.archive_key.split(":", 1)[1])
    return codes, history


def likely_previous_year_classes(connection: Connection, establishment_id: int,
                                 school_year_id: int,
                                 previous_year_id: int | None) -> list[LikelyOldClass]:
    """Classes of ``school_year_id`` that look like classes of the previous year.

    Args:
        connection: a connection (read only).
        establishment_id: the establishment.
        school_year_id: the new year (N+1 after step 4).
        previous_year_id: the year before it (None when unknown).

    Returns:
        The findings, by class code.
    """
    members = student_class_counts(connection, establishment_id, school_year_id)
    if not members:
        return []
    codes: set[str] = set()
    history: dict[int, set[str]] = {}
    if previous_year_id is not None:
        codes, history = _previous_classes(connection, establishment_id, previous_year_id)
    sizes = [len(students) for students in members.values() if students]
    median = statistics.median(sizes) if sizes else 0
    few_limit = max(2, int(FEW_STUDENTS_RATIO * median))
    findings: list[LikelyOldClass] = []
    for code in sorted(members):
        students = members[code]
        count = len(students)
        archived = code in codes
        same = sum(1 for person_id in students if code in history.get(person_id, ()))
        reasons: list[str] = []
        if archived and count and same / count >= SAME_STUDENTS_RATIO:
            were = "y était" if same < 2 else "y étaient"
            reasons.append(f"même code qu'une classe de l'année passée et {plural(same, 'élève')} "
                           f"sur {count} {were} déjà")
        if 0 < count <= few_limit and median >= 2 * few_limit:
            suffix = " ; ce code existait l'année passée" if archived else ""
            reasons.append(f"seulement {plural(count, 'élève')} alors que la classe médiane de "
                           f"l'établissement en compte {median:g}{suffix}")
        if reasons:
            findings.append(LikelyOldClass(code, count, " ; ".join(reasons), same, archived))
    return findings


def _previous_groups(connection: Connection, establishment_id: int,
                     previous_year_id: int) -> dict[int, set[str]]:
    """Per student, the codes of the AAF groups they were in the previous year.

    Read from the group history kept by step 3, and from previous-year groups still in
    the database (before step 3, or an initial load).
    """
    history: dict[int, set[str]] = {}
    for row in connection.execute(
            select(group_history.c.person_id, group_history.c.group_code).where(
                group_history.c.establishment_id == establishment_id,
                group_history.c.school_year_id == previous_year_id)):
        history.setdefault(row.person_id, set()).add(row.group_code)
    for code, students in student_group_counts(connection, establishment_id,
                                               previous_year_id).items():
        for person_id in students:
            history.setdefault(person_id, set()).add(code)
    return history


def likely_previous_year_groups(connection: Connection, establishment_id: int,
                                school_year_id: int,
                                previous_year_id: int | None) -> list[LikelyOldClass]:
    """AAF groups of ``school_year_id`` that look like groups of the previous year.

    Seed §5: « surtout ne pas conserver les groupes dans les choix de bascule STS ». A
    group is flagged when most of its students were already in a group of the same
    code the year before.

    Args:
        connection: a connection (read only).
        establishment_id: the establishment.
        school_year_id: the new year (N+1 after step 4).
        previous_year_id: the year before it (None when unknown).

    Returns:
        The findings, by group code.
    """
    if previous_year_id is None:
        return []
    members = student_group_counts(connection, establishment_id, school_year_id)
    if not members:
        return []
    history = _previous_groups(connection, establishment_id, previous_year_id)
    findings: list[LikelyOldClass] = []
    for code in sorted(members):
        students = members[code]
        count = len(students)
        same = sum(1 for person_id in students if code in history.get(person_id, ()))
        if count and same / count >= SAME_STUDENTS_RATIO:
            findings.append(LikelyOldClass(
                code, count, f"même code qu'un groupe de l'année passée et {same} élève(s) "
                             f"sur {count} y étaient déjà", same, True))
    return findings
