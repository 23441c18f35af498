"""Step 5: proposed defaults, the missing-items check, the resumable unit."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from timetable_support import PARTNER, SAMPLES, UAI, build_directory

from yearchange_tui.changeover.steps.init_school_life import run_init_school_life
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import OpeningDates, Period, PeriodKind
from yearchange_tui.timetable.importer import import_timetable
from yearchange_tui.timetable.school_life import (
    MISSING_CODES,
    PeriodProposal,
    SchoolLifeError,
    apply_school_life,
    missing_items,
    period_problem,
    propose_periods,
    propose_school_life,
    school_life_check,
)
from yearchange_tui.workflow.events import RecordingObserver, UnitFailed, UnitFinished
from yearchange_tui.workflow.models import Step, StepUnit, UnitStatus

CLEAR = SAMPLES / "edt" / f"Edt_To_{PARTNER}_{UAI}_Enclair.xml"


@pytest.fixture
def database(database_url: str) -> Database:
    db = open_database(database_url)
    yield db
    db.dispose()


def unit_status(database: Database, establishment_id: int) -> tuple[UnitStatus, str]:
    with database.session() as session:
        unit = session.scalar(select(StepUnit).where(
            StepUnit.establishment_id == establishment_id,
            StepUnit.step == Step.INIT_SCHOOL_LIFE))
        assert unit is not None
        return unit.status, unit.error


def codes(database: Database, establishment_id: int) -> dict[str, bool]:
    with database.session() as session:
        return {item.code: item.blocking for item in missing_items(session, establishment_id)}


def test_periods_are_cut_from_the_calendar() -> None:
    trimesters = propose_periods(PeriodKind.TRIMESTER, dt.date(2026, 9, 2), dt.date(2027, 7, 6))
    assert [(p.name, p.starts_on, p.ends_on) for p in trimesters] == [
        ("1er trimestre", dt.date(2026, 9, 2), dt.date(2026, 11, 30)),
        ("2e trimestre", dt.date(2026, 12, 1), dt.date(2027, 3, 15)),
        ("3e trimestre", dt.date(2027, 3, 16), dt.date(2027, 7, 6))]
    semesters = propose_periods(PeriodKind.SEMESTER, dt.date(2026, 9, 2), dt.date(2027, 7, 15))
    assert [p.ends_on for p in semesters] == [dt.date(2027, 1, 31), dt.date(2027, 7, 15)]
    with pytest.raises(SchoolLifeError):
        propose_periods(PeriodKind.TRIMESTER, dt.date(2026, 9, 2), dt.date(2026, 9, 1))
    overlapping = [PeriodProposal(1, "A", dt.date(2026, 9, 2), dt.date(2026, 12, 1)),
                   PeriodProposal(2, "B", dt.date(2026, 11, 30), dt.date(2027, 7, 6))]
    assert "se chevauchent" in period_problem(overlapping, None, None)
    assert "ne couvrent pas" in period_problem(trimesters[:2], dt.date(2026, 9, 2),
                                               dt.date(2027, 7, 6))


def test_the_check_then_the_wizard_defaults(database: Database) -> None:
    establishment_id = build_directory(database)
    missing = codes(database, establishment_id)
    assert missing == {"emploi-du-temps": True, "services": True, "dates-ouverture": True,
                       "periodes": True, "professeurs-principaux": False}
    assert list(missing) == [c for c in MISSING_CODES if c in missing]
    with database.session() as session:
        proposal = propose_school_life(session, establishment_id)
        assert (proposal.period_kind, proposal.opens_on, proposal.closes_on) == (
            PeriodKind.TRIMESTER, dt.date(2026, 9, 2), dt.date(2027, 7, 6))
        assert proposal.source.startswith("calendrier du projet")
        assert proposal.existing["classes"] == 4 and proposal.existing["services"] == 0
        assert apply_school_life(session, establishment_id, proposal) == {
            "periodes": 3, "dates_ouverture": 1}
    with database.session() as session:
        # Already set: the establishment's choice is kept unless asked to replace.
        semesters = propose_school_life(session, establishment_id,
                                        period_kind=PeriodKind.SEMESTER)
        assert apply_school_life(session, establishment_id, semesters) == {
            "periodes": 0, "dates_ouverture": 0}
        assert propose_school_life(session, establishment_id).source == "déjà saisi"
        assert apply_school_life(session, establishment_id, semesters, replace=True) == {
            "periodes": 2, "dates_ouverture": 1}
        kinds = set(session.scalars(select(Period.kind)))
        assert kinds == {PeriodKind.SEMESTER}
        assert session.scalar(select(OpeningDates.closes_on)) == dt.date(2027, 7, 6)
    assert set(codes(database, establishment_id)) == {"emploi-du-temps", "services",
                                                      "professeurs-principaux"}


def test_step_5_is_done_when_nothing_blocking_is_missing(database: Database) -> None:
    establishment_id = build_directory(database)
    observer = RecordingObserver()
    report = run_init_school_life(database, [establishment_id], observer)
    assert not report.ok and UAI in report.refused
    assert unit_status(database, establishment_id)[0] is UnitStatus.BLOCKED
    assert "Emploi du temps non importé" in unit_status(database, establishment_id)[1]
    assert isinstance(observer.events[-1], UnitFailed) and observer.events[-1].refused
    # Nothing is written on a unit that stays « bloqué », nor without « valeurs par défaut ».
    assert report.written[UAI] == {}
    with database.session() as session:
        apply_school_life(session, establishment_id, propose_school_life(session,
                                                                         establishment_id))
    import_timetable(database, SAMPLES / "sts" / f"sts_emp_{UAI}_2026.xml", UAI,
                     declared_version="EDT 2020")
    assert codes(database, establishment_id)["cours"] is True  # services but no courses
    import_timetable(database, CLEAR, UAI, declared_version="2020")
    assert codes(database, establishment_id) == {"professeurs-principaux": False,
                                                 "rejets-emploi-du-temps": False}
    observer = RecordingObserver()
    report = run_init_school_life(database, [establishment_id], observer)
    assert report.ok and report.done == [UAI]
    assert unit_status(database, establishment_id) == (UnitStatus.DONE, "")
    assert isinstance(observer.events[-1], UnitFinished)
    again = run_init_school_life(database, [establishment_id])
    assert again.already_done == [UAI]
    (status,) = school_life_check(database)
    assert status.ready and status.step_status == "done"
    assert [item.code for item in status.items] == ["professeurs-principaux",
                                                     "rejets-emploi-du-temps"]


def test_step_5_waits_for_step_4(database: Database) -> None:
    establishment_id = build_directory(database, steps_done=(Step.PURGE_TRASH, Step.ARCHIVE,
                                                             Step.DELETE_OBSOLETE))
    report = run_init_school_life(database, [establishment_id])
    assert "étape 4" in report.refused[UAI]
    assert unit_status(database, establishment_id)[0] is UnitStatus.BLOCKED
    assert codes(database, establishment_id)["annuaire"] is True
