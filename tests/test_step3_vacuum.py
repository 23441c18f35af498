"""Step 3's ``VACUUM (ANALYZE)`` under the engine: once when a batch drains, not once per
unit (issue 16). Real engine, real worker processes, real PostgreSQL (SQLite: never)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from changeover_support import Academy, make_academy
from sqlalchemy import text
from test_scheduling_engine import running_engine, wait_until

from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.workflow.models import Step


@pytest.fixture
def academy3(database_url: str, tmp_path: Path) -> Iterator[Academy]:
    academy = make_academy(database_url, tmp_path / "storage", establishments=3)
    try:
        yield academy
    finally:
        academy.database.dispose()


def _vacuums(academy: Academy, table: str) -> int:
    """Manual ``VACUUM`` runs of ``table`` so far (PostgreSQL's own counter)."""
    with academy.database.engine.connect() as connection:
        return int(connection.execute(text(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = :t"),
            {"t": table}).scalar_one())


def test_the_engine_vacuums_once_when_a_batch_of_step_3_drains(academy3: Academy) -> None:
    academy = academy3
    postgresql = academy.database.engine.dialect.name == "postgresql"
    runner = academy.runner()
    establishments = runner.establishments()
    for step in (Step.PURGE_TRASH, Step.ARCHIVE):
        assert {o.status for o in runner.run(step, establishments)} == {"done"}
    before = _vacuums(academy, "grades") if postgresql else 0
    client = DatabaseEngineClient(academy.database)
    with running_engine(academy.database, academy.storage, concurrency=2):
        state = client.wait_for_request(
            client.request(RequestAction.RUN, step=Step.DELETE_OBSOLETE.value), 300,
            until_units_finish=True)
        assert state is not None
        assert [task["status"] for task in state["tasks"]] == ["done"] * 3, state
        if postgresql:
            wait_until(lambda: any("VACUUM" in event.message
                                   for event in client.events_after(0, 5000)),
                       "VACUUM (ANALYZE) après le lot de l'étape 3", 60)
    lines = [event.message for event in client.events_after(0, 5000)
             if "VACUUM" in event.message]
    if not postgresql:
        assert lines == []
        return
    assert len(lines) == 1, lines
    assert "Étape 3" in lines[0] and "3 unité(s)" in lines[0], lines
    assert _vacuums(academy, "grades") - before == 1
