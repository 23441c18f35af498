"""The step registry and the one unit lifecycle: every step 1–5 through ``run_unit``."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from changeover_support import WINDOW, Academy, make_academy, storage_files
from sqlalchemy import func, select, update
from test_scheduling_engine import running_engine, wait_until
from timetable_support import PARTNER, SAMPLES, UAI, build_directory

from yearchange_tui.aaf.importer import import_delivery
from yearchange_tui.changeover.runner import ChangeoverRunner, UnitOutcome
from yearchange_tui.changeover.steps import STEPS, UNIT_STEPS, RunOptions, step_definition
from yearchange_tui.cli.main import main
from yearchange_tui.ent.base import Base
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import Establishment, Period, SchoolClass
from yearchange_tui.sample.aaf_writer import write_aaf_delivery
from yearchange_tui.sample.roster import build_academy
from yearchange_tui.sample.timetable_writer import write_timetables
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.models import EngineTask, TaskStatus
from yearchange_tui.timetable.importer import import_timetable
from yearchange_tui.workflow.calendar import add_window
from yearchange_tui.workflow.events import (
    RecordingObserver,
    UnitFailed,
    UnitFinished,
    UnitProgressed,
    UnitStarted,
)
from yearchange_tui.workflow.models import (
    STEP_PREREQUISITES,
    AuditEntry,
    Step,
    StepUnit,
    UnitStatus,
)
from yearchange_tui.workflow.units import current_school_year, finish_unit, get_unit

STEPS_1_TO_3 = (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE)
EDT = SAMPLES / "edt" / f"Edt_To_{PARTNER}_{UAI}_Enclair.xml"
STS = SAMPLES / "sts" / f"sts_emp_{UAI}_2026.xml"


@pytest.fixture
def academy(database_url: str, tmp_path: Path) -> Iterator[tuple[Academy, Path]]:
    """One collège of the sample académie (2025-2026) and its AAF delivery for 2026-2027."""
    academy = make_academy(database_url, tmp_path / "storage")
    aaf = tmp_path / "aaf"
    write_aaf_delivery(build_academy(1, 5, 2025), aaf)
    yield academy, aaf
    academy.database.dispose()


@pytest.fixture
def directory(database_url: str) -> Iterator[tuple[Database, int]]:
    """A collège after step 4 (its N+1 directory), for step 5."""
    database = open_database(database_url)
    yield database, build_directory(database)
    database.dispose()


def audits(database: Database, establishment_id: int, step: Step) -> list[str]:
    with database.session() as session:
        return list(session.scalars(select(AuditEntry.outcome).where(
            AuditEntry.establishment_id == establishment_id, AuditEntry.step == step.value,
            AuditEntry.action == "run").order_by(AuditEntry.id)))


def unit(database: Database, establishment_id: int, step: Step) -> StepUnit:
    with database.session() as session:
        found = session.scalar(select(StepUnit).where(
            StepUnit.establishment_id == establishment_id, StepUnit.step == step))
        assert found is not None
        session.expunge(found)
        return found


def kinds(observer: RecordingObserver, step: Step) -> list[Any]:
    return [type(event) for event in observer.events if event.step == step.value]


def stop_after(phases: int) -> Any:
    """A ``should_stop`` that lets ``phases`` phases start, then asks to stop."""
    asked = []

    def should_stop() -> bool:
        asked.append(True)
        return len(asked) > phases

    return should_stop


def every_row(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the dry-run reports and the audit (written on purpose),
    and the console's change log (its triggers note the new dry-run report)."""
    with database.engine.connect() as connection:
        return {table.name: sorted((tuple(row) for row in connection.execute(select(table))),
                                   key=repr)
                for table in Base.metadata.sorted_tables
                if table.name not in ("dry_run_reports", "audit_entries", "console_changes")}


def test_the_registry_lists_steps_0_to_5_in_order_with_french_labels() -> None:
    assert [(d.number, d.label) for d in STEPS] == [
        (0, "Passage à blanc"),
        (1, "Purge de la corbeille"),
        (2, "Archivage de fin d'année N"),
        (3, "Suppression des données obsolètes N"),
        (4, "Initialisation de l'annuaire N+1"),
        (5, "Initialisation de la vie scolaire N+1"),
    ]
    assert STEPS[0].key is None and STEPS[0].replays == STEPS_1_TO_3
    assert [d.key for d in UNIT_STEPS] == list(Step)
    for step in Step:
        definition = step_definition(step)
        assert definition.number == step.number and definition.label == step.label
        assert definition.prerequisites == STEP_PREREQUISITES[step]
        assert definition.phases is not None and definition.dry_run
    # Only the destructive steps ask the operator to type a confirmation.
    assert [d.number for d in UNIT_STEPS if d.confirm] == [1, 2, 3]


