"""Steps 1 to 3 asked outside the establishment's window or before its closure (issue #12
finding 5, seed checklist rows 29 and 30), and the step-3 vigilance (issue #13 item 4,
rows 115 and 116).

The CLI runs as a subprocess on a sample of a school year that has not closed yet (its
closure is next summer, whatever today is); the engine runs in-process on the same kind
of sample; the console's dialogs run on the real database client with its clock pinned
before the summer of the 2025-2026 sample.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from changeover_support import table_rows
from sqlalchemy import select
from template_support import copy_sample
from tui_support import make_app, run, screen_text, wait_until

from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import Establishment
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.engine import Engine, EngineConfig
from yearchange_tui.scheduling.models import EngineRequest
from yearchange_tui.tui.screens.modals import ConfirmModal, WindowOverrideModal
from yearchange_tui.workflow.calendar import build_plan
from yearchange_tui.workflow.establishments import establishments_by_uai
from yearchange_tui.workflow.guards import run_window_problems
from yearchange_tui.workflow.localtime import configure as configure_zone
from yearchange_tui.workflow.models import AuditEntry, Step, StepUnit, UnitStatus

# A school year whose closure (next July at the earliest) is always still to come.
OPEN_YEAR = dt.date.today().year + 1
BEFORE_THE_SUMMER = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)  # of the 2025-2026 sample
VIGILANCE_CAHIER = ("Le service Cahier de textes n'est plus accessible après l'exécution de "
                    "cette étape, et ce jusqu'à l'initialisation des données de la vie "
                    "scolaire de l'année N+1 (cf étape 5).")
VIGILANCE_MEN = "Les exports MEN ne peuvent plus être générés pour l'année N."


@pytest.fixture
def open_year(tmp_path: Path) -> Iterator[tuple[str, Path, Database]]:
    """A one-establishment académie whose year N has not closed yet."""
    out = copy_sample(tmp_path / "academie", 1, 5, OPEN_YEAR)
    url = f"sqlite:///{out / 'yearchange.db'}"
    database = open_database(url)
    yield url, out / "storage", database
    database.dispose()


def yearchange(url: str, storage: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YEARCHANGE_DATA_DIR": str(storage.parent / "data")}
    return subprocess.run([sys.executable, "-m", "yearchange_tui.cli.main", "--db", url,
                           "--storage", str(storage), *args], capture_output=True, text=True,
                          check=False, env=env, stdin=subprocess.DEVNULL)


def uais_of(database: Database) -> list[str]:
    with database.session() as session:
        return list(session.scalars(select(Establishment.uai).order_by(Establishment.uai)))


def units(database: Database) -> list[tuple[str, UnitStatus]]:
    with database.session() as session:
        return [(row.step.value, row.status) for row in session.scalars(select(StepUnit))]


def window_audits(database: Database) -> list[tuple[str, str, bool, dict[str, object]]]:
    with database.session() as session:
        return [(row.action, row.outcome, row.override, json.loads(row.details))
                for row in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
                if "hors-fenetre" in (row.details or "")]


def test_run_of_steps_1_to_3_before_closure_is_refused_then_accepted_with_a_reason(
        open_year: tuple[str, Path, Database]) -> None:
    url, storage, database = open_year
    [uai] = uais_of(database)
    before = table_rows(database)
    for step in ("purge-trash", "2", "delete-obsolete"):
        result = yearchange(url, storage, "run", step, "--all", "--yes")
        assert result.returncode == 2, result.stderr
        assert "hors fenêtre ou avant la fermeture" in result.stderr
        assert f"{uai} : avant la fermeture de l'établissement (" in result.stderr
        assert "hors de la fenêtre de maintenance « étapes 1 à 3 » (prochaine : du 0" in (
            result.stderr)
        assert "--hors-fenetre --reason MOTIF" in result.stderr
    assert table_rows(database) == before  # nothing changed
    assert all(status is not UnitStatus.DONE for _, status in units(database))
    assert [audit[:2] for audit in window_audits(database)] == [("run", "refused")] * 3

    no_reason = yearchange(url, storage, "run", "1", "--all", "--yes", "--hors-fenetre")
    assert no_reason.returncode == 2
    assert "--hors-fenetre exige un motif : --reason MOTIF." in no_reason.stderr
    assert table_rows(database) == before

    accepted = yearchange(url, storage, "run", "1", "--all", "--yes", "--hors-fenetre",
                          "--reason", "reprise validée par la MOA")
    assert accepted.returncode == 0, accepted.stderr
    assert "⚠ Hors fenêtre ou avant la fermeture — 1 établissement(s), dérogation " in (
        accepted.stderr)
    assert "✓ terminé" in accepted.stdout and uai in accepted.stdout
    assert ("purge-trash", UnitStatus.DONE) in units(database)
    action, outcome, override, details = window_audits(database)[-1]
    assert (action, outcome, override) == ("override", "granted", True)
    assert details["reason"] == "reprise validée par la MOA"
    assert "avant la fermeture" in str(details["problem"])


def test_the_run_window_is_read_in_the_configured_time_zone(
        open_year: tuple[str, Path, Database]) -> None:
    """``yearchange run`` checks steps 1 to 3 against the window in the operator's zone
    (``[yearchange.engine] timezone``, made the process's zone at start), not in
    Europe/Paris: one hour after the window opens in Auckland (still the night before it
    opens in Paris) the step may run there, and is refused for a Paris operator."""
    _url, _storage, database = open_year
    try:
        with database.session() as session:
            refs = list(establishments_by_uai(session, uais_of(database)).values())
            configure_zone("Pacific/Auckland")
            plan = build_plan(session)
            [window] = [window for windows in plan.windows.values() for window in windows
                        if window.scope == "1-3"]
            an_hour_in = window.starts_at + dt.timedelta(hours=1)
            assert run_window_problems(session, refs, Step.PURGE_TRASH, an_hour_in) == []
            configure_zone("Europe/Paris")
            [problem] = run_window_problems(session, refs, Step.PURGE_TRASH, an_hour_in)
            assert "hors de la fenêtre de maintenance « étapes 1 à 3 »" in problem.problem
    finally:
        configure_zone(None)


def test_step_3_says_what_it_closes_before_it_runs_and_in_the_dry_run(
        open_year: tuple[str, Path, Database]) -> None:
    url, storage, _database = open_year
    refused = yearchange(url, storage, "run", "3", "--all", "--yes", "--hors-fenetre",
                         "--reason", "essai")
    # Steps 1 and 2 are not done: the unit is refused, but only after the warning.
    assert "⚠ Points de vigilance de l'étape 3" in refused.stderr
    said = " ".join(refused.stderr.split())  # wrapped between words at the terminal's width
    assert VIGILANCE_CAHIER in said and VIGILANCE_MEN in said
    dry = yearchange(url, storage, "dry-run")
    assert dry.returncode == 0, dry.stderr
    printed = " ".join(dry.stdout.split())
    assert VIGILANCE_CAHIER in printed and VIGILANCE_MEN in printed


@contextmanager
def engine_on(database: Database, storage: Path) -> Iterator[Engine]:
    engine = Engine(database, storage, EngineConfig(poll_interval=0.1, heartbeat_interval=0.5,
                                                    plan_sync_interval=1.0))
    thread = threading.Thread(target=engine.run, name="engine-under-test")
    thread.start()
    try:
        assert engine.ready.wait(60)
        yield engine
    finally:
        engine.request_stop("fin du test")
        thread.join(120)


def test_the_engine_refuses_a_run_before_closure_unless_the_request_carries_a_reason(
        open_year: tuple[str, Path, Database]) -> None:
    _url, storage, database = open_year
    [uai] = uais_of(database)
    client = DatabaseEngineClient(database)
    with engine_on(database, storage):
        refused = client.wait_for_request(
            client.request(RequestAction.RUN, step="1", uais=[uai]), 60)
        assert refused is not None and refused["status"] == "refused"
        assert "avant la fermeture de l'établissement" in refused["message"]
        assert "seconde confirmation" in refused["message"]
        accepted = client.wait_for_request(client.request(
            RequestAction.RUN, step="1", uais=[uai], hors_fenetre=True,
            reason="rattrapage"), 60, until_units_finish=True)
    assert accepted is not None and accepted["status"] == "done", accepted
    assert ("purge-trash", UnitStatus.DONE) in units(database)
    override, details = window_audits(database)[-1][2:]
    assert override is True
    assert details["guard"] == "hors-fenetre" and details["reason"] == "rattrapage"
    assert "avant la fermeture" in str(details["problem"])
    # Run on request: the audit names who asked, and the engine that executed it.
    assert details["requested_by"] and details["executed_by"]


@pytest.fixture
def sample_2025(tmp_path: Path) -> Iterator[Database]:
    out = copy_sample(tmp_path / "academie", 2, 7, 2025)
    database = open_database(f"sqlite:///{out / 'yearchange.db'}")
    yield database
    database.dispose()


def test_the_console_says_before_asking_and_needs_a_second_confirmation_and_a_reason(
        sample_2025: Database) -> None:
    database = sample_2025
    client = DatabaseEngineClient(database, clock=lambda: BEFORE_THE_SUMMER)
    first = uais_of(database)[0]

    async def scenario() -> None:
        app = make_app(client)
        async with app.run_test(size=(100, 40)) as pilot:
            await app.sync()
            await pilot.pause()
            await pilot.press("right", "right", "r")  # cursor column: 3 Suppression
            assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
            await pilot.pause()
            text = screen_text(app)
            assert "⚠ Hors fenêtre ou avant la fermeture — 1 établissement(s) :" in text
            assert f"{first} : avant la fermeture de l'établissement" in text
            assert "Une seconde confirmation et un motif" in text
            assert "Le service Cahier de textes n'est plus accessible" in text
            assert "Les exports MEN ne peuvent plus être générés" in text
            await pilot.press(*first.lower(), "enter")
            assert await wait_until(pilot, lambda: isinstance(app.screen, WindowOverrideModal))
            await pilot.pause()
            assert "Pour passer outre, tapez : HORS FENETRE" in screen_text(app)
            await pilot.press(*"hors", "enter")
            assert "Tapez exactement : HORS FENETRE" in screen_text(app)
            await pilot.press(*" fenetre", "enter")  # on to the reason
            await pilot.press("enter")
            assert "Le motif est obligatoire." in screen_text(app)
            await pilot.press(*"fermeture avancee", "enter")
            await app.workers.wait_for_complete()
            await pilot.pause()

    run(scenario)
    with database.session() as session:
        [request] = session.scalars(select(EngineRequest)).all()
    assert request.action == "run"
    assert json.loads(request.params) == {"step": "delete-obsolete", "uais": [first],
                                          "hors_fenetre": True, "reason": "fermeture avancee"}


def fail_unit_of(database: Database, uai: str, step: str) -> None:
    """A unit of ``step`` that ran and failed (what Maj+R and ``retry`` act on)."""
    from yearchange_tui.workflow.models import Step
    from yearchange_tui.workflow.units import current_school_year, get_unit
    with database.session() as session:
        year = current_school_year(session)
        establishment_id = session.scalar(select(Establishment.id).where(
            Establishment.uai == uai))
        unit = get_unit(session, establishment_id, year.id, Step(step))
        assert unit is not None
        unit.status, unit.attempts, unit.error = UnitStatus.FAILED, 1, "disque plein"


def test_a_retry_of_steps_1_to_3_is_window_guarded_by_the_engine(
        open_year: tuple[str, Path, Database]) -> None:
    from yearchange_tui.ent.base import utcnow
    from yearchange_tui.scheduling.import_requests import ImportRequests
    from yearchange_tui.scheduling.requests import RequestHandlers
    from yearchange_tui.scheduling.state import EngineState

    _url, storage, database = open_year
    [uai] = uais_of(database)
    fail_unit_of(database, uai, "purge-trash")
    client = DatabaseEngineClient(database)

    def ask(**params: object) -> dict[str, object]:
        request_id = client.request(RequestAction.RETRY, **params)
        state = EngineState.create(database, storage, EngineConfig(), utcnow)
        RequestHandlers(state, ImportRequests(state)).process()
        answer = client.request_state(request_id)
        assert answer is not None
        return answer

    refused = ask(step="purge-trash", uais=[uai])
    assert refused["status"] == "refused", refused
    assert "avant la fermeture de l'établissement" in str(refused["message"])
    assert "--hors-fenetre --reason MOTIF" in str(refused["message"])
    accepted = ask(step="purge-trash", uais=[uai], hors_fenetre=True, reason="reprise MOA")
    assert accepted["status"] == "done", accepted
    assert "1 unité(s) en échec relancée(s)" in str(accepted["message"])
    override, details = window_audits(database)[-1][2:]
    assert override is True and details["reason"] == "reprise MOA"


def test_the_console_retry_out_of_window_needs_the_second_confirmation_and_a_reason(
        sample_2025: Database) -> None:
    database = sample_2025
    first = uais_of(database)[0]
    fail_unit_of(database, first, "purge-trash")
    client = DatabaseEngineClient(database, clock=lambda: BEFORE_THE_SUMMER)

    async def scenario() -> None:
        app = make_app(client)
        async with app.run_test(size=(100, 40)) as pilot:
            await app.sync()
            await pilot.pause()
            await pilot.press("R")  # cursor column: 1 Corbeille, its unit failed
            assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
            await pilot.pause()
            text = screen_text(app)
            assert "Relancer les échecs de l'étape 1" in text
            assert "⚠ Hors fenêtre ou avant la fermeture — 1 établissement(s) :" in text
            await pilot.press(*first.lower(), "enter")
            assert await wait_until(pilot, lambda: isinstance(app.screen, WindowOverrideModal))
            await pilot.press(*"hors fenetre", "enter")
            await pilot.press(*"reprise", "enter")
            await app.workers.wait_for_complete()
            await pilot.pause()

    run(scenario)
    with database.session() as session:
        [request] = session.scalars(select(EngineRequest)).all()
    assert request.action == "retry"
    assert json.loads(request.params) == {"step": "purge-trash", "uais": [first],
                                          "hors_fenetre": True, "reason": "reprise"}
