"""The step-5 wizard in the console, on real databases (SQLite, and PostgreSQL when set).

A collège after step 4 with its UDT timetable imported (every class, teacher and subject
known, so nothing but the periods and dates is missing), the project calendar edited so
the proposal visibly comes from it; and the generated sample académie, still in year N.
The console talks to the engine through the real database client: « Valider » writes
the periods and dates, then sends step 5's ``run`` request, which a real detached engine
runs (or which waits in the database when no engine runs).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from changeover_support import make_academy
from sqlalchemy import select
from textual.widgets import Input
from timetable_support import (
    CLASSES_N1,
    SAMPLES,
    STUDENTS,
    SUBJECTS,
    TEACHERS,
    UAI,
    build_directory,
    snapshot,
)
from tui_support import make_app, run, screen_text, wait_until

from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import (
    Establishment,
    HeadTeacher,
    OpeningDates,
    Period,
    PeriodKind,
    Person,
    SchoolClass,
    SchoolYear,
)
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.models import EngineRequest, EngineTask
from yearchange_tui.scheduling.spawn import spawn_engine, wait_for_engine
from yearchange_tui.timetable.importer import import_timetable
from yearchange_tui.timetable.school_life import propose_school_life
from yearchange_tui.tui.fake_engine import FakeEngine
from yearchange_tui.tui.school_life_source import DatabaseSchoolLifeSource
from yearchange_tui.tui.screens.detail import DetailScreen
from yearchange_tui.tui.screens.modals import ConfirmModal
from yearchange_tui.tui.screens.school_life import (
    PeriodKindToggle,
    SchoolLifeScreen,
    parse_form_date,
)
from yearchange_tui.workflow.calendar import Milestone, Target, set_date
from yearchange_tui.workflow.models import AuditEntry, Step, StepUnit, UnitStatus

# The project's calendar: rentrée des élèves and fin d'année of 2026-2027.
OPENS = dt.date(2026, 9, 3)
CLOSES = dt.date(2027, 7, 2)
BIG = (120, 60)


def _complete_college(database: Database) -> int:
    """The collège after step 4, everything the UDT sample names known; return its id."""
    establishment_id = build_directory(
        database, classes=(*CLASSES_N1, "4Z"),
        teachers=(*TEACHERS, ("2999999", "INCONNU", "Paul", dt.date(1990, 1, 1))),
        subjects=(*SUBJECTS, ("", "ASTRONOMIE", "ASTRO")),
        students=(*STUDENTS, ("1000107", "100000107GG", "FANTOME", "Alix",
                              dt.date(2014, 4, 4), "5A")))
    with database.session() as session:
        year_next = session.scalar(select(SchoolYear).where(SchoolYear.is_current.is_(False)))
        class_3a = session.scalar(select(SchoolClass.id).where(SchoolClass.code == "3A"))
        teacher = session.scalar(select(Person.id).where(Person.aaf_jointure == "2000106"))
        session.add(HeadTeacher(establishment_id=establishment_id,
                                school_year_id=year_next.id, class_id=class_3a,
                                teacher_id=teacher))
        project_id = session.scalar(select(Establishment.project_id).where(
            Establishment.id == establishment_id))
        set_date(session, 2025, Milestone.START_OF_TERM, OPENS, target=Target(project_id))
        set_date(session, 2026, Milestone.CLOSURE, CLOSES, target=Target(project_id))
    udt = next((SAMPLES / "udt").iterdir())
    result = import_timetable(database, udt, UAI, declared_version="25")
    assert not result.rejects_by_code
    return establishment_id


@pytest.fixture
def college(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    _complete_college(database)
    yield database
    database.dispose()


def periods(database: Database) -> list[tuple[PeriodKind, str, dt.date, dt.date]]:
    with database.session() as session:
        return [(p.kind, p.name, p.starts_on, p.ends_on) for p in session.scalars(
            select(Period).order_by(Period.position))]


def opening_dates(database: Database) -> list[tuple[dt.date, dt.date]]:
    with database.session() as session:
        return [(d.opens_on, d.closes_on) for d in session.scalars(select(OpeningDates))]


def step_5(database: Database) -> UnitStatus | None:
    with database.session() as session:
        return session.scalar(select(StepUnit.status).where(
            StepUnit.step == Step.INIT_SCHOOL_LIFE))


def step_5_requests(database: Database) -> list[tuple[str, dict[str, Any], list[str]]]:
    """(action, params, task states) of every request in the engine's request table."""
    with database.session() as session:
        return [(row.action, json.loads(row.params), [str(task.status.value) for task in
                                                      session.scalars(select(EngineTask).where(
                                                          EngineTask.request_id == row.id))])
                for row in session.scalars(select(EngineRequest).order_by(EngineRequest.id))]


