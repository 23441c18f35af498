"""The console's fleet: worker processes and the units each runs (issue 17).

On a real sample académie (SQLite, and PostgreSQL when configured) with real ``workers``
rows and real ``unit_claims`` on real step units: the fleet screen lists the workers
(host, pid, state, heartbeat age, queues, load) and, under each, its units; a worker whose
heartbeat stopped reads « sans nouvelles »; a stopped one is not listed; the establishment
detail and the grid's cell line name the worker of a running unit; the cancel key sends the
engine's one cancel request. On the scripted engine: the answer shown is the engine's, pause
and « cancel everything » go through the same requests, read-only refuses them, and an
empty fleet says what to do.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from template_support import copy_academy
from textual.widgets import DataTable
from tui_support import make_app, run, screen_text, settle, wait_until

from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import Establishment
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.models import EngineRequest, WorkerRow, WorkerState
from yearchange_tui.tui.detail_source import DatabaseDetailSource
from yearchange_tui.tui.fake_engine import FakeEngine
from yearchange_tui.tui.rejects_source import open_rejects_source
from yearchange_tui.tui.screens.detail import DetailScreen
from yearchange_tui.tui.screens.fleet import FleetScreen
from yearchange_tui.tui.screens.grid import GridScreen
from yearchange_tui.tui.screens.modals import ConfirmModal
from yearchange_tui.workflow.claims import wall_now
from yearchange_tui.workflow.models import Step, UnitClaim, UnitStatus
from yearchange_tui.workflow.units import begin_unit, current_school_year, get_unit


def worker(host: str, pid: int, state: WorkerState, beat: dt.timedelta, *,
           concurrency: int = 4, queues: str = "", storage: Path) -> WorkerRow:
    now = wall_now()
    return WorkerRow(host=host, pid=pid, queues=queues, concurrency=concurrency, state=state,
                     started_at=now - dt.timedelta(hours=1), heartbeat_at=now - beat,
                     stopped_at=now - beat if state is WorkerState.STOPPED else None,
                     storage_root=str(storage))


def claim(unit_id: int, host: str, pid: int, since: dt.timedelta) -> UnitClaim:
    now = wall_now()
    return UnitClaim(unit_id=unit_id, token=uuid.uuid4().hex, host=host, pid=pid,
                     claimed_at=now - since, heartbeat_at=now)


@pytest.fixture
def fleet_db(database_url: str, tmp_path: Path) -> Iterator[tuple[Database, str, str]]:
    """A two-establishment académie whose first establishment's step 2 runs on calcul-a
    (alive) and second's step 1 on calcul-b (no heartbeat for ten minutes); calcul-c is
    stopping with no unit, calcul-d stopped. Yields the database and the two UAIs."""
    storage = tmp_path / "storage"
    copy_academy(database_url, storage, 2, 7, 2025)
    database = open_database(database_url)
    with database.session() as session:
        year = current_school_year(session)
        first, second = session.scalars(select(Establishment).order_by(Establishment.uai))
        archive = get_unit(session, first.id, year.id, Step.ARCHIVE)
        purge = get_unit(session, second.id, year.id, Step.PURGE_TRASH)
        assert archive is not None and purge is not None
        begin_unit(archive, 10)
        begin_unit(purge, 10)
        session.add_all([
            worker("calcul-a", 101, WorkerState.RUNNING, dt.timedelta(seconds=5),
                   storage=storage),
            worker("calcul-b", 202, WorkerState.RUNNING, dt.timedelta(minutes=10),
                   concurrency=2, queues="etapes-1-3", storage=storage),
            worker("calcul-c", 303, WorkerState.STOPPING, dt.timedelta(seconds=2),
                   concurrency=2, storage=storage),
            worker("calcul-d", 404, WorkerState.STOPPED, dt.timedelta(hours=1),
                   storage=storage)])
        session.flush()
        session.add_all([claim(archive.id, "calcul-a", 101, dt.timedelta(minutes=3)),
                         claim(purge.id, "calcul-b", 202, dt.timedelta(minutes=12))])
        uais = first.uai, second.uai
    yield database, *uais
    database.dispose()


def line_with(text: str, needle: str) -> str:
    """The screen line that holds ``needle``."""
    return next((line for line in text.splitlines() if needle in line), "")


def test_fleet_screen_lists_workers_and_their_units(fleet_db: tuple[Database, str, str]
                                                    ) -> None:
    database, first, second = fleet_db
    app = make_app(DatabaseEngineClient(database), start_poller=True)

    async def scenario() -> None:
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            await pilot.press("t")
            assert await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))
            await settle(app, pilot)
            text = screen_text(app)
            # One row per worker that is not stopped: host, pid, state, heartbeat, queues,
            # units running out of its concurrency; its units under it.
            alive = line_with(text, "calcul-a")
            assert "101" in alive and "● actif" in alive and "toutes" in alive
            assert "1 / 4" in alive and "il y a" in alive
            stale = line_with(text, "calcul-b")
            assert "202" in stale and "! sans nouvelles" in stale
            assert "il y a 10 min" in stale and "etapes-1-3" in stale and "1 / 2" in stale
            stopping = line_with(text, "calcul-c")
            assert "◌ s'arrête" in stopping and "0 / 2" in stopping
            assert "calcul-d" not in text
            lines = text.splitlines()
            index = lines.index(alive)
            assert first in lines[index + 1] and "étape 2 — Archivage" in lines[index + 1]
            assert "depuis" in lines[index + 1] and "il y a 3 min" in lines[index + 1]
            index = lines.index(stale)
            assert second in lines[index + 1] and "étape 1 — Purge" in lines[index + 1]
            assert "3 processus, 2 unité(s) en cours" in text and "1 sans nouvelles" in text
            # The line under the table says the whole worker.
            assert "calcul-a (pid 101) · ● actif · dernier signe de vie" in text
            # A worker that starts shows up with the console's poll, nothing pressed.
            with database.session() as session:
                session.add(worker("calcul-e", 505, WorkerState.RUNNING, dt.timedelta(0),
                                   storage=Path("stockage")))
            assert await wait_until(pilot, lambda: "calcul-e" in screen_text(app), 20)
            assert "4 processus" in screen_text(app)
            await pilot.press("escape")
            assert await wait_until(pilot, lambda: isinstance(app.screen, GridScreen))

    try:
        run(scenario)
    finally:
        app.bridge.stop()


def test_detail_and_cell_line_name_the_worker_of_a_running_unit(
        fleet_db: tuple[Database, str, str], tmp_path: Path) -> None:
    database, first, second = fleet_db
    rejects = open_rejects_source(database, tmp_path)

    async def scenario() -> None:
        app = make_app(DatabaseEngineClient(database), rejects=rejects,
                       details=DatabaseDetailSource(database, rejects))
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            assert app.model.cells[first]["archive"].status is UnitStatus.RUNNING
            grid = app.screen.query_one("#grid")
            while grid.cursor_column_key != "archive":  # type: ignore[attr-defined]
                await pilot.press("right")
            assert grid.cursor_uai == first  # type: ignore[attr-defined]
            await pilot.pause()
            # The line under the grid describes the cell under the cursor.
            assert "en cours sur calcul-a (pid 101)" in line_with(screen_text(app),
                                                                  f"{first} · ")
            app.open_detail(second)
            assert await wait_until(pilot, lambda: isinstance(app.screen, DetailScreen))
            await settle(app, pilot)
            text = screen_text(app)
            # The detail's live states: the running step names its worker.
            assert "en cours sur calcul-b (pid 202)" in line_with(text, "1 Corbeille :")
            assert "calcul-a" not in text  # the other establishment's worker

    run(scenario)


def test_cancel_key_sends_the_engines_cancel_request(fleet_db: tuple[Database, str, str]
                                                     ) -> None:
    database, first, _second = fleet_db

    async def scenario() -> None:
        app = make_app(DatabaseEngineClient(database))
        async with app.run_test(size=(120, 36), notifications=True) as pilot:
            await settle(app, pilot)
            await pilot.press("t")
            assert await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))
            await settle(app, pilot)
            await pilot.press("down", "c")  # the unit under calcul-a
            assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
            assert f"Annuler l'unité {first}" in screen_text(app)
            await pilot.press("o")
            await app.workers.wait_for_complete()
            # No engine runs on this database: the request waits, and the console says so.
            assert await wait_until(pilot, lambda: any(
                "Annulation demandée. (demande n° 1) : en file, aucun moteur" in note.message
                for note in app._notifications))

    run(scenario)
    with database.session() as session:
        rows = session.scalars(select(EngineRequest)).all()
        assert [(row.action, json.loads(row.params)) for row in rows] == [
            (RequestAction.CANCEL.value, {"uais": [first], "step": "archive"})]


def test_empty_fleet_says_what_to_do(database_url: str, tmp_path: Path) -> None:
    copy_academy(database_url, tmp_path / "storage", 2, 7, 2025)
    database = open_database(database_url)

    async def scenario() -> None:
        app = make_app(DatabaseEngineClient(database))
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            await pilot.press("t")
            await settle(app, pilot)
            text = screen_text(app)
            assert "Aucun processus de travail" in text
            if database.is_sqlite:
                assert "le moteur exécute les unités" in text
            else:
                assert "lancez « yearchange worker »" in text

    try:
        run(scenario)
    finally:
        database.dispose()


def scripted_fleet() -> FakeEngine:
    """The scripted engine with two simulated workers and three running units."""
    fake = FakeEngine(6, auto=True, workers=2)
    for uai in fake.uais[:2]:
        fake.progress(uai, "archive", 2, 10)
    fake.progress(fake.uais[2], "purge-trash", 1, 10)
    return fake


def test_answers_pause_and_cancel_all_on_the_scripted_fleet() -> None:
    fake = scripted_fleet()

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(120, 36), notifications=True) as pilot:
            await settle(app, pilot)
            await pilot.press("t")
            await settle(app, pilot)
            assert "calcul-01" in screen_text(app) and "calcul-02" in screen_text(app)
            table = app.screen.query_one(DataTable)
            assert table.row_count == 5  # two workers, three units
            # Cancel the unit under the cursor: the toast is the engine's answer, and the
            # unit leaves the fleet.
            await pilot.press("down", "c", "o")
            await settle(app, pilot)
            cancelled = fake.requests[-1]
            assert cancelled[0] is RequestAction.CANCEL and cancelled[1]["step"] == "archive"
            uai = cancelled[1]["uais"][0]
            assert any("1 en cours s'arrête(nt)" in note.message for note in app._notifications)
            assert uai not in screen_text(app)
            assert table.row_count == 4
            # Maj+C: every unit still running, one request per step.
            await pilot.press("C")
            assert "2 unité(s) en cours sur 2 machine(s)" in screen_text(app)
            await pilot.press("o")
            await settle(app, pilot)
            assert sorted((params["step"], tuple(params["uais"]))
                          for _action, params in fake.requests[-2:]) == [
                ("archive", tuple(u for u in fake.uais[:2] if u != uai)),
                ("purge-trash", (fake.uais[2],))]
            assert fake.running_units() == 0
            assert "0 / 4" in screen_text(app)
            # p: the engine's pause, for the whole fleet; the title says it.
            await pilot.press("p", "enter")
            await settle(app, pilot)
            assert fake.requests[-1][0] is RequestAction.PAUSE
            assert "moteur en pause" in screen_text(app)

    run(scenario)


def test_read_only_fleet_refuses_cancel() -> None:
    fake = FakeEngine(6, auto=True, workers=2, read_only=True)
    fake.progress(fake.uais[0], "archive", 2, 10)

    async def scenario() -> None:
        app = make_app(fake, read_only=True)
        async with app.run_test(size=(120, 36), notifications=True) as pilot:
            await settle(app, pilot)
            await pilot.press("t")
            await settle(app, pilot)
            await pilot.press("down", "c", "C", "p")
            await pilot.pause()
            assert isinstance(app.screen, FleetScreen)
            assert any("« Annuler » est indisponible" in note.message
                       for note in app._notifications)
            assert fake.requests == []

    run(scenario)


def test_a_stale_scripted_worker_is_marked() -> None:
    fake = scripted_fleet()
    fake.stale_workers.add(1)

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("t")
            await settle(app, pilot)
            text = screen_text(app)
            assert "! sans nouvelles" in line_with(text, "calcul-02")
            assert "● actif" in line_with(text, "calcul-01")
            assert "1 sans nouvelles" in text

    run(scenario)
