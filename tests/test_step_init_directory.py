"""Step 4 on the sample académie: guards, units through the runner, classes from students,
N-1 classes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from template_support import copy_aaf_delivery, copy_academy

from yearchange_tui.aaf.classes_n1 import likely_previous_year_classes
from yearchange_tui.aaf.directory import snapshot_class_history
from yearchange_tui.aaf.importer import import_delivery
from yearchange_tui.changeover.runner import ChangeoverRunner
from yearchange_tui.changeover.steps import RunOptions
from yearchange_tui.changeover.steps.init_directory import (
    DeliveryUnavailableError,
    InitDirectoryReport,
    directory_report,
    import_aaf_delivery,
)
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import (
    ClassMembership,
    ClassRole,
    Establishment,
    EstablishmentKind,
    Person,
    PersonKind,
    Project,
    Rubric,
    RubricKind,
    SchoolClass,
    SchoolYear,
)
from yearchange_tui.importing.models import AafReject
from yearchange_tui.sample.roster import SampleAcademy, build_academy
from yearchange_tui.workflow.events import (
    RecordingObserver,
    UnitFinished,
    UnitProgressed,
    UnitStarted,
)
from yearchange_tui.workflow.guards import GUARD_AAF_FREEZE, GuardRefused, grant_override
from yearchange_tui.workflow.models import AuditEntry, Step, StepUnit, UnitStatus
from yearchange_tui.workflow.units import current_school_year, finish_unit, get_unit

SAMPLE_DELIVERY = Path(__file__).resolve().parents[1] / "sample_data" / "aaf" / "livraison"


@pytest.fixture
def academy_db(database_url: str, tmp_path: Path) -> tuple[Database, SampleAcademy, Path]:
    academy = build_academy(2, seed=7, year=2025)
    copy_academy(database_url, tmp_path / "storage", 2, 7, 2025)
    database = open_database(database_url)
    aaf = tmp_path / "aaf"
    copy_aaf_delivery(aaf, 2, 7, 2025)
    yield database, academy, aaf
    database.dispose()


def mark_done(database: Database, steps: tuple[Step, ...], uais: list[str] | None = None) -> None:
    with database.session() as session:
        year = current_school_year(session)
        query = select(Establishment)
        if uais:
            query = query.where(Establishment.uai.in_(uais))
        for establishment in session.scalars(query):
            for step in steps:
                unit = get_unit(session, establishment.id, year.id, step)
                assert unit is not None
                finish_unit(unit, {})


STEPS_1_TO_3 = (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE)


def run_init_directory(database: Database, ids: list[int], observer: RecordingObserver | None = None,
                       *, source: list[Path] | None = None) -> InitDirectoryReport:
    """Step 4 for these establishments through the runner, as ``run init-directory`` does."""
    runner = ChangeoverRunner(database, Path("storage-unused"), observer=observer)
    by_id = {ref.id: ref for ref in runner.establishments()}
    options = RunOptions(aaf_source=tuple(str(path) for path in source) if source else None)
    outcomes = runner.run_units(Step.INIT_DIRECTORY, [by_id[i] for i in ids], options=options)
    return directory_report(outcomes, options)


def expected_sample_rejects(academy: SampleAcademy) -> set[tuple[str, str, str]]:
    expected = set()
    for establishment in academy.establishments:
        anomalies = establishment.anomalies
        teacher, _old_class = anomalies["teacher_in_old_class"].split("$")
        _leaver, stale_class = anomalies["student_in_old_class"].split("$")
        expected |= {
            (establishment.uai, "AAF-NAISSANCE-MANQUANTE", anomalies["missing_birth_date"]),
            (establishment.uai, "AAF-INE-PARTAGE", anomalies["duplicate_ine"]),
            ("", "AAF-RESPONSABLE-ORPHELIN", anomalies["orphan_relative"]),
            (establishment.uai, "AAF-CLASSE-ENSEIGNANTS-SEULS", teacher),
            (establishment.uai, "AAF-CLASSE-N-1-PROBABLE", stale_class),
        }
        # A relative only refused students cite is refused too (one rule for relatives).
        refused = {anomalies["missing_birth_date"], anomalies["duplicate_ine"]}
        cited_by_written = {link.relative_jointure for student in establishment.students
                            if student.jointure not in refused for link in student.relatives}
        expected |= {(establishment.uai, "AAF-RESPONSABLE-ORPHELIN", link.relative_jointure)
                     for student in establishment.students if student.jointure in refused
                     for link in student.relatives
                     if link.relative_jointure not in cited_by_written}
    return expected


def test_import_after_steps_1_to_3_is_step_4(academy_db) -> None:
    database, academy, aaf = academy_db
    mark_done(database, STEPS_1_TO_3)
    observer = RecordingObserver()
    runner = ChangeoverRunner(database, aaf.parent / "storage", observer=observer)
    result = import_aaf_delivery(runner, [aaf])  # what ``import-aaf`` does
    assert sorted(result.step4_uais) == sorted(e.uai for e in academy.establishments)
    # The import was the « import » phase of each establishment's step-4 unit.
    for sample in academy.establishments:
        kinds = [type(e) for e in observer.events if e.uai == sample.uai]
        assert kinds == [UnitStarted, UnitProgressed, UnitProgressed, UnitFinished]
    with database.session() as session:
        found = {(r.uai, r.code, r.record_id) for r in session.scalars(select(AafReject))}
        assert found == expected_sample_rejects(academy)
        year_n = current_school_year(session)
        next_year = session.scalar(select(SchoolYear).where(
            SchoolYear.start_year == year_n.start_year + 1))
        assert next_year is not None
        for sample in academy.establishments:
            establishment = session.scalar(select(Establishment).where(
                Establishment.uai == sample.uai))
            unit = session.scalar(select(StepUnit).where(
                StepUnit.establishment_id == establishment.id, StepUnit.school_year_id == year_n.id,
                StepUnit.step == Step.INIT_DIRECTORY))
            assert unit is not None and unit.status is UnitStatus.DONE
            assert json.loads(unit.counts)["uai"] == sample.uai  # the import summary
            assert set(json.loads(unit.checkpoint)["phases"]) == {"import", "rapport N-1"}
            audits = [(a.outcome) for a in session.scalars(select(AuditEntry).where(
                AuditEntry.establishment_id == establishment.id,
                AuditEntry.step == Step.INIT_DIRECTORY.value))]
            assert audits == ["started", "done"]
            refused = {sample.anomalies["missing_birth_date"], sample.anomalies["duplicate_ine"]}
            delivered = [s for s in sample.students
                         if s.class_code_next is not None and s.jointure not in refused]
            # Classes of N+1: exactly those students are in; the teacher-only class is not one.
            codes = set(session.scalars(select(SchoolClass.code).where(
                SchoolClass.establishment_id == establishment.id,
                SchoolClass.school_year_id == next_year.id)))
            assert codes == {s.class_code_next for s in delivered}
            assert sample.anomalies["teacher_in_old_class"].split("$")[1] not in codes
            members = session.scalar(
                select(func.count()).select_from(ClassMembership)
                .join(SchoolClass, SchoolClass.id == ClassMembership.class_id)
                .where(SchoolClass.establishment_id == establishment.id,
                       SchoolClass.school_year_id == next_year.id,
                       ClassMembership.role == ClassRole.STUDENT))
            assert members == len(delivered)
            rubrics = session.scalar(select(func.count()).select_from(Rubric).where(
                Rubric.establishment_id == establishment.id, Rubric.kind == RubricKind.CLASS,
                Rubric.school_year_id == next_year.id))
            assert rubrics == len(codes)
            # Leavers are flagged, not deleted.
            leavers = [s.jointure for s in sample.students
                       if s.class_code_n is not None and s.class_code_next is None]
            flagged = session.scalar(select(func.count()).select_from(Person).where(
                Person.aaf_jointure.in_(leavers), Person.disappeared_at.is_not(None)))
            assert flagged == len(leavers)
        project = session.scalar(select(Project))
        assert project.newest_timetable_versions_enabled  # activated with the AAF initialisation


def test_aaf_import_is_frozen_between_steps_1_and_3(academy_db) -> None:
    database, _academy, aaf = academy_db
    mark_done(database, (Step.PURGE_TRASH,))
    with database.session() as session:
        people_before = session.scalar(select(func.count()).select_from(Person))
    with pytest.raises(GuardRefused) as caught:
        import_delivery(database, [aaf])
    assert caught.value.code == GUARD_AAF_FREEZE
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Person)) == people_before
        assert session.scalar(select(func.count()).select_from(AafReject)) == 0
        grant_override(session, GUARD_AAF_FREEZE, "correction urgente demandée par la MOA")
    result = import_delivery(database, [aaf])
    assert all(s["guard_override"] for s in result.establishments if s["uai"])
    assert not result.step4_uais


def test_run_init_directory_respects_the_step_order(academy_db) -> None:
    database, academy, aaf = academy_db
    first, second = (e.uai for e in academy.establishments)
    mark_done(database, STEPS_1_TO_3, [first])
    observer = RecordingObserver()
    with database.session() as session:
        ids = [session.scalar(select(Establishment.id).where(Establishment.uai == uai))
               for uai in (first, second)]
    report = run_init_directory(database, ids, observer, source=[aaf])
    assert report.done == [first]
    assert second in report.refused and "étape 3" in report.refused[second]
    assert any(isinstance(e, UnitStarted) and e.uai == first for e in observer.events)
    assert any(isinstance(e, UnitFinished) and e.uai == first for e in observer.events)
    with database.session() as session:
        year = current_school_year(session)
        statuses = dict(session.execute(select(StepUnit.establishment_id, StepUnit.status).where(
            StepUnit.step == Step.INIT_DIRECTORY, StepUnit.school_year_id == year.id)).all())
        assert statuses[ids[0]] is UnitStatus.DONE
        assert statuses.get(ids[1], UnitStatus.PENDING) is not UnitStatus.DONE
        # Only the establishment in scope was touched: no N+1 class for the other one.
        next_classes = dict(session.execute(
            select(SchoolClass.establishment_id, func.count()).where(
                SchoolClass.school_year_id != year.id).group_by(SchoolClass.establishment_id)
        ).all())
        assert next_classes.get(ids[0]) and not next_classes.get(ids[1])
    again = run_init_directory(database, [ids[0]], source=[aaf])
    assert again.already_done == [first] and not again.done


def test_run_init_directory_dry_run_changes_nothing(academy_db) -> None:
    database, _academy, aaf = academy_db
    mark_done(database, STEPS_1_TO_3)
    runner = ChangeoverRunner(database, aaf.parent / "storage")
    with database.session() as session:
        classes_before = session.scalar(select(func.count()).select_from(SchoolClass))
        people_before = session.scalar(select(func.count()).select_from(Person))
    outcomes = runner.dry_run(runner.establishments(), (Step.INIT_DIRECTORY,),
                              RunOptions(aaf_source=(str(aaf),)))
    assert {o.status for o in outcomes} == {"dry-run"}
    assert all(o.counts["classes_created"] > 0 for o in outcomes)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(SchoolClass)) == classes_before
        assert session.scalar(select(func.count()).select_from(Person)) == people_before
        assert session.scalar(select(func.count()).select_from(AafReject)) == 0
        assert session.scalar(select(func.count()).select_from(StepUnit).where(
            StepUnit.step == Step.INIT_DIRECTORY, StepUnit.status == UnitStatus.DONE)) == 0


def test_run_init_directory_uses_the_latest_delivery_unless_it_changed(academy_db) -> None:
    database, academy, aaf = academy_db
    import_delivery(database, [aaf])  # the regular import before the change-over
    mark_done(database, STEPS_1_TO_3)
    with database.session() as session:
        ids = list(session.scalars(select(Establishment.id)))
    victim = next(aaf.glob("*_PersEducNat_0000.xml"))
    original = victim.read_bytes()
    victim.write_bytes(original.replace(b"</ficAlimMENESR>", b"<!-- x --></ficAlimMENESR>"))
    with pytest.raises(DeliveryUnavailableError):
        run_init_directory(database, ids)
    victim.write_bytes(original)
    report = run_init_directory(database, ids)
    assert sorted(report.done) == sorted(e.uai for e in academy.establishments)


def test_initial_load_into_an_empty_establishment_is_allowed(database_url: str) -> None:
    database = open_database(database_url)
    try:
        with database.session() as session:
            project = Project(code="P99", name="Projet 99", academy_code="99")
            session.add(project)
            session.flush()
            session.add(SchoolYear(start_year=2025, label="2025-2026",
                                   starts_on=dt.date(2025, 9, 1), ends_on=dt.date(2026, 8, 31),
                                   is_current=True))
            establishment = Establishment(project_id=project.id, uai="0999001W",
                                          aaf_jointure="7001", name="Collège Jean Moulin",
                                          kind=EstablishmentKind.COLLEGE)
            session.add(establishment)
            session.flush()
            establishment_id = establishment.id
        report = run_init_directory(database, [establishment_id], source=[SAMPLE_DELIVERY])
        assert report.initial_loads == ["0999001W"] and report.done == ["0999001W"]
        with database.session() as session:
            codes = set(session.scalars(select(SchoolClass.code).join(
                SchoolYear, SchoolYear.id == SchoolClass.school_year_id).where(
                SchoolYear.start_year == 2026)))
            assert codes == {"6A", "6B", "5A", "4Z"}
            # The lycée is out of scope: not created by a step-4 run on the collège.
            assert session.scalar(select(Establishment.id).where(
                Establishment.uai == "0999002X")) is None
            assert session.scalar(select(func.count()).select_from(Person).where(
                Person.kind == PersonKind.STUDENT)) == 16
    finally:
        database.dispose()


def test_likely_previous_year_classes(database_url: str) -> None:
    database = open_database(database_url)
    try:
        with database.session() as session:
            project = Project(code="P", name="P")
            session.add(project)
            session.flush()
            years = [SchoolYear(start_year=y, label=f"{y}-{y + 1}", starts_on=dt.date(y, 9, 1),
                                ends_on=dt.date(y + 1, 8, 31), is_current=y == 2025)
                     for y in (2025, 2026)]
            session.add_all(years)
            establishment = Establishment(project_id=project.id, uai="0999001W", name="C",
                                          kind=EstablishmentKind.COLLEGE)
            session.add(establishment)
            session.flush()
            people = [Person(kind=PersonKind.STUDENT, login=f"e{i}", last_name="E",
                             first_name=str(i), establishment_id=establishment.id)
                      for i in range(18)]
            session.add_all(people)
            old = SchoolClass(establishment_id=establishment.id, school_year_id=years[0].id,
                              code="3A")
            session.add(old)
            session.flush()
            for student in people[:3]:
                session.add(ClassMembership(class_id=old.id, person_id=student.id,
                                            role=ClassRole.STUDENT))
            plan = {"3A": people[:3], "4A": people[3:8], "4B": people[8:13], "4C": people[13:18]}
            for code, members in plan.items():
                new = SchoolClass(establishment_id=establishment.id, school_year_id=years[1].id,
                                  code=code)
                session.add(new)
                session.flush()
                for student in members:
                    session.add(ClassMembership(class_id=new.id, person_id=student.id,
                                                role=ClassRole.STUDENT))
            session.flush()
            connection = session.connection()
            assert snapshot_class_history(connection, establishment.id, years[0].id) == 3
            # Step 3 deletes last year's classes; the history keeps who was where.
            session.execute(ClassMembership.__table__.delete().where(
                ClassMembership.class_id == old.id))
            session.delete(old)
            session.flush()
            findings = likely_previous_year_classes(connection, establishment.id, years[1].id,
                                                    years[0].id)
        assert [f.code for f in findings] == ["3A"]
        assert findings[0].same_class_students == 3
        assert "3 élèves sur 3 y étaient déjà" in findings[0].reason
    finally:
        database.dispose()
