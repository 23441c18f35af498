"""What an AAF import accounts for: every person once in the summary, the warnings the seed
asks for (missing INE, year N-1 classes and groups), relatives, malformed files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from yearchange_tui.aaf.classes_n1 import likely_previous_year_classes
from yearchange_tui.aaf.importer import import_delivery
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import (
    ClassMembership,
    ClassRole,
    Establishment,
    EstablishmentKind,
    Person,
    PersonKind,
    Project,
    SchoolClass,
    SchoolYear,
)
from yearchange_tui.importing.models import AafReject
from yearchange_tui.workflow.models import ArchiveManifest

ROOT = Path(__file__).resolve().parents[1]
DELIVERY = ROOT / "sample_data" / "aaf" / "livraison"


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    yield database
    database.dispose()


# -- seed §3.5 note: INEs must be filled -------------------------------------------------------

def test_a_student_without_ine_is_kept_with_a_warning(database: Database) -> None:
    import_delivery(database, [DELIVERY])
    with database.session() as session:
        [reject] = session.scalars(select(AafReject).where(AafReject.code == "AAF-INE-MANQUANT"))
        student = session.scalar(select(Person).where(Person.aaf_jointure == "1000311"))
    assert reject.record_id == "1000311" and reject.severity == "avertissement"
    assert reject.attribute == "ENTEleveINE"
    assert reject.message.startswith("L'élève 1000311 (FUTUR Lina) n'a pas d'INE")
    assert "SIECLE" in reject.action
    assert student is not None and student.ine is None


# -- seed §5: year N-1 classes ------------------------------------------------------------------

def _establishment_with_years(session) -> tuple[Establishment, list[SchoolYear]]:  # type: ignore[no-untyped-def]
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
    return establishment, years


def test_a_class_known_only_from_its_step_2_textbook_archive_is_recognised(
        database: Database) -> None:
    """Step 2 keys its textbook archives ``cahier-de-textes:<code>``; the N-1 report reads them."""
    with database.session() as session:
        establishment, years = _establishment_with_years(session)
        people = [Person(kind=PersonKind.STUDENT, login=f"e{i}", last_name="E",
                         first_name=str(i), establishment_id=establishment.id)
                  for i in range(16)]
        session.add_all(people)
        plan = {"4A": people[:5], "4B": people[5:10], "4C": people[10:15], "3Z": people[15:]}
        for code, members in plan.items():
            new = SchoolClass(establishment_id=establishment.id, school_year_id=years[1].id,
                              code=code)
            session.add(new)
            session.flush()
            session.add_all(ClassMembership(class_id=new.id, person_id=student.id,
                                            role=ClassRole.STUDENT) for student in members)
        # Nothing else remembers 3Z: no class, no history, no archived rubric; only the
        # manifest of its step-2 textbook archive (written exactly as step 2 writes it).
        session.add(ArchiveManifest(
            establishment_id=establishment.id, school_year_id=years[0].id,
            archive_key="cahier-de-textes:3Z", kind="cahier de textes",
            relative_path="archives/3Z.zip", size=1, sha256="0" * 64,
            created_at=dt.datetime(2026, 7, 10, tzinfo=dt.UTC)))
        session.flush()
        findings = likely_previous_year_classes(session.connection(), establishment.id,
                                                years[1].id, years[0].id)
    assert [(f.code, f.code_archived) for f in findings] == [("3Z", True)]
    assert "ce code existait l'année passée" in findings[0].reason
