"""PostgreSQL query plans of the dry run and of step 2 at académie scale (issue 16).

On a fresh 60-establishment PostgreSQL database the planner full-scanned ``grades``
once per class. This test builds a 20-establishment sample with the product's own
command path (``build_sample``, which runs ``ANALYZE``), captures the statements the
dry run and step 2 really send for one establishment (SQLAlchemy's
``before_cursor_execute``: the code's own query builders, not copies), ``EXPLAIN`` s
each with its own parameters, and fails on any sequential scan of a year-scoped table.

PostgreSQL only: set ``YEARCHANGE_TEST_PG_URL``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_support import PG_URL, drop_pg_database, fresh_pg_database
from sqlalchemy import Table, event

from yearchange_tui.changeover.runner import ChangeoverRunner
from yearchange_tui.ent.base import Base
from yearchange_tui.ent.database import open_database
from yearchange_tui.sample.build import build_sample
from yearchange_tui.workflow.models import Step

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(PG_URL is None, reason="PostgreSQL seulement "
                                 "(YEARCHANGE_TEST_PG_URL)")]

ESTABLISHMENTS = 20


def year_scoped_tables() -> set[str]:
    """Tables whose rows belong to one school year, read from the model: a
    ``school_year_id`` column, or a required foreign key to such a table (grades belong
    to their assessment's year, class memberships to their class's)."""
    import yearchange_tui.models_registry  # noqa: F401  (every table declared)

    tables: list[Table] = list(Base.metadata.tables.values())
    scoped = {table.name for table in tables if "school_year_id" in table.c}
    for table in tables:
        for key in table.foreign_keys:
            if key.column.table.name in scoped and not key.parent.nullable:
                scoped.add(table.name)
    return scoped


def _seq_scans(plan: dict[str, Any]) -> Iterator[str]:
    if plan.get("Node Type") == "Seq Scan":
        yield plan["Relation Name"]
    for child in plan.get("Plans", []):
        yield from _seq_scans(child)


@pytest.fixture(scope="module")
def academy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    url, name = fresh_pg_database()
    folder = tmp_path_factory.mktemp("plans")
    try:
        build_sample(folder / "academie", ESTABLISHMENTS, seed=3, year=2025, db_url=url)
        yield url, folder / "academie" / "storage"
    finally:
        drop_pg_database(name)


def _captured(url: str, storage: Path) -> list[tuple[str, str, Any]]:
    """(part, statement, parameters) of the reads the dry run and step 2 send for one
    establishment (step 1 run first: step 2 follows it)."""
    database = open_database(url)
    captured: list[tuple[str, str, Any]] = []
    part = ["dry run"]

    @event.listens_for(database.engine, "before_cursor_execute")
    def capture(_connection: Any, _cursor: Any, statement: str, parameters: Any,
                _context: Any, executemany: bool) -> None:
        if not executemany and statement.lstrip().upper().startswith("SELECT"):
            captured.append((part[0], statement, parameters))

    try:
        runner = ChangeoverRunner(database, storage)
        establishment = runner.establishments()[ESTABLISHMENTS // 2]
        runner.dry_run([establishment])
        part[0] = "step 1"
        runner.run(Step.PURGE_TRASH, [establishment])
        part[0] = "step 2"
        outcome = runner.run(Step.ARCHIVE, [establishment])[0]
        assert outcome.status == "done", outcome
    finally:
        event.remove(database.engine, "before_cursor_execute", capture)
        database.dispose()
    return [entry for entry in captured if entry[0] != "step 1"]


# Below this size (a page is 8 KiB: 1 MiB) reading a table whole can beat hundreds of
# index probes, and the planner rightly says so at 20 establishments (photos by a list
# of a sixth of their ids); its index is checked by the second plan. Above it, a scan
# per establishment is what made the dry run quadratic (grades: 9,000 pages here).
SMALL_TABLE_PAGES = 128


def test_dry_run_and_step_2_never_scan_a_year_scoped_table(
        academy: tuple[str, Path]) -> None:
    """Two plans per statement: the planner's own choice (no scan of a year-scoped table
    larger than a few pages), and with sequential scans disabled (an index must exist
    for every year-scoped table read, so the choice holds at any size)."""
    url, storage = academy
    scoped = year_scoped_tables()
    # The model's year-scoped tables include those the issue saw scanned.
    assert {"grades", "assessments", "classes", "courses", "report_cards"} <= scoped
    statements = _captured(url, storage)
    parts = {part for part, _, _ in statements}
    assert parts == {"dry run", "step 2"}, parts
    database = open_database(url)
    offending: list[str] = []
    explained = 0
    try:
        with database.engine.connect() as connection:
            cursor = connection.connection.driver_connection.cursor()
            cursor.execute("SELECT relname, relpages FROM pg_class WHERE relkind = 'r'")
            pages = dict(cursor.fetchall())
            large = {name for name in scoped if pages.get(name, 0) > SMALL_TABLE_PAGES}
            assert "grades" in large, pages.get("grades")
            seen: set[str] = set()
            for part, statement, parameters in statements:
                if statement in seen or "pg_" in statement:
                    continue
                seen.add(statement)
                explained += 1
                for setting, suspects in (("on", large), ("off", scoped)):
                    cursor.execute(f"SET enable_seqscan = {setting}")
                    cursor.execute(f"EXPLAIN (FORMAT JSON) {statement}", parameters or None)
                    plan = cursor.fetchone()[0]
                    if isinstance(plan, str):
                        plan = json.loads(plan)
                    scanned = sorted(set(_seq_scans(plan[0]["Plan"])) & suspects)
                    if scanned:
                        why = "chosen" if setting == "on" else "no index"
                        offending.append(f"{part} ({why}): Seq Scan on {', '.join(scanned)} "
                                         f"in {' '.join(statement.split())[:200]}")
            cursor.execute("RESET enable_seqscan")
    finally:
        database.dispose()
    assert explained > 20, explained
    assert not offending, "\n".join(offending)
