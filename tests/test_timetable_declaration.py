"""The timetable version policy applies to every import (seed §2.2.3), whatever ``--version``.

Each establishment's software and version is declared once (from its first manual import,
or ``timetable-version set``); imports use it, automatic ones refuse an establishment
without it, and a ``--version`` that contradicts it is refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from timetable_support import SAMPLES, UAI, build_directory, snapshot

from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.timetable.declarations import set_declaration
from yearchange_tui.timetable.drop import process_drop_folder
from yearchange_tui.timetable.importer import MODE_AUTOMATIC, import_timetable
from yearchange_tui.timetable.models import TimetableDeclaration, TimetableImport
from yearchange_tui.timetable.xmlsafe import TimetableFileError
from yearchange_tui.workflow.models import AuditEntry

CLEAR = SAMPLES / "edt" / f"Edt_To_ENTEXEMPLE_{UAI}_Enclair.xml"
UDT_ZIP = SAMPLES / "udt" / f"{UAI}_20260825100000_UDT.zip"


@pytest.fixture
def database(database_url: str) -> Database:
    db = open_database(database_url)
    yield db
    db.dispose()


def answer(database: Database, path: Path, version: str | None, **options) -> str:
    """The import's answer: the refusal code, or the policy outcome of an import done."""
    try:
        result = import_timetable(database, path, UAI, declared_version=version,
                                  dry_run=True, **options)
    except TimetableFileError as refusal:
        return refusal.code
    return result.inspection.verdict.outcome.value


def test_the_same_udt_zip_gets_the_same_answer_with_or_without_version(
        database: Database) -> None:
    build_directory(database)  # the project has not activated UDT 27
    before = snapshot(database)
    # Nothing declared: refused either way (no import « sans contrôle »).
    assert answer(database, UDT_ZIP, "27") == "EDT-VERSION-NON-ACTIVEE"
    assert answer(database, UDT_ZIP, None) == "EDT-VERSION-A-DECLARER"
    set_declaration(database, UAI, "udt", "27")
    assert answer(database, UDT_ZIP, "27") == "EDT-VERSION-NON-ACTIVEE"
    assert answer(database, UDT_ZIP, None) == "EDT-VERSION-NON-ACTIVEE"
    # An explicit --version that contradicts the declaration is refused.
    assert answer(database, UDT_ZIP, "26") == "EDT-VERSION-DECLARATION-DIFFERENTE"
    set_declaration(database, UAI, "udt", "26")
    assert answer(database, UDT_ZIP, "26") == answer(database, UDT_ZIP, None) == "supportee"
    after = snapshot(database)
    assert after.pop("timetable_declarations") != before.pop("timetable_declarations")
    assert after == before  # dry runs and refusals wrote nothing else


def test_a_clear_edt_export_is_checked_against_the_policy(database: Database) -> None:
    build_directory(database)
    set_declaration(database, UAI, "edt", "2021")  # not activated for the project
    assert answer(database, CLEAR, None) == "EDT-VERSION-NON-ACTIVEE"
    set_declaration(database, UAI, "edt", "2017")
    assert answer(database, CLEAR, None) == "EDT-VERSION-TROP-ANCIENNE"
    set_declaration(database, UAI, "udt", "26")  # the establishment said UnDeuxTemps
    assert answer(database, CLEAR, None) == "EDT-VERSION-DECLARATION-DIFFERENTE"
    set_declaration(database, UAI, "edt", "2020")
    result = import_timetable(database, CLEAR, UAI)
    assert result.inspection.verdict.label.startswith("EDT 2020, déclaration — ✓ supportée")


def test_first_manual_import_records_the_declaration(database: Database) -> None:
    build_directory(database)
    import_timetable(database, UDT_ZIP, UAI, declared_version="26")
    with database.session() as session:
        row = session.scalar(select(TimetableDeclaration))
        assert (row.product, row.version, row.source) == ("UDT", 26, "premier import manuel")
    again = import_timetable(database, UDT_ZIP, UAI)  # no --version: the declaration applies
    assert again.inspection.verdict.version.label == "UDT 26 (2020)"


def test_automatic_mode_uses_the_declaration_and_refuses_an_undeclared_one(
        database: Database, tmp_path: Path) -> None:
    build_directory(database)
    import_timetable(database, UDT_ZIP, UAI, declared_version="26")  # manual first import
    drop = tmp_path / "depot"
    drop.mkdir()
    shutil.copy(UDT_ZIP, drop / UDT_ZIP.name)
    (done,) = process_drop_folder(database, drop)
    assert done.status == "importé"
    with database.session() as session:
        last = session.scalar(select(TimetableImport).order_by(TimetableImport.id.desc()))
        assert (last.mode, last.version_label) == ("automatique", "UDT 26 (2020)")
        session.execute(delete(TimetableDeclaration))  # e.g. a manual import made before
    with pytest.raises(TimetableFileError) as caught:
        import_timetable(database, UDT_ZIP, UAI, mode=MODE_AUTOMATIC)
    assert caught.value.code == "EDT-VERSION-A-DECLARER"
    assert "timetable-version set" in caught.value.action


