"""Steps 1 to 3 of the change-over as lists of phases (seed §6.1–6.3).

A phase is one transaction: it reads the state it needs first (ids into memory, bounded
by one establishment), then describes its changes through the unit's
:class:`~yearchange_tui.changeover.effects.Effects`. The runner commits the phase
together with its checkpoint, so a resumed unit skips the phases already committed.
Files to delete are removed only after the commit that deleted their rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection, Table, and_, not_, or_, select
from sqlalchemy.orm import aliased

from yearchange_tui.changeover import archives as build
from yearchange_tui.changeover.effects import Effects, ZipBuilder
from yearchange_tui.changeover.notices import (
    SUMMARY_SUBJECT,
    deletable_free_groups_condition,
    groups_by_manager,
    summary_body,
)
from yearchange_tui.ent.models import (
    ActivityDistribution,
    AddressBookEntry,
    Alternation,
    ArchiveRubric,
    Assessment,
    AttendanceEvent,
    ClassCouncil,
    ClassMembership,
    Course,
    CourseReplacement,
    CredentialsFile,
    Document,
    EndOfCycleReport,
    Epi,
    EpiMember,
    FolderKind,
    Grade,
    Group,
    GroupKind,
    GroupLifetime,
    GroupManager,
    GroupMembership,
    HeadTeacher,
    ImportReport,
    MailMerge,
    MessageArchivePolicy,
    MessageCopy,
    MessageFolder,
    OpeningDates,
    Period,
    Person,
    PersonKind,
    PersonProfile,
    Photo,
    Profile,
    Punishment,
    ReportCard,
    ReportCardLine,
    ReportCardTemplate,
    RollCall,
    Rubric,
    RubricKind,
    RubricRight,
    RubricRole,
    Sanction,
    SchoolClass,
    SkillAssessment,
    StoredFile,
    TeachingService,
    TrashEntry,
    TrashReason,
)
from yearchange_tui.workflow.models import ArchiveManifest, Step

CHUNK = 500
BINDER_BATCH = 200
TEXTBOOK_BATCH = 6
RECENT_TRASH_DAYS = 7


@dataclass
class UnitContext:
    """What a phase works on: one establishment, school year N, the effects and the clock."""

    connection: Connection
    effects: Effects
    establishment_id: int
    uai: str
    establishment_name: str
    project_id: int
    closing_date: dt.date | None
    year_id: int
    year_label: str
    year_start: int
    obsolete_year_ids: list[int]
    now: dt.datetime
    warnings: list[str] = field(default_factory=list)
    files_to_remove: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        """Add a warning the operator must see before the window."""
        self.warnings.append(message)

    def remove_files_after_commit(self, relative_paths: Sequence[str], label: str) -> None:
        """Queue files whose rows this phase deletes; counted now, removed after commit."""
        self.effects.tally.add(label, len(relative_paths))
        self.files_to_remove.extend(relative_paths)


Phase = tuple[str, Callable[[UnitContext], None]]


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def _delete_ids(ctx: UnitContext, table: Table, column: Column[Any], ids: Sequence[int],
                label: str) -> int:
    """Delete rows whose ``column`` is in ``ids`` (chunked), counting under ``label``."""
    total = 0
    for chunk in _chunks(list(ids)):
        total += ctx.effects.delete(ctx.connection, table, column.in_(chunk), label)
    if not ids:
        ctx.effects.tally.add(label, 0)
    return total


def _ids(ctx: UnitContext, statement: Any) -> list[int]:
    return [row[0] for row in ctx.connection.execute(statement)]


# -- step 1: purge the establishment trash -----------------------------------------------

def purge_trash_phases(ctx: UnitContext) -> list[Phase]:
    """Step 1: one phase."""
    return [("corbeille", _purge_trash)]


def _purge_trash(ctx: UnitContext) -> None:
    """Delete the class rubrics archived in N-1 and the rubrics trashed during year N.

    The year-N archives of step 2 (if step 2 ran first) are kept: they stay one full year.
    """
    c = ctx.connection
    targets = c.execute(
        select(TrashEntry.rubric_id, Rubric.name, TrashEntry.trashed_at, TrashEntry.reason)
        .join(Rubric, Rubric.id == TrashEntry.rubric_id)
        .where(TrashEntry.establishment_id == ctx.establishment_id,
               not_(and_(TrashEntry.reason == TrashReason.YEAR_ARCHIVE,
                         TrashEntry.school_year_id == ctx.year_id)))
        .order_by(Rubric.name, TrashEntry.rubric_id)).all()
    rubric_ids = [row[0] for row in targets]
    ctx.effects.record("rubriques supprimées définitivement", [row[1] for row in targets])
    reference = ctx.now
    if ctx.closing_date is not None:
        closing = dt.datetime.combine(ctx.closing_date, dt.time(23, 59), tzinfo=dt.UTC)
        reference = max(reference, closing)
    for rubric_id, name, trashed_at, reason in targets:
        if trashed_at.tzinfo is None:
            trashed_at = trashed_at.replace(tzinfo=dt.UTC)
        if reason == TrashReason.USER and reference - trashed_at <= dt.timedelta(
                days=RECENT_TRASH_DAYS):
            ctx.warn(f"« {name} » mise à la corbeille le {trashed_at:%d/%m/%Y} : elle sera "
                     "supprimée sans possibilité de récupération.")
    documents = c.execute(select(Document.id, Document.stored_file_id)
                          .where(Document.rubric_id.in_(select(TrashEntry.rubric_id).where(
                              TrashEntry.rubric_id.in_(rubric_ids))))).all() if rubric_ids else []
    file_ids = sorted({row[1] for row in documents})
    kept = set(_ids(ctx, select(Document.stored_file_id).where(
        Document.stored_file_id.in_(file_ids), Document.rubric_id.not_in(rubric_ids)))) \
        if file_ids else set()
    file_ids = [file_id for file_id in file_ids if file_id not in kept]
    paths = [row[0] for chunk in _chunks(file_ids) for row in c.execute(
        select(StoredFile.relative_path).where(StoredFile.id.in_(chunk)))]
    _delete_ids(ctx, Document.__table__, Document.__table__.c.rubric_id, rubric_ids,
                "documents supprimés")
    _delete_ids(ctx, StoredFile.__table__, StoredFile.__table__.c.id, file_ids,
                "fichiers supprimés (base)")
    _delete_ids(ctx, RubricRight.__table__, RubricRight.__table__.c.rubric_id, rubric_ids,
                "droits supprimés")
    _delete_ids(ctx, TrashEntry.__table__, TrashEntry.__table__.c.rubric_id, rubric_ids,
                "entrées de corbeille supprimées")
    _delete_ids(ctx, Rubric.__table__, Rubric.__table__.c.id, rubric_ids,
                "rubriques supprimées")
    ctx.remove_files_after_commit(paths, "fichiers supprimés (disque)")


# -- step 2: archive year N ----------------------------------------------------------------

def _archive_path(ctx: UnitContext, *parts: str) -> str:
    return "/".join((ctx.uai, "archives", ctx.year_label, *parts))


def _archive_rubric_ids(ctx: UnitContext) -> dict[ArchiveRubric, int]:
    rows = ctx.connection.execute(select(Rubric.archive_kind, Rubric.id).where(
        Rubric.establishment_id == ctx.establishment_id, Rubric.kind == RubricKind.ARCHIVE)
        .order_by(Rubric.id)).all()
    found: dict[ArchiveRubric, int] = {}
    for kind, rubric_id in rows:
        if kind is not None:
            found.setdefault(ArchiveRubric(kind), rubric_id)
    return found


def _admin_ids(ctx: UnitContext) -> list[int]:
    return _ids(ctx, select(GroupMembership.person_id).join(
        Group, Group.id == GroupMembership.group_id).where(
        Group.establishment_id == ctx.establishment_id, Group.kind == GroupKind.ADMINS)
        .distinct().order_by(GroupMembership.person_id))


def _write(ctx: UnitContext, *, key: str, kind: str, path: str, rubric_id: int | None,
           title: str, builder: Callable[[ZipBuilder], None]) -> None:
    ctx.effects.write_archive(
        ctx.connection, key=key, kind=kind, relative_path=path,
        establishment_id=ctx.establishment_id, build=builder, rubric_id=rubric_id, title=title,
        created_at=ctx.now, school_year_id=ctx.year_id)
    ctx.effects.record("archives écrites", [path])


def _ensure_archive_rubrics(ctx: UnitContext) -> None:
    existing = _archive_rubric_ids(ctx)
    missing = [kind for kind in ArchiveRubric if kind not in existing]
    ctx.effects.record("rubriques d'archives créées", [kind.value for kind in missing])
    if not missing:
        ctx.effects.tally.add("rubriques d'archives créées", 0)
        return
    if ctx.effects.dry_run:
        ctx.effects.tally.add("rubriques d'archives créées", len(missing))
        return
    admins = _admin_ids(ctx)
    for kind in missing:
        rubric_id = ctx.connection.execute(Rubric.__table__.insert().values(
            establishment_id=ctx.establishment_id, school_year_id=None,
            kind=RubricKind.ARCHIVE.value, name=kind.value, class_id=None,
            archive_kind=kind.value, owner_id=None, created_at=ctx.now)
            .returning(Rubric.__table__.c.id)).scalar_one()
        ctx.effects.insert_rows(ctx.connection, RubricRight.__table__, [
            {"rubric_id": rubric_id, "person_id": admin, "group_id": None,
             "role": RubricRole.MANAGER.value} for admin in admins], "droits créés")
        ctx.effects.tally.add("rubriques d'archives créées", 1)


def _students(ctx: UnitContext) -> list[int]:
    return _ids(ctx, select(Person.id).where(Person.establishment_id == ctx.establishment_id,
                                             Person.kind == PersonKind.STUDENT)
                .order_by(Person.id))


def archive_phases(ctx: UnitContext) -> list[Phase]:
    """Step 2: archive rubrics, one phase per class textbook, per batch of student binders,
    per school-life archive, the sanctions message, then the trash move with rights rewrite."""
    phases: list[Phase] = [("rubriques-archives", _ensure_archive_rubrics)]
    classes = _school_life(ctx).classes
    for start in range(0, len(classes), TEXTBOOK_BATCH):
        batch = classes[start:start + TEXTBOOK_BATCH]
        phases.append((f"cahiers-de-textes:{batch[0][1]}..{batch[-1][1]}",
                       _textbook_phase(batch)))
    students = _students(ctx)
    for start in range(0, len(students), BINDER_BATCH):
        batch = students[start:start + BINDER_BATCH]
        phases.append((f"classeurs:{start // BINDER_BATCH + 1:04d}", _binder_phase(batch)))
    phases.append(("vie-scolaire", _school_life_phase))
    phases.append(("sanctions", _sanctions_phase))
    phases.append(("corbeille", _move_to_trash))
    return phases


def _textbook_phase(batch: Sequence[tuple[int, str]]) -> Callable[[UnitContext], None]:
    """The cahiers de textes of a batch of classes, one archive per class."""
    def run(ctx: UnitContext) -> None:
        rubric_id = _archive_rubric_ids(ctx).get(ArchiveRubric.TEXTBOOKS)
        storage = ctx.effects.storage_root
        shared = build.TextbookBatch(ctx.connection, storage, [class_id for class_id, _ in batch])
        for class_id, code in batch:
            if shared.is_empty(class_id):
                ctx.warn(f"Cahier de textes de la classe {code} vide : l'archive ne contiendra "
                         "que son sommaire.")
            _write(ctx, key=f"cahier-de-textes:{code}", kind="cahier de textes",
                   path=_archive_path(ctx, "cahiers-de-textes",
                                      f"cahier-de-textes-{build.safe_name(code)}-"
                                      f"{ctx.year_label}.zip"),
                   rubric_id=rubric_id, title=f"Cahier de textes {code} {ctx.year_label}",
                   builder=lambda zip_builder, class_id=class_id, code=code:
                   build.build_textbook_archive(
                       ctx.connection, storage, establishment=ctx.establishment_name,
                       year_label=ctx.year_label, class_id=class_id, class_code=code,
                       builder=zip_builder, batch=shared))
    return run


def _binder_phase(student_ids: list[int]) -> Callable[[UnitContext], None]:
    def run(ctx: UnitContext) -> None:
        c = ctx.connection
        names = {row[0]: f"{row[1]} {row[2]}" for row in c.execute(
            select(Person.id, Person.last_name, Person.first_name).where(
                Person.id.in_(student_ids)))}
        folders = dict(c.execute(select(Rubric.owner_id, Rubric.id).where(
            Rubric.owner_id.in_(student_ids), Rubric.kind == RubricKind.DOCUMENT_FOLDER)).all())
        distributed: dict[int, list[int]] = {student_id: [] for student_id in student_ids}
        for student_id, activity_id in c.execute(
                select(ActivityDistribution.student_id, ActivityDistribution.activity_id)
                .where(ActivityDistribution.student_id.in_(student_ids))):
            distributed[student_id].append(activity_id)
        catalog = build.ActivityCatalog(c, build.FileCache(ctx.effects.storage_root))
        catalog.load(activity_id for ids in distributed.values() for activity_id in ids)
        empty = [student_id for student_id, ids in distributed.items() if not ids]
        if empty:
            ctx.effects.tally.add("classeurs vides", len(empty))
        for student_id in student_ids:
            if student_id not in folders:
                folders[student_id] = _create_document_folder(ctx, student_id)
            _write(ctx, key=f"classeur:{student_id}", kind="classeur",
                   path=_archive_path(ctx, "classeurs", f"classeur-{student_id}.zip"),
                   rubric_id=folders[student_id],
                   title=f"Classeur pédagogique {ctx.year_label}",
                   builder=lambda zip_builder, sid=student_id: build.build_binder_archive(
                       student_name=names.get(sid, str(sid)), year_label=ctx.year_label,
                       builder=zip_builder, catalog=catalog, activity_ids=distributed[sid]))
    return run


def _create_document_folder(ctx: UnitContext, student_id: int) -> int | None:
    ctx.effects.tally.add("porte-documents créés", 1)
    if ctx.effects.dry_run:
        return None
    rubric_id = ctx.connection.execute(Rubric.__table__.insert().values(
        establishment_id=ctx.establishment_id, school_year_id=None,
        kind=RubricKind.DOCUMENT_FOLDER.value, name="Porte-documents", class_id=None,
        archive_kind=None, owner_id=student_id, created_at=ctx.now)
        .returning(Rubric.__table__.c.id)).scalar_one()
    ctx.connection.execute(RubricRight.__table__.insert().values(
        rubric_id=rubric_id, person_id=student_id, group_id=None,
        role=RubricRole.MANAGER.value))
    return int(rubric_id)


_SCHOOL_LIFE_ARCHIVES: dict[
        ArchiveRubric, tuple[str, str, Callable[[build.SchoolLife, ZipBuilder], None]]] = {
    ArchiveRubric.ROLL_CALLS: ("registres-d-appel", "Registres d'appel", build.build_roll_calls),
    ArchiveRubric.GRADE_REPORTS: ("releves-d-evaluations", "Relevés d'évaluations",
                                  build.build_grade_reports),
    ArchiveRubric.SKILLS: ("releves-de-competences", "Relevés de compétences",
                           build.build_skills),
    ArchiveRubric.REPORT_CARDS: ("bulletins-periodiques", "Bulletins périodiques",
                                 build.build_report_cards),
    ArchiveRubric.END_OF_CYCLE: ("bilans-de-fin-de-cycle", "Bilans de fin de cycle",
                                 build.build_end_of_cycle),
    ArchiveRubric.PUNISHMENTS: ("punitions", "Punitions", build.build_punishments),
    ArchiveRubric.EPI: ("epi", "EPI", build.build_epis),
    ArchiveRubric.ABSENCE_STATISTICS: ("statistiques-absences", "Statistiques d'absences",
                                       build.build_absence_statistics),
}


def _school_life(ctx: UnitContext) -> build.SchoolLife:
    return build.SchoolLife(ctx.connection, ctx.establishment_id, ctx.year_id,
                            ctx.establishment_name, ctx.year_label)


def _school_life_phase(ctx: UnitContext) -> None:
    """One archive per school-life rubric, in one transaction."""
    life = _school_life(ctx)
    rubric_ids = _archive_rubric_ids(ctx)
    for kind, (slug, title, builder) in _SCHOOL_LIFE_ARCHIVES.items():
        _write(ctx, key=f"vie-scolaire:{slug}", kind="vie scolaire",
               path=_archive_path(ctx, "vie-scolaire", f"{slug}-{ctx.year_label}.zip"),
               rubric_id=rubric_ids.get(kind), title=f"{title} {ctx.year_label}",
               builder=lambda zip_builder, builder=builder: builder(life, zip_builder))


def _heads_of_establishment(ctx: UnitContext) -> list[int]:
    return _ids(ctx, select(PersonProfile.person_id).where(
        PersonProfile.establishment_id == ctx.establishment_id,
        PersonProfile.profile == Profile.DIRECTION).distinct().order_by(PersonProfile.person_id))


def _sanctions_phase(ctx: UnitContext) -> None:
    """The sanctions of the year, as a CSV attached to a message to the heads."""
    heads = _heads_of_establishment(ctx)
    data = build.sanctions_csv(_school_life(ctx))
    if not heads:
        ctx.warn("Aucun chef d'établissement (profil direction) : l'archive des sanctions ne "
                 "peut pas être envoyée.")
        ctx.effects.tally.add("messages envoyés (sanctions)", 0)
        return
    path = _archive_path(ctx, "vie-scolaire", f"sanctions-{ctx.year_label}.csv")
    body = ("Bonjour,\n\nDans le cadre de la procédure de changement d'année, vous trouverez "
            f"ci-joint l'archive des sanctions de l'année scolaire {ctx.year_label} "
            f"({ctx.establishment_name}).\n\nCordialement")
    ctx.effects.send_message(
        ctx.connection, establishment_id=ctx.establishment_id, recipient_ids=heads,
        subject=f"[Changement d'année] Archive des sanctions {ctx.year_label}", body=body,
        sent_at=ctx.now, attachments=[(path, data, "text/csv")],
        label="messages envoyés (sanctions)")
    stored_file_id = None if ctx.effects.dry_run else ctx.connection.scalar(
        select(StoredFile.id).where(StoredFile.relative_path == path))
    ctx.effects.insert_rows(ctx.connection, ArchiveManifest.__table__, [{
        "establishment_id": ctx.establishment_id, "school_year_id": ctx.year_id,
        "archive_key": "sanctions", "kind": "sanctions", "relative_path": path,
        "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        "entry_count": max(0, data.count(b"\r\n") - 1), "stored_file_id": stored_file_id,
        "created_at": ctx.now}], "manifestes enregistrés")
    ctx.effects.record("archives écrites", [path])


def _move_to_trash(ctx: UnitContext) -> None:
    """Class rubrics of year N and temporary rubrics to the trash, rights rewritten.

    Members of the admins group become (or stay) managers. Temporary rubrics: former
    managers (users or groups) keep manager, every other right is removed. Class rubrics:
    every teacher of the establishment becomes visitor, a former manager who is not an
    admin becomes visitor, every other right (writer, publisher, moderator, visitor, any
    right held by a group) is removed.
    """
    c = ctx.connection
    in_trash = select(TrashEntry.rubric_id)
    targets = c.execute(select(Rubric.id, Rubric.kind, Rubric.name).where(
        Rubric.establishment_id == ctx.establishment_id,
        or_(and_(Rubric.kind == RubricKind.CLASS, Rubric.school_year_id == ctx.year_id),
            Rubric.kind == RubricKind.TEMPORARY),
        Rubric.id.not_in(in_trash)).order_by(Rubric.kind, Rubric.name, Rubric.id)).all()
    target_ids = [row[0] for row in targets]
    ctx.effects.record("rubriques mises à la corbeille", [row[2] for row in targets])
    admins = _admin_ids(ctx)
    teachers = _ids(ctx, select(PersonProfile.person_id).where(
        PersonProfile.establishment_id == ctx.establishment_id,
        PersonProfile.profile == Profile.TEACHER).distinct().order_by(PersonProfile.person_id))
    existing = [tuple(row) for chunk in _chunks(target_ids) for row in c.execute(
        select(RubricRight.rubric_id, RubricRight.person_id, RubricRight.group_id,
               RubricRight.role).where(RubricRight.rubric_id.in_(chunk)))]
    managers: dict[int, list[tuple[int | None, int | None]]] = {}
    for rubric_id, person_id, group_id, role in existing:
        if RubricRole(role) is RubricRole.MANAGER:
            managers.setdefault(rubric_id, []).append((person_id, group_id))
    admin_set = set(admins)
    final: list[dict[str, Any]] = []
    for rubric_id, kind, name in targets:
        rights: dict[tuple[int | None, int | None], RubricRole] = {
            (admin, None): RubricRole.MANAGER for admin in admins}
        former_managers = managers.get(rubric_id, [])
        if RubricKind(kind) is RubricKind.TEMPORARY:
            for holder in former_managers:
                rights[holder] = RubricRole.MANAGER
        else:
            for teacher in teachers:
                rights.setdefault((teacher, None), RubricRole.VISITOR)
            for person_id, group_id in former_managers:
                if person_id is not None and person_id not in admin_set:
                    rights.setdefault((person_id, None), RubricRole.VISITOR)
        if RubricRole.MANAGER not in rights.values():
            ctx.warn(f"La rubrique « {name} » n'aura plus de gestionnaire dans la corbeille.")
        for (person_id, group_id), role in sorted(
                rights.items(), key=lambda item: (item[0][0] or 0, item[0][1] or 0)):
            final.append({"rubric_id": rubric_id, "person_id": person_id, "group_id": group_id,
                          "role": role.value})
    _delete_ids(ctx, RubricRight.__table__, RubricRight.__table__.c.rubric_id, target_ids,
                "droits supprimés")
    for start in range(0, len(final), 5_000):
        ctx.effects.insert_rows(c, RubricRight.__table__, final[start:start + 5_000],
                                "droits créés")
    if not final:
        ctx.effects.tally.add("droits créés", 0)
    ctx.effects.insert_rows(c, TrashEntry.__table__, [
        {"establishment_id": ctx.establishment_id, "rubric_id": rubric_id,
         "reason": TrashReason.YEAR_ARCHIVE.value, "trashed_at": ctx.now,
         "trashed_by_id": None, "school_year_id": ctx.year_id} for rubric_id in target_ids],
        "rubriques mises à la corbeille")


# -- step 3: delete the obsolete data of year N --------------------------------------------

def delete_obsolete_phases(ctx: UnitContext) -> list[Phase]:
    """Step 3: free groups first (while teaching services still tell which to keep)."""
    return [
        ("groupes-libres", _delete_free_groups),
        ("vie-scolaire", _delete_school_life),
        ("classes-et-groupes-d-options", _delete_classes_and_option_groups),
        ("bilans-et-identifiants", _delete_reports_and_credentials),
        ("messages-archives", _delete_archived_messages),
        ("carnets-d-adresses", _delete_address_books),
        ("trombinoscope", _delete_student_photos),
    ]


def _rights_left_by_steps_1_and_2(ctx: UnitContext) -> Any:
    """Rights that steps 1 and 2 leave in place (the only ones step 3 can still meet).

    Step 1 deletes every right of the rubrics it purges; step 2 rewrites the rights of
    class and temporary rubrics, keeping only managers on temporary rubrics. Restricting
    step 3 to the other rights changes nothing after steps 1 and 2, and lets the dry run,
    which sees the state before them, count exactly what step 3 will delete.
    """
    purged = select(TrashEntry.rubric_id).where(
        TrashEntry.establishment_id == ctx.establishment_id,
        not_(and_(TrashEntry.reason == TrashReason.YEAR_ARCHIVE,
                  TrashEntry.school_year_id == ctx.year_id)))
    class_rubrics = select(Rubric.id).where(Rubric.establishment_id == ctx.establishment_id,
                                            Rubric.kind == RubricKind.CLASS,
                                            Rubric.school_year_id == ctx.year_id)
    temporary = select(Rubric.id).where(Rubric.establishment_id == ctx.establishment_id,
                                        Rubric.kind == RubricKind.TEMPORARY)
    return and_(RubricRight.rubric_id.not_in(purged), RubricRight.rubric_id.not_in(class_rubrics),
                not_(and_(RubricRight.rubric_id.in_(temporary),
                          RubricRight.role != RubricRole.MANAGER)))


def _delete_groups(ctx: UnitContext, group_ids: list[int], label: str) -> None:
    surviving = _rights_left_by_steps_1_and_2(ctx)
    for chunk in _chunks(group_ids):
        ctx.effects.delete(ctx.connection, RubricRight.__table__,
                           and_(RubricRight.group_id.in_(chunk), surviving),
                           "droits de groupes supprimés")
    if not group_ids:
        ctx.effects.tally.add("droits de groupes supprimés", 0)
    _delete_ids(ctx, GroupManager.__table__, GroupManager.__table__.c.group_id, group_ids,
                "gestionnaires de groupes supprimés")
    _delete_ids(ctx, GroupMembership.__table__, GroupMembership.__table__.c.group_id,
                group_ids, "appartenances aux groupes supprimées")
    _delete_ids(ctx, Group.__table__, Group.__table__.c.id, group_ids, label)


def _delete_free_groups(ctx: UnitContext) -> None:
    """Year-limited free groups not attached to a teaching service, and the summary notices."""
    rows = ctx.connection.execute(select(Group.id, Group.name).where(
        deletable_free_groups_condition(ctx.establishment_id)).order_by(Group.name, Group.id)).all()
    ctx.effects.record("groupes libres supprimés", [row[1] for row in rows])
    kept = ctx.connection.execute(select(Group.name).where(
        Group.establishment_id == ctx.establishment_id, Group.kind == GroupKind.FREE,
        Group.lifetime == GroupLifetime.SCHOOL_YEAR,
        Group.id.not_in([row[0] for row in rows])).order_by(Group.name)).scalars().all()
    ctx.effects.record("groupes libres conservés (services d'enseignement)", kept)
    per_manager = groups_by_manager(ctx.connection, ctx.establishment_id)
    _delete_groups(ctx, [row[0] for row in rows], "groupes libres supprimés")
    for entry in per_manager:
        ctx.effects.send_message(
            ctx.connection, establishment_id=ctx.establishment_id,
            recipient_ids=[entry.manager_id], subject=SUMMARY_SUBJECT,
            body=summary_body(ctx.now.date(), [name for _, name in entry.groups]),
            sent_at=ctx.now, label="bilans envoyés aux gestionnaires")
    if not per_manager:
        ctx.effects.tally.add("bilans envoyés aux gestionnaires", 0)


def _scope(model: Any, ctx: UnitContext) -> Any:
    return and_(model.establishment_id == ctx.establishment_id,
                model.school_year_id.in_(ctx.obsolete_year_ids))


def _delete_where(ctx: UnitContext, model: Any, where: Any, label: str) -> None:
    ctx.effects.delete(ctx.connection, model.__table__, where, label)


def _delete_school_life(ctx: UnitContext) -> None:
    """Dates, alternations, services, courses, grades, absences, sanctions… of year N."""
    d = lambda model, label: _delete_where(ctx, model, _scope(model, ctx), label)
    child = lambda model, column, parent, label: _delete_where(
        ctx, model, column.in_(select(parent.id).where(_scope(parent, ctx))), label)
    d(CourseReplacement, "remplacements supprimés")
    d(AttendanceEvent, "absences, retards et départs supprimés")
    d(RollCall, "appels supprimés")
    d(Course, "cours supprimés")
    d(TeachingService, "services d'enseignement supprimés")
    d(Alternation, "alternances supprimées")
    child(Grade, Grade.assessment_id, Assessment, "notes supprimées")
    d(Assessment, "évaluations supprimées")
    child(ReportCardLine, ReportCardLine.report_card_id, ReportCard,
          "lignes de bulletins supprimées")
    d(ReportCard, "bulletins supprimés")
    d(ReportCardTemplate, "modèles de bulletins supprimés")
    d(SkillAssessment, "compétences supprimées")
    d(EndOfCycleReport, "bilans de fin de cycle supprimés")
    d(Sanction, "sanctions supprimées")
    d(Punishment, "punitions supprimées")
    d(MailMerge, "publipostages supprimés")
    child(EpiMember, EpiMember.epi_id, Epi, "participants aux EPI supprimés")
    d(Epi, "EPI supprimés")
    d(ClassCouncil, "conseils de classe supprimés")
    d(HeadTeacher, "professeurs principaux supprimés")
    d(Period, "périodes supprimées")
    d(OpeningDates, "dates d'ouverture et de fermeture supprimées")


def _delete_classes_and_option_groups(ctx: UnitContext) -> None:
    """Every class of the establishment up to year N, and the option groups.

    Which class each student was in is kept first (the AAF class history), so that the
    next step 4 can recognise a year N-1 class coming back.
    """
    if not ctx.effects.dry_run:
        from yearchange_tui.aaf.directory import snapshot_class_history

        snapshot_class_history(ctx.connection, ctx.establishment_id, ctx.year_id)
    classes = ctx.connection.execute(select(SchoolClass.id, SchoolClass.code).where(
        _scope(SchoolClass, ctx)).order_by(SchoolClass.code)).all()
    class_ids = [row[0] for row in classes]
    ctx.effects.record("classes supprimées", [row[1] for row in classes])
    _delete_ids(ctx, ClassMembership.__table__, ClassMembership.__table__.c.class_id, class_ids,
                "appartenances aux classes supprimées")
    _delete_ids(ctx, SchoolClass.__table__, SchoolClass.__table__.c.id, class_ids,
                "classes supprimées")
    groups = ctx.connection.execute(select(Group.id, Group.name).where(
        Group.establishment_id == ctx.establishment_id,
        or_(Group.kind == GroupKind.OPTION,
            and_(Group.kind == GroupKind.AAF, Group.school_year_id.in_(ctx.obsolete_year_ids))))
        .order_by(Group.name, Group.id)).all()
    ctx.effects.record("groupes d'options supprimés", [row[1] for row in groups])
    _delete_groups(ctx, [row[0] for row in groups], "groupes d'options supprimés")


def _delete_reports_and_credentials(ctx: UnitContext) -> None:
    """Import reports (AAF, CSV, timetable) and credentials files, with their files."""
    _delete_where(ctx, ImportReport, _scope(ImportReport, ctx), "bilans d'import supprimés")
    files = ctx.connection.execute(select(CredentialsFile.stored_file_id, StoredFile.relative_path)
                                   .join(StoredFile, StoredFile.id == CredentialsFile.stored_file_id)
                                   .where(_scope(CredentialsFile, ctx))
                                   .order_by(CredentialsFile.id)).all()
    _delete_where(ctx, CredentialsFile, _scope(CredentialsFile, ctx),
                  "fichiers d'identifiants supprimés")
    _delete_ids(ctx, StoredFile.__table__, StoredFile.__table__.c.id, [row[0] for row in files],
                "fichiers supprimés (base)")
    ctx.remove_files_after_commit([row[1] for row in files], "fichiers supprimés (disque)")


def _delete_archived_messages(ctx: UnitContext) -> None:
    """Messages in « Archivés » of users whose archive is limited to the school year."""
    owners = select(Person.id).where(
        Person.establishment_id == ctx.establishment_id,
        Person.message_archive_policy == MessageArchivePolicy.SCHOOL_YEAR)
    folders = select(MessageFolder.id).where(MessageFolder.kind == FolderKind.ARCHIVED,
                                             MessageFolder.owner_id.in_(owners))
    _delete_where(ctx, MessageCopy, MessageCopy.folder_id.in_(folders),
                  "messages archivés supprimés")


def _delete_address_books(ctx: UnitContext) -> None:
    _delete_where(ctx, AddressBookEntry,
                  AddressBookEntry.establishment_id == ctx.establishment_id,
                  "entrées de carnet d'adresses supprimées")


def _delete_student_photos(ctx: UnitContext) -> None:
    student = aliased(Person)
    photos = ctx.connection.execute(select(Photo.id, Photo.stored_file_id, StoredFile.relative_path)
                                    .join(student, student.id == Photo.person_id)
                                    .join(StoredFile, StoredFile.id == Photo.stored_file_id)
                                    .where(Photo.establishment_id == ctx.establishment_id,
                                           student.kind == PersonKind.STUDENT)
                                    .order_by(Photo.id)).all()
    _delete_ids(ctx, Photo.__table__, Photo.__table__.c.id, [row[0] for row in photos],
                "photos d'élèves supprimées")
    _delete_ids(ctx, StoredFile.__table__, StoredFile.__table__.c.id, [row[1] for row in photos],
                "fichiers supprimés (base)")
    ctx.remove_files_after_commit([row[2] for row in photos], "fichiers supprimés (disque)")


STEP_PHASES: dict[Step, Callable[[UnitContext], list[Phase]]] = {
    Step.PURGE_TRASH: purge_trash_phases,
    Step.ARCHIVE: archive_phases,
    Step.DELETE_OBSOLETE: delete_obsolete_phases,
}
