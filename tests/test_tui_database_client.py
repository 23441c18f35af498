"""The console on the real database client: the grid, read-only, the rejects browser and
the detail read from the database; a console whose engine cannot start opens as an
observer and says why; a dry run asked from the console runs in a real engine.

One sample académie of two establishments (shared by the reading tests), and fresh
databases for the tests that start engines.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select
from template_support import copy_sample
from tui_support import make_app, run, screen_text, wait_until

from yearchange_tui.cli.main import main
from yearchange_tui.config import Settings, load_settings
from yearchange_tui.ent import base
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.scheduling.api import EngineMode, RequestAction
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.lease import LEASE_NAME
from yearchange_tui.scheduling.models import EngineLease, EngineRequest
from yearchange_tui.scheduling.spawn import default_log_file, spawn_engine, wait_for_engine
from yearchange_tui.tui.app import connect_engine, console_log, console_log_file
from yearchange_tui.tui.detail_source import DatabaseDetailSource
from yearchange_tui.tui.grid_model import cells_for
from yearchange_tui.tui.rejects_source import (
    DatabaseRejectsSource,
    RejectQuery,
    open_rejects_source,
)
from yearchange_tui.workflow.models import Step, UnitStatus

BEFORE_THE_SUMMER = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, Path]]:
    """A two-establishment sample académie (shared: tests only read, import and annotate)."""
    out = copy_sample(tmp_path_factory.mktemp("academie"), 2, 7, 2025)
    database = open_database(f"sqlite:///{out / 'yearchange.db'}")
    yield database, out / "storage"
    database.dispose()


@pytest.fixture
def fresh_sample(tmp_path: Path) -> Iterator[tuple[str, Database, Path]]:
    """A sample académie of its own (the tests that run engines change it)."""
    out = copy_sample(tmp_path / "academie", 2, 7, 2025)
    url = f"sqlite:///{out / 'yearchange.db'}"
    database = open_database(url)
    yield url, database, out / "storage"
    database.dispose()


def settings_for(db_url: str, storage: Path, *, read_only: bool = False) -> Settings:
    return load_settings({"db": db_url, "storage": str(storage), "read_only": read_only})


def test_the_grid_is_read_from_the_database(sample: tuple[Database, Path]) -> None:
    database, _storage = sample
    client = DatabaseEngineClient(database, clock=lambda: BEFORE_THE_SUMMER)
    views = client.establishments()
    assert [view.uai for view in views] == ["0016980G", "0693422V"]
    college = views[1]
    assert college.kind == "college" and college.project_code
    assert set(Step) <= set(college.units)
    cells = cells_for(college)
    assert cells["purge-trash"].planned_on is not None
    assert cells["dry-run"].status is UnitStatus.PENDING
    status = client.status()
    assert status.mode is EngineMode.NONE and not status.holder
    assert status.next_window is not None and "étapes 1 à 3" in status.next_window.label


def test_read_only_refuses_every_change(sample: tuple[Database, Path]) -> None:
    database, _storage = sample
    client = DatabaseEngineClient(database, read_only=True)
    for action in (RequestAction.RUN, RequestAction.PAUSE, RequestAction.IMPORT_AAF):
        with pytest.raises(PermissionError, match="consultation"):
            client.request(action, step="archive", uais=[], path="x")
    assert client.status().read_only
    with database.session() as session:
        assert session.scalars(select(EngineRequest)).all() == []


def test_the_rejects_browser_and_the_detail_read_an_aaf_import(
        sample: tuple[Database, Path], tmp_path: Path) -> None:
    database, storage = sample
    delivery = storage.parent / "aaf"
    main(["import-aaf", str(delivery), "--db", database.url, "--storage", str(storage),
          "--json"])
    source = open_rejects_source(database, tmp_path)
    assert isinstance(source, DatabaseRejectsSource)
    page = source.query(RejectQuery())
    assert page.total > 0
    first = page.rows[0]
    assert first.message and first.code.startswith("AAF-")
    assert first.code in source.facets()["code"]
    assert source.query(RejectQuery(uai=first.uai, code=first.code)).total >= 1
    source.set_handled([first.id], True)
    assert source.query(RejectQuery(hide_handled=True)).total == page.total - 1
    again = open_rejects_source(database, tmp_path)
    assert again.query(RejectQuery()).rows[0].handled is True
    detail = DatabaseDetailSource(database, source).detail("0693422V")
    assert detail is not None and detail.name.startswith("Collège")
    assert [step.key for step in detail.steps] == [step.value for step in Step]
    assert sum(detail.reject_counts.values()) == source.query(
        RejectQuery(uai="0693422V")).total
    assert detail.access_block
    assert DatabaseDetailSource(database, source).detail("9999999Z") is None
    # The grid counts each establishment's rejects, as the browser filters them.
    for view in DatabaseEngineClient(database).establishments():
        assert view.reject_count == source.query(RejectQuery(uai=view.uai)).total


def test_the_detail_names_where_the_access_block_dates_come_from_in_french(
        fresh_sample: tuple[str, Database, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    db_url, database, storage = fresh_sample
    # An establishment's own dates are set during its pré-rentrée (checklist row 129).
    monkeypatch.setattr(base, "clock", lambda: dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC))
    source = DatabaseDetailSource(database, open_rejects_source(database, storage.parent))
    assert source.detail("0693422V").access_block.endswith("(dates du projet).")
    places = ["--db", db_url, "--storage", str(storage)]
    assert main(["plan", "set", "access-block-start", "2026-08-25", "--uai", "0693422V",
                 *places]) == 0
    assert main(["plan", "set", "access-block-end", "2026-08-30", "--kind", "college",
                 *places]) == 0
    assert source.detail("0693422V").access_block == (
        "Du 25/08/2026 au 30/08/2026 (dates de l'établissement).")
    assert source.detail("0016980G").access_block.endswith("(dates du projet).")


def test_an_engine_that_cannot_start_leaves_an_observer_console_that_says_why(
        fresh_sample: tuple[str, Database, Path], tmp_path: Path) -> None:
    db_url, database, storage = fresh_sample
    broken = tmp_path / "broken.toml"
    broken.write_text("theme = [\n", encoding="utf-8")
    engine_log = tmp_path / "logs" / "engine.log"
    with console_log(console_log_file()) as console_log_path:
        engine = connect_engine(settings_for(db_url, storage), database, str(broken),
                                log_file=engine_log)
    # The cause, in French, with the engine's log path and its last lines.
    assert engine.severity == "error"
    assert engine.notice.startswith("Moteur non démarré : Le moteur s'est arrêté au "
                                    "démarrage (code 2).")
    assert str(engine_log) in engine.notice
    assert "Fichier de configuration illisible" in engine.notice
    assert "vos demandes attendent en file" in engine.notice
    # The traceback went to the console's log.
    assert console_log_path == default_log_file().with_name("console.log")
    logged = console_log_path.read_text(encoding="utf-8")
    assert "Moteur non démarré" in logged and "Traceback" in logged
    assert "EngineStartError" in logged

    client = engine.client
    assert client.spawned_pid is None and client.status().mode is EngineMode.NONE

    async def scenario() -> None:
        app = make_app(client, engine_notice=engine.notice,
                       engine_notice_severity=engine.severity)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await app.sync()
            await pilot.pause()
            assert "✗ aucun moteur — demandes en file ·" in screen_text(app)
            assert any(note.title == "Moteur" and "Moteur non démarré" in note.message
                       for note in app._notifications)
            await pilot.press("d", "enter")  # a dry run: queued for the next engine
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert any("Passage à blanc demandé. (demande n° 1)" in note.message
                       for note in app._notifications)

    run(scenario)
    with database.session() as session:
        [request] = session.scalars(select(EngineRequest)).all()
        assert (request.action, request.status.value) == ("dry-run", "queued")


def test_a_live_engine_on_another_host_makes_the_console_an_observer(
        fresh_sample: tuple[str, Database, Path]) -> None:
    db_url, database, storage = fresh_sample
    now = dt.datetime.now(dt.UTC)
    with database.session() as session:
        session.add(EngineLease(name=LEASE_NAME, token="f" * 32, holder="autre-serveur:4242",
                                host=f"autre-que-{socket.gethostname()}", pid=4242,
                                acquired_at=now, heartbeat_at=now, paused=False,
                                read_only=False, log_path="/var/log/yearchange/engine.log"))
    engine = connect_engine(settings_for(db_url, storage), database)
    assert engine.client.spawned_pid is None  # no second engine
    assert engine.severity == "information"
    assert engine.notice == ("Un moteur tourne déjà (autre-serveur:4242) : cette console "
                             "l'observe et lui envoie ses demandes.")
    status = engine.client.status()
    assert status.mode is EngineMode.OBSERVER and status.holder == "autre-serveur:4242"

    async def scenario() -> None:
        app = make_app(engine.client, engine_notice=engine.notice)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await app.sync()
            await pilot.pause()
            assert "moteur ◎ observateur" in screen_text(app)
            assert any("autre-serveur:4242" in note.message for note in app._notifications)

    run(scenario)


@contextmanager
def detached_engine(db_url: str, database: Database, storage: Path,
                    log_file: Path) -> Iterator[DatabaseEngineClient]:
    """A real detached engine on the sample, stopped cleanly (SIGTERM, exit 0) at the end."""
    process = spawn_engine(db_url, storage, log_file=log_file, extra_args=("--poll", "0.2"))
    try:
        assert wait_for_engine(database, process, 60)
        yield DatabaseEngineClient(database, spawned_pid=process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)


def test_the_console_runs_a_dry_run_in_a_real_engine(
        fresh_sample: tuple[str, Database, Path], tmp_path: Path) -> None:
    db_url, database, storage = fresh_sample
    with detached_engine(db_url, database, storage, tmp_path / "engine.log") as client:

        async def scenario() -> None:
            app = make_app(client, poll_interval=0.1, start_poller=True)
            async with app.run_test(size=(80, 24)) as pilot:
                assert await wait_until(pilot, lambda: "0016980G" in screen_text(app), 30)
                assert "moteur ● attaché" in screen_text(app)
                await pilot.press("d", "enter")
                assert await wait_until(
                    pilot, lambda: app.model.cells["0016980G"]["dry-run"].status
                    is UnitStatus.DONE, timeout=120)
                assert "✓ fini" in screen_text(app)
            app.bridge.stop()

        run(scenario)


def test_the_toast_says_what_the_engine_answered(
        fresh_sample: tuple[str, Database, Path], tmp_path: Path) -> None:
    """A dry run: the toast is the engine's own answer (what it queued), not « demandé »."""
    db_url, database, storage = fresh_sample
    with detached_engine(db_url, database, storage, tmp_path / "engine.log") as client:

        async def scenario() -> None:
            app = make_app(client, poll_interval=0.1, start_poller=True)
            async with app.run_test(size=(80, 24), notifications=True) as pilot:
                assert await wait_until(pilot, lambda: "0016980G" in screen_text(app), 30)
                await pilot.press("d", "enter")

                def answered() -> bool:
                    return any("Moteur (demande n° 1) : Passage à blanc" in note.message
                               and "1 unité(s) en file" in note.message
                               for note in app._notifications)

                assert await wait_until(pilot, answered, timeout=60)
                assert not any("demandé." in note.message for note in app._notifications)
            app.bridge.stop()

        run(scenario)
