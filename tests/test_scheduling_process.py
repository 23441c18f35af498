"""The headless engine as a real detached process: requests, SIGTERM, SIGHUP, restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from changeover_support import make_academy
from sqlalchemy import select

from yearchange_tui.changeover.verify import verify
from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import Establishment
from yearchange_tui.scheduling.api import EngineMode, RequestAction
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.lease import read_lease
from yearchange_tui.scheduling.models import EngineTask, TaskStatus
from yearchange_tui.scheduling.spawn import spawn_engine, wait_for_engine
from yearchange_tui.workflow.models import Step, StepUnit, UnitStatus
from yearchange_tui.workflow.units import current_school_year

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and sessions")

CONSOLE = """
import sys, time
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.ent.database import open_database
from yearchange_tui.scheduling.client import connect

client = connect(open_database(sys.argv[1]), sys.argv[2], log_file=sys.argv[3])
print("ENGINE", client.spawned_pid, client.status().mode.value, flush=True)
client.request(RequestAction.RUN, step="archive")
last, ready = 0, False
while True:
    for event in client.events_after(last):
        last = event.id
        if (not ready and event.kind == "unit" and event.step == "archive"
                and event.data.get("event") == "started" and not event.data.get("dry_run")):
            ready = True
            print("READY", flush=True)
    time.sleep(0.05)
"""


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"délai dépassé : {what}")


def archive_statuses(database: Database) -> dict[str, UnitStatus]:
    with database.session() as session:
        rows = session.execute(select(Establishment.uai, StepUnit.status).join(
            Establishment, Establishment.id == StepUnit.establishment_id).where(
            StepUnit.step == Step.ARCHIVE)).all()
    return {uai: UnitStatus(status) for uai, status in rows}


def lease_released(database: Database) -> bool:
    info = read_lease(database)
    return info is not None and not info.held


def archives_verified(database: Database, storage: Path) -> list[list[str]]:
    with database.session() as session:
        year = current_school_year(session)
        ids = list(session.scalars(select(Establishment.id)))
        return [report.problems for report in verify(session, storage, ids, year.id)]


def test_detached_engine_serves_requests_and_stops_cleanly_on_sigterm(
        database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = tmp_path / "storage"
    make_academy(database_url, storage).database.dispose()
    database = open_database(database_url)
    log_file = tmp_path / "logs" / "engine.log"
    process = spawn_engine(database_url, storage, log_file=log_file,
                           extra_args=("--poll", "0.2"))
    try:
        assert wait_for_engine(database, process, 60)
        client = DatabaseEngineClient(database)
        assert client.status().mode is EngineMode.OBSERVER
        client.spawned_pid = process.pid
        assert client.status().mode is EngineMode.ATTACHED

        common = ["--db", database_url, "--storage", str(storage)]
        assert main(["engine-request", *common, "dry-run", "--wait", "--timeout", "120"]) == 0
        assert "Passage à blanc" in capsys.readouterr().out
        run_id = client.request(RequestAction.RUN, step="purge-trash")
        state = client.wait_for_request(run_id, 120, until_units_finish=True)
        assert state is not None and [t["status"] for t in state["tasks"]] == ["done"]
        [view] = client.establishments()
        assert view.units[Step.PURGE_TRASH].status is UnitStatus.DONE
        assert view.units[Step.ARCHIVE].dry_run_done
        finished = [e for e in client.events_after(0, 5000)
                    if e.kind == "unit" and e.data.get("event") == "finished"]
        assert {(e.step, bool(e.data.get("dry_run"))) for e in finished} >= {
            ("purge-trash", False), ("delete-obsolete", True)}
        assert main(["engine-status", *common]) == 0
        assert "Moteur actif" in capsys.readouterr().out

        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        assert lease_released(database)
        log = log_file.read_text(encoding="utf-8")
        assert "SIGTERM" in log and "Moteur arrêté" in log
    finally:
        if process.poll() is None:
            process.kill()
        database.dispose()


def test_sighup_to_the_requesting_console_leaves_the_unit_running(
        database_url: str, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    make_academy(database_url, storage, establishments=2).database.dispose()
    database = open_database(database_url)
    # The console runs in its own session, as over SSH; it starts the engine detached.
    console = subprocess.Popen(
        [sys.executable, "-c", CONSOLE, database_url, str(storage),
         str(tmp_path / "engine.log")],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    engine_pid = 0
    try:
        assert console.stdout is not None
        first = console.stdout.readline().split()
        assert first[0] == "ENGINE" and first[2] == EngineMode.ATTACHED.value
        engine_pid = int(first[1])
        assert console.stdout.readline().strip() == "READY"
        assert set(archive_statuses(database).values()) != {UnitStatus.DONE}

        os.killpg(console.pid, signal.SIGHUP)  # the SSH connection drops
        assert console.wait(30) == -signal.SIGHUP
        info = read_lease(database)
        assert info is not None and info.held and info.pid == engine_pid

        wait_until(lambda: set(archive_statuses(database).values()) == {UnitStatus.DONE}
                   and len(archive_statuses(database)) == 2, "étape 2 terminée sans console")
        assert archives_verified(database, storage) == [[], []]
        os.kill(engine_pid, signal.SIGTERM)
        wait_until(lambda: lease_released(database), "arrêt du moteur", 60)
    finally:
        if console.poll() is None:
            console.kill()
        if engine_pid and not lease_released(database):
            try:
                os.kill(engine_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        database.dispose()


def test_sigterm_mid_unit_then_restart_resumes_and_completes(database_url: str,
                                                             tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    make_academy(database_url, storage, establishments=2).database.dispose()
    database = open_database(database_url)
    log_file = tmp_path / "engine.log"
    arguments = ("--concurrency", "1", "--poll", "0.2")
    process = spawn_engine(database_url, storage, log_file=log_file, extra_args=arguments)
    try:
        assert wait_for_engine(database, process, 60)
        client = DatabaseEngineClient(database)
        run_id = client.request(RequestAction.RUN, step="archive")
        wait_until(lambda: any(e.kind == "progress" and e.step == "archive"
                               and not e.data.get("dry_run")
                               for e in client.events_after(0, 5000)), "première phase")
        process.send_signal(signal.SIGTERM)
        assert process.wait(120) == 0
        assert set(archive_statuses(database).values()) != {UnitStatus.DONE}
        with database.session() as session:
            requeued = session.scalars(select(EngineTask).where(
                EngineTask.request_id == run_id, EngineTask.status == TaskStatus.QUEUED)).all()
            assert requeued, "les unités interrompues restent en file pour la reprise"
            checkpoints = [json.loads(unit.checkpoint or "{}") for unit in session.scalars(
                select(StepUnit).where(StepUnit.step == Step.ARCHIVE,
                                       StepUnit.status != UnitStatus.DONE))]
        # The unit under way stopped at a checkpoint: some phases committed, not all.
        assert any(state.get("phases") for state in checkpoints)

        restarted = spawn_engine(database_url, storage, log_file=log_file, extra_args=arguments)
        try:
            state = client.wait_for_request(run_id, 180, until_units_finish=True)
            assert state is not None and {t["status"] for t in state["tasks"]} == {"done"}
            assert set(archive_statuses(database).values()) == {UnitStatus.DONE}
            assert archives_verified(database, storage) == [[], []]
            restarted.send_signal(signal.SIGTERM)
            assert restarted.wait(60) == 0
        finally:
            if restarted.poll() is None:
                restarted.kill()
    finally:
        if process.poll() is None:
            process.kill()
        database.dispose()