@contextmanager
def running_engine(database_url: str, database: Database, storage: Path) -> Iterator[Path]:
    """A real detached engine on the database (as the console starts it); yields its log."""
    log_file = storage.parent / "logs" / "engine.log"
    process = spawn_engine(database_url, storage, log_file=log_file,
                           extra_args=("--poll", "0.2"))
    try:
        assert wait_for_engine(database, process, 60), log_file.read_text(encoding="utf-8")
        yield log_file
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()


class Console:
    """The console on a database: the real engine client and the wizard's source."""

    def __init__(self, database: Database, *, read_only: bool = False) -> None:
        self.client = DatabaseEngineClient(database, read_only=read_only)
        self.app = make_app(self.client, read_only=read_only,
                            school_life=DatabaseSchoolLifeSource(database, read_only=read_only))

    def run(self, scenario: Callable[[], Awaitable[None]]) -> None:
        """Run ``scenario`` to its end."""
        run(scenario)


async def open_wizard(app: Any, pilot: Any, key: str = "v") -> SchoolLifeScreen:
    """Wait for the grid, press ``key`` on the first establishment, wait for the wizard."""
    await app.workers.wait_for_complete()
    await app.sync()
    await pilot.pause()
    await pilot.press(key)
    assert await wait_until(pilot, lambda: isinstance(app.screen, SchoolLifeScreen)
                            and app.screen.state is not None)
    await pilot.pause()
    return app.screen  # type: ignore[return-value]


async def type_into(pilot: Any, screen: SchoolLifeScreen, input_id: str, text: str) -> None:
    """Focus a date field, clear it and type ``text`` key by key, as an operator does."""
    screen.query_one(f"#{input_id}", Input).focus()
    await pilot.press("home", "ctrl+k")
    await pilot.press(*("slash" if char == "/" else char for char in text))
    await pilot.pause()


