"""Requests are first-class: the engine's answer to each (fait, sans effet, refusé), a
destructive step refused at once when its prerequisite is not done, read-only clients
refused by the engine itself (dry runs included), the queue shown in every cell, and
``yearchange requests`` / ``yearchange status`` as a user runs them.

The engine's request handlers run on a real database (SQLite, and PostgreSQL when
``YEARCHANGE_TEST_PG_URL`` is set), one pass at a time, without the engine's threads.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from changeover_support import Academy, make_academy
from sqlalchemy import func, select
from tui_support import make_app, run, screen_text, settle, wait_until

from yearchange_tui.ent.base import utcnow
from yearchange_tui.ent.models import Establishment
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.config import EngineConfig
from yearchange_tui.scheduling.import_requests import ImportRequests
from yearchange_tui.scheduling.models import (
    EngineEventRow,
    EngineRequest,
    EngineTask,
    RequestStatus,
    TaskStatus,
)
from yearchange_tui.scheduling.requests import RequestHandlers
from yearchange_tui.scheduling.state import EngineState
from yearchange_tui.tui.screens.requests import RequestsScreen
from yearchange_tui.workflow.models import AuditEntry, Step, UnitStatus
from yearchange_tui.workflow.units import current_school_year, get_unit


@pytest.fixture
def academy(database_url: str, tmp_path: Path) -> Iterator[Academy]:
    """A two-establishment académie of its own."""
    made = make_academy(database_url, tmp_path / "storage", establishments=2)
    yield made
    made.database.dispose()


def handlers(academy: Academy, **config: object) -> RequestHandlers:
    """The engine's request handlers on ``academy`` (no engine thread)."""
    state = EngineState.create(academy.database, academy.storage, EngineConfig(**config),
                               utcnow)
    return RequestHandlers(state, ImportRequests(state))


def ask(academy: Academy, action: RequestAction, **params: object) -> dict[str, object]:
    """Send a request as a console does, let the engine answer it, return its state."""
    client = DatabaseEngineClient(academy.database)
    request_id = client.request(action, **params)
    handlers(academy).process()
    state = client.request_state(request_id)
    assert state is not None
    return state


def uais(academy: Academy) -> list[str]:
    with academy.database.session() as session:
        return list(session.scalars(select(Establishment.uai).order_by(Establishment.uai)))


def set_unit(academy: Academy, uai: str, step: Step, status: UnitStatus,
             attempts: int = 1) -> None:
    with academy.database.session() as session:
        year = current_school_year(session)
        establishment_id = session.scalar(select(Establishment.id).where(
            Establishment.uai == uai))
        unit = get_unit(session, establishment_id, year.id, step)
        assert unit is not None
        unit.status, unit.attempts = status, attempts


def task_count(academy: Academy) -> int:
    with academy.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(EngineTask)) or 0)


def test_a_read_only_client_dry_run_is_refused_by_the_engine_and_recorded(
        academy: Academy) -> None:
    # A client that bypasses its own check (an older console, a script writing the row).
    with academy.database.session() as session:
        row = EngineRequest(created_at=utcnow(), action="dry-run", params="{}",
                            requested_by="support@poste:12", requester_read_only=True,
                            status=RequestStatus.QUEUED, message="")
        session.add(row)
        session.flush()
        request_id = row.id
    engine = handlers(academy)
    engine.process()
    assert engine.state.events.drain()  # the journal is written by its own thread
    state = DatabaseEngineClient(academy.database).request_state(request_id)
    assert state is not None and state["status"] == "refused"
    assert "mode consultation" in str(state["message"])
    assert "rapport" in str(state["message"])
    assert task_count(academy) == 0  # no dry run queued: the pre-run report is kept
    with academy.database.session() as session:
        event = session.scalars(select(EngineEventRow).where(
            EngineEventRow.kind == "request")).one()
        assert event.level == "warning" and "consultation" in event.message
        entry = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "request:dry-run")).one()
        assert entry.outcome == "refused"
        assert json.loads(entry.details)["requested_by"] == "support@poste:12"
    # The client refuses it before writing anything, too.
    with pytest.raises(PermissionError):
        DatabaseEngineClient(academy.database, read_only=True).request(RequestAction.DRY_RUN)


