"""The console at national size: incremental refresh on a real database (SQLite and
PostgreSQL), the filter's rows on 1,000 establishments, UAIs for 10,001 establishments."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest
from changeover_support import make_academy
from sqlalchemy import create_engine, func, insert, select, update
from tui_support import make_app, run

from yearchange_tui.bench.console_database import build_console_database
from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import Database, normalise_url, open_existing_database
from yearchange_tui.ent.models import Establishment
from yearchange_tui.ent.uai import is_valid_uai
from yearchange_tui.sample.roster import establishment_heads
from yearchange_tui.scheduling import changes
from yearchange_tui.scheduling.changes import prune_changes
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.models import ConsoleChange, EngineTask
from yearchange_tui.tui.fake_engine import FakeEngine
from yearchange_tui.tui.grid_model import GridModel
from yearchange_tui.workflow.establishments import KIND_LABELS
from yearchange_tui.workflow.models import Step, StepUnit, UnitStatus

CHANGE_IN_ANOTHER_PROCESS = textwrap.dedent("""
    import sys
    from sqlalchemy import create_engine, delete, insert, select, update
    from yearchange_tui.ent.models import Establishment
    from yearchange_tui.workflow.models import StepUnit, UnitStatus
    url, changed, removed = sys.argv[1:4]
    engine = create_engine(url)
    with engine.begin() as connection:
        ids = dict(connection.execute(select(Establishment.uai, Establishment.id)).all())
        connection.execute(update(StepUnit).where(
            StepUnit.establishment_id == ids[changed]).values(status=UnitStatus.FAILED,
                                                              error="disque plein"))
        connection.execute(delete(Establishment).where(Establishment.id == ids[removed]))
        project_id = connection.scalar(select(Establishment.project_id).limit(1))
        connection.execute(insert(Establishment).values(
            project_id=project_id, uai="0999001W", aaf_jointure="999", name="Collège Neuf",
            kind="college", town="LYON", postal_code="69001", closing_date=None))
    engine.dispose()
