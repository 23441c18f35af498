"""A SQLite database another program is writing to: wait, say so, then exit 2, nothing written.

SQLite locks the whole database for a writer; PostgreSQL locks rows, so these tests hold
SQLite's write lock (``BEGIN IMMEDIATE``) from a second connection, as another
``yearchange`` or a maintenance script would.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from changeover_support import make_academy, storage_files, table_rows
from template_support import copy_aaf_delivery

from yearchange_tui.ent.database import open_existing_database


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[tuple[list[str], Path]]:
    """A sample académie whose SQLite database another connection holds write-locked."""
    path = tmp_path / "y.db"
    make_academy(f"sqlite:///{path}", tmp_path / "storage").database.dispose()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        yield ["--db", f"sqlite:///{path}", "--storage", str(tmp_path / "storage")], tmp_path
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def _yearchange(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "yearchange_tui", *argv], capture_output=True,
                          text=True, check=False, env=env)


def _snapshot(options: list[str]) -> tuple[object, object]:
    database = open_existing_database(options[1])
    try:
        return table_rows(database), storage_files(Path(options[3]))
    finally:
        database.dispose()


@pytest.mark.parametrize("command", [["run", "archive", "--all", "--yes"], ["import-aaf"]])
def test_a_locked_database_is_waited_for_then_refused_in_french(
        locked: tuple[list[str], Path], command: list[str]) -> None:
    options, tmp_path = locked
    if command == ["import-aaf"]:
        command = ["import-aaf", str(copy_aaf_delivery(tmp_path / "aaf", 1, 5))]
    result = _yearchange(*options, "--lock-timeout", "1.5", *command)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "est verrouillée par un autre programme qui y écrit : attente de sa libération " \
           "(jusqu'à 1.5 s)" in result.stderr
    assert "[BASE-VERROUILLEE]" in result.stderr and "rien n'a été modifié" in result.stderr


def test_nothing_is_written_and_the_wait_ends_when_the_lock_is_released(tmp_path: Path) -> None:
    path = tmp_path / "y.db"
    options = ["--db", f"sqlite:///{path}", "--storage", str(tmp_path / "storage")]
    make_academy(options[1], tmp_path / "storage").database.dispose()
    before = _snapshot(options)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        refused = _yearchange(*options, "--lock-timeout", "1", "run", "1", "--all", "--yes")
    finally:
        writer.execute("ROLLBACK")
    assert refused.returncode == 2 and "[BASE-VERROUILLEE]" in refused.stderr
    assert _snapshot(options) == before
    # Released while the command waits: it goes on and runs.
    writer.execute("BEGIN IMMEDIATE")
    process = subprocess.Popen(
        [sys.executable, "-m", "yearchange_tui", *options, "--lock-timeout", "120", "run", "1",
         "--all", "--yes"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    first = process.stderr.readline()  # the command says it waits, then waits
    writer.execute("ROLLBACK")
    writer.close()
    out, err = process.communicate(timeout=300)
    assert "attente de sa libération (jusqu'à 120 s)" in first, first + err
    assert process.returncode == 0, err
    assert "✓ terminé" in out


def test_the_lock_timeout_is_a_setting(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("lock_timeout = 5\n", encoding="utf-8")
    result = _yearchange("--config", str(config), "config")
    assert result.returncode == 0 and "lock_timeout" in result.stdout
    config.write_text('lock_timeout = "jamais"\n', encoding="utf-8")
    result = _yearchange("--config", str(config), "config")
    assert result.returncode == 2 and "Délai d'attente d'une base verrouillée invalide" in \
        result.stderr
