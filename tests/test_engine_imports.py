"""Import requests to a real engine: the typed outcome in the request's answer and events.

Each import runs in the engine's child process; what the engine records is compared with
what ``yearchange import-aaf`` / ``import-timetable --json`` print for the same files on a
second database. Waits are on database state, never on the clock.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from test_scheduling_engine import running_engine, wait_until
from timetable_support import SAMPLES, UAI, build_directory

from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import Person, TeachingService
from yearchange_tui.importing.models import AafImport, AafReject
from yearchange_tui.scheduling import import_requests
from yearchange_tui.scheduling.api import EngineEventView, RequestAction
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.config import EngineConfig
from yearchange_tui.scheduling.models import EngineRequest, RequestStatus
from yearchange_tui.scheduling.spawn import spawn_engine, wait_for_engine
from yearchange_tui.scheduling.state import EngineState
from yearchange_tui.workflow.models import AuditEntry

ROOT = Path(__file__).resolve().parents[1]
DELIVERY = ROOT / "sample_data" / "aaf" / "livraison"
HOSTILE = ROOT / "sample_data" / "aaf" / "refuses" / "entites_internes_Eleve_0000.xml"
CLEAR_EDT = SAMPLES / "edt" / f"Edt_To_ENTEXEMPLE_{UAI}_Enclair.xml"
HOSTILE_EDT = SAMPLES / "refuses" / "entites_internes.xml"
COUNT_KEYS = ("created", "updated", "unchanged", "restored", "flagged_absent", "refused",
              "classes_created", "groups_created", "rubrics_created")


def cli_json(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, Any]:
    """Run a command with ``--json`` on the database at ``url``; its status and JSON."""
    capsys.readouterr()
    status = main(["--db", url, *argv, "--json"])
    return status, json.loads(capsys.readouterr().out)


def engine_request(database: Database, storage: Path, action: RequestAction,
                   **params: Any) -> tuple[dict[str, Any], list[EngineEventView]]:
    """Send one request to a real engine; its final state and the request's events."""
    client = DatabaseEngineClient(database)
    with running_engine(database, storage):
        request_id = client.request(action, **params)
        state = client.wait_for_request(request_id, 180)
    assert state is not None, "la demande n'a pas abouti"
    events = [event for event in client.events_after(0, 5000)
              if event.data.get("request_id") == request_id]
    return state, events