def flat(text: str) -> str:
    """The screen's lines joined, so a wrapped paragraph reads as one line."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


async def wait_for_text(app: Any, pilot: Any, text: str, timeout: float = 5.0) -> str:
    """Wait until ``text`` is on screen (paragraphs unwrapped); return the screen, flat."""
    assert await wait_until(pilot, lambda: text in flat(screen_text(app)),
                            timeout), screen_text(app)
    return flat(screen_text(app))


def test_french_dates_are_checked() -> None:
    first, last = dt.date(2026, 8, 1), dt.date(2027, 8, 31)
    assert parse_form_date("3/9/2026", first, last) == (dt.date(2026, 9, 3), "")
    assert parse_form_date("31/02/2027", first, last)[1] == "le 31/02/2027 n'existe pas"
    assert "format JJ/MM/AAAA" in parse_form_date("20260903", first, last)[1]
    assert parse_form_date("", first, last)[1] == "date manquante (JJ/MM/AAAA)"
    assert "hors de l'année scolaire" in parse_form_date("02/09/2025", first, last)[1]


def test_the_wizard_proposes_the_calendar_switches_to_semesters_and_the_engine_runs_step_5(
        college: Database, database_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    storage = tmp_path / "storage"
    console = Console(college)

    async def scenario() -> None:
        app = console.app
        async with app.run_test(size=BIG) as pilot:
            screen = await open_wizard(app, pilot)
            text = screen_text(app)
            assert "Vie scolaire 2026-2027 — 0999001W COLLÈGE JEAN MOULIN" in text
            assert "étape 5 : ○ planifié" in text
            assert "Proposé d'après : calendrier du projet (projet)" in text
            assert "◉ trimestres   ○ semestres" in text
            # Periods cut from the project's rentrée (3 September) and fin d'année (2 July).
            assert "Ouverture       03/09/2026    Fermeture 02/07/2027" in text
            assert "1er trimestre   du 03/09/2026   au 30/11/2026" in text
            assert "2e trimestre    du 01/12/2026   au 15/03/2027" in text
            assert "3e trimestre    du 16/03/2027   au 02/07/2027" in text
            assert "Semaine A — 18 semaines (36, 38, 40, 42, 46, 48, 50, 1, …)" in text
            assert ("10 service(s) d'enseignement · 11 cours hebdomadaire(s) · 5 professeur(s) "
                    "principal(aux) pour 5 classe(s) · 1 import(s) d'emploi du temps") in flat(text)
            assert "✗ Dates d'ouverture et de fermeture absentes" in text
            assert "✗ Périodes absentes" in text
            # The kind toggle has the focus: → chooses semesters, cut at 31 January.
            assert app.focused is screen.query_one(PeriodKindToggle)
            await pilot.press("right")
            text = await wait_for_text(app, pilot, "○ trimestres   ◉ semestres")
            assert "1er semestre    du 03/09/2026   au 31/01/2027" in text
            assert "2nd semestre    du 01/02/2027   au 02/07/2027" in text
            assert "trimestre   du" not in text
            # The engine starts now (its calendar marks the summer's past windows missed).
            await asyncio.to_thread(engine.enter_context,
                                    running_engine(database_url, college, storage))
            await pilot.press("f7")
            text = await wait_for_text(app, pilot, "✓ Étape 5 terminée : rien ne manque.",
                                       timeout=120)
            assert "Enregistré : 2 période(s), 1 jeu de dates." in text
            assert "✓ Rien ne manque." in text
            assert "étape 5 : ✓ terminé" in text
            assert "Proposé d'après : déjà saisi" in text

    with ExitStack() as engine:
        console.run(scenario)
    # The engine ran the unit, from the wizard's request (the one request there is).
    assert step_5_requests(college) == [
        ("run", {"step": "init-school-life", "uais": ["0999001W"]}, ["done"])]
    capsys.readouterr()
    assert main(["status", "--db", database_url, "--storage", str(storage), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["uai"] == "0999001W" and row["steps"]["init-school-life"]["status"] == "done"
    assert periods(college) == [
        (PeriodKind.SEMESTER, "1er semestre", OPENS, dt.date(2027, 1, 31)),
        (PeriodKind.SEMESTER, "2nd semestre", dt.date(2027, 2, 1), CLOSES)]
    assert opening_dates(college) == [(OPENS, CLOSES)]
    assert step_5(college) is UnitStatus.DONE
    with college.session() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "school-life"))
        assert entry is not None and entry.outcome == "applied"
        assert '"period_kind": "semester"' in entry.details


def test_an_invalid_date_is_shown_beside_its_field_and_nothing_is_written(
        college: Database, tmp_path: Path) -> None:
    before = snapshot(college)
    console = Console(college)

    async def scenario() -> None:
        app = console.app
        async with app.run_test(size=BIG) as pilot:
            screen = await open_wizard(app, pilot)
            await type_into(pilot, screen, "period-2-ends", "31/02/2027")
            text = screen_text(app)
            assert "✗ fin : le 31/02/2027 n'existe pas" in text
            await pilot.press("f7")
            text = await wait_for_text(app, pilot, "Corrigez les champs signalés ✗")
            assert "rien n'a été enregistré" in text
            assert app.focused is screen.query_one("#period-2-ends", Input)
            # A real date that makes the periods overlap: step 5's own check, in French.
            await type_into(pilot, screen, "period-2-ends", "20/03/2027")
            text = screen_text(app)
            assert "n'existe pas" not in text
            assert "✗ Les périodes « 2e trimestre » et « 3e trimestre » se chevauchent" in text
            await type_into(pilot, screen, "opens-on", "1/13/2026")
            assert "✗ ouverture : le 1/13/2026 n'existe pas" in screen_text(app)
            await pilot.press("f7")
            await wait_for_text(app, pilot, "Corrigez les champs signalés ✗")
            await app.workers.wait_for_complete()

    console.run(scenario)
    assert snapshot(college) == before


def test_escape_closes_without_writing_anything(college: Database, tmp_path: Path) -> None:
    before = snapshot(college)
    console = Console(college)

    async def scenario() -> None:
        app = console.app
        async with app.run_test(size=BIG) as pilot:
            screen = await open_wizard(app, pilot)
            await pilot.press("right")
            await wait_for_text(app, pilot, "◉ semestres")
            await type_into(pilot, screen, "closes-on", "30/06/2027")
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, SchoolLifeScreen)
            assert "0999001W" in screen_text(app)  # back on the grid
            await app.workers.wait_for_complete()

    console.run(scenario)
    assert snapshot(college) == before
    assert periods(college) == [] and step_5(college) is None


def test_without_an_engine_valider_writes_and_queues_step_5_for_the_engine(
        college: Database, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    console = Console(college)

    async def scenario() -> None:
        app = console.app
        async with app.run_test(size=BIG, notifications=True) as pilot:
            await open_wizard(app, pilot)
            await pilot.press("f7")
            text = await wait_for_text(app, pilot, "Étape 5 en file (demande n° 1) : aucun "
                                                   "moteur ne tourne ; elle partira à son "
                                                   "démarrage (yearchange engine).")
            assert "Enregistré : 3 période(s), 1 jeu de dates." in text
            assert "étape 5 : ○ planifié" in text
            assert any("0999001W : Étape 5 en file" in note.message
                       for note in app._notifications)

    console.run(scenario)
    # The periods are written; the unit waits, as a request, for the next engine.
    assert len(periods(college)) == 3 and opening_dates(college) == [(OPENS, CLOSES)]
    assert step_5(college) is None
    assert step_5_requests(college) == [
        ("run", {"step": "init-school-life", "uais": ["0999001W"]}, [])]
    capsys.readouterr()
    assert main(["engine-status", "--db", database_url, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["mode"] == "aucun moteur"
    assert [(r["action"], r["params"], r["status"]) for r in status["requests"]] == [
        ("run", {"step": "init-school-life", "uais": ["0999001W"]}, "queued")]


def test_replacing_what_is_already_set_is_asked_first(college: Database) -> None:
    console = Console(college)

    async def scenario() -> None:
        app = console.app
        async with app.run_test(size=BIG) as pilot:
            await open_wizard(app, pilot)
            await pilot.press("f7")
            await wait_for_text(app, pilot, "Étape 5 en file")
            await pilot.press("escape")
            screen = await open_wizard(app, pilot)
            assert "Proposé d'après : déjà saisi" in screen_text(app)
            assert "3e trimestre    du 16/03/2027   au 02/07/2027" in screen_text(app)
            await type_into(pilot, screen, "closes-on", "30/06/2027")
            await type_into(pilot, screen, "period-3-ends", "30/06/2027")
            await pilot.press("f7")
            assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
            text = screen_text(app)
            assert "Remplacer la vie scolaire déjà saisie ?" in text
            assert "0999001W a déjà 3 période(s) et 1 jeu de dates pour 2026-2027." in text
            await pilot.press("n")
            await wait_for_text(app, pilot, "Remplacement annulé : rien n'a été enregistré.")
            assert opening_dates(college) == [(OPENS, CLOSES)]
            await pilot.press("f7")
            assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
            await pilot.press("o")
            await wait_for_text(app, pilot, "Enregistré : 3 période(s), 1 jeu de dates.")

    console.run(scenario)
    assert opening_dates(college) == [(OPENS, dt.date(2027, 6, 30))]
    assert periods(college)[-1] == (PeriodKind.TRIMESTER, "3e trimestre",
                                    dt.date(2027, 3, 16), dt.date(2027, 6, 30))


def test_read_only_refuses_to_apply_and_writes_nothing(college: Database, tmp_path: Path) -> None:
    before = snapshot(college)
    console = Console(college, read_only=True)

    async def scenario() -> None:
        app = console.app
        async with app.run_test(size=BIG) as pilot:
            await open_wizard(app, pilot)
            text = screen_text(app)
            assert "mode consultation" in text
            assert app.screen.active_bindings["f7"].enabled is False  # greyed, not offered
            await pilot.press("f7")  # says why and writes nothing
            await pilot.click("#school-life-apply")
            text = await wait_for_text(app, pilot, "Mode consultation : la vie scolaire ne "
                                                   "peut pas être enregistrée")
            await app.workers.wait_for_complete()

    console.run(scenario)
    assert snapshot(college) == before
    # The source refuses too, whatever a screen would offer.
    source = DatabaseSchoolLifeSource(college, read_only=True)
    with college.session() as session:
        (establishment_id,) = session.scalars(select(SchoolClass.establishment_id).limit(1))
        proposal = propose_school_life(session, establishment_id)
    with pytest.raises(PermissionError):
        source.apply(UAI, proposal, replace=False)
    assert snapshot(college) == before


def test_the_wizard_fits_80x24_and_opens_from_the_detail(college: Database,
                                                         tmp_path: Path) -> None:
    console = Console(college)

    async def scenario() -> None:
        app = console.app
        async with app.run_test(size=(80, 24)) as pilot:
            await app.workers.wait_for_complete()
            await app.sync()
            await pilot.pause()
            await pilot.press("enter")
            assert await wait_until(pilot, lambda: isinstance(app.screen, DetailScreen))
            assert "v Vie scolaire" in screen_text(app)
            screen = await open_wizard(app, pilot)
            text = screen_text(app)
            for line in text.splitlines():
                assert len(line) <= 80
            assert "1er trimestre   du 03/09/2026   au 30/11/2026" in text
            assert "Valider" in text and "Échap Fermer F7 Valider" in text
            await pilot.press("f1")
            assert "Aide — Assistant de la vie scolaire (étape 5)" in screen_text(app)
            await pilot.press("escape")
            assert app.screen is screen
            await pilot.press("escape")
            assert isinstance(app.screen, DetailScreen)

    console.run(scenario)


def test_on_the_sample_academie_in_year_n_valider_is_refused(database_url: str,
                                                              tmp_path: Path) -> None:
    academy = make_academy(database_url, tmp_path / "storage")
    before = snapshot(academy.database)
    console = Console(academy.database)

    async def scenario() -> None:
        app = console.app
        async with app.run_test(size=BIG) as pilot:
            screen = await open_wizard(app, pilot)
            uai = screen.uai
            text = screen_text(app)
            assert f"Vie scolaire 2026-2027 — {uai}" in text
            assert ("l'étape 5 (Initialisation de la vie scolaire N+1) ne peut pas commencer "
                    "avant la fin de : étape 4 (Initialisation de l'annuaire N+1). Valider "
                    "sera refusé.") in flat(text)
            assert "Valider sera refusé." in text
            assert "✗ Annuaire N+1 non initialisé" in text
            await pilot.press("f7")
            text = await wait_for_text(app, pilot, "Rien n'a été enregistré.")
            assert "ne peut pas commencer avant la fin de" in text
            await app.workers.wait_for_complete()

    console.run(scenario)
    after = snapshot(academy.database)
    assert after == before
    assert step_5_requests(academy.database) == []  # refused before asking the engine
    with academy.database.session() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "school-life"))
        assert entry is not None and entry.outcome == "refused"
    academy.database.dispose()


def test_without_a_database_the_key_says_why() -> None:
    async def scenario() -> None:
        app = make_app(FakeEngine(3))
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await app.sync()
            await pilot.pause()
            await pilot.press("v")
            await pilot.pause()
            assert not isinstance(app.screen, SchoolLifeScreen)
            assert any("Assistant de la vie scolaire indisponible" in note.message
                       for note in app._notifications)

    run(scenario)


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_wizard_snapshot(size: tuple[int, int], college: Database, tmp_path: Path) -> None:
    from test_tui_snapshots import check_snapshot

    console = Console(college)
    captured: list[str] = []

    async def scenario() -> None:
        app = console.app
        async with app.run_test(size=size) as pilot:
            screen = await open_wizard(app, pilot)
            await type_into(pilot, screen, "period-2-ends", "31/02/2027")
            screen.query_one(PeriodKindToggle).focus()
            for box in screen.query(Input):
                box.cursor_blink = False
            await pilot.pause()
            captured.append(app.export_screenshot())

    console.run(scenario)
    check_snapshot(f"school-life-{size[0]}x{size[1]}", captured[0], tmp_path)
