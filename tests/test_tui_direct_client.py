"""The interim in-process client, the rejects adapter and the detail source on a real sample."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from template_support import copy_sample
from test_tui_support import run, screen_text, wait_until

from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.resources import themes_dir
from yearchange_tui.scheduling.api import EngineMode, RequestAction
from yearchange_tui.tui.app import YearChangeApp, choose_client
from yearchange_tui.tui.detail_source import DatabaseDetailSource
from yearchange_tui.tui.direct_client import DirectEngineClient
from yearchange_tui.tui.fake_engine import FIXED_NOW
from yearchange_tui.tui.grid_model import cells_for
from yearchange_tui.tui.rejects_source import (
    DatabaseRejectsSource,
    RejectQuery,
    open_rejects_source,
)
from yearchange_tui.workflow.models import Step, UnitStatus


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, Path]]:
    """A two-establishment sample académie (shared: tests only add dry runs and imports)."""
    out = copy_sample(tmp_path_factory.mktemp("academie"), 2, 7, 2025)
    database = open_database(f"sqlite:///{out / 'yearchange.db'}")
    yield database, out / "storage"
    database.dispose()


@pytest.fixture
def client(sample: tuple[Database, Path]) -> Iterator[DirectEngineClient]:
    database, storage = sample
    engine = DirectEngineClient(database, storage, now=FIXED_NOW)
    yield engine
    engine.close(wait=True)


def _wait_for(client: DirectEngineClient, text: str, timeout: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = [event.message for event in client.events_after(0, 10_000)]
        if any(text in message for message in messages):
            return messages
        time.sleep(0.05)
    raise AssertionError(f"« {text} » jamais vu : {messages}")


def test_the_grid_is_read_from_the_database(client: DirectEngineClient) -> None:
    views = client.establishments()
    assert [view.uai for view in views] == ["0016980G", "0693422V"]
    college = views[1]
    assert college.kind == "college" and college.project_code
    assert set(Step) <= set(college.units)
    cells = cells_for(college)
    assert cells["purge-trash"].planned_on is not None
    assert cells["dry-run"].status is UnitStatus.PENDING
    status = client.status()
    assert status.mode is EngineMode.ATTACHED and "intégré" in status.holder
    assert status.next_window is not None and status.next_window.label == "étapes 1 à 3"


def test_a_dry_run_runs_in_process_and_shows_as_done(client: DirectEngineClient) -> None:
    request_id = client.request(RequestAction.DRY_RUN, uais=["0693422V"])
    assert request_id == 1
    messages = _wait_for(client, "passage à blanc terminé")
    assert any("Passage à blanc : 1 établissement" in message for message in messages)
    client._table_at = 0.0  # re-read now rather than in 2 s
    college = next(view for view in client.establishments() if view.uai == "0693422V")
    assert cells_for(college)["dry-run"].status is UnitStatus.DONE
    assert all(college.units[step].dry_run_done for step in
               (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE))
    assert client.running_units() == 0


def test_requests_it_cannot_do_are_refused_in_french(client: DirectEngineClient) -> None:
    with pytest.raises(ValueError, match="planificateur"):
        client.request(RequestAction.SET_DATE, step="archive", uais=["0693422V"], date=None)
    with pytest.raises(ValueError, match="étape 4"):
        client.request(RequestAction.RUN, step="init-directory", uais=["0693422V"])


def test_read_only_refuses_every_change(sample: tuple[Database, Path]) -> None:
    database, storage = sample
    engine = DirectEngineClient(database, storage, read_only=True)
    try:
        for action in (RequestAction.RUN, RequestAction.PAUSE, RequestAction.IMPORT_AAF):
            with pytest.raises(PermissionError, match="consultation"):
                engine.request(action, step="archive", uais=[], path="x")
        assert engine.status().read_only
    finally:
        engine.close()


def test_an_aaf_import_streams_its_rejects_and_the_browser_reads_them(
        client: DirectEngineClient, sample: tuple[Database, Path], tmp_path: Path) -> None:
    database, storage = sample
    delivery = storage.parent / "aaf"
    client.request(RequestAction.IMPORT_AAF, path=str(delivery))
    messages = _wait_for(client, "Import AAF n°")
    rejects = [event for event in client.events_after(0, 10_000) if event.kind == "reject"]
    assert rejects and all(event.data["code"].startswith("AAF-") for event in rejects)
    assert any("rejet(s)" in message for message in messages)
    source = open_rejects_source(database, tmp_path)
    assert isinstance(source, DatabaseRejectsSource)
    page = source.query(RejectQuery())
    assert page.total == len(rejects)
    first = page.rows[0]
    assert first.message and first.code in source.facets()["code"]
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


def test_the_console_falls_back_to_the_direct_client_when_the_engine_cannot_start(
        sample: tuple[Database, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import yearchange_tui.scheduling.client as scheduling_client
    from yearchange_tui.cli.util import settings_from_args

    database, storage = sample

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("bail du moteur introuvable")

    monkeypatch.setattr(scheduling_client, "connect", refuse)

    args = argparse.Namespace(db=database.url, storage=str(storage), read_only=False)
    engine, problems = choose_client(settings_from_args(args), database)
    try:
        assert isinstance(engine, DirectEngineClient)
        assert "bail du moteur introuvable" in problems[0]
    finally:
        engine.close()


def test_the_console_runs_a_dry_run_on_the_direct_client(client: DirectEngineClient) -> None:
    async def scenario() -> None:
        app = YearChangeApp(client, now=lambda: FIXED_NOW, theme="yearchange-dark",
                            theme_dirs=[themes_dir()], poll_interval=0.1)
        async with app.run_test(size=(80, 24)) as pilot:
            assert await wait_until(pilot, lambda: "0016980G" in screen_text(app))
            await pilot.press("d", "enter")
            assert await wait_until(
                pilot, lambda: app.model.cells["0016980G"]["dry-run"].status
                is UnitStatus.DONE, timeout=60)
            assert "✓ fini" in screen_text(app)
        app.bridge.stop()

    run(scenario)