def count(database: Database, model: Any) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_import_aaf_request_gives_the_counts_and_rejects_the_command_prints(
        two_database_urls: tuple[str, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    engine_url, cli_url = two_database_urls
    assert main(["--db", cli_url, "db", "upgrade"]) == 0
    status, printed = cli_json(capsys, cli_url, "import-aaf", str(DELIVERY))
    assert status == 0
    database = open_database(engine_url)
    try:
        state, events = engine_request(database, tmp_path / "storage",
                                       RequestAction.IMPORT_AAF, path=str(DELIVERY))
        assert state["status"] == RequestStatus.DONE.value
        records = printed["records"]
        total_rejects = sum(printed["rejects_by_code"].values())
        assert state["message"].startswith("Import AAF n° 1 — ")
        assert (f"{records['total']} enregistrement(s) : {records['imported']} importé(s), "
                f"{records['refused']} refusé(s)") in state["message"]
        assert f"{total_rejects} rejet(s)" in state["message"]

        [answer] = [e for e in events if e.kind == "request" and e.data.get("outcome")]
        assert answer.data["outcome"] == "done" and answer.data["import_id"] == 1
        assert answer.data["rejects_by_code"] == printed["rejects_by_code"]
        expected_counts = {summary["uai"]: {key: summary[key] for key in COUNT_KEYS}
                           for summary in printed["establishments"]}
        assert {uai: {key: counts[key] for key in COUNT_KEYS}
                for uai, counts in answer.data["counts"].items()} == expected_counts
        rejects_events = {e.uai: (e.data["count"], e.data["codes"])
                          for e in events if e.kind == "reject"}
        assert rejects_events == {
            summary["uai"]: (sum(summary["rejects"].values()), summary["rejects"])
            for summary in printed["establishments"] if summary["uai"] and summary["rejects"]}
        assert "0999001W" in rejects_events

        assert count(database, AafReject) == total_rejects
        with database.session() as session:
            audited = session.scalars(select(AuditEntry.outcome).where(
                AuditEntry.action == "import-aaf")).all()
        assert audited == ["done"]
    finally:
        database.dispose()


def test_hostile_aaf_file_is_refused_with_code_file_and_line_and_nothing_written(
        two_database_urls: tuple[str, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    engine_url, cli_url = two_database_urls
    assert main(["--db", cli_url, "db", "upgrade"]) == 0
    status, printed = cli_json(capsys, cli_url, "import-aaf", str(HOSTILE))
    assert status == 2 and printed["refused"] and printed["line"]
    database = open_database(engine_url)
    try:
        state, events = engine_request(database, tmp_path / "storage",
                                       RequestAction.IMPORT_AAF, path=str(HOSTILE))
        assert state["status"] == RequestStatus.REFUSED.value
        assert state["message"].startswith(
            f"[{printed['code']}] {HOSTILE.name}, ligne {printed['line']} : ")
        [answer] = [e for e in events if e.kind == "request" and e.data.get("outcome")]
        assert (answer.data["outcome"], answer.data["code"], answer.data["file"],
                answer.data["line"]) == ("refused", printed["code"], HOSTILE.name,
                                         printed["line"])
        assert not [e for e in events if e.kind == "reject"]
        assert count(database, AafImport) == 0 and count(database, Person) == 0
    finally:
        database.dispose()


def test_import_timetable_request_done_then_a_hostile_export_refused(
        two_database_urls: tuple[str, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    engine_url, cli_url = two_database_urls
    for url in (engine_url, cli_url):
        database = open_database(url)
        build_directory(database)
        database.dispose()
    status, printed = cli_json(capsys, cli_url, "import-timetable", str(CLEAR_EDT),
                               "--uai", UAI, "--version", "2020")
    assert status == 0
    database = open_database(engine_url)
    storage = tmp_path / "storage"
    try:
        state, events = engine_request(database, storage, RequestAction.IMPORT_TIMETABLE,
                                       path=str(CLEAR_EDT), uai=UAI, version="2020")
        assert state["status"] == RequestStatus.DONE.value
        created = printed["created"]
        assert (f"{UAI} {printed['establishment']}, année {printed['school_year']} : "
                f"{created['services']} service(s), {created['cours']} cours") in state["message"]
        [answer] = [e for e in events if e.kind == "request" and e.data.get("outcome")]
        assert answer.data["counts"] == {UAI: created}
        assert answer.data["rejects_by_code"] == printed["rejects"]
        [rejects] = [e for e in events if e.kind == "reject"]
        assert rejects.uai == UAI and rejects.data["codes"] == printed["rejects"]
        assert "EDT-CLASSE-INCONNUE" in rejects.data["codes"]
        services = count(database, TeachingService)
        assert services == created["services"]

        state, events = engine_request(database, storage, RequestAction.IMPORT_TIMETABLE,
                                       path=str(HOSTILE_EDT), uai=UAI)
        assert state["status"] == RequestStatus.REFUSED.value
        assert state["message"].startswith("[EDT-DTD-INTERDITE] entites_internes.xml, ligne 2")
        [answer] = [e for e in events if e.kind == "request" and e.data.get("outcome")]
        assert (answer.data["code"], answer.data["file"], answer.data["line"]) == (
            "EDT-DTD-INTERDITE", "entites_internes.xml", 2)
        assert count(database, TeachingService) == services

        state, _events = engine_request(database, storage, RequestAction.IMPORT_TIMETABLE,
                                        path=str(CLEAR_EDT), uai="0999999Z")
        assert state["status"] == RequestStatus.REFUSED.value
        assert "0999999Z" in state["message"]
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("academie")
    assert main(["sample", "--establishments", "3", "--seed", "7", "--year", "2025",
                 "--out", str(out)]) == 0
    return out


def test_engine_stop_during_an_import_commits_it_whole_or_leaves_nothing(
        sample_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "yearchange.db").write_bytes((sample_dir / "yearchange.db").read_bytes())
    database = open_database(f"sqlite:///{tmp_path / 'yearchange.db'}")
    storage = sample_dir / "storage"
    client = DatabaseEngineClient(database)
    try:
        people = count(database, Person)
        with running_engine(database, storage) as engine:
            request_id = client.request(RequestAction.IMPORT_AAF, path=str(sample_dir / "aaf"))
            wait_until(engine.imports.running, "processus d'import lancé", 60)
        state = client.request_state(request_id)
        assert state is not None
        if state["status"] == RequestStatus.QUEUED.value:
            assert "interrompu par l'arrêt du moteur" in state["message"]
            assert count(database, AafImport) == 0 and count(database, Person) == people
        else:
            assert state["status"] == RequestStatus.DONE.value
            assert count(database, AafImport) == 1

        with running_engine(database, storage):
            state = client.wait_for_request(request_id, 180)
        assert state is not None and state["status"] == RequestStatus.DONE.value
        assert count(database, AafImport) == 1
        with database.session() as session:
            row = session.get(EngineRequest, request_id)
            assert row is not None and row.message.startswith("Import AAF n° ")
    finally:
        database.dispose()


def _children(pid: int) -> list[int]:
    """Child processes of ``pid`` (Linux ``/proc``)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in task.read_text().split()]
    return found


def _has_open(pid: int, name: str) -> bool:
    """True when process ``pid`` has a file called ``name`` open."""
    try:
        return any(link.resolve().name == name for link in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux /proc")
def test_sigterm_to_a_detached_engine_mid_import_then_restart_imports_once(
        sample_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "yearchange.db").write_bytes((sample_dir / "yearchange.db").read_bytes())
    url = f"sqlite:///{tmp_path / 'yearchange.db'}"
    database = open_database(url)
    storage = sample_dir / "storage"
    log_file = tmp_path / "engine.log"
    arguments = ("--poll", "0.2")
    client = DatabaseEngineClient(database)
    people = count(database, Person)
    process = spawn_engine(url, storage, log_file=log_file, extra_args=arguments)
    try:
        assert wait_for_engine(database, process, 60)
        request_id = client.request(RequestAction.IMPORT_AAF, path=str(sample_dir / "aaf"))
        # The import child has opened the database: the import is under way.
        [child] = wait_until(lambda: [pid for pid in _children(process.pid)
                                      if _has_open(pid, "yearchange.db")], "import en cours", 60)
        process.send_signal(signal.SIGTERM)
        assert process.wait(120) == 0
        assert not Path(f"/proc/{child}").exists(), "le processus d'import est arrêté"
        state = client.request_state(request_id)
        assert state is not None
        if state["status"] == RequestStatus.QUEUED.value:
            assert "rien n'a été importé" in state["message"]
            assert count(database, AafImport) == 0 and count(database, Person) == people
        else:  # the import was committing when the engine stopped: it is whole
            assert state["status"] == RequestStatus.DONE.value
            assert count(database, AafImport) == 1

        restarted = spawn_engine(url, storage, log_file=log_file, extra_args=arguments)
        try:
            state = client.wait_for_request(request_id, 180)
            assert state is not None and state["status"] == RequestStatus.DONE.value
            assert state["message"].startswith("Import AAF n° ")
            assert count(database, AafImport) == 1
            # The request may have finished before the restart: stop an engine that runs.
            assert wait_for_engine(database, restarted, 60)
            restarted.send_signal(signal.SIGTERM)
            assert restarted.wait(60) == 0
        finally:
            if restarted.poll() is None:
                restarted.kill()
        assert "Traceback" not in log_file.read_text(encoding="utf-8")
    finally:
        if process.poll() is None:
            process.kill()
        database.dispose()


def test_an_engine_error_around_a_timetable_request_answers_it_and_the_queue_goes_on(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine cannot start the import's child (here: no process left): each popped
    request is answered « échec » with a French reason, none stays « en cours » for good,
    and the queue's next request is served (it fails the same way, but is answered)."""
    def no_process(*_args: Any) -> Any:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(import_requests, "ImportChild", no_process)
    database = open_database(database_url)
    state = EngineState.create(database, tmp_path, EngineConfig(),
                               lambda: dt.datetime.now(dt.UTC))
    ids = []
    with database.session() as session:
        for _ in range(2):
            row = EngineRequest(created_at=state.clock(), action="import-timetable",
                                params="{}", requested_by="test",
                                status=RequestStatus.RUNNING, message="")
            session.add(row)
            session.flush()
            ids.append(row.id)
    requests = import_requests.ImportRequests(state)
    for request_id in ids:
        requests.submit(request_id, RequestAction.IMPORT_TIMETABLE, {"path": "x", "uai": "y"})
    requests.start_pending()
    for thread in requests.threads:
        thread.join(60)
    with database.session() as session:
        rows = [session.get(EngineRequest, request_id) for request_id in ids]
        assert [row.status for row in rows] == [RequestStatus.FAILED] * 2
        assert all("erreur inattendue du moteur" in row.message for row in rows)
    assert not requests.batch_running
    database.dispose()