def test_timetable_version_commands(database_url: str, tmp_path: Path, capsys) -> None:
    database = open_database(database_url)
    build_directory(database)
    database.dispose()
    options = ["--db", database_url, "--storage", str(tmp_path)]
    assert main([*options, "timetable-version", "show"]) == 0
    assert "aucune déclaration" in capsys.readouterr().out
    assert main([*options, "timetable-version", "set", "--uai", UAI, "--logiciel", "udt",
                 "--version", "27"]) == 0
    out = capsys.readouterr().out
    assert f"Déclaré : {UAI}" in out and "UDT 27 (2021)" in out
    assert "pas encore activée" in out  # what the policy says of it today
    assert main([*options, "timetable-version", "show", "--uai", UAI, "--json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)
    assert (shown["logiciel"], shown["version"], shown["source"]) == ("UDT", 27, "commande")
    assert main([*options, "import-timetable", str(UDT_ZIP), "--uai", UAI]) == 2
    assert "[EDT-VERSION-NON-ACTIVEE]" in capsys.readouterr().err
    assert main([*options, "timetable-version", "set", "--uai", UAI, "--logiciel", "udt",
                 "--version", "douze"]) == 2
    assert "illisible" in capsys.readouterr().err
    database = open_database(database_url)
    with database.session() as session:
        audited = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "timetable-version")).all()
        assert len(audited) == 1
    database.dispose()


def test_the_projects_automatic_mode_has_its_command_and_is_shown(
        database_url: str, tmp_path: Path, capsys) -> None:
    """Seed checklist row 15 (§2.2.3): automatic mode only if the project has the K+ module
    « Import emplois du temps automatisé ». ``timetable-version show`` says whether each
    establishment's project has it, ``timetable-version set --import-automatique`` sets it
    (audited), and the drop folder follows it."""
    database = open_database(database_url)
    build_directory(database, automatic=False)
    import_timetable(database, UDT_ZIP, UAI, declared_version="26")  # manual first import
    database.dispose()
    options = ["--db", database_url, "--storage", str(tmp_path)]
    assert main([*options, "timetable-version", "show"]) == 0
    assert "import automatique : non (module K+ inactif pour le projet ENT-TEST)" in (
        capsys.readouterr().out)
    drop = tmp_path / "depot"
    drop.mkdir()
    shutil.copy(UDT_ZIP, drop / UDT_ZIP.name)
    database = open_database(database_url)
    with pytest.raises(TimetableFileError) as caught:
        import_timetable(database, UDT_ZIP, UAI, mode=MODE_AUTOMATIC, dry_run=True)
    assert caught.value.code == "EDT-IMPORT-AUTO-INACTIF"
    database.dispose()

    assert main([*options, "timetable-version", "set", "--import-automatique", "oui",
                 "--uai", UAI]) == 0
    assert capsys.readouterr().out == (
        "Projet ENT-TEST : import automatique des emplois du temps permis (module K+ "
        "activé)\n")
    assert main([*options, "timetable-version", "show", "--json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)
    assert (shown["project"], shown["automatic_import"]) == ("ENT-TEST", True)
    assert main([*options, "timetable-version", "set", "--import-automatique", "oui"]) == 0
    assert capsys.readouterr().out.endswith("activé) — inchangé\n")
    database = open_database(database_url)
    (done,) = process_drop_folder(database, drop)
    assert done.status == "importé"
    with database.session() as session:
        audited = [json.loads(row) for row in session.scalars(select(AuditEntry.details).where(
            AuditEntry.action == "timetable-automatic-import").order_by(AuditEntry.id))]
    assert [(row["project"], row["enabled"], row["before"]) for row in audited] == [
        ("ENT-TEST", True, False), ("ENT-TEST", True, True)]
    database.dispose()
    # Nothing to set, or a version without its software: refused in French, exit 2.
    assert main([*options, "timetable-version", "set"]) == 2
    assert "Rien à déclarer" in capsys.readouterr().err
    assert main([*options, "timetable-version", "set", "--uai", UAI, "--version", "26"]) == 2
    assert "se déclarent ensemble" in capsys.readouterr().err
