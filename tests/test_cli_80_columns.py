"""The command line at 80 columns, run as an operator runs it (a real process).

``status``, ``plan``, ``rejects`` and ``dry-run`` wrap between words at the terminal's
width: no line is longer than 80 columns and every word of the 80-column output is a
whole word of the same output printed wide. ``dry-run --all`` gives every count and list
exactly (no « … (+N) »). ``dry-run --report`` lists every warning of the académie,
filtered, and exports them as a spreadsheet CSV; an engine's dry run writes its
warnings to the journal.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from template_support import copy_sample

from yearchange_tui.changeover.runner import ChangeoverRunner
from yearchange_tui.changeover.steps import DRY_RUN
from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import open_database
from yearchange_tui.scheduling.events import EventWriter
from yearchange_tui.scheduling.models import EngineEventRow

AT = "2026-07-08"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A two-establishment sample académie with its AAF delivery imported and a dry run."""
    out = copy_sample(tmp_path_factory.mktemp("academie"), 2, 7, 2025)
    places = ["--db", f"sqlite:///{out / 'yearchange.db'}", "--storage", str(out / "storage")]
    assert main(["import-aaf", str(out / "aaf"), *places]) == 0
    assert main(["dry-run", "--at", AT, *places]) == 0
    return out, places


def words(text: str) -> str:
    """The text with its line breaks undone (a phrase may wrap)."""
    return " ".join(text.split())


def yearchange(columns: int, *argv: str) -> str:
    result = subprocess.run([sys.executable, "-m", "yearchange_tui", *argv],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "COLUMNS": str(columns)})
    assert result.returncode == 0, result.stderr
    return result.stdout


def assert_wraps_between_words(*argv: str) -> str:
    """The 80-column output: no line past 80 (but for a lone word longer than that, such
    as a path), no word cut (every word is a word of the wide output)."""
    narrow = yearchange(80, *argv)
    wide = yearchange(400, *argv)
    too_long = [line for line in narrow.splitlines() if len(line) > 80 and len(line.split()) > 1]
    assert not too_long, too_long
    cut = set(narrow.split()) - set(wide.split())
    assert not cut, f"words cut at 80 columns: {sorted(cut)[:10]}"
    return narrow


@pytest.mark.parametrize("command", [("status",), ("plan",), ("rejects",)])
def test_tables_wrap_between_words_at_80_columns(sample, command: tuple[str, ...]) -> None:
    _out, places = sample
    text = assert_wraps_between_words(*command, *places)
    assert text.strip()


def test_dry_run_gives_every_count_exactly_at_80_columns(sample) -> None:
    _out, places = sample
    text = assert_wraps_between_words("dry-run", "--at", AT, "--all", *places)
    assert "(+" not in text and "…" not in text
    assert "entrées cahier de textes" in words(text) and "bulletins supprimés" in words(text)
    # Without --all the lists are named with their exact size, and how to see them.
    short = yearchange(80, "dry-run", "--at", AT, *places)
    assert "(+" not in short and "--all pour les détailler" in words(short)


def test_the_academy_wide_report_lists_filters_and_exports_every_warning(
        sample, tmp_path: Path) -> None:
    _out, places = sample
    text = assert_wraps_between_words("dry-run", "--report", *places)
    assert "0016980G" in text and "0693422V" in text
    assert "CORBEILLE-SUPPRESSION-RECENTE" in text
    only = yearchange(80, "dry-run", "--report", "--uai", "0693422V", *places)
    assert "0693422V" in only and "0016980G" not in only
    none = yearchange(80, "dry-run", "--report", "--code", "AUCUN-CODE", *places)
    assert "0 avertissement(s)" in words(none)
    target = tmp_path / "avertissements.csv"
    yearchange(80, "dry-run", "--report", "--csv", str(target), *places)
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw[3:].decode("utf-8").split("\r\n")
    assert lines[0] == "UAI;Établissement;Étape;Code;Message;Passage à blanc du"
    rows = [line for line in lines[1:] if line]
    assert len(rows) == len([line for line in text.splitlines()
                             if "CORBEILLE-" in line or "ARCHIVE-" in line
                             or "RUBRIQUE-" in line or "AAF-" in line])
    assert all(row.count(";") >= 5 for row in rows)
    filtered = yearchange(80, "dry-run", "--report", "--text", "corbeille", "--csv", "-",
                          *places)
    assert filtered.startswith("\ufeff") and len(filtered.splitlines()) > 1
    assert all("corbeille" in line.casefold() for line in filtered.splitlines()[1:])


def test_csv_options_without_report_are_refused(sample) -> None:
    _out, places = sample
    result = subprocess.run([sys.executable, "-m", "yearchange_tui", "dry-run", "--csv", "x",
                             *places], capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "--report" in result.stderr


def test_an_engine_dry_run_writes_its_warnings_to_the_journal(tmp_path: Path) -> None:
    out = copy_sample(tmp_path / "academie", 2, 7, 2025)
    database = open_database(f"sqlite:///{out / 'yearchange.db'}")
    try:
        writer = EventWriter(database)
        runner = ChangeoverRunner(database, out / "storage", observer=writer,
                                  now=dt.datetime(2026, 7, 8, 12, tzinfo=dt.UTC))
        outcomes = runner.dry_run(runner.establishments(), DRY_RUN.replays)
        writer.close()
        warnings = [(o.uai, w) for o in outcomes for w in o.warnings]
        assert warnings
        with database.session() as session:
            rows = session.scalars(select(EngineEventRow).where(
                EngineEventRow.kind == "dry-run-warning")).all()
        assert len(rows) == len(warnings)
        assert all(row.level == "warning" and "⚠" in row.message for row in rows)
        assert {(row.uai, row.message.split("⚠ ", 1)[1]) for row in rows} == set(warnings)
    finally:
        database.dispose()
