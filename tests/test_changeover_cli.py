"""The change-over commands as an operator types them: output, JSON and exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from changeover_support import make_academy

from yearchange_tui.cli.main import main


@pytest.fixture
def base(tmp_path: Path) -> list[str]:
    academy = make_academy(f"sqlite:///{tmp_path / 'y.db'}", tmp_path / "storage")
    academy.database.dispose()
    return ["--db", f"sqlite:///{tmp_path / 'y.db'}", "--storage", str(tmp_path / "storage")]


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_dry_run_json_lists_each_step_with_counts(base: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*base, "dry-run", "--json", "--at", "2026-07-08"]) == 0
    report = _json(capsys)
    assert [entry["step"] for entry in report] == ["purge-trash", "archive", "delete-obsolete"]
    assert report[0]["warnings"] and report[1]["counts"]["archives cahier de textes"] > 0


def test_run_needs_a_target_and_a_confirmation(base: list[str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*base, "run", "purge-trash"]) == 2
    assert "--all" in capsys.readouterr().err
    assert main([*base, "run", "purge-trash", "--all"]) == 2  # no terminal, no --yes
    assert "--yes" in capsys.readouterr().err
    assert main([*base, "run", "purge-trash", "--uai", "0000000A", "--yes"]) == 2
    assert "Établissement inconnu" in capsys.readouterr().err


def test_steps_in_order_then_verify_and_status(base: list[str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*base, "run", "delete-obsolete", "--all", "--yes"]) == 1
    assert "⊘ refusé" in capsys.readouterr().out
    for step in ("1", "archive", "delete-obsolete"):
        assert main([*base, "run", step, "--all", "--yes"]) == 0
    assert "✓ terminé" in capsys.readouterr().out
    assert main([*base, "verify"]) == 0
    assert "✓ conforme" in capsys.readouterr().out
    assert main([*base, "status", "--json"]) == 0
    [row] = _json(capsys)
    assert {row["steps"][s]["status"] for s in ("purge-trash", "archive", "delete-obsolete")} == {
        "done"}
    assert main([*base, "status"]) == 0
    assert "✓ terminé" in capsys.readouterr().out


def test_verify_fails_when_an_archive_is_gone(base: list[str], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*base, "run", "archive", "--all", "--yes"]) == 0
    next((tmp_path / "storage").rglob("cahier-de-textes-*-2025-2026.zip")).unlink()
    capsys.readouterr()
    assert main([*base, "verify"]) == 1
    assert "archive absente" in capsys.readouterr().out


def test_read_only_refuses_runs_notices_and_overrides(base: list[str],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*base, "--read-only", "run", "purge-trash", "--all", "--yes"]) == 2
    assert "consultation" in capsys.readouterr().err
    assert main([*base, "--read-only", "notify", "warning", "--deletion-date", "2026-07-10",
                 "--all"]) == 2
    assert main([*base, "--read-only", "override", "gel-aaf", "--reason", "x"]) == 2
    assert main([*base, "--read-only", "dry-run"]) == 0


def test_bad_dates_are_bad_usage(base: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*base, "notify", "warning", "--deletion-date", "31/02/2026", "--all"]) == 2
    assert "--deletion-date : date invalide « 31/02/2026 »" in capsys.readouterr().err
