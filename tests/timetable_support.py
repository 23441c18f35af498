"""Shared pieces of the timetable tests: the sample collège's directory and snapshots.

No test lives here; the other ``test_timetable_*`` modules import these helpers.
The directory matches ``sample_data/timetable`` (collège 0999001W, year N+1 2026-2027).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from yearchange_tui.ent.database import Database
from yearchange_tui.ent.models import (
    ENT_MODELS,
    Establishment,
    EstablishmentKind,
    Group,
    GroupKind,
    GroupLifetime,
    GroupMembership,
    HeadTeacher,
    Person,
    PersonKind,
    PersonProfile,
    Profile,
    Project,
    SchoolClass,
    SchoolYear,
    Subject,
)
from yearchange_tui.importing.models import AafImport, AafReject
from yearchange_tui.timetable.models import TIMETABLE_MODELS
from yearchange_tui.workflow.models import Step
from yearchange_tui.workflow.units import finish_unit, get_unit

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_data" / "timetable"
REFERENCE = ROOT.parent / "shared" / "reference" / "timetable_samples"
UAI = "0999001W"
KEY = SAMPLES / "cle-partenaire-test.pem"
PARTNER = "ENTEXEMPLE"

CLASSES_N1 = ("6A", "6B", "5A", "3A")
SUBJECTS = (("020700", "FRANCAIS", "FRANC"), ("061300", "MATHEMATIQUES", "MATHS"),
            ("030201", "ANGLAIS LV1", "AGL1"), ("100100", "EDUCATION PHYSIQUE ET SPORTIVE", "EPS"))
TEACHERS = (("2000101", "DUMAS", "Claire", dt.date(1980, 4, 12)),
            ("2000102", "NOËL", "Bruno", dt.date(1972, 9, 3)),
            ("2000104", "VIRGILE", "Marc", dt.date(1985, 6, 21)),
            ("2000106", "MARTIN", "Sophie", dt.date(1979, 3, 3)))
STUDENTS = (("1000101", "100000101AA", "ARNAUD", "Léa", dt.date(2015, 2, 3), "6A"),
            ("1000102", "100000102BB", "BLANC", "Hugo", dt.date(2015, 5, 21), "6A"),
            ("1000103", "100000103CC", "CARON", "Inès", dt.date(2015, 8, 30), "6B"),
            ("1000104", "100000104DD", "DUPONT", "Jules", dt.date(2014, 1, 17), "5A"),
            ("1000105", "100000105EE", "ETIENNE", "Lina", dt.date(2014, 6, 9), "5A"),
            ("1000106", "100000106FF", "FABRE", "Nolan", dt.date(2012, 11, 2), "3A"))


def build_directory(database: Database, *, steps_done: tuple[Step, ...] = (
        Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE, Step.INIT_DIRECTORY),
        year_n: int = 2025, uai: str = UAI, classes: tuple[str, ...] = CLASSES_N1,
        teachers: tuple = TEACHERS, subjects: tuple = SUBJECTS, students: tuple = STUDENTS,
        automatic: bool = True, newest: bool = False) -> int:
    """The directory of year N+1 for one collège after step 4; return its id.

    Classes, teachers, subjects and students are those of ``sample_data/timetable``
    (4Z, INCONNU Paul, ASTRONOMIE and FANTOME Alix are missing on purpose); the AAF
    group LAT5 holds the two 5A students; 3A has no head teacher.
    """
    with database.session() as session:
        project = Project(code="ENT-TEST", name="ENT de test", ent_name="ENT",
                          newest_timetable_versions_enabled=newest,
                          automatic_timetable_import=automatic)
        session.add(project)
        years = []
        for start, current in ((year_n, True), (year_n + 1, False)):
            year = SchoolYear(start_year=start, label=f"{start}-{start + 1}",
                              starts_on=dt.date(start, 9, 1), ends_on=dt.date(start + 1, 8, 31),
                              is_current=current)
            session.add(year)
            years.append(year)
        session.flush()
        establishment = Establishment(project_id=project.id, uai=uai,
                                      name="COLLÈGE JEAN MOULIN",
                                      kind=EstablishmentKind.COLLEGE)
        session.add(establishment)
        session.flush()
        next_year = years[1].id
        class_ids = {}
        for code in classes:
            school_class = SchoolClass(establishment_id=establishment.id,
                                       school_year_id=next_year, code=code, label=code)
            session.add(school_class)
            session.flush()
            class_ids[code] = school_class.id
        for code, label, short in subjects:
            if session.scalar(select(Subject.id).where(Subject.code == code)) is None:
                session.add(Subject(code=code, label=label, short_label=short))
        teacher_ids = []
        for jointure, last, first, birth in teachers:
            person = Person(establishment_id=establishment.id, kind=PersonKind.TEACHER,
                            aaf_jointure=jointure, login=f"t{jointure}", last_name=last,
                            first_name=first, birth_date=birth)
            session.add(person)
            session.flush()
            session.add(PersonProfile(person_id=person.id, establishment_id=establishment.id,
                                      profile=Profile.TEACHER))
            teacher_ids.append(person.id)
        student_ids = {}
        for jointure, ine, last, first, birth, _class in students:
            person = Person(establishment_id=establishment.id, kind=PersonKind.STUDENT,
                            aaf_jointure=jointure, ine=ine, login=f"e{jointure}",
                            last_name=last, first_name=first, birth_date=birth)
            session.add(person)
            session.flush()
            student_ids[jointure] = person.id
        latin = Group(establishment_id=establishment.id, school_year_id=next_year,
                      kind=GroupKind.AAF, code="LAT5", name="LAT5",
                      lifetime=GroupLifetime.SCHOOL_YEAR)
        session.add(latin)
        session.flush()
        for jointure in ("1000104", "1000105"):
            if jointure in student_ids:
                session.add(GroupMembership(group_id=latin.id, person_id=student_ids[jointure]))
        for position, code in enumerate(c for c in classes if c != "3A"):
            session.add(HeadTeacher(establishment_id=establishment.id, school_year_id=next_year,
                                    class_id=class_ids[code],
                                    teacher_id=teacher_ids[position % len(teacher_ids)]))
        for step in steps_done:
            unit = get_unit(session, establishment.id, years[0].id, step)
            assert unit is not None
            finish_unit(unit, {})
        return establishment.id


def snapshot(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the ENT, timetable and reject tables (to prove nothing changed)."""
    tables = [m.__table__ for m in ENT_MODELS + TIMETABLE_MODELS]
    tables += [AafImport.__table__, AafReject.__table__]
    found = {}
    with database.engine.connect() as connection:
        for table in tables:
            rows = connection.execute(select(table)).all()
            found[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return found


def count_rows(database: Database, model: Any, *conditions: Any) -> int:
    """How many rows of ``model`` match."""
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0


def add_manual_rows(database: Database, establishment_id: int) -> dict[str, int]:
    """A teaching service and a course entered by hand (no import report), and a free group."""
    from yearchange_tui.ent.models import Course, TeachingService

    with database.session() as session:
        year = session.scalar(select(SchoolYear).where(SchoolYear.is_current.is_(False)))
        subject = session.scalar(select(Subject.id).where(Subject.code == "020700"))
        teacher = session.scalar(select(Person.id).where(Person.aaf_jointure == "2000101"))
        class_id = session.scalar(select(SchoolClass.id).where(SchoolClass.code == "6A"))
        free = Group(establishment_id=establishment_id, school_year_id=year.id,
                     kind=GroupKind.FREE, code="", name="Soutien", import_report_id=None)
        session.add(free)
        session.flush()
        (service_id,) = session.execute(insert(TeachingService).returning(TeachingService.id), [{
            "establishment_id": establishment_id, "school_year_id": year.id,
            "subject_id": subject, "teacher_id": teacher, "class_id": class_id,
            "group_id": free.id, "weekly_hours": 1.0, "import_report_id": None}]).scalars()
        (course_id,) = session.execute(insert(Course).returning(Course.id), [{
            "establishment_id": establishment_id, "school_year_id": year.id,
            "teaching_service_id": service_id, "weekday": 3, "starts_at": dt.time(13),
            "ends_at": dt.time(14), "room": "CDI", "alternation_id": None,
            "import_report_id": None}]).scalars()
        return {"service": service_id, "course": course_id, "group": free.id}
