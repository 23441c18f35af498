"""Step 2, « Archivage de fin d'année N » (seed §6.2).

Archive rubrics first, one phase per batch of class cahiers de textes (one ZIP per
class), per batch of student binders (one ZIP per student, into their
porte-documents), the school-life archives, the sanctions message to the heads, then
class and temporary rubrics to the trash with their rights rewritten.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select, and_, delete, or_, select
from sqlalchemy.orm import Session

from yearchange_tui.changeover import archives as build
from yearchange_tui.changeover.effects import ZipBuilder
from yearchange_tui.changeover.steps.base import (
    Phase,
    StepDefinition,
    UnitContext,
    chunks,
    delete_ids,
    select_ids,
)
from yearchange_tui.ent.models import (
    ActivityDistribution,
    ArchiveRubric,
    BinderActivity,
    Document,
    Group,
    GroupKind,
    GroupMembership,
    Person,
    PersonKind,
    PersonProfile,
    Profile,
    Rubric,
    RubricKind,
    RubricRight,
    RubricRole,
    StoredFile,
    TrashEntry,
    TrashReason,
)
from yearchange_tui.workflow.audit import audit
from yearchange_tui.workflow.models import (
    STEP_PREREQUISITES,
    ArchiveManifest,
    Step,
    StepUnit,
    UnitStatus,
)
from yearchange_tui.workflow.units import checkpoint, merge_counts

BINDER_BATCH = 200
TEXTBOOK_BATCH = 6


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
    return select_ids(ctx, select(GroupMembership.person_id).join(
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
    ctx.effects.tally.add("rubriques d'archives créées", 0)
    admins = _admin_ids(ctx)
    for kind in missing:
        ctx.effects.create_rubric(
            ctx.connection, establishment_id=ctx.establishment_id, kind=RubricKind.ARCHIVE,
            name=kind.value, archive_kind=kind, owner_id=None, created_at=ctx.now,
            managers=admins, label="rubriques d'archives créées", rights_label="droits créés")


def _students(ctx: UnitContext) -> list[int]:
    return select_ids(ctx, select(Person.id).where(Person.establishment_id == ctx.establishment_id,
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
                         "que son sommaire.", "ARCHIVE-CAHIER-VIDE")
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
        # Only the activities of year N: distributions of earlier years stay in the database
        # (step 3 keeps the classeur) and must not go into « Classeur pédagogique <N> ».
        for student_id, activity_id in c.execute(
                select(ActivityDistribution.student_id, ActivityDistribution.activity_id)
                .join(BinderActivity, BinderActivity.id == ActivityDistribution.activity_id)
                .where(ActivityDistribution.student_id.in_(student_ids),
                       BinderActivity.school_year_id == ctx.year_id)):
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
    """The student's porte-documents (None in a dry run, where nothing is created)."""
    return ctx.effects.create_rubric(
        ctx.connection, establishment_id=ctx.establishment_id,
        kind=RubricKind.DOCUMENT_FOLDER, name="Porte-documents", archive_kind=None,
        owner_id=student_id, created_at=ctx.now, managers=[student_id],
        label="porte-documents créés")


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


def heads_query(establishment_id: int) -> Select[tuple[int]]:
    """The heads of an establishment (profile direction), by person id: who receives the
    sanctions CSV and the published AAF rejects."""
    return (select(PersonProfile.person_id).where(
        PersonProfile.establishment_id == establishment_id,
        PersonProfile.profile == Profile.DIRECTION).distinct().order_by(PersonProfile.person_id))


def _heads_of_establishment(ctx: UnitContext) -> list[int]:
    return select_ids(ctx, heads_query(ctx.establishment_id))


