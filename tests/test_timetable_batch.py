"""Timetable imports of many establishments in one engine child (SQLite and PostgreSQL).

Three establishments' requests reach a real engine together, the second with a hostile
file: the engine imports them in one child process, one after the other; the others are
imported, the bad one is refused with its code, file and line and nothing of it changes;
every answer is what ``yearchange import-timetable --json`` gives for the same file on a
second database, one command (one process) per establishment.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from template_support import TEMPLATE_YEAR, copy_aaf_delivery, copy_academy
from test_scheduling_engine import running_engine
from timetable_support import SAMPLES

from yearchange_tui.bench.timetables import ready_for_timetables, timetable_orders
from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import Course, Establishment, TeachingService
from yearchange_tui.sample.roster import build_academy
from yearchange_tui.sample.timetable_writer import write_timetables
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.models import RequestStatus

HOSTILE_EDT = SAMPLES / "refuses" / "entites_internes.xml"


def _ready(url: str, storage: Path, aaf: Path) -> Database:
    copy_academy(url, storage, establishments=3, seed=5)
    database = open_database(url)
    ready_for_timetables(database, storage, aaf)
    return database


def _timetable_rows(database: Database) -> dict[str, tuple[int, int]]:
    """Teaching services and courses per establishment UAI."""
    with database.session() as session:
        found = {}
        for establishment_id, uai in session.execute(select(Establishment.id,
                                                            Establishment.uai)):
            found[uai] = tuple(session.scalar(select(func.count()).select_from(model).where(
                model.establishment_id == establishment_id)) or 0
                for model in (TeachingService, Course))
        return found


def test_a_batch_imports_the_good_files_and_refuses_the_bad_one_like_one_by_one(
        two_database_urls: tuple[str, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    engine_url, cli_url = two_database_urls
    aaf = copy_aaf_delivery(tmp_path / "aaf", 3, 5)
    write_timetables(build_academy(3, seed=5, year=TEMPLATE_YEAR), tmp_path / "timetables")
    orders = timetable_orders(tmp_path / "timetables")
    assert len(orders) == 3
    bad = orders[1]
    bad["path"] = str(shutil.copy(HOSTILE_EDT, tmp_path / "entites_internes.xml"))

    # One by one: one command per establishment, as an operator would.
    cli_database = _ready(cli_url, tmp_path / "storage-cli", aaf)
    printed: list[tuple[int, Any]] = []
    try:
        for order in orders:
            capsys.readouterr()
            status = main(["--db", cli_url, "--storage", str(tmp_path / "storage-cli"),
                           "import-timetable", order["path"], "--uai", order["uai"],
                           "--version", order["version"], "--json"])
            printed.append((status, json.loads(capsys.readouterr().out)))
        one_by_one = _timetable_rows(cli_database)
    finally:
        cli_database.dispose()
    assert [status for status, _ in printed] == [0, 2, 0]

    database = _ready(engine_url, tmp_path / "storage", aaf)
    client = DatabaseEngineClient(database)
    try:
        before = _timetable_rows(database)
        # Sent before the engine starts: it reads the three in one pass.
        request_ids = [client.request(RequestAction.IMPORT_TIMETABLE, **order)
                       for order in orders]
        with running_engine(database, tmp_path / "storage") as engine:
            states = [client.wait_for_request(request_id, 300) for request_id in request_ids]
            # One import-edt thread (and so one child process) served all three.
            assert [thread.name for thread in engine.imports.threads] == ["import-edt"]
        events = client.events_after(0, 5000)
        after = _timetable_rows(database)
    finally:
        database.dispose()

    assert all(state is not None for state in states)
    assert [state["status"] for state in states] == [  # type: ignore[index]
        RequestStatus.DONE.value, RequestStatus.REFUSED.value, RequestStatus.DONE.value]
    answers = {event.data["request_id"]: event for event in events
               if event.kind == "request" and event.data.get("outcome")}
    for request_id, order, (_status, shown) in zip(request_ids, orders, printed, strict=True):
        answer = answers[request_id].data
        if order is bad:
            assert (answer["code"], answer["file"], answer["line"]) == (
                shown["code"], "entites_internes.xml", shown["line"]) == (
                "EDT-DTD-INTERDITE", "entites_internes.xml", 2)
            continue
        assert answer["counts"] == {order["uai"]: shown["created"]}
        assert answer["rejects_by_code"] == shown["rejects"]
        assert shown["created"]["cours"] > 100
    # Nothing of the refused establishment changed; the others are as one by one.
    assert after[bad["uai"]] == before[bad["uai"]]
    assert after == one_by_one
    assert all(after[order["uai"]] != before[order["uai"]] for order in orders
               if order is not bad)