def test_a_request_the_engine_turns_into_nothing_is_sans_effet(academy: Academy) -> None:
    first, _second = uais(academy)
    set_unit(academy, first, Step.PURGE_TRASH, UnitStatus.DONE)
    state = ask(academy, RequestAction.RUN, step="1", uais=[first])
    assert state["status"] == "no-effect" and state["label"] == "sans effet"
    assert "0 unité(s) en file, 1 déjà terminée(s)" in str(state["message"])
    state = ask(academy, RequestAction.RETRY, uais=[first])
    assert state["status"] == "no-effect"
    assert state["message"] == "aucune unité en échec à relancer"
    state = ask(academy, RequestAction.CANCEL, uais=[first])
    assert state["status"] == "no-effect"
    # A request that queued something is « fait ».
    state = ask(academy, RequestAction.RUN, step="1", uais=uais(academy))
    assert state["status"] == "done" and state["label"] == "fait"


def test_a_destructive_step_whose_prerequisite_is_not_done_is_refused_at_once(
        academy: Academy) -> None:
    first, second = uais(academy)
    set_unit(academy, first, Step.PURGE_TRASH, UnitStatus.DONE)
    set_unit(academy, first, Step.ARCHIVE, UnitStatus.DONE)
    set_unit(academy, second, Step.PURGE_TRASH, UnitStatus.DONE)
    # Step 2 of the second establishment is not done: step 3 is not held for later.
    state = ask(academy, RequestAction.RUN, step="3", uais=[first, second])
    assert state["status"] == "refused"
    message = str(state["message"])
    assert "l'étape 2 (Archivage" in message and second in message and first not in message
    assert task_count(academy) == 0
    # Once step 2 is done, the same request is accepted.
    set_unit(academy, second, Step.ARCHIVE, UnitStatus.DONE)
    state = ask(academy, RequestAction.RUN, step="3", uais=[first, second])
    assert state["status"] == "done" and "2 unité(s) en file" in str(state["message"])


def test_every_cell_shows_where_its_unit_stands_in_the_queue(academy: Academy) -> None:
    first, second = uais(academy)
    ask(academy, RequestAction.RUN, step="1", uais=[first])  # queued, nothing runs it
    set_unit(academy, second, Step.ARCHIVE, UnitStatus.PENDING, attempts=1)  # interrupted
    # Step 4 asked before any delivery: the engine's task failed before the unit began.
    with academy.database.session() as session:
        year = current_school_year(session)
        second_id = session.scalar(select(Establishment.id).where(Establishment.uai == second))
        session.add(EngineTask(origin="request", milestone=Step.INIT_DIRECTORY.value,
                               establishment_id=second_id, school_year_id=year.id,
                               status=TaskStatus.FAILED, due_at=utcnow(),
                               reason="aucune livraison AAF importée", created_at=utcnow(),
                               finished_at=utcnow()))
    views = {view.uai: view for view in DatabaseEngineClient(academy.database).establishments()}
    queued = views[first].units[Step.PURGE_TRASH]
    assert queued.status is UnitStatus.PENDING and queued.queue == "queued"
    interrupted = views[second].units[Step.ARCHIVE]
    assert interrupted.queue == "interrupted"
    refused = views[second].units[Step.INIT_DIRECTORY]
    assert refused.status is UnitStatus.FAILED and "aucune livraison" in refused.error
    assert views[first].units[Step.ARCHIVE].queue == ""


def yearchange(url: str, *argv: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    """The real command, as a user runs it."""
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "yearchange_tui.cli.main", "--db", url, *argv],
                          capture_output=True, text=True, check=False, env=env, timeout=120)


def test_yearchange_requests_lists_who_when_what_state_and_answer(academy: Academy) -> None:
    first, second = uais(academy)
    set_unit(academy, first, Step.PURGE_TRASH, UnitStatus.DONE)
    ask(academy, RequestAction.RUN, step="1", uais=[first])
    ask(academy, RequestAction.RUN, step="3", uais=[second])
    ask(academy, RequestAction.RUN, step="1", uais=[second])
    result = yearchange(academy.url, "requests")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "∅ sans effet" in out and "1 déjà terminée(s)" in out
    assert "⊘ refusé" in out and "l'étape 1 (Purge" in out
    assert "✓ fait" in out and "Lancer · étape 1 · " + second in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert out.index("n° 3") < out.index("n° 1")  # newest first
    result = yearchange(academy.url, "requests", "--json", "--all")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert listed["complete"] is True
    assert [(r["id"], r["status"], r["status_label"]) for r in listed["requests"]] == [
        (3, "done", "fait"), (2, "refused", "refusé"), (1, "no-effect", "sans effet")]
    created = dt.datetime.fromisoformat(listed["requests"][0]["created_at"])
    assert created.utcoffset() is not None and "T" in listed["requests"][0]["created_at"]
    # `status` shows the queued unit with its own glyph and word.
    result = yearchange(academy.url, "status")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith(second))
    assert "≡ en file" in line
    result = yearchange(academy.url, "status", "--json")
    row = next(row for row in json.loads(result.stdout) if row["uai"] == second)
    assert row["steps"]["purge-trash"]["queue"] == "queued"


