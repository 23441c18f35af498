"""The command line as an operator reads it: every option of every command has a French
help, OS and TOML errors are French, one plural rule, one date parser for the console and
``plan set``, and ``status --json`` / ``plan --json`` with stable snake_case keys, French
labels beside them and ISO 8601 times with the operator's offset."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from changeover_support import make_academy

from yearchange_tui.changeover.runner import ChangeoverRunner, ReadOnlyError
from yearchange_tui.cli.main import build_parser, main
from yearchange_tui.french import plural
from yearchange_tui.tui.screens.modals import parse_french_date

ENGLISH = ("show this help", "usage:", "options:", "positional arguments", "optional arguments",
           "show program's version", "default:", "(default", "choose from", "required:")
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def _parsers(parser: argparse.ArgumentParser, path: list[str]
             ) -> Iterator[tuple[list[str], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, [*path, name])


def test_every_command_help_is_french_and_every_option_explained(
        capsys: pytest.CaptureFixture[str]) -> None:
    missing, english = [], []
    commands = list(_parsers(build_parser(), []))
    assert len(commands) > 30
    for path, parser in commands:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"yearchange {' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
        with pytest.raises(SystemExit) as shown:
            main([*path, "--help"])
        assert shown.value.code == 0
        text = capsys.readouterr().out
        assert text.startswith("usage : yearchange"), path
        english += [f"yearchange {' '.join(path)} --help : « {word} »"
                    for word in ENGLISH if word in text]
    assert not missing, "options sans aide :\n" + "\n".join(missing)
    assert not english, "\n".join(english)


def test_os_and_toml_errors_are_french(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "config.toml"
    broken.write_text("db = \n", encoding="utf-8")
    assert main(["--config", str(broken), "config"]) == 2
    error = capsys.readouterr().err
    assert "valeur invalide (ligne 1, colonne 6)" in error and "Invalid" not in error
    blocker = tmp_path / "fichier"
    blocker.write_text("", encoding="utf-8")
    assert main(["sample", "--out", str(blocker / "academie")]) == 2
    error = capsys.readouterr().err
    assert "un élément du chemin n'est pas un dossier" in error
    assert "Errno" not in error and "Traceback" not in error


def test_one_plural_rule_and_refusals_without_gender_mistakes(tmp_path: Path) -> None:
    assert plural(0, "élève") == "0 élève" and plural(1, "élève") == "1 élève"
    assert plural(2, "élève") == "2 élèves" and plural(3, "travail", "travaux") == "3 travaux"
    runner = ChangeoverRunner.__new__(ChangeoverRunner)
    runner.read_only = True
    with pytest.raises(ReadOnlyError) as refused:
        runner.refuse_read_only("l'étape 5 (Initialisation de la vie scolaire N+1)")
    assert "est interdit" not in str(refused.value)
    assert "action interdite" in str(refused.value)


@pytest.fixture
def base(tmp_path: Path) -> list[str]:
    academy = make_academy(f"sqlite:///{tmp_path / 'y.db'}", tmp_path / "storage")
    academy.database.dispose()
    return ["--db", f"sqlite:///{tmp_path / 'y.db'}", "--storage", str(tmp_path / "storage")]


def test_status_json_has_stable_keys_labels_and_iso_times(
        base: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*base, "run", "purge-trash", "--all", "--yes"]) == 0
    capsys.readouterr()
    assert main([*base, "status", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["kind"] in ("college", "lycee", "other") and row["kind_label"]
    purge = row["steps"]["purge-trash"]
    assert purge["status"] == "done" and purge["status_label"] == "terminé"
    assert purge["glyph"] == "✓" and purge["step"] == 1
    assert "dry_run" not in purge and purge["dry_run_report"] is False  # a real run
    assert ISO_WITH_OFFSET.match(purge["finished_at"]), purge["finished_at"]
    assert dt.datetime.fromisoformat(purge["finished_at"]).utcoffset() in (
        dt.timedelta(hours=1), dt.timedelta(hours=2))  # Europe/Paris
    for count in purge["counts"]:
        assert re.fullmatch(r"[a-z0-9_]+", count["id"]) and count["label"]
        assert isinstance(count["value"], int)
    archive = row["steps"]["archive"]
    assert archive["status"] == "pending" and archive["status_label"] == "planifié"
    assert archive["started_at"] is None


def test_plan_set_takes_the_date_as_the_console_does(
        base: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*base, "status", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    uai = row["uai"]
    assert main([*base, "plan", "set", "2", "09/07/2026", "--time", "21:00",
                 "--uai", uai]) == 0
    capsys.readouterr()
    assert main([*base, "plan", "--json", "--uai", uai]) == 0
    plan = json.loads(capsys.readouterr().out)
    archive = next(m for m in plan["establishments"][0]["milestones"]
                   if m["milestone"] == "archive")
    assert archive["date"] == "2026-07-09"
    assert archive["due_at"] == "2026-07-09T21:00:00+02:00"  # Paris time, ISO with offset
    assert parse_french_date("09/07/2026") == dt.date(2026, 7, 9)
    assert main([*base, "plan", "set", "2", "31/02/2026", "--uai", uai]) == 2
    error = capsys.readouterr().err
    assert "date invalide « 31/02/2026 » (attendu JJ/MM/AAAA ou AAAA-MM-JJ)" in error
