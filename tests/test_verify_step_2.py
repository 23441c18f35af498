"""``yearchange verify`` never says « conforme » for an establishment whose step 2 is not done."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from changeover_support import make_academy

from yearchange_tui.cli.main import main


@pytest.fixture
def base(database_url: str, tmp_path: Path) -> Iterator[list[str]]:
    make_academy(database_url, tmp_path / "storage").database.dispose()
    yield ["--db", database_url, "--storage", str(tmp_path / "storage")]


def test_verify_fails_before_step_2(base: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*base, "verify"]) == 1
    out = capsys.readouterr().out
    assert "✓ conforme" not in out and "✗ anomalies" in out
    assert "étape 2 (archivage) jamais lancée" in out


def test_verify_fails_when_step_2_failed(base: list[str], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    not_a_folder = tmp_path / "fichier"
    not_a_folder.write_text("pas un dossier", encoding="utf-8")
    broken = [*base[:2], "--storage", str(not_a_folder)]
    assert main([*broken, "run", "archive", "--all", "--yes"]) == 1
    capsys.readouterr()
    assert main([*base, "verify"]) == 1
    out = capsys.readouterr().out
    assert "✓ conforme" not in out
    assert "étape 2 (archivage) non terminée (état : échec)" in out
    assert main([*base, "verify", "--json"]) == 1
    [report] = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["archives_checked"] == 0
    # Once step 2 is done, the establishment is conforme.
    assert main([*base, "run", "archive", "--all", "--yes"]) == 0
    capsys.readouterr()
    assert main([*base, "verify"]) == 0
    assert "✓ conforme" in capsys.readouterr().out