def _sanctions_phase(ctx: UnitContext) -> None:
    """The sanctions of the year, as a CSV attached to a message to the heads."""
    heads = _heads_of_establishment(ctx)
    data = build.sanctions_csv(_school_life(ctx))
    if not heads:
        ctx.warn("Aucun chef d'établissement (profil direction) : l'archive des sanctions ne "
                 "peut pas être envoyée.", "ARCHIVE-SANS-DIRECTION")
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
    ctx.effects.record_manifest(
        ctx.connection, establishment_id=ctx.establishment_id, school_year_id=ctx.year_id,
        key="sanctions", kind="sanctions", relative_path=path, data=data, created_at=ctx.now,
        label="manifestes enregistrés")
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
    teachers = select_ids(ctx, select(PersonProfile.person_id).where(
        PersonProfile.establishment_id == ctx.establishment_id,
        PersonProfile.profile == Profile.TEACHER).distinct().order_by(PersonProfile.person_id))
    existing = [tuple(row) for chunk in chunks(target_ids) for row in c.execute(
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
            ctx.warn(f"La rubrique « {name} » n'aura plus de gestionnaire dans la corbeille.",
                      "RUBRIQUE-SANS-GESTIONNAIRE")
        for (person_id, group_id), role in sorted(
                rights.items(), key=lambda item: (item[0][0] or 0, item[0][1] or 0)):
            final.append({"rubric_id": rubric_id, "person_id": person_id, "group_id": group_id,
                          "role": role.value})
    delete_ids(ctx, RubricRight.__table__, RubricRight.__table__.c.rubric_id, target_ids,
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


DEFINITION = StepDefinition(
    key=Step.ARCHIVE, number=2, label=Step.ARCHIVE.label,
    prerequisites=STEP_PREREQUISITES[Step.ARCHIVE], phases=archive_phases,
    dry_run="the same phases through the recorder: every archive built into a sink that "
            "keeps nothing (entries, sizes, checksums), rights rewrite and messages counted",
    count_labels=("archives cahier de textes", "archives classeur", "archives vie scolaire",
                  "rubriques mises à la corbeille", "droits créés"),
    confirm=True)


# -- redo (a way out of a blocked step 3) ---------------------------------------------------

REBUILT_PHASE_PREFIXES = ("cahiers-de-textes:", "classeurs:", "vie-scolaire")
"""The phases that write the ZIP archives; a redo runs them again."""
REBUILT_KEY_PREFIXES = ("cahier-de-textes:", "classeur:", "vie-scolaire:")
"""The archive keys those phases record."""

GUARD_REDO = "refaire-archivage"


class RedoRefused(Exception):
    """The archives of step 2 cannot be rebuilt (French message, stable code)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = GUARD_REDO
        self.message = message


def _rebuilt(name: str, prefixes: tuple[str, ...]) -> bool:
    return name.startswith(prefixes)


def reset_archives_for_redo(session: Session, establishment_id: int, uai: str,
                            school_year_id: int, reason: str) -> int:
    """Forget an establishment's step-2 ZIP archives so its step-2 unit writes them again.

    Allowed while year N's data is still there: step 3 has committed nothing for the
    establishment. Deletes the archives' manifests, documents and stored-file rows (the
    files are rewritten in place by the next run, atomically), and puts the step-2 unit
    back to « planifié » with a checkpoint that keeps the phases that wrote no archive
    (archive rubrics, the sanctions message already sent, the move to the trash), so the
    runner (:meth:`ChangeoverRunner.run_unit`) runs only the archive phases again.
    Audited with the reason. The caller commits (one transaction) and then runs the unit.

    Returns:
        The number of archives forgotten.

    Raises:
        RedoRefused: step 3 already ran (even in part), step 2 never ran or is running,
            no reason was given, or only the sanctions file (attached to a message
            already sent) is damaged.
    """
    if not reason.strip():
        raise RedoRefused("refaire l'archivage doit être motivé : --reason MOTIF")
    units = {row.step: row for row in session.scalars(select(StepUnit).where(
        StepUnit.establishment_id == establishment_id,
        StepUnit.school_year_id == school_year_id,
        StepUnit.step.in_([Step.ARCHIVE, Step.DELETE_OBSOLETE])))}
    step3 = units.get(Step.DELETE_OBSOLETE)
    if step3 is not None and (step3.status in (UnitStatus.DONE, UnitStatus.RUNNING)
                              or checkpoint(step3).get("phases")):
        raise RedoRefused(
            f"{uai} : l'étape 3 (Suppression des données obsolètes N) a déjà supprimé des "
            "données de l'année N : les archives de l'étape 2 ne peuvent plus être "
            "reconstruites. Restaurez-les depuis la sauvegarde du stockage.")
    step2 = units.get(Step.ARCHIVE)
    state = checkpoint(step2) if step2 is not None else {}
    if step2 is None or not state.get("phases"):
        raise RedoRefused(f"{uai} : l'étape 2 n'a encore rien archivé : lancez-la "
                          f"(yearchange run archive --uai {uai}).")
    if step2.status is UnitStatus.RUNNING:
        raise RedoRefused(f"{uai} : l'étape 2 est en cours ; attendez sa fin ou annulez-la.")
    manifests = session.execute(select(
        ArchiveManifest.id, ArchiveManifest.archive_key, ArchiveManifest.stored_file_id).where(
        ArchiveManifest.establishment_id == establishment_id,
        ArchiveManifest.school_year_id == school_year_id)).all()
    rebuilt = [row for row in manifests if _rebuilt(row.archive_key, REBUILT_KEY_PREFIXES)]
    file_ids = [row.stored_file_id for row in rebuilt if row.stored_file_id is not None]
    for chunk in chunks(file_ids):
        session.execute(delete(Document).where(Document.stored_file_id.in_(chunk)))
    for chunk in chunks([row.id for row in rebuilt]):
        session.execute(delete(ArchiveManifest).where(ArchiveManifest.id.in_(chunk)))
    for chunk in chunks(file_ids):
        session.execute(delete(StoredFile).where(StoredFile.id.in_(chunk)))
    kept = {name: counts for name, counts in state.get("phases", {}).items()
            if not _rebuilt(name, REBUILT_PHASE_PREFIXES)}
    totals: dict[str, Any] = {}
    for counts in kept.values():
        totals = merge_counts(totals, counts)
    step2.checkpoint = json.dumps({"phases": kept, "counts": totals,
                                   "warnings": [], "pending_files": []},
                                  ensure_ascii=False, sort_keys=True)
    step2.status = UnitStatus.PENDING
    step2.finished_at = None
    step2.progress_done = 0
    step2.counts = "{}"
    step2.error = f"archives à reconstruire (motif : {reason})"
    audit(session, "redo-archive", "granted", establishment_id=establishment_id,
          step=Step.ARCHIVE.value, override=True,
          details={"reason": reason, "archives": len(rebuilt)})
    return len(rebuilt)