def choose_defaults(database: Database, establishment_id: int) -> None:
    """The project chose « valeurs par défaut » for step 5 of this establishment."""
    with database.session() as session:
        session.execute(update(Establishment).where(Establishment.id == establishment_id)
                        .values(school_life_defaults=True))


def test_every_step_runs_through_run_unit_with_its_audit_and_events(
        academy: tuple[Academy, Path], tmp_path: Path) -> None:
    academy_db, aaf = academy
    database = academy_db.database
    observer = RecordingObserver()
    runner = academy_db.runner(observer=observer)
    [ref] = runner.establishments()
    outcomes: dict[Step, UnitOutcome] = {}
    for step in STEPS_1_TO_3:
        outcomes[step] = runner.run_unit(step, ref)
    outcomes[Step.INIT_DIRECTORY] = runner.run_unit(
        Step.INIT_DIRECTORY, ref, RunOptions(aaf_source=(str(aaf),)))
    # Step 5 needs the timetable of N+1: the establishment imports it after step 4.
    [export] = [path for path in write_timetables(build_academy(1, 5, 2025), tmp_path / "edt")
                if not path.name.startswith("sts")]
    import_timetable(database, export, ref.uai,
                     declared_version="26" if export.suffix == ".zip" else "2020")
    choose_defaults(database, ref.id)
    outcomes[Step.INIT_SCHOOL_LIFE] = runner.run_unit(Step.INIT_SCHOOL_LIFE, ref)
    for step, outcome in outcomes.items():
        assert outcome.status == "done", (step, outcome.error)
        assert audits(database, ref.id, step) == ["started", "done"]
        phases = unit(database, ref.id, step).progress_total
        assert phases >= 1
        assert kinds(observer, step) == [UnitStarted, *[UnitProgressed] * phases, UnitFinished]
        assert unit(database, ref.id, step).status is UnitStatus.DONE
    assert outcomes[Step.INIT_DIRECTORY].counts["classes_created"] > 0
    assert outcomes[Step.INIT_SCHOOL_LIFE].counts["written"] == {"periodes": 3,
                                                                 "dates_ouverture": 1}
    # Running a finished step again changes nothing and says so.
    assert {runner.run_unit(step, ref).status for step in Step} == {"already-done"}


def test_a_dry_run_of_every_step_changes_nothing(academy: tuple[Academy, Path]) -> None:
    academy_db, aaf = academy
    database = academy_db.database
    rows_before = every_row(database)
    files_before = storage_files(academy_db.storage)
    runner = academy_db.runner()
    outcomes = runner.dry_run(runner.establishments(), tuple(Step),
                              RunOptions(aaf_source=(str(aaf),)))
    assert [o.step for o in outcomes] == list(Step)
    assert {o.status for o in outcomes} == {"dry-run"}
    assert outcomes[3].counts["classes_created"] > 0  # what step 4 would create
    assert every_row(database) == rows_before
    assert storage_files(academy_db.storage) == files_before


