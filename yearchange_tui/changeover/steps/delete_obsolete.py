"""Step 3, « Suppression des données obsolètes N » (seed §6.3).

Refused while the archives of step 2 are missing or fail their checksum. Deletes the
year-limited free groups, attached to a teaching service or not (with the summary
message to their managers), the school-life data of year N, the classes and option groups, import reports and identifier files,
archived messages, address books and student photos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import and_, not_, or_, select
from sqlalchemy.orm import aliased

from yearchange_tui.changeover.notices import (
    SUMMARY_SUBJECT,
    deletable_free_groups_condition,
    groups_by_manager,
    summary_body,
    summary_enabled,
)
from yearchange_tui.changeover.steps.base import (
    GuardInput,
    Phase,
    StepDefinition,
    UnitContext,
    chunks,
    delete_ids,
    step_order_guard,
)
from yearchange_tui.changeover.verify import archive_problems, warm_checks
from yearchange_tui.ent.database import Database
from yearchange_tui.ent.models import (
    AddressBookEntry,
    Alternation,
    Assessment,
    AttendanceEvent,
    ClassCouncil,
    ClassMembership,
    Course,
    CourseReplacement,
    CredentialsFile,
    EndOfCycleReport,
    Epi,
    EpiMember,
    FolderKind,
    Grade,
    Group,
    GroupKind,
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
    Photo,
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
from yearchange_tui.workflow.establishments import EstablishmentRef
from yearchange_tui.workflow.guards import GuardRefused
from yearchange_tui.workflow.models import STEP_PREREQUISITES, Step, UnitStatus
from yearchange_tui.workflow.units import current_school_year, get_unit

GUARD_ARCHIVES = "archives-invalides"


def redo_command(uai: str) -> str:
    """The command that rebuilds an establishment's step-2 archives (named by step 3's refusal)."""
    return f"yearchange run archive --redo --uai {uai} --reason MOTIF"


def archives_guard(check: GuardInput) -> frozenset[str]:
    """Refuse step 3 while the archives of step 2 are missing or fail their checksum."""
    problems = archive_problems(check.session, check.storage_root, check.establishment.id,
                                check.school_year_id)
    if problems:
        raise GuardRefused(
            GUARD_ARCHIVES,
            f"{check.establishment.uai} : l'étape 3 est refusée, les archives de l'étape 2 sont "
            f"manquantes ou altérées : {'; '.join(problems[:5])}. Pour les reconstruire tant "
            f"que les données de l'année N sont là : {redo_command(check.establishment.uai)} "
            "(console : Maj+A sur la ligne de l'établissement).", check.establishment.uai)
    return frozenset()


def warm_archive_checks(database: Database, storage_root: Path,
                        establishment: EstablishmentRef) -> None:
    """Hash the establishment's step-2 archives before its unit claims and guards (the
    guard then only compares what it would hash with what was just hashed; see
    :class:`~yearchange_tui.changeover.verify.PassedChecks`). Nothing for a unit done."""
    with database.session() as session:
        year = current_school_year(session)
        unit = get_unit(session, establishment.id, year.id, Step.DELETE_OBSOLETE, create=False)
        if unit is not None and unit.status is UnitStatus.DONE:
            return
        warm_checks(session, storage_root, establishment.id, year.id)


def delete_obsolete_phases(ctx: UnitContext) -> list[Phase]:
    """Step 3: free groups first (their managers get the summary), then year-N data."""
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
    for chunk in chunks(group_ids):
        ctx.effects.delete(ctx.connection, RubricRight.__table__,
                           and_(RubricRight.group_id.in_(chunk), surviving),
                           "droits de groupes supprimés")
    if not group_ids:
        ctx.effects.tally.add("droits de groupes supprimés", 0)
    delete_ids(ctx, GroupManager.__table__, GroupManager.__table__.c.group_id, group_ids,
                "gestionnaires de groupes supprimés")
    delete_ids(ctx, GroupMembership.__table__, GroupMembership.__table__.c.group_id,
                group_ids, "appartenances aux groupes supprimées")
    delete_ids(ctx, Group.__table__, Group.__table__.c.id, group_ids, label)


def _delete_free_groups(ctx: UnitContext) -> None:
    """Every year-limited free group (teaching service or not), and the summary notices.

    Timetable option groups are deleted with the classes, whatever serves them, and are
    never listed to managers.
    """
    rows = ctx.connection.execute(select(Group.id, Group.name).where(
        deletable_free_groups_condition(ctx.establishment_id)).order_by(Group.name, Group.id)).all()
    ctx.effects.record("groupes libres supprimés", [row[1] for row in rows])
    # The summary goes out only when the project asked for it (seed §6.3).
    per_manager = (groups_by_manager(ctx.connection, ctx.establishment_id)
                   if summary_enabled(ctx.connection, ctx.establishment_id) else [])
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
    ctx.effects.snapshot_class_history(ctx.connection, ctx.establishment_id, ctx.year_id)
    classes = ctx.connection.execute(select(SchoolClass.id, SchoolClass.code).where(
        _scope(SchoolClass, ctx)).order_by(SchoolClass.code)).all()
    class_ids = [row[0] for row in classes]
    ctx.effects.record("classes supprimées", [row[1] for row in classes])
    delete_ids(ctx, ClassMembership.__table__, ClassMembership.__table__.c.class_id, class_ids,
                "appartenances aux classes supprimées")
    delete_ids(ctx, SchoolClass.__table__, SchoolClass.__table__.c.id, class_ids,
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
    delete_ids(ctx, StoredFile.__table__, StoredFile.__table__.c.id, [row[0] for row in files],
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
    delete_ids(ctx, Photo.__table__, Photo.__table__.c.id, [row[0] for row in photos],
                "photos d'élèves supprimées")
    delete_ids(ctx, StoredFile.__table__, StoredFile.__table__.c.id, [row[1] for row in photos],
                "fichiers supprimés (base)")
    ctx.remove_files_after_commit([row[2] for row in photos], "fichiers supprimés (disque)")


VIGILANCE = (
    ("Le service Cahier de textes n'est plus accessible après l'exécution de cette étape, "
    "et ce jusqu'à l'initialisation des données de la vie scolaire de l'année N+1 "
    "(cf étape 5)."),
    "Les exports MEN ne peuvent plus être générés pour l'année N.",
)
"""Seed §6.3, points de vigilance of step 3, word for word."""

DEFINITION = StepDefinition(
    key=Step.DELETE_OBSOLETE, number=3, label=Step.DELETE_OBSOLETE.label,
    prerequisites=STEP_PREREQUISITES[Step.DELETE_OBSOLETE],
    guards=(step_order_guard, archives_guard), phases=delete_obsolete_phases,
    warm=warm_archive_checks,
    dry_run="the same phases through the recorder: rows counted with the same WHERE, "
            "groups and classes listed, summary messages counted; the class history is "
            "not written",
    count_labels=("groupes libres supprimés", "classes supprimées",
                  "groupes d'options supprimés", "photos d'élèves supprimées"),
    confirm=True,
    vigilance=VIGILANCE)