def test_read_only_engine_request_dry_run_is_refused_and_nothing_is_stored(
        academy: Academy) -> None:
    first, _second = uais(academy)
    result = yearchange(academy.url, "--read-only", "engine-request", "dry-run", "--uai", first)
    assert result.returncode == 2 and "Mode consultation" in result.stderr
    result = yearchange(academy.url, "requests", "--json")
    assert json.loads(result.stdout)["requests"] == []


def test_the_console_lists_the_engine_refusal_of_a_step_3_asked_too_early(
        academy: Academy) -> None:
    first, _second = uais(academy)
    client = DatabaseEngineClient(academy.database)

    async def scenario() -> None:
        app = make_app(client)
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(app, pilot)
            app.send_request(RequestAction.RUN, {"step": "delete-obsolete", "uais": [first]},
                             "")
            await app.workers.wait_for_complete()
            handlers(academy).process()  # the engine's pass
            await pilot.press("D")
            assert isinstance(app.screen, RequestsScreen)
            assert await wait_until(pilot, lambda: "⊘ refusé" in screen_text(app))
            text = screen_text(app)
            assert "Lancer · étape 3 · " + first in text
            assert "étape 3 refusée : l'étape 1 (Purge de la corbeille)" in text

    run(scenario)


def add_task(academy: Academy, uai: str, step: Step, status: TaskStatus, reason: str) -> None:
    """An engine task of ``step`` for ``uai`` that ended before its unit began."""
    with academy.database.session() as session:
        year = current_school_year(session)
        establishment_id = session.scalar(select(Establishment.id).where(
            Establishment.uai == uai))
        session.add(EngineTask(origin="request", milestone=step.value,
                               establishment_id=establishment_id, school_year_id=year.id,
                               status=status, due_at=utcnow(), reason=reason,
                               created_at=utcnow(), finished_at=utcnow()))


def test_a_retry_of_a_cell_refused_before_any_unit_says_why_it_has_no_effect(
        academy: Academy) -> None:
    _first, second = uais(academy)
    add_task(academy, second, Step.INIT_DIRECTORY, TaskStatus.FAILED,
             "aucune livraison AAF importée")
    view = {v.uai: v for v in DatabaseEngineClient(academy.database).establishments()}[second]
    assert view.units[Step.INIT_DIRECTORY].status is UnitStatus.FAILED  # what Maj+R sees
    state = ask(academy, RequestAction.RETRY, step="init-directory", uais=[second])
    assert state["status"] == "no-effect" and state["label"] == "sans effet"
    message = str(state["message"])
    assert message.startswith("aucune unité en échec à relancer : " + second)
    assert "aucune livraison AAF importée" in message
    assert "redemandez l'étape 4 (r)" in message
    assert task_count(academy) == 1  # nothing queued


def test_a_unit_cancelled_before_it_started_shows_interrupted_everywhere(
        academy: Academy) -> None:
    first, _second = uais(academy)
    ask(academy, RequestAction.RUN, step="1", uais=[first])  # queued, nothing runs it
    state = ask(academy, RequestAction.CANCEL, uais=[first])
    assert state["status"] == "done" and "1 unité(s) retirée(s)" in str(state["message"])
    view = {v.uai: v for v in DatabaseEngineClient(academy.database).establishments()}[first]
    unit = view.units[Step.PURGE_TRASH]
    assert unit.status is UnitStatus.PENDING and unit.queue == "interrupted"
    assert "annulée par l'opérateur" in unit.error
    # The detail reads the same state.
    from yearchange_tui.tui.detail_source import DatabaseDetailSource
    from yearchange_tui.tui.rejects_source import open_rejects_source
    detail = DatabaseDetailSource(academy.database, open_rejects_source(
        academy.database, academy.storage)).detail(first)
    assert detail is not None
    step = next(step for step in detail.steps if step.key == "purge-trash")
    assert step.queue == "interrupted"
    # And so does `yearchange status`.
    result = yearchange(academy.url, "status")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith(first))
    assert line.split()[1:3] == ["‖", "interr."]  # step 1's cell, not « ○ planifié »
    result = yearchange(academy.url, "status", "--json")
    row = next(row for row in json.loads(result.stdout) if row["uai"] == first)
    assert row["steps"]["purge-trash"]["queue"] == "interrupted"