def test_a_step_4_unit_stopped_between_phases_resumes_from_its_checkpoint(
        academy: tuple[Academy, Path]) -> None:
    academy_db, aaf = academy
    database = academy_db.database
    with database.session() as session:
        year = current_school_year(session)
        for establishment_id in session.scalars(select(Establishment.id)):
            for step in STEPS_1_TO_3:
                finish_unit(get_unit(session, establishment_id, year.id, step), {})
    stopped = academy_db.runner(should_stop=stop_after(1))
    [ref] = stopped.establishments()
    outcome = stopped.run_unit(Step.INIT_DIRECTORY, ref, RunOptions(aaf_source=(str(aaf),)))
    assert outcome.status == "cancelled" and "1 phase(s) sur 2" in outcome.error
    state = unit(database, ref.id, Step.INIT_DIRECTORY)
    assert state.status is UnitStatus.PENDING
    assert set(json.loads(state.checkpoint)["phases"]) == {"import"}
    with database.session() as session:
        classes = session.scalar(select(func.count()).select_from(SchoolClass).where(
            SchoolClass.school_year_id != year.id))
    assert classes > 0
    # The delivery is gone: a resume that imported again would fail on it.
    shutil.rmtree(aaf)
    observer = RecordingObserver()
    resumed = academy_db.runner(observer=observer).run_unit(
        Step.INIT_DIRECTORY, ref, RunOptions(aaf_source=(str(aaf),)))
    assert resumed.status == "done", resumed.error
    assert resumed.counts["classes_created"] == classes
    assert [(type(e), getattr(e, "done", None)) for e in observer.events] == [
        (UnitStarted, None), (UnitProgressed, 2), (UnitFinished, None)]
    assert audits(database, ref.id, Step.INIT_DIRECTORY) == [
        "started", "cancelled", "started", "done"]


def test_a_step_5_unit_stopped_between_phases_resumes_from_its_checkpoint(
        directory: tuple[Database, int]) -> None:
    database, establishment_id = directory
    choose_defaults(database, establishment_id)
    import_timetable(database, STS, UAI, declared_version="EDT 2020")
    import_timetable(database, EDT, UAI, declared_version="2020")
    runner = ChangeoverRunner(database, Path("storage-unused"), now=WINDOW,
                              should_stop=stop_after(1))
    [ref] = runner.establishments()
    outcome = runner.run_unit(Step.INIT_SCHOOL_LIFE, ref)
    assert outcome.status == "cancelled"
    state = unit(database, establishment_id, Step.INIT_SCHOOL_LIFE)
    assert state.status is UnitStatus.PENDING
    assert json.loads(state.checkpoint)["phases"]["valeurs par défaut"]["periodes"] == 3
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Period)) == 3
    observer = RecordingObserver()
    resumed = ChangeoverRunner(database, Path("storage-unused"), observer=observer,
                               now=WINDOW).run_unit(Step.INIT_SCHOOL_LIFE, ref)
    assert resumed.status == "done", resumed.error
    assert resumed.counts["written"] == {"periodes": 3, "dates_ouverture": 1}
    assert [(type(e), getattr(e, "done", None)) for e in observer.events] == [
        (UnitStarted, None), (UnitProgressed, 2), (UnitFinished, None)]
    assert audits(database, establishment_id, Step.INIT_SCHOOL_LIFE) == [
        "started", "cancelled", "started", "done"]


def test_a_blocked_step_5_unit_says_what_is_missing_and_checks_again_later(
        directory: tuple[Database, int]) -> None:
    database, establishment_id = directory
    choose_defaults(database, establishment_id)
    observer = RecordingObserver()
    runner = ChangeoverRunner(database, Path("storage-unused"), observer=observer, now=WINDOW)
    [ref] = runner.establishments()
    outcome = runner.run_unit(Step.INIT_SCHOOL_LIFE, ref)
    assert outcome.status == "refused" and "Emploi du temps non importé" in outcome.error
    # Blocked: no default was written on the way (seed §6.5).
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Period)) == 0
    assert isinstance(observer.events[-1], UnitFailed) and observer.events[-1].refused
    assert unit(database, establishment_id, Step.INIT_SCHOOL_LIFE).status is UnitStatus.BLOCKED
    import_timetable(database, STS, UAI, declared_version="EDT 2020")
    import_timetable(database, EDT, UAI, declared_version="2020")
    assert runner.run_unit(Step.INIT_SCHOOL_LIFE, ref).status == "done"
    assert audits(database, establishment_id, Step.INIT_SCHOOL_LIFE) == [
        "started", "blocked", "started", "done"]


