"""An encrypted EDT container is judged on its readable header before a key is asked for."""

from __future__ import annotations

from pathlib import Path

import pytest
from timetable_support import REFERENCE, SAMPLES, UAI, build_directory, snapshot

from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.timetable.edt import read_container
from yearchange_tui.timetable.importer import import_timetable
from yearchange_tui.timetable.xmlsafe import TimetableFileError

EDT_DIR = SAMPLES / "edt"


@pytest.fixture
def database(database_url: str) -> Database:
    db = open_database(database_url)
    yield db
    db.dispose()


def refusal(database: Database, path: Path, uai: str) -> TimetableFileError:
    with pytest.raises(TimetableFileError) as caught:
        import_timetable(database, path, uai)  # no partner key configured
    return caught.value


def test_header_mismatch_is_said_before_the_key_is_asked(database: Database) -> None:
    build_directory(database)
    before = snapshot(database)
    container = EDT_DIR / f"Edt_To_ENTEXEMPLE_{UAI}_EDT2020.xml"
    wrong_uai = refusal(database, container, "0999002X")
    assert wrong_uai.code == "EDT-UAI-INCOHERENT"
    assert "0999001W" in wrong_uai.message and "0999002X" in wrong_uai.message
    too_old = refusal(database, EDT_DIR / f"Edt_To_ENTEXEMPLE_{UAI}_EDT2017.xml", UAI)
    assert too_old.code == "EDT-VERSION-TROP-ANCIENNE" and "EDT 2017" in too_old.message
    not_yet = refusal(database, EDT_DIR / f"Edt_To_ENTEXEMPLE_{UAI}_EDT2021.xml", UAI)
    assert not_yet.code == "EDT-VERSION-NON-ACTIVEE"
    # A header that passes: only then the partner key is asked for.
    assert refusal(database, container, UAI).code == "EDT-CLE-PARTENAIRE-ABSENTE"
    after = snapshot(database)
    for table in ("audit_entries",):
        after.pop(table, None)
        before.pop(table, None)
    assert after == before


def test_export_date_of_another_school_year_is_refused_without_a_key(
        database: Database, tmp_path: Path) -> None:
    """A container exported in May 2014 cannot hold the 2026-2027 timetable."""
    build_directory(database)
    source = EDT_DIR / f"Edt_To_ENTEXEMPLE_{UAI}_EDT2020.xml"
    old = tmp_path / source.name
    old.write_bytes(source.read_bytes().replace(b"2026-08-25T10:00:00.000+02:00",
                                                b"2014-05-20T10:19:08.486+02:00"))
    assert read_container(old, old.name).created_at.startswith("2014-05-20")
    error = refusal(database, old, UAI)
    assert error.code == "EDT-ANNEE-INCOHERENTE"
    assert "2013-2014 (d'après sa date d'export, 20/05/2014)" in error.message
    assert "2026-2027" in error.message


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="échantillons de référence absents")
def test_reference_container_of_pronote_2013_is_refused_on_its_header(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'y.db'}")
    build_directory(database)
    database.dispose()
    path = REFERENCE / "laclasse-com_service-cahiertextes" / "Edt_To_LaclasseCom_0134567A.xml"
    status = main(["--db", f"sqlite:///{tmp_path / 'y.db'}", "import-timetable", str(path),
                   "--uai", "0134567A"])
    captured = capsys.readouterr()
    assert status == 2
    assert "LOGICIEL  : PRONOTE Monoposte-PRONOTE 2013 - 0.5.14" in captured.out
    assert "[EDT-VERSION-TROP-ANCIENNE]" in captured.err
    assert "EDT-CLE-PARTENAIRE-ABSENTE" not in captured.err
