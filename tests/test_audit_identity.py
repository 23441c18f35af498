"""The audit's "who" comes from the system and names the requester of the engine's work."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from changeover_support import Academy, make_academy
from sqlalchemy import select, update
from test_scheduling_engine import running_engine

from yearchange_tui.ent.database import open_database
from yearchange_tui.importing.models import AafImport
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.models import EngineRequest
from yearchange_tui.workflow.models import AuditEntry

REAL_USER = pwd.getpwuid(os.getuid()).pw_name
SUPPORT = "alice@poste-support pid 4242 depuis 198.51.100.4 (déclaré)"


@pytest.fixture
def academy(database_url: str, tmp_path: Path) -> Iterator[Academy]:
    academy = make_academy(database_url, tmp_path / "storage")
    yield academy
    academy.database.dispose()


def _runs(academy: Academy) -> list[AuditEntry]:
    with academy.database.session() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == "run")
                                    .order_by(AuditEntry.id)))


def test_the_os_user_is_the_real_uid_not_the_user_variable(academy: Academy) -> None:
    environment = {**os.environ, "USER": "mallory", "LOGNAME": "mallory",
                   "LNAME": "mallory", "USERNAME": "mallory",
                   "SSH_CONNECTION": "203.0.113.7 50022 192.0.2.10 22"}
    environment.pop("SSH_CLIENT", None)
    result = subprocess.run(
        [sys.executable, "-m", "yearchange_tui", "--db", academy.url, "--storage",
         str(academy.storage), "run", "purge-trash", "--all", "--yes"],
        env=environment, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    entries = _runs(academy)
    assert [entry.outcome for entry in entries] == ["started", "done"]
    assert {entry.os_user for entry in entries} == {REAL_USER}
    assert {entry.ssh_client for entry in entries} == {"203.0.113.7 (déclaré)"}


def test_runs_the_engine_executes_on_request_are_recorded_for_the_requester(
        academy: Academy) -> None:
    database = academy.database
    client = DatabaseEngineClient(database)
    request_id = client.request(RequestAction.RUN, step="purge-trash")
    with database.session() as session:  # sent from another account's console
        session.execute(update(EngineRequest).where(EngineRequest.id == request_id)
                        .values(requested_by=SUPPORT))
    with running_engine(database, academy.storage):
        state = client.wait_for_request(request_id, 120, until_units_finish=True)
    assert [task["status"] for task in state["tasks"]] == ["done"]
    entries = _runs(academy)
    assert [entry.outcome for entry in entries] == ["started", "done"]
    for entry in entries:
        assert (entry.os_user, entry.host, entry.pid) == ("alice", "poste-support", 4242)
        assert entry.ssh_client == "198.51.100.4 (déclaré)"
        details = json.loads(entry.details)
        assert details["requested_by"] == SUPPORT
        assert details["executed_by"].startswith(f"{REAL_USER}@")


def test_imports_the_engine_runs_on_request_are_recorded_for_the_requester(
        database_url: str, tmp_path: Path) -> None:
    delivery = Path(__file__).resolve().parents[1] / "sample_data" / "aaf" / "livraison"
    database = open_database(database_url)
    try:
        client = DatabaseEngineClient(database)
        request_id = client.request(RequestAction.IMPORT_AAF, path=str(delivery))
        with database.session() as session:
            session.execute(update(EngineRequest).where(EngineRequest.id == request_id)
                            .values(requested_by=SUPPORT))
        with running_engine(database, tmp_path / "storage"):
            state = client.wait_for_request(request_id, 180)
        assert state is not None and state["status"] == "done", state
        with database.session() as session:
            entries = list(session.scalars(select(AuditEntry).where(
                AuditEntry.action == "import-aaf")))
            operators = set(session.scalars(select(AafImport.operator)))
        assert [(entry.outcome, entry.os_user) for entry in entries] == [("done", "alice")]
        assert json.loads(entries[0].details)["requested_by"] == SUPPORT
        assert operators == {"alice"}
    finally:
        database.dispose()