""")


def _database(url: str, establishments: int) -> Database:
    build_console_database(url, establishments, running=2)
    return open_existing_database(url)


def _changeable(database: Database) -> tuple[str, str]:
    """A UAI with a running unit, and one with no unit (that can be deleted)."""
    with database.session() as session:
        running = session.scalar(select(Establishment.uai).join(
            StepUnit, StepUnit.establishment_id == Establishment.id).where(
            StepUnit.status == UnitStatus.RUNNING).order_by(Establishment.uai).limit(1))
        free = session.scalar(select(Establishment.uai).where(
            Establishment.id.not_in(select(StepUnit.establishment_id)),
            Establishment.id.not_in(select(EngineTask.establishment_id)))
            .order_by(Establishment.uai.desc()).limit(1))
    assert running and free
    return running, free


def test_a_poll_reads_only_what_another_process_changed(database_url: str) -> None:
    database = _database(database_url, 30)
    try:
        client = DatabaseEngineClient(database)
        first = client.establishment_changes(None)
        assert first.complete and len(first.views) == 30
        quiet = client.establishment_changes(first.cursor)
        assert not quiet.complete and quiet.views == [] and quiet.removed == []
        changed, removed = _changeable(database)
        subprocess.run([sys.executable, "-c", CHANGE_IN_ANOTHER_PROCESS,
                        normalise_url(database_url), changed, removed], check=True)
        after = client.establishment_changes(quiet.cursor)
        assert not after.complete
        assert sorted(view.uai for view in after.views) == sorted([changed, "0999001W"])
        assert after.removed == [removed]
        view = next(view for view in after.views if view.uai == changed)
        assert view.units[Step.ARCHIVE].status is UnitStatus.FAILED
        assert view.units[Step.ARCHIVE].error == "disque plein"
    finally:
        database.dispose()


def test_a_change_committed_after_a_poll_began_is_read_by_the_next_one(
        database_url: str) -> None:
    """A writer's transaction open during a poll (PostgreSQL gives its row an id before
    the commit) is read once it commits."""
    database = _database(database_url, 10)
    other = create_engine(normalise_url(database_url))
    try:
        client = DatabaseEngineClient(database)
        cursor = client.establishment_changes(None).cursor
        changed, _free = _changeable(database)
        with other.connect() as connection:
            transaction = connection.begin()
            connection.execute(update(StepUnit).where(StepUnit.establishment_id == select(
                Establishment.id).where(Establishment.uai == changed).scalar_subquery()).values(
                progress_done=4242))
            if other.dialect.name == "postgresql":
                # A later transaction commits first, with a larger id.
                with database.engine.begin() as later:
                    later.execute(insert(Establishment).values(
                        project_id=select(Establishment.project_id).limit(1).scalar_subquery(),
                        uai="0999001W", aaf_jointure="999", name="Collège Neuf",
                        kind="college", town="LYON", postal_code="69001"))
            during = client.establishment_changes(cursor)
            assert changed not in [view.uai for view in during.views]
            transaction.commit()
        after = client.establishment_changes(during.cursor)
        view = next(view for view in after.views if view.uai == changed)
        assert view.units[Step.ARCHIVE].progress_done == 4242
    finally:
        other.dispose()
        database.dispose()


def test_the_console_redraws_the_changed_rows_and_keeps_the_others(database_url: str) -> None:
    database = _database(database_url, 30)

    async def scenario() -> None:
        app = make_app(DatabaseEngineClient(database))
        async with app.run_test(size=(120, 36)) as pilot:
            await app.sync()
            await pilot.pause()
            model = app.model
            assert len(model.rows) == 30
            changed, removed = _changeable(database)
            kept = {uai: model.views[uai] for uai in model.views if uai not in (changed, removed)}
            await asyncio.to_thread(
                subprocess.run, [sys.executable, "-c", CHANGE_IN_ANOTHER_PROCESS,
                                 normalise_url(database_url), changed, removed], check=True)
            await app.sync()
            await pilot.pause()
            assert model.cells[changed]["archive"].status is UnitStatus.FAILED
            assert removed not in model.views and removed not in model.row_index
            assert "0999001W" in model.row_index
            assert all(model.views[uai] is view for uai, view in kept.items())
            assert len(model.rows) == 30

    try:
        run(scenario)
    finally:
        database.dispose()


def _reference_rows(model: GridModel) -> list[str]:
    """The filter as the console always meant it, written plainly: every establishment
    whose UAI, name, project or kind holds the text (any case), of the kind and with a
    cell in the state asked, in UAI order."""
    wanted = model.filter
    rows = []
    for uai in sorted(model.views):
        view = model.views[uai]
        haystack = " ".join((view.uai, view.name, view.project_code,
                             KIND_LABELS.get(view.kind, view.kind))).casefold()
        if wanted.text and wanted.text.casefold() not in haystack:
            continue
        if wanted.kind is not None and view.kind != wanted.kind:
            continue
        if wanted.status is not None and not any(
                cell.state is wanted.status for cell in model.cells[uai].values()):
            continue
        rows.append(uai)
    return rows


def test_the_filter_gives_the_same_rows_on_a_thousand_establishments(tmp_path) -> None:
    database = _database(f"sqlite:///{tmp_path / 'thousand.db'}", 1000)
    try:
        views = DatabaseEngineClient(database).establishments()
    finally:
        database.dispose()
    model = GridModel()
    model.replace_all(views)
    cases = [("", None, None), ("069", None, None), ("CONDORCET", None, None),
             ("lycée", None, None), ("co", "lycee", None), ("", None, UnitStatus.DONE),
             ("0", "college", UnitStatus.FAILED), ("zzz", None, None)]
    seen = set()
    for text, kind, status in cases:
        model.filter.text, model.filter.kind, model.filter.status = text, kind, status
        model.rebuild_rows()
        expected = _reference_rows(model)
        assert model.visible_uais == expected
        assert model.visible_counts == model.counts(expected)
        seen.add(len(expected))
    assert len(seen) > 4  # the cases narrow the grid differently
    assert 0 in seen and 1000 in seen
    # A view that changes name is found by its new name at the next keystroke.
    renamed = views[0].__class__(**{**views[0].__dict__, "name": "Collège Zzzyzx"})
    model.update(renamed)
    model.filter.text, model.filter.kind, model.filter.status = "zzzyzx", None, None
    model.rebuild_rows()
    assert model.visible_uais == [renamed.uai]


def test_uais_stay_valid_and_distinct_for_ten_thousand_and_one_establishments() -> None:
    _academy, heads = establishment_heads(10_001, seed=1)
    uais = [head.uai for head in heads]
    assert len(set(uais)) == 10_001
    assert all(is_valid_uai(uai) for uai in uais)


def test_the_scripted_console_starts_with_ten_thousand_and_one_establishments() -> None:
    engine = FakeEngine(10_001, auto=True, step_total=20)

    async def scenario() -> None:
        app = make_app(engine)
        async with app.run_test(size=(120, 36)) as pilot:
            await app.sync()
            await pilot.pause()
            assert len(app.model.rows) == 10_001
            assert all(is_valid_uai(uai) for uai in app.model.views)
            await pilot.press("end")
            await pilot.pause()
            assert app.grid_screen is not None
            assert app.grid_screen.grid.cursor_uai == max(app.model.views)

    run(scenario)


@pytest.mark.parametrize("count", [12])
def test_console_bench_measures_a_real_database(count: int, tmp_path, capsys) -> None:
    from yearchange_tui.cli.main import main

    assert main(["console-bench", "--establishments", str(count), "--presses", "3",
                 "--idle-seconds", "0.2", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"engine": "database"' in out and '"filter_keystroke_ms"' in out


def test_a_console_behind_the_pruned_log_reads_everything_again(database_url: str) -> None:
    database = _database(database_url, 10)
    try:
        client = DatabaseEngineClient(database)
        cursor = client.establishment_changes(None).cursor
        changed, _free = _changeable(database)
        with database.engine.begin() as connection:
            for done in range(3):
                connection.execute(update(StepUnit).where(
                    StepUnit.establishment_id == select(Establishment.id).where(
                        Establishment.uai == changed).scalar_subquery()).values(
                    progress_done=done))
        with database.engine.begin() as connection:
            assert prune_changes(connection, keep=1) > 0
        after = client.establishment_changes(cursor)
        assert after.complete and len(after.views) == 10
        assert client.establishment_changes(after.cursor).views == []
    finally:
        database.dispose()


def test_yearchange_run_keeps_the_change_log_bounded_without_an_engine(
        database_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With only ``yearchange run`` (no engine) the triggers' log was never pruned: the run
    now prunes it to the newest rows (here 3, the real bound is 200,000)."""
    academy = make_academy(database_url, tmp_path / "storage", establishments=2)
    monkeypatch.setattr(changes, "KEEP_ROWS", 3)
    status = main(["--db", database_url, "--storage", str(academy.storage), "run",
                   "purge-trash", "--all", "--yes", "--hors-fenetre", "--reason", "essai"])
    assert status == 0
    with academy.database.session() as session:
        assert session.scalar(select(func.count()).select_from(ConsoleChange)) == 3
        assert session.scalar(select(func.count()).select_from(StepUnit).where(
            StepUnit.status == UnitStatus.DONE)) == 2
    academy.database.dispose()
