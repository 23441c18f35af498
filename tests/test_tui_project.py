"""The console edits the access block and the project's settings through the engine, which
applies them through the access block's one owner (issue #13, item 3; seed §6.4)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import select
from template_support import copy_sample
from test_tui_database_client import detached_engine
from tui_support import make_app, run, screen_text, settle, wait_until

from yearchange_tui.ent.database import open_database
from yearchange_tui.ent.models import Establishment, Project
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.tui.fake_engine import FakeEngine
from yearchange_tui.tui.grid_model import COLUMNS
from yearchange_tui.tui.widgets.calendar_grid import CalendarGrid
from yearchange_tui.workflow.calendar import Milestone, Target, set_date
from yearchange_tui.workflow.localtime import operator_zone
from yearchange_tui.workflow.models import AuditEntry

BLOCK_COLUMN = [column.key for column in COLUMNS].index("access-block")
COLLEGE = "0693422V"


async def fill(pilot, *values: str) -> None:  # type: ignore[no-untyped-def]
    """Type each field of the dialog in turn (Entrée goes to the next)."""
    for value in values:
        await pilot.press("ctrl+a", "ctrl+k", *value, "enter")


def test_e_on_the_blocage_column_asks_the_engine_for_the_establishment_block() -> None:
    fake = FakeEngine(3, auto=True)

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            app.screen.query_one(CalendarGrid).cursor_column = BLOCK_COLUMN
            await pilot.press("e")
            await fill(pilot, "31/02/2026")
            await pilot.press("f7")
            assert "invalide « 31/02/2026 »" in screen_text(app)
            await pilot.press("shift+tab")
            await fill(pilot, "24/08/2026", "04/09/2026", "Fermé du {debut} au {fin}.")
            assert "Blocage des accès (étape 4)" in screen_text(app)
            await pilot.press("enter")
            await settle(app, pilot)
            assert fake.requests[-1] == (RequestAction.SET_ACCESS_BLOCK, {
                "uais": [fake.uais[0]], "starts_on": "2026-08-24", "ends_on": "2026-09-04",
                "message": "Fermé du {debut} au {fin}."})

    run(scenario)


def test_the_console_block_edit_goes_through_the_owner_in_a_real_engine(
        tmp_path: Path) -> None:
    out = copy_sample(tmp_path / "academie", 2, 7, 2025)
    url = f"sqlite:///{out / 'yearchange.db'}"
    database = open_database(url)
    # The detached engine runs on the real clock: the project's pré-rentrée (checklist row
    # 129, the only time an establishment amends its block) is put around today.
    today = dt.datetime.now(dt.UTC).astimezone(operator_zone("Europe/Paris")).date()
    with database.session() as session:
        project_id = session.scalar(select(Project.id))
        for milestone, day in ((Milestone.TEACHERS_START, today - dt.timedelta(days=1)),
                               (Milestone.START_OF_TERM, today + dt.timedelta(days=2))):
            set_date(session, 2025, milestone, day, target=Target(project_id=project_id))

    def own_block() -> tuple[object, ...]:
        with database.session() as session:
            row = session.execute(select(
                Establishment.access_block_starts_on, Establishment.access_block_ends_on,
                Establishment.access_block_message).where(Establishment.uai == COLLEGE)).one()
            return tuple(row)

    try:
        with detached_engine(url, database, out / "storage", tmp_path / "engine.log") as client:

            async def scenario() -> None:
                app = make_app(client, poll_interval=0.1, start_poller=True)
                async with app.run_test(size=(100, 30), notifications=True) as pilot:
                    assert await wait_until(pilot, lambda: COLLEGE in screen_text(app), 30)
                    grid = app.screen.query_one(CalendarGrid)
                    grid.cursor_column = BLOCK_COLUMN
                    while grid.cursor_uai != COLLEGE:
                        await pilot.press("down")
                    # Beyond mid-September: the owner refuses, nothing is written.
                    await pilot.press("e")
                    await fill(pilot, "", "20/09/2026", "")
                    await pilot.press("enter")

                    def answered(code: str) -> bool:
                        return any(code in note.message for note in app._notifications)

                    assert await wait_until(pilot, lambda: answered("BLOCAGE-APRES-MI-SEPTEMBRE"),
                                            60)
                    assert own_block() == (None, None, None)
                    await pilot.press("e")
                    await fill(pilot, "24/08/2026", "04/09/2026", "Fermé du {debut} au {fin}.")
                    await pilot.press("enter")
                    assert await wait_until(pilot, lambda: own_block()[1] is not None, 60)
                app.bridge.stop()

            run(scenario)
        assert [str(value) for value in own_block()] == [
            "2026-08-24", "2026-09-04", "Fermé du {debut} au {fin}."]
        with database.session() as session:
            [details] = [json.loads(row) for row in session.scalars(
                select(AuditEntry.details).where(AuditEntry.action == "access-block"))]
            assert details["uai"] == COLLEGE
            assert session.scalar(select(Project.access_block_override_allowed))
    finally:
        database.dispose()


def test_maj_p_asks_the_engine_for_the_project_settings() -> None:
    fake = FakeEngine(3, auto=True)

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(100, 34)) as pilot:
            await settle(app, pilot)
            await pilot.press("P")
            assert "Paramètres du projet" in screen_text(app)
            await fill(pilot, "20/08/2026", "01/09/2026", "", "non", "25/06/2026")
            await pilot.press("f7", "enter")
            await settle(app, pilot)
            assert fake.requests[-1] == (RequestAction.SET_PROJECT, {"project": None, "changes": {
                "block_start": "2026-08-20", "block_end": "2026-09-01", "may_amend": False,
                "warning": "2026-06-25"}})

    run(scenario)

