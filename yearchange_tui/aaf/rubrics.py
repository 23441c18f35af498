"""Class rubrics: one per class of the year, with the rights the portal gives them.

At the end of an import, every class of an establishment's target year without a
class rubric gets one (``Classe <code> <year>``), and the rights of class rubrics
follow the classes (:func:`grant_class_rubric_rights`), set-based.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, exists, insert, literal, not_, select

from yearchange_tui.aaf import directory as db
from yearchange_tui.aaf.run import EstablishmentContext, ImportRun
from yearchange_tui.ent.models import (
    ClassMembership,
    ClassRole,
    GroupKind,
    HeadTeacher,
    Person,
    PersonKind,
    Rubric,
    RubricKind,
    RubricRight,
    RubricRole,
)
from yearchange_tui.ent.models import Group as GroupModel

rubrics_table = Rubric.__table__
rights_table = RubricRight.__table__


def create_class_rubrics(run: ImportRun, contexts: list[EstablishmentContext]) -> None:
    """Class rubrics for classes without one, and the rights the portal gives them.

    A few statements for all the establishments of a school year at once.
    """
    classes = db.classes
    connection = run.connection
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
                         "created_at": run.now})
        context.counts["rubrics_created"] += len(missing.get(context.id, ()))
    if rows:
        connection.execute(insert(rubrics_table), rows)
    for year_id, ids in parts:
        grant_class_rubric_rights(connection, ids, year_id)


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
