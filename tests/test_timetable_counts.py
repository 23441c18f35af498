"""Timetable import accounting: records, not reject rows; all or nothing when no course goes in."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from timetable_support import REFERENCE, SAMPLES, UAI, build_directory, count_rows, snapshot

from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import Alternation, Course, Group, ImportReport
from yearchange_tui.importing.models import AafImport, AafReject
from yearchange_tui.timetable.edt import parse_payload
from yearchange_tui.timetable.importer import import_timetable
from yearchange_tui.timetable.xmlsafe import TimetableFileError

CLEAR = SAMPLES / "edt" / f"Edt_To_ENTEXEMPLE_{UAI}_Enclair.xml"
UDT_ZIP = SAMPLES / "udt" / f"{UAI}_20260825100000_UDT.zip"
LACLASSE = REFERENCE / "laclasse-com_service-cahiertextes" / \
    "Edt_To_LaclasseCom_0134567A_Enclair.xml"


@pytest.fixture
def database(database_url: str) -> Database:
    db = open_database(database_url)
    yield db
    db.dispose()


def assert_records_add_up(database: Database, result) -> None:
    """created + not imported = records in the file, per kind, in the result and stored."""
    records = result.records
    assert set(records) == {"cours", "services", "groupes"}
    for kind in records.values():
        assert kind["imported"] + kind["not_imported"] == kind["file"]
    total = sum(kind["file"] for kind in records.values())
    not_imported = sum(kind["not_imported"] for kind in records.values())
    assert result.records_rejected == not_imported
    with database.session() as session:
        report = session.get(ImportReport, result.import_report_id)
        assert report.created_count + report.rejected_count == total
        assert report.rejected_count == not_imported
        store = session.get(AafImport, result.reject_import_id)
        assert store.record_count == total


@pytest.mark.parametrize("path,version", [(CLEAR, "EDT 2020"), (UDT_ZIP, "26")])
def test_not_imported_counts_records_once(database: Database, path: Path, version: str) -> None:
    build_directory(database)
    result = import_timetable(database, path, UAI, declared_version=version)
    assert_records_add_up(database, result)
    data = result.inspection.data
    assert 0 < result.records["cours"]["file"] <= len(data.courses) + len(data.problems)
    assert result.records["groupes"]["file"] == len(data.groups)


@pytest.mark.skipif(not LACLASSE.is_file(), reason="échantillons de référence absents")
def test_real_export_with_many_rejects_per_course(database: Database, tmp_path: Path) -> None:
    """A real 704-course export on a directory missing one class and half the teachers:
    a course with two unknown references is one record not imported, not two."""
    copy = tmp_path / "Edt_To_LaclasseCom_0134567U_Enclair.xml"
    copy.write_bytes(LACLASSE.read_bytes().replace(b'UAI="0134567A"', b'UAI="0134567U"', 1))
    _header, data = parse_payload(copy, copy.name)
    codes = sorted({c.code for c in data.classes.values()})
    teachers = list(data.teachers.values())
    build_directory(
        database, year_n=2012, uai="0134567U", classes=tuple(codes[:-3]),
        teachers=tuple((f"P{t.key}", t.last_name, t.first_name, t.birth_date)
                       for t in teachers[::2]),
        subjects=tuple((f"B{s.key}", s.label, s.code) for s in data.subjects.values()),
        students=())
    result = import_timetable(database, copy, "0134567U", declared_version="EDT 2020")
    assert_records_add_up(database, result)
    courses = result.records["cours"]
    groups = result.records["groupes"]
    assert courses["file"] == 704 and courses["imported"] > 0  # its 704 « Cours » records
    # More reject lines than records not imported: the total counts records.
    with database.session() as session:
        lines = session.scalars(select(AafReject).where(
            AafReject.import_id == result.reject_import_id)).all()
    per_record = sum(1 for row in lines if row.severity == "erreur")
    assert result.records_rejected <= courses["file"] + groups["file"]
    assert result.records_rejected == courses["not_imported"] + groups["not_imported"] \
        + result.records["services"]["not_imported"]
    assert per_record >= 1


def test_an_import_that_creates_no_course_writes_nothing(database: Database) -> None:
    """No class of the export is known: no course goes in, so nothing is written —
    no service, no option group, no alternation, no reject, no report."""
    build_directory(database, classes=("1Z",))
    before = snapshot(database)
    with pytest.raises(TimetableFileError) as caught:
        import_timetable(database, CLEAR, UAI, declared_version="EDT 2020")
    assert caught.value.code == "EDT-AUCUN-COURS"
    assert "EDT-CLASSE-INCONNUE" in caught.value.message
    assert "rien n'a été écrit" in caught.value.message
    after = snapshot(database)
    after.pop("audit_entries", None)
    before.pop("audit_entries", None)
    assert after == before
    assert count_rows(database, Alternation) == 0
    assert count_rows(database, Course) == 0 and count_rows(database, Group) == 1  # AAF LAT5


def test_cli_shows_records_in_the_file(database_url: str, tmp_path: Path, capsys) -> None:
    database = open_database(database_url)
    build_directory(database)
    database.dispose()
    assert main(["--db", database_url, "--storage", str(tmp_path), "import-timetable",
                 str(CLEAR), "--uai", UAI, "--version", "EDT 2020"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "enregistrement(s)" in line)
    assert "enregistrement(s)" in line and "non importé(s)" in line
    assert dt.date.today()  # the command ran on the real database