def test_run_init_directory_and_init_school_life_from_the_cli(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "academie"
    assert main(["sample", "--establishments", "1", "--seed", "7", "--year", "2025",
                 "--out", str(out)]) == 0
    options = ["--db", f"sqlite:///{out / 'yearchange.db'}", "--storage", str(out / "storage")]
    capsys.readouterr()
    # Before steps 1 to 3 the guard refuses step 4: exit 1, the reason in French.
    assert main([*options, "run", "init-directory", "--all", "--json"]) != 0
    assert main([*options, "import-aaf", str(out / "aaf"), "--json"]) == 0
    capsys.readouterr()
    for step in ("purge-trash", "archive", "delete-obsolete"):
        assert main([*options, "run", step, "--all", "--yes"]) == 0
    capsys.readouterr()
    assert main([*options, "run", "4", "--all", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"step", "done", "already_done", "refused", "failed", "overridden",
                           "initial_loads", "source", "import"}
    assert report["step"] == "init-directory" and len(report["done"]) == 1
    assert report["source"] == [str(out / "aaf")]  # the newest delivery imported
    assert report["import"]["step4"] == report["done"]
    assert main([*options, "run", "init-school-life", "--all"]) == 1
    text = capsys.readouterr().out
    assert "⊘ bloqué" in text and "Emploi du temps non importé" in text and "→" in text
    assert main([*options, "run", "init-school-life", "--all", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"step", "done", "already_done", "refused", "failed", "overridden",
                           "written", "missing"}
    [(uai, items)] = report["missing"].items()
    assert "emploi-du-temps" in [item["code"] for item in items]
    assert main([*options, "run", "init-directory", "--all"]) == 0
    text = capsys.readouterr().out
    assert "✓ déjà terminé (rien à faire)" in text and uai in text


def test_the_engine_runs_steps_4_and_5_as_units_and_logs_a_failure_with_its_traceback(
        academy: tuple[Academy, Path]) -> None:
    academy_db, aaf = academy
    database = academy_db.database
    now = dt.datetime.now(dt.UTC)
    with database.session() as session:
        add_window(session, 2025, "4", now - dt.timedelta(hours=1), now + dt.timedelta(hours=2))
    client = DatabaseEngineClient(database)
    [uai] = [ref.uai for ref in academy_db.runner().establishments()]
    with database.session() as session:
        [establishment_id] = session.scalars(select(Establishment.id))

    def unit_state(step: Step) -> tuple[UnitStatus, str] | None:
        with database.session() as session:
            found = session.scalar(select(StepUnit).where(
                StepUnit.establishment_id == establishment_id, StepUnit.step == step))
            return (found.status, found.error) if found is not None else None

    def failed_tasks() -> list[str]:
        with database.session() as session:
            return list(session.scalars(select(EngineTask.reason).where(
                EngineTask.milestone == Step.INIT_DIRECTORY.value,
                EngineTask.status == TaskStatus.FAILED)))

    log_path = academy_db.storage.parent / "moteur.log"
    # The unit runs in a worker process (local on SQLite, the engine's `yearchange worker`
    # child on PostgreSQL): its traceback reaches the engine's log file, not this process.
    with running_engine(database, academy_db.storage, log_path=str(log_path), retries=0):
        # No AAF delivery imported yet: step 4 fails, with the cause in the log.
        client.request(RequestAction.RUN, step="init-directory", uais=[uai])
        reasons = wait_until(failed_tasks, "étape 4 en échec", 120)
        assert all("Aucune livraison AAF" in reason for reason in reasons)
        logged = wait_until(lambda: log_path.exists() and "Traceback" in log_path.read_text(
            encoding="utf-8") and log_path.read_text(encoding="utf-8"), "trace au journal", 30)
        assert "Aucune livraison AAF" in logged.split("Traceback", 1)[1]
        import_delivery(database, [aaf])  # the regular import before the change-over
        with database.session() as session:
            year = current_school_year(session)
            for step in STEPS_1_TO_3:
                finish_unit(get_unit(session, establishment_id, year.id, step), {})
        client.request(RequestAction.RUN, step="4", uais=[uai])
        wait_until(lambda: unit_state(Step.INIT_DIRECTORY) == (UnitStatus.DONE, ""),
                   "étape 4 terminée", 120)
        client.request(RequestAction.RUN, step="5", uais=[uai])
        _status, error = wait_until(
            lambda: (state := unit_state(Step.INIT_SCHOOL_LIFE)) is not None
            and state[0] is UnitStatus.BLOCKED and state, "étape 5 bloquée", 60)
        assert "Emploi du temps non importé" in error
    assert unit(database, establishment_id, Step.INIT_DIRECTORY).status is UnitStatus.DONE
    assert unit(database, establishment_id, Step.INIT_SCHOOL_LIFE).status is UnitStatus.BLOCKED
