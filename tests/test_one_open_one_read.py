"""One open of the database per command, one read of a fact per action (review leftovers).

A changing command used to open the database three times (a read-only probe asking
whether the account may write, then the schema probe and the connection it works with),
``engine-stop`` read the engine lease twice and one timetable import read the
establishment's declaration three times. What is counted here is what a DBA sees: the
connections a command opens and the statements it sends, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool
from timetable_support import SAMPLES, UAI, build_directory

from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import open_database, sqlite_path
from yearchange_tui.timetable.importer import import_timetable

UDT_ZIP = SAMPLES / "udt" / f"{UAI}_20260825100000_UDT.zip"


class Tally:
    """Connections opened and statements sent while counting."""

    def __init__(self) -> None:
        self.connections = 0
        self.statements: list[str] = []

    def reading(self, table: str) -> int:
        """How many statements read ``table``."""
        return sum(1 for sql in self.statements if f"FROM {table}" in sql)


@contextmanager
def counting() -> Iterator[Tally]:
    tally = Tally()

    def connected(*_args: Any) -> None:
        tally.connections += 1

    def executed(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        tally.statements.append(statement)

    event.listen(Pool, "connect", connected)
    event.listen(Engine, "before_cursor_execute", executed)
    try:
        yield tally
    finally:
        event.remove(Pool, "connect", connected)
        event.remove(Engine, "before_cursor_execute", executed)


@pytest.fixture
def places(database_url: str, tmp_path: Path) -> list[str]:
    database = open_database(database_url)
    build_directory(database)
    database.dispose()
    return ["--db", database_url, "--storage", str(tmp_path / "storage")]


def test_a_changing_command_opens_the_database_once(
        places: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """PostgreSQL: one connection for the whole command. SQLite: the schema is read
    through a read-only connection first (a read-write one would switch an empty or
    foreign file to WAL), then the one the command writes with."""
    with counting() as tally:
        assert main([*places, "timetable-version", "set", "--uai", UAI, "--logiciel", "udt",
                     "--version", "26"]) == 0
    assert f"Déclaré : {UAI}" in capsys.readouterr().out
    expected = 2 if sqlite_path(places[1]) is not None else 1
    assert tally.connections == expected


def test_engine_stop_reads_the_lease_once(places: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with counting() as tally:
        assert main([*places, "engine-stop"]) == 0
    assert "Aucun moteur ne tourne" in capsys.readouterr().out
    assert tally.reading("engine_lease") == 1


def test_one_timetable_import_reads_the_declaration_once(database_url: str) -> None:
    database = open_database(database_url)
    try:
        build_directory(database)
        with counting() as tally:
            result = import_timetable(database, UDT_ZIP, UAI, declared_version="26")
        assert result.inspection.verdict.version.label == "UDT 26 (2020)"
        assert tally.reading("timetable_declarations") == 1
        with counting() as tally:
            import_timetable(database, UDT_ZIP, UAI)  # the declaration applies
        assert tally.reading("timetable_declarations") == 1
    finally:
        database.dispose()
