"""Steps 1–3, the dry run, notices and guards on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from changeover_support import WINDOW, Academy, count, make_academy, storage_files, table_rows
from sqlalchemy import func, select, text

from yearchange_tui.changeover.notices import SUMMARY_SUBJECT, WARNING_SUBJECT
from yearchange_tui.changeover.runner import ReadOnlyError
from yearchange_tui.workflow.guards import (
    GUARD_AAF_FREEZE,
    GUARD_IMPORT_FREEZE,
    GUARD_STEP_ORDER,
    GuardRefused,
    check_aaf_import_allowed,
    check_timetable_or_csv_import_allowed,
    grant_override,
)
from yearchange_tui.workflow.models import ArchiveManifest, AuditEntry, Step, StepUnit, UnitStatus
from yearchange_tui.workflow.units import current_school_year

STEPS_1_TO_3 = (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE)


@pytest.fixture
def academy(database_url: str, tmp_path: Path) -> Iterator[Academy]:
    academy = make_academy(database_url, tmp_path / "storage")
    yield academy
    academy.database.dispose()


def _run_all(academy: Academy) -> None:
    runner = academy.runner()
    establishments = runner.establishments()
    for step in STEPS_1_TO_3:
        outcomes = runner.run(step, establishments)
        assert [o.status for o in outcomes] == ["done"] * len(establishments), outcomes


def test_dry_run_changes_no_row_no_file_no_message(academy: Academy) -> None:
    rows_before = table_rows(academy.database)
    files_before = storage_files(academy.storage)
    runner = academy.runner()
    outcomes = runner.dry_run(runner.establishments())
    assert {o.step for o in outcomes} == set(STEPS_1_TO_3)
    assert table_rows(academy.database) == rows_before
    assert storage_files(academy.storage) == files_before
    reports = count(academy.database, "SELECT COUNT(*) FROM dry_run_reports")
    assert reports == 3


def test_real_run_does_exactly_what_the_dry_run_announced(academy: Academy) -> None:
    runner = academy.runner()
    establishments = runner.establishments()
    planned = {o.step: o.counts for o in runner.dry_run(establishments)}
    for step in STEPS_1_TO_3:
        [outcome] = runner.run(step, establishments)
        assert outcome.status == "done"
        assert outcome.counts == planned[step]
        assert outcome.differences == []
    assert planned[Step.PURGE_TRASH]["rubriques supprimées"] > 0
    assert planned[Step.ARCHIVE]["archives cahier de textes"] > 20
    assert planned[Step.DELETE_OBSOLETE]["classes supprimées"] > 20


def test_the_dry_run_warns_about_recent_trash(academy: Academy) -> None:
    runner = academy.runner()
    outcomes = runner.dry_run(runner.establishments(), (Step.PURGE_TRASH,))
    warnings = outcomes[0].warnings
    assert warnings and all("sans possibilité de récupération" in w for w in warnings)
    later = academy.runner(now=WINDOW + dt.timedelta(days=60))
    assert later.dry_run(later.establishments(), (Step.PURGE_TRASH,))[0].warnings == []


def test_after_steps_1_to_3_archives_verify_and_no_class_remains(academy: Academy) -> None:
    _run_all(academy)
    from yearchange_tui.changeover.verify import verify

    with academy.database.session() as session:
        year = current_school_year(session)
        [report] = verify(session, academy.storage, [1], year.id)
        manifests = session.execute(select(ArchiveManifest.relative_path,
                                           ArchiveManifest.entry_count)).all()
    assert report.problems == [] and report.archives_checked == len(manifests)
    for relative_path, entries in manifests:
        if relative_path.endswith(".zip"):
            with zipfile.ZipFile(academy.storage / relative_path) as archive:
                assert archive.testzip() is None
                assert len(archive.namelist()) == entries
                assert "index.html" in archive.namelist() or relative_path.count("vie-scolaire")
    assert count(academy.database, "SELECT COUNT(*) FROM classes") == 0
    assert not list(academy.storage.rglob("*.part"))


def test_running_a_finished_step_again_changes_nothing(academy: Academy) -> None:
    _run_all(academy)
    rows = table_rows(academy.database)
    files = storage_files(academy.storage)
    runner = academy.runner()
    for step in STEPS_1_TO_3:
        assert [o.status for o in runner.run(step, runner.establishments())] == ["already-done"]
    assert table_rows(academy.database) == rows
    assert storage_files(academy.storage) == files


# -- step 1 -------------------------------------------------------------------------------

def test_purge_deletes_last_years_archives_and_this_years_trash_with_files(
        academy: Academy) -> None:
    db = academy.database
    trashed_files = [row[0] for row in db.engine.connect().execute(text(
        "SELECT f.relative_path FROM trash_entries t JOIN documents d ON d.rubric_id = t.rubric_id "
        "JOIN stored_files f ON f.id = d.stored_file_id"))]
    assert trashed_files and all((academy.storage / p).exists() for p in trashed_files)
    runner = academy.runner()
    runner.run(Step.ARCHIVE, runner.establishments())
    archived = count(db, "SELECT COUNT(*) FROM trash_entries WHERE reason = 'year_archive' "
                         "AND school_year_id = (SELECT id FROM school_years WHERE is_current)")
    [outcome] = runner.run(Step.PURGE_TRASH, runner.establishments())
    assert outcome.status == "done"
    assert not any((academy.storage / p).exists() for p in trashed_files)
    # What step 2 put in the trash this year stays for one full year.
    assert count(db, "SELECT COUNT(*) FROM trash_entries") == archived > 0
    assert count(db, "SELECT COUNT(*) FROM rubrics WHERE name LIKE 'Rubrique supprimée%'") == 0


# -- step 2: rights ------------------------------------------------------------------------

def _rights(db, rubric_id: int) -> set[tuple[int | None, int | None, str]]:  # type: ignore[no-untyped-def]
    with db.engine.connect() as connection:
        return {tuple(row) for row in connection.execute(text(
            "SELECT person_id, group_id, role FROM rubric_rights WHERE rubric_id = :r"),
            {"r": rubric_id})}


def test_class_rubric_rights_are_rewritten_exactly(academy: Academy) -> None:
    db = academy.database
    with db.engine.begin() as connection:
        rubric_id = connection.execute(text(
            "SELECT id FROM rubrics WHERE kind = 'class' AND school_year_id = "
            "(SELECT id FROM school_years WHERE is_current) ORDER BY name LIMIT 1")).scalar()
        # A non-teaching, non-admin manager (the CPE): must become visitor.
        cpe = connection.execute(text(
            "SELECT person_id FROM person_profiles WHERE function_code = 'EDU' LIMIT 1")).scalar()
        connection.execute(text("INSERT INTO rubric_rights (rubric_id, person_id, role) "
                                "VALUES (:r, :p, 'gestionnaire')"), {"r": rubric_id, "p": cpe})
        admins = {row[0] for row in connection.execute(text(
            "SELECT m.person_id FROM group_memberships m JOIN groups g ON g.id = m.group_id "
            "WHERE g.kind = 'admins'"))}
        teachers = {row[0] for row in connection.execute(text(
            "SELECT person_id FROM person_profiles WHERE profile = 'National_ENS'"))}
    before = _rights(db, rubric_id)
    assert {role for _, _, role in before} >= {"gestionnaire", "redacteur", "moderateur",
                                               "visiteur", "redacteur_mise_en_ligne"}
    runner = academy.runner()
    runner.run(Step.ARCHIVE, runner.establishments())
    after = _rights(db, rubric_id)
    expected = ({(a, None, "gestionnaire") for a in admins}
                | {(t, None, "visiteur") for t in teachers - admins}
                | {(cpe, None, "visiteur")})
    assert after == expected
    assert count(db, "SELECT COUNT(*) FROM trash_entries WHERE rubric_id = :r AND "
                     "reason = 'year_archive'", r=rubric_id) == 1


def test_temporary_rubric_keeps_its_managers_and_nothing_else(academy: Academy) -> None:
    db = academy.database
    rubric_id = count(db, "SELECT MIN(id) FROM rubrics WHERE kind = 'temporary'")
    before = _rights(db, rubric_id)
    managers = {(p, g) for p, g, role in before if role == "gestionnaire"}
    assert any(g for _, g in managers) and any(p for p, _ in managers)
    with db.engine.connect() as connection:
        admins = {row[0] for row in connection.execute(text(
            "SELECT m.person_id FROM group_memberships m JOIN groups g ON g.id = m.group_id "
            "WHERE g.kind = 'admins'"))}
    runner = academy.runner()
    runner.run(Step.ARCHIVE, runner.establishments())
    after = _rights(db, rubric_id)
    assert after == {(p, g, "gestionnaire") for p, g in managers} | {
        (a, None, "gestionnaire") for a in admins}


def test_archives_land_in_their_rubrics_and_sanctions_reach_the_heads(academy: Academy) -> None:
    runner = academy.runner()
    runner.run(Step.ARCHIVE, runner.establishments())
    db = academy.database
    with db.engine.connect() as connection:
        per_rubric = dict(connection.execute(text(
            "SELECT r.name, COUNT(d.id) FROM rubrics r JOIN documents d ON d.rubric_id = r.id "
            "WHERE r.kind = 'archive' AND d.description = 'Archive du changement d''année' "
            "GROUP BY r.name")).all())
        classes = connection.execute(text("SELECT COUNT(*) FROM classes")).scalar()
        binder_docs = connection.execute(text(
            "SELECT COUNT(*) FROM documents d JOIN rubrics r ON r.id = d.rubric_id "
            "WHERE r.kind = 'document_folder' AND d.title LIKE 'Classeur pédagogique%'")).scalar()
        students = connection.execute(text(
            "SELECT COUNT(*) FROM people WHERE kind = 'student'")).scalar()
        heads = connection.execute(text(
            "SELECT COUNT(*) FROM message_copies c JOIN messages m ON m.id = c.message_id "
            "JOIN message_attachments a ON a.message_id = m.id "
            "WHERE m.subject LIKE '[Changement d''année] Archive des sanctions%'")).scalar()
    assert per_rubric["Archives des cahiers de textes"] == classes
    for name in ("Archives des registres d'appel", "Archives des relevés d'évaluations",
                 "Archivage des relevés de compétences", "Archives des bulletins périodiques",
                 "Archivage des bilans de fin de cycle", "Archives des punitions",
                 "Archive des EPI", "Archives des statistiques d'absences"):
        assert per_rubric[name] == 1, name
    assert binder_docs == students
    assert heads == 2  # principal and deputy


def test_textbook_archive_is_a_site_with_sessions_homework_and_activities(
        academy: Academy) -> None:
    runner = academy.runner()
    runner.run(Step.ARCHIVE, runner.establishments())
    path = count(academy.database, "SELECT 0")  # noqa: F841 - keep the connection warm
    with academy.database.engine.connect() as connection:
        relative = connection.execute(text(
            "SELECT relative_path FROM archive_manifests WHERE archive_key LIKE "
            "'cahier-de-textes:%' ORDER BY archive_key LIMIT 1")).scalar()
    with zipfile.ZipFile(academy.storage / relative) as archive:
        names = archive.namelist()
        index = archive.read("index.html").decode("utf-8")
    assert any(n.startswith("seances/") for n in names)
    assert any(n.startswith("travail-a-faire/") for n in names)
    assert any(n.startswith("activites/") for n in names)
    assert any(n.startswith("pieces-jointes/") for n in names)
    for link in ("seances/00001.html", "travail-a-faire/00001.html"):
        assert f'href="{link}"' in index


def test_school_life_csv_follows_french_spreadsheet_conventions(academy: Academy) -> None:
    runner = academy.runner()
    runner.run(Step.ARCHIVE, runner.establishments())
    with academy.database.engine.connect() as connection:
        relative = connection.execute(text(
            "SELECT relative_path FROM archive_manifests WHERE archive_key = "
            "'vie-scolaire:releves-d-evaluations'")).scalar()
    with zipfile.ZipFile(academy.storage / relative) as archive:
        data = archive.read(archive.namelist()[0])
    assert data.startswith(b"\xef\xbb\xbf")
    header, first = data.decode("utf-8-sig").split("\r\n")[:2]
    assert header.startswith("Élève;Période;Matière")
    assert first.count(";") == header.count(";")


def _archive_member(academy: Academy, key: str, establishment_id: int,
                    member: str | None = None) -> str:
    with academy.database.engine.connect() as connection:
        relative = connection.execute(text(
            "SELECT relative_path FROM archive_manifests WHERE archive_key = :key "
            "AND establishment_id = :establishment"),
            {"key": key, "establishment": establishment_id}).scalar_one()
    with zipfile.ZipFile(academy.storage / relative) as archive:
        return archive.read(member or archive.namelist()[0]).decode("utf-8-sig")


def test_archives_show_dates_times_and_numbers_as_a_french_school_office_reads_them(
        academy: Academy) -> None:
    from yearchange_tui.ent.models import (
        AttendanceEvent,
        Grade,
        Homework,
        Person,
        RollCall,
        SchoolClass,
        TextbookSession,
    )

    runner = academy.runner()
    runner.run(Step.ARCHIVE, runner.establishments())
    with academy.database.session() as session:
        call = session.scalars(select(RollCall).order_by(RollCall.taken_at, RollCall.id)).first()
        assert call is not None
        establishment_id = call.establishment_id
        event = session.scalars(select(AttendanceEvent).where(
            AttendanceEvent.establishment_id == establishment_id)
            .order_by(AttendanceEvent.starts_at, AttendanceEvent.id)).first()
        assert event is not None
        school_class = session.scalars(select(SchoolClass).where(
            SchoolClass.establishment_id == establishment_id).order_by(SchoolClass.code)).first()
        assert school_class is not None
        first_session = session.scalars(select(TextbookSession).where(
            TextbookSession.class_id == school_class.id)
            .order_by(TextbookSession.held_on, TextbookSession.id)).first()
        first_homework = session.scalars(select(Homework).where(
            Homework.class_id == school_class.id)
            .order_by(Homework.due_on, Homework.id)).first()
        assert first_session is not None and first_homework is not None
        fractional = session.scalar(select(func.count()).select_from(Grade).where(
            Grade.score.is_not(None), Grade.score != func.round(Grade.score)))
        calls = _archive_member(academy, "vie-scolaire:registres-d-appel", establishment_id)
        events = _archive_member(academy, "vie-scolaire:registres-d-appel", establishment_id,
                                 "absences-retards-departs.csv")
        label = {"absence": "Absence", "late": "Retard", "departure": "Départ"}[event.kind.value]
        expected_call = (f"{call.id};{call.taken_at:%d/%m/%Y};{call.taken_at:%H:%M};")
        student = session.get(Person, event.student_id)
        assert student is not None
        expected_event = (f"{event.roll_call_id};{student.last_name} {student.first_name};{label};"
                          f"{event.starts_at:%d/%m/%Y %H:%M};{event.ends_at:%d/%m/%Y %H:%M};"
                          f"{'oui' if event.justified else 'non'};")
        session_date = f"{first_session.held_on:%d/%m/%Y}"
        homework_due = f"{first_homework.due_on:%d/%m/%Y}"
        homework_given = f"{first_homework.given_on:%d/%m/%Y}"
        class_key = f"cahier-de-textes:{school_class.code}"
    assert calls.split("\r\n")[1].startswith(expected_call)
    assert events.split("\r\n")[1].startswith(expected_event)
    page = _archive_member(academy, class_key, establishment_id, "seances/00001.html")
    assert f"<p>{session_date} — " in page
    homework = _archive_member(academy, class_key, establishment_id,
                               "travail-a-faire/00001.html")
    assert f"Travail à faire pour le {homework_due}" in homework
    assert f"Donné le {homework_given}" in homework
    grades = _archive_member(academy, "vie-scolaire:releves-d-evaluations", establishment_id)
    scores = [line.split(";")[6] for line in grades.split("\r\n")[1:] if line]
    assert scores and all(score == "" or score.replace(",", "").isdigit() for score in scores)
    if fractional:
        assert any("," in score for score in scores)


# -- step 3 ---------------------------------------------------------------------------------

def test_step_3_deletes_each_obsolete_kind_and_keeps_the_rest(academy: Academy) -> None:
    db = academy.database
    kept_before = {
        "service_groups": count(db, "SELECT COUNT(DISTINCT g.id) FROM groups g JOIN "
                                    "teaching_services t ON t.group_id = g.id WHERE g.kind='free'"),
        "unlimited": count(db, "SELECT COUNT(*) FROM groups WHERE kind='free' "
                               "AND lifetime='unlimited'"),
        "people": count(db, "SELECT COUNT(*) FROM people"),
        "unlimited_archived": count(
            db, "SELECT COUNT(*) FROM message_copies c JOIN message_folders f ON f.id=c.folder_id "
                "JOIN people p ON p.id=c.owner_id WHERE f.kind='archived' "
                "AND p.message_archive_policy='unlimited'"),
        "regular": count(db, "SELECT COUNT(*) FROM rubrics WHERE kind IN ('regular','archive') "
                             "AND id NOT IN (SELECT rubric_id FROM trash_entries)"),
    }
    assert all(kept_before.values())
    photo_files = [row[0] for row in db.engine.connect().execute(text(
        "SELECT f.relative_path FROM photos p JOIN stored_files f ON f.id = p.stored_file_id"))]
    _run_all(academy)
    for table in ("periods", "opening_dates", "alternations", "teaching_services", "courses",
                  "course_replacements", "grades", "assessments", "attendance_events",
                  "roll_calls", "sanctions", "punishments", "mail_merges", "epis", "epi_members",
                  "class_councils", "head_teachers", "report_card_templates", "report_cards",
                  "report_card_lines", "skill_assessments", "end_of_cycle_reports", "classes",
                  "class_memberships", "import_reports", "credentials_files",
                  "address_book_entries", "photos"):
        assert count(db, f"SELECT COUNT(*) FROM {table}") == 0, table
    assert count(db, "SELECT COUNT(*) FROM groups WHERE kind = 'option'") == 0
    # Seed §6.3: the lifetime rule deletes every year-limited free group, teaching service
    # or not (the teaching-service exception is the option-group deletion's).
    assert count(db, "SELECT COUNT(*) FROM groups WHERE kind='free' AND lifetime='school_year'"
                 ) == 0
    assert count(db, "SELECT COUNT(*) FROM groups WHERE kind='free' AND lifetime='unlimited'"
                 ) == kept_before["unlimited"]
    assert count(db, "SELECT COUNT(*) FROM people") == kept_before["people"]
    assert count(db, "SELECT COUNT(*) FROM message_copies c JOIN message_folders f "
                     "ON f.id=c.folder_id JOIN people p ON p.id=c.owner_id WHERE f.kind='archived'"
                     " AND p.message_archive_policy='school_year'") == 0
    assert count(db, "SELECT COUNT(*) FROM message_copies c JOIN message_folders f "
                     "ON f.id=c.folder_id JOIN people p ON p.id=c.owner_id WHERE f.kind='archived'"
                     " AND p.message_archive_policy='unlimited'") == kept_before["unlimited_archived"]
    assert count(db, "SELECT COUNT(*) FROM rubrics WHERE kind IN ('regular','archive')"
                 ) == kept_before["regular"]
    assert not any((academy.storage / path).exists() for path in photo_files)
    assert count(db, "SELECT COUNT(*) FROM groups WHERE kind = 'admins'") == 1


def test_step_3_refuses_altered_or_missing_archives(academy: Academy) -> None:
    runner = academy.runner()
    establishments = runner.establishments()
    runner.run(Step.PURGE_TRASH, establishments)
    runner.run(Step.ARCHIVE, establishments)
    with academy.database.engine.connect() as connection:
        relative = connection.execute(text(
            "SELECT relative_path FROM archive_manifests ORDER BY id LIMIT 1")).scalar()
    path = academy.storage / relative
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    classes = count(academy.database, "SELECT COUNT(*) FROM classes")
    [outcome] = runner.run(Step.DELETE_OBSOLETE, establishments)
    assert outcome.status == "refused" and outcome.code == "archives-invalides"
    assert "SHA-256" in outcome.error
    assert count(academy.database, "SELECT COUNT(*) FROM classes") == classes
    path.unlink()
    [outcome] = runner.run(Step.DELETE_OBSOLETE, establishments)
    assert outcome.status == "refused" and "absente" in outcome.error
    path.write_bytes(original)
    [outcome] = runner.run(Step.DELETE_OBSOLETE, establishments)
    assert outcome.status == "done"


# -- notices --------------------------------------------------------------------------------

EXPECTED_WARNING = (
    "Bonjour,\n\n"
    "Dans le cadre de la procédure de changement d'année, les groupes libres à durée de vie "
    "limitée à l'année scolaire seront supprimés le 10 juillet 2026.\n\n"
    "Vous trouverez ci-après la liste des groupes dont vous êtes le ou l'un des gestionnaires "
    "et qui seront supprimés :\n\n"
    "{lines}\n\n"
    "Si vous créez de nouveaux groupes libres à durée de vie limitée à l'année scolaire avant "
    "le 10 juillet 2026, ils seront également supprimés.\n\n"
    "Cordialement")
EXPECTED_SUMMARY = (
    "Bonjour,\n\n"
    "Dans le cadre de la procédure de changement d'année, les groupes libres à durée de vie "
    "limitée à l'année scolaire ont été supprimés le 8 juillet 2026.\n\n"
    "Vous trouverez ci-après la liste des groupes supprimés dont vous étiez le ou l'un des "
    "gestionnaires :\n\n"
    "{lines}\n\n"
    "Cordialement")


def _messages(db, subject: str) -> dict[int, list[str]]:  # type: ignore[no-untyped-def]
    with db.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT c.owner_id, m.body FROM messages m JOIN message_copies c ON c.message_id = m.id"
            " WHERE m.subject = :s"), {"s": subject}).all()
    result: dict[int, list[str]] = {}
    for owner, body in rows:
        result.setdefault(owner, []).append(body)
    return result


def _managed_deletable_groups(db) -> dict[int, list[tuple[int, str]]]:  # type: ignore[no-untyped-def]
    with db.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT m.person_id, g.id, g.name FROM group_managers m JOIN groups g ON g.id = m.group_id"
            " WHERE g.kind = 'free' AND g.lifetime = 'school_year' "
            "ORDER BY m.person_id, g.name, g.id")).all()
    managed: dict[int, list[tuple[int, str]]] = {}
    for person, group_id, name in rows:
        managed.setdefault(person, []).append((group_id, name))
    return managed


def test_warnings_give_each_manager_one_message_with_the_seed_text(academy: Academy) -> None:
    db = academy.database
    managed = _managed_deletable_groups(db)
    assert managed and any(len(groups) > 1 for groups in managed.values())
    runner = academy.runner()
    runner.send_warnings(runner.establishments(), dt.date(2026, 7, 10))
    messages = _messages(db, WARNING_SUBJECT)
    assert WARNING_SUBJECT == ("[Changement d’année] Suppression des groupes libres limités à "
                               "l’année scolaire")
    assert set(messages) == set(managed)
    for manager, groups in managed.items():
        lines = "\n".join(
            f"- {name} ([modifier la durée de vie]"
            f"(https://ent.exemple.fr/groupes/{group_id}/duree-de-vie))"
            for group_id, name in groups)
        assert messages[manager] == [EXPECTED_WARNING.format(lines=lines)]
    listed = "".join(body for bodies in messages.values() for body in bodies)
    # Attached to a teaching service, limited to the year: deleted by step 3, so warned.
    assert "Soutien mathématiques" in listed and "Aide aux devoirs" in listed
    assert "LAT" not in listed  # timetable option groups are never listed


def test_step_3_sends_the_seed_summary_to_each_manager(academy: Academy) -> None:
    db = academy.database
    managed = _managed_deletable_groups(db)
    _run_all(academy)
    messages = _messages(db, SUMMARY_SUBJECT)
    assert SUMMARY_SUBJECT == ("[Changement d'année] Bilan des suppressions de groupes libres "
                               "limités à l'année scolaire")
    assert set(messages) == set(managed)
    for manager, groups in managed.items():
        lines = "\n".join(f"- {name}" for _, name in groups)
        assert messages[manager] == [EXPECTED_SUMMARY.format(lines=lines)]
    listed = "".join(body for bodies in messages.values() for body in bodies)
    assert "Soutien mathématiques" in listed
    # Timetable option groups are deleted anyway and never listed to the managers.
    assert "LAT" not in listed
    assert count(db, "SELECT COUNT(*) FROM groups WHERE kind = 'option'") == 0


def test_dry_run_lists_year_limited_free_groups_of_teaching_services_with_the_rest(
        academy: Academy) -> None:
    db = academy.database
    service_groups = {row[0] for row in db.engine.connect().execute(text(
        "SELECT DISTINCT g.name FROM groups g JOIN teaching_services t ON t.group_id = g.id "
        "WHERE g.kind = 'free' AND g.lifetime = 'school_year'"))}
    assert service_groups >= {"Soutien mathématiques", "Aide aux devoirs"}
    runner = academy.runner()
    [outcome] = runner.dry_run(runner.establishments(), (Step.DELETE_OBSOLETE,))
    deleted = outcome.lists["groupes libres supprimés"]
    assert service_groups <= set(deleted)
    assert not any("conservés" in label for label in outcome.lists)
    assert outcome.counts["groupes libres supprimés"] == count(
        db, "SELECT COUNT(*) FROM groups WHERE kind = 'free' AND lifetime = 'school_year'")


# -- guards and audit -----------------------------------------------------------------------

def test_step_3_waits_for_steps_1_and_2_and_an_override_is_audited(academy: Academy) -> None:
    runner = academy.runner()
    establishments = runner.establishments()
    rows = table_rows(academy.database)
    [outcome] = runner.run(Step.DELETE_OBSOLETE, establishments)
    assert outcome.status == "refused" and outcome.code == GUARD_STEP_ORDER
    assert "étape 1" in outcome.error and "étape 2" in outcome.error
    assert table_rows(academy.database) == rows
    with academy.database.session() as session:
        unit = session.scalar(select(StepUnit).where(StepUnit.step == Step.DELETE_OBSOLETE))
        assert unit is not None and unit.status is UnitStatus.BLOCKED
        refused = session.scalars(select(AuditEntry).where(AuditEntry.outcome == "refused")).all()
        assert refused and refused[0].os_user
        grant_override(session, GUARD_STEP_ORDER, "Archivage fait à la main par le support", 1)
    runner.run(Step.ARCHIVE, establishments)  # step 3 still needs valid archives
    [outcome] = runner.run(Step.DELETE_OBSOLETE, establishments)
    assert outcome.status == "done"
    with academy.database.session() as session:
        overridden = session.scalars(select(AuditEntry).where(
            AuditEntry.override.is_(True))).all()
        assert {entry.action for entry in overridden} == {"override", "run"}


def test_aaf_imports_are_frozen_from_step_1_until_step_3(academy: Academy) -> None:
    runner = academy.runner()
    establishments = runner.establishments()
    with academy.database.session() as session:
        year = current_school_year(session).id
        assert check_aaf_import_allowed(session, [1], year) is False
    runner.run(Step.PURGE_TRASH, establishments)
    with academy.database.session() as session:
        with pytest.raises(GuardRefused) as refusal:
            check_aaf_import_allowed(session, [1], year)
        assert refusal.value.code == GUARD_AAF_FREEZE and "import AAF refusé" in str(refusal.value)
    runner.run(Step.ARCHIVE, establishments)
    runner.run(Step.DELETE_OBSOLETE, establishments)
    with academy.database.session() as session:
        assert check_aaf_import_allowed(session, [1], year) is False


def test_timetable_imports_are_refused_from_step_2_until_step_4(academy: Academy) -> None:
    runner = academy.runner()
    with academy.database.session() as session:
        year = current_school_year(session).id
        assert check_timetable_or_csv_import_allowed(session, 1, year) is False
    runner.run(Step.ARCHIVE, runner.establishments())
    with academy.database.session() as session:
        with pytest.raises(GuardRefused) as refusal:
            check_timetable_or_csv_import_allowed(session, 1, year, "import d'emploi du temps")
        assert refusal.value.code == GUARD_IMPORT_FREEZE
        grant_override(session, GUARD_IMPORT_FREEZE, "Correction urgente demandée par la MOA", 1)
    with academy.database.session() as session:
        assert check_timetable_or_csv_import_allowed(session, 1, year) is True


def test_read_only_engine_refuses_every_change(academy: Academy) -> None:
    runner = academy.runner(read_only=True)
    establishments = runner.establishments()
    with pytest.raises(ReadOnlyError):
        runner.run(Step.PURGE_TRASH, establishments)
    with pytest.raises(ReadOnlyError):
        runner.send_warnings(establishments, dt.date(2026, 7, 10))
    runner.dry_run(establishments)  # allowed: it changes nothing


def test_audit_records_who_ran_what_with_counts(academy: Academy, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SSH_CLIENT", "192.0.2.7 51000 22")
    runner = academy.runner()
    runner.run(Step.PURGE_TRASH, runner.establishments())
    with academy.database.session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.outcome == "done")).one()
    assert entry.ssh_client == "192.0.2.7 (déclaré)" and entry.step == "purge-trash"
    assert json.loads(entry.details)["counts"]["rubriques supprimées"] > 0


def test_the_option_group_deletion_leaves_free_groups_of_teaching_services_alone(
        academy: Academy) -> None:
    """Seed §6.3: only timetable option groups go with the option-group deletion; a free
    group serving a teaching service follows its own lifetime."""
    db = academy.database
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE groups SET lifetime = 'unlimited' "
                                "WHERE name = 'Soutien mathématiques'"))
        option_groups = set(connection.execute(text(
            "SELECT name FROM groups WHERE kind = 'option'")).scalars())
    assert option_groups
    _run_all(academy)
    with db.engine.connect() as connection:
        left = set(connection.execute(text("SELECT name FROM groups")).scalars())
    assert "Soutien mathématiques" in left  # unlimited: kept, teaching service or not
    assert "Aide aux devoirs" not in left  # limited to the year: deleted
    assert not option_groups & left
