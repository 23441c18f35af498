"""Grid, calendar, ``plan`` and engine agree: each milestone cell reads the plan the engine
schedules from, the access-block cell is the access block's own decision at the operator's
date, and the calendar screen draws milestones and done steps as done."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from template_support import copy_sample
from tui_support import make_app, run, screen_text, settle

from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.tui.fake_engine import FakeEngine
from yearchange_tui.tui.grid_model import cells_for
from yearchange_tui.workflow.access_block import window_in_plan
from yearchange_tui.workflow.calendar import Milestone, build_plan
from yearchange_tui.workflow.establishments import establishment_by_uai
from yearchange_tui.workflow.models import Step, UnitStatus
from yearchange_tui.workflow.units import current_school_year, finish_unit, get_unit

# The sample's year N is 2025-2026: its access block runs in the second half of August 2026.
DECEMBER = dt.datetime(2025, 12, 7, 10, 0, tzinfo=dt.UTC)
DURING = dt.datetime(2026, 8, 20, 10, 0, tzinfo=dt.UTC)
AFTER = dt.datetime(2026, 9, 5, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[Database]:
    out = copy_sample(tmp_path / "academie", 2, 7, 2025)
    database = open_database(f"sqlite:///{out / 'yearchange.db'}")
    yield database
    database.dispose()


def _finish(database: Database, uai: str, step: Step) -> None:
    with database.session() as session:
        establishment = establishment_by_uai(session, uai)
        year = current_school_year(session)
        unit = get_unit(session, establishment.id, year.id, step)
        assert unit is not None
        finish_unit(unit, {})


def test_the_access_block_cell_is_planned_in_december_for_an_august_block(
        sample: Database) -> None:
    views = DatabaseEngineClient(sample, clock=lambda: DECEMBER).establishments()
    uai = views[0].uai
    _finish(sample, uai, Step.INIT_DIRECTORY)  # step 4 run early says nothing of the block

    def cell(clock: dt.datetime):  # type: ignore[no-untyped-def]
        view = next(v for v in DatabaseEngineClient(sample, clock=lambda: clock).establishments()
                    if v.uai == uai)
        return view, cells_for(view)["access-block"]

    with sample.session() as session:
        window = window_in_plan(build_plan(session), establishment_by_uai(session, uai).id)
    assert window is not None and window.starts_on.month == 8  # an August block
    view, block = cell(DECEMBER)
    assert block.status is UnitStatus.PENDING and block.status_word == "prévu"
    assert block.planned_on == window.starts_on
    assert (f"prévu du {window.starts_on:%d/%m/%Y} au {window.ends_on:%d/%m/%Y}"
            in block.describe())
    assert "levé" not in block.describe() and not view.access_blocked
    view, block = cell(DURING)
    assert block.status is UnitStatus.RUNNING and view.access_blocked
    assert f"en cours jusqu'au {window.ends_on:%d/%m/%Y}" in block.describe()
    view, block = cell(AFTER)
    assert block.status is UnitStatus.DONE and block.status_word == "levé"


def test_each_milestone_cell_reads_the_plan_the_engine_schedules_from(
        sample: Database) -> None:
    client = DatabaseEngineClient(sample, clock=lambda: DECEMBER)
    with sample.session() as session:
        plan = build_plan(session)
        ids = {uai: establishment_by_uai(session, uai).id
               for uai in {m.uai for m in plan.milestones}}
    for view in client.establishments():
        cells = cells_for(view)
        for key, milestone in (("warnings", Milestone.WARNING), ("dry-run", Milestone.DRY_RUN)):
            planned = plan.get(ids[view.uai], milestone)
            assert planned is not None
            if planned.schedulable:  # the engine has a job for it: the grid shows its date
                assert cells[key].status is UnitStatus.PENDING, key
                assert cells[key].planned_on == planned.on_date, key
            else:
                assert cells[key].status is None or cells[key].planned_on is None, key


def test_done_milestones_read_done(sample: Database) -> None:
    views = DatabaseEngineClient(sample, clock=lambda: DECEMBER).establishments()
    uai = views[0].uai
    # The dry-run reports of steps 1-3 are what the engine checks; here the steps' own
    # units being done leaves the dry run "skipped" (too late), never "planned".
    for step in (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE):
        _finish(sample, uai, step)
    view = next(v for v in DatabaseEngineClient(sample, clock=lambda: DECEMBER).establishments()
                if v.uai == uai)
    cells = cells_for(view)
    assert cells["purge-trash"].status is UnitStatus.DONE
    assert cells["dry-run"].status is UnitStatus.SKIPPED


def test_the_calendar_draws_milestones_and_done_steps_as_done() -> None:
    fake = FakeEngine(4)
    for uai in fake.uais:
        fake.set_unit(uai, "dry-run", status=UnitStatus.DONE)
        fake.set_unit(uai, "purge-trash", status=UnitStatus.DONE)
        fake.set_unit(uai, "warnings", status=UnitStatus.PENDING,
                      planned_on=dt.date(2026, 6, 30))
        fake.set_unit(uai, "access-block", status=UnitStatus.PENDING, word="prévu",
                      planned_on=dt.date(2026, 8, 18), ends_on=dt.date(2026, 9, 1))

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(160, 36)) as pilot:
            await settle(app, pilot)
            await pilot.press("f3")
            await pilot.pause()
            lines = screen_text(app).splitlines()

            def row(label: str) -> str:
                found = [line for line in lines if line.strip().startswith(label)]
                assert found, label
                return found[0].strip()[15:]

            assert "✓" in row("0 À blanc") and "█" not in row("0 À blanc")
            assert "✓" in row("1 Corbeille") and "█" not in row("1 Corbeille")
            assert "█" in row("Avertissements")
            assert row("Blocage").count("█") >= 10  # every day of the block, not its start
            assert "█" in row("2 Archivage")
            assert "✓ fait" in "\n".join(lines)

    run(scenario)
