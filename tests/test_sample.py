"""`yearchange sample`: a realistic, deterministic académie on disk."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import open_database
from yearchange_tui.ent.models import (
    ENT_MODELS,
    FolderKind,
    GroupKind,
    GroupLifetime,
    MessageArchivePolicy,
    RubricRole,
    TrashReason,
)
from yearchange_tui.sample.fill import SampleDatabaseNotEmptyError, fill_database
from yearchange_tui.sample.roster import build_academy

ARGS = ["sample", "--establishments", "2", "--seed", "7", "--year", "2025"]


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample") / "academie"
    assert main([*ARGS, "--out", str(out)]) == 0
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_output_folder_has_the_contract_layout(sample_dir: Path) -> None:
    assert (sample_dir / "yearchange.db").is_file()
    assert (sample_dir / "storage").is_dir()
    assert any((sample_dir / "aaf").glob("*_Eleve_0000.xml"))
    assert (sample_dir / "aaf" / "ficAlimMENESR.dtd").is_file()
    assert any((sample_dir / "timetables").iterdir())
    summary = json.loads((sample_dir / "sample.json").read_text(encoding="utf-8"))
    assert summary["school_year"] == "2025-2026"
    assert {e["kind"] for e in summary["establishments"]} == {"college", "lycee"}


def test_every_table_of_the_model_holds_rows(sample_dir: Path) -> None:
    engine = create_engine(f"sqlite:///{sample_dir / 'yearchange.db'}")
    with engine.connect() as connection:
        empty = [model.__tablename__ for model in ENT_MODELS
                 if not connection.execute(select(func.count()).select_from(model)).scalar()]
    engine.dispose()
    assert empty == []


def test_volumes_are_those_of_real_establishments(sample_dir: Path) -> None:
    engine = create_engine(f"sqlite:///{sample_dir / 'yearchange.db'}")
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT e.uai, "
            " (SELECT COUNT(*) FROM people p WHERE p.establishment_id = e.id AND p.kind = 'student'),"
            " (SELECT COUNT(*) FROM classes c WHERE c.establishment_id = e.id),"
            " (SELECT COUNT(*) FROM people p WHERE p.establishment_id = e.id AND p.kind = 'teacher')"
            " FROM establishments e")).all()
    engine.dispose()
    for _uai, students, classes, teachers in rows:
        assert 450 <= students <= 750
        assert 18 <= classes <= 30
        assert teachers == 60


def test_stored_files_match_their_recorded_size_and_checksum(sample_dir: Path) -> None:
    engine = create_engine(f"sqlite:///{sample_dir / 'yearchange.db'}")
    with engine.connect() as connection:
        files = connection.execute(text(
            "SELECT relative_path, size, sha256 FROM stored_files")).all()
    engine.dispose()
    assert len(files) > 1000
    for relative_path, size, sha256 in files:
        content = (sample_dir / "storage" / relative_path).read_bytes()
        assert len(content) == size
        assert hashlib.sha256(content).hexdigest() == sha256


def test_situations_the_changeover_must_handle_are_present(sample_dir: Path) -> None:
    engine = create_engine(f"sqlite:///{sample_dir / 'yearchange.db'}")
    with engine.connect() as connection:
        q = lambda sql: connection.execute(text(sql)).all()
        # Trash: class rubrics archived last year, and items trashed by users this year,
        # some of them in the last days before the establishment closes.
        reasons = {row[0] for row in q("SELECT reason FROM trash_entries")}
        assert reasons == {TrashReason.YEAR_ARCHIVE.value, TrashReason.USER.value}
        recent = q("SELECT t.trashed_at, e.closing_date FROM trash_entries t "
                    "JOIN establishments e ON e.id = t.establishment_id WHERE t.reason = 'user'")
        assert any(dt.date.fromisoformat(str(closing)) - dt.datetime.fromisoformat(
            str(trashed)).date() <= dt.timedelta(days=7) for trashed, closing in recent)
        # Every role is held by users and by groups.
        by_user = {row[0] for row in q("SELECT role FROM rubric_rights WHERE person_id IS NOT NULL")}
        by_group = {row[0] for row in q("SELECT role FROM rubric_rights WHERE group_id IS NOT NULL")}
        every_role = {role.value for role in RubricRole}
        assert by_user == every_role and by_group == every_role
        # Free groups of both lifetimes, with managers; option groups from the timetable.
        lifetimes = {row[0] for row in q(
            "SELECT g.lifetime FROM groups g JOIN group_managers m ON m.group_id = g.id "
            f"WHERE g.kind = '{GroupKind.FREE.value}'")}
        assert lifetimes == {GroupLifetime.UNLIMITED.value, GroupLifetime.SCHOOL_YEAR.value}
        assert q("SELECT COUNT(*) FROM groups WHERE kind = 'option' "
                 "AND import_report_id IS NOT NULL")[0][0] > 0
        assert q("SELECT COUNT(*) FROM teaching_services t JOIN groups g ON g.id = t.group_id "
                 "WHERE g.kind = 'free'")[0][0] > 0
        # Messages in « Archivés » for users of both archiving policies.
        policies = {row[0] for row in q(
            "SELECT p.message_archive_policy FROM message_copies c "
            "JOIN message_folders f ON f.id = c.folder_id JOIN people p ON p.id = c.owner_id "
            f"WHERE f.kind = '{FolderKind.ARCHIVED.value}'")}
        assert policies == {p.value for p in MessageArchivePolicy}
        # Relatives linked to students.
        assert q("SELECT COUNT(DISTINCT student_id) FROM student_relatives")[0][0] > 900
    engine.dispose()


def test_same_seed_gives_identical_aaf_files_even_in_the_same_folder(
        sample_dir: Path, tmp_path: Path) -> None:
    first = _files(sample_dir / "aaf")
    other = tmp_path / "other"
    assert main([*ARGS, "--out", str(other)]) == 0
    assert _files(other / "aaf") == first
    assert main([*ARGS, "--out", str(other)]) == 0  # again, over the previous sample
    assert _files(other / "aaf") == first
    assert _files(other / "timetables") == _files(sample_dir / "timetables")


def test_another_seed_gives_another_academy(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "seed8"
    assert main(["sample", "--establishments", "2", "--seed", "8", "--year", "2025",
                 "--out", str(out)]) == 0
    assert _files(out / "aaf") != _files(sample_dir / "aaf")


def test_a_folder_holding_something_else_is_left_alone(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "precious.txt").write_text("ne pas effacer", encoding="utf-8")
    assert main([*ARGS, "--out", str(tmp_path)]) == 2
    assert "n'est pas vide" in capsys.readouterr().err
    assert [path.name for path in tmp_path.iterdir()] == ["precious.txt"]


def test_zero_establishments_is_bad_usage(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "--establishments", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--establishments" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_filler_works_on_every_backend(database_url: str, tmp_path: Path) -> None:
    database = open_database(database_url)
    try:
        academy = build_academy(1, seed=3, year=2025)
        with database.engine.begin() as connection:
            fill_database(connection, tmp_path / "storage", academy)
        with database.engine.connect() as connection:
            empty = [model.__tablename__ for model in ENT_MODELS
                     if not connection.execute(select(func.count()).select_from(model)).scalar()]
        assert empty == []
        # Sequences continue after the sample's explicit ids (PostgreSQL).
        with database.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO subjects (code, label, short_label) VALUES ('777777', 'X', 'X')"))
        with pytest.raises(SampleDatabaseNotEmptyError), database.engine.begin() as connection:
            fill_database(connection, tmp_path / "storage2", academy)
    finally:
        database.dispose()


def test_ten_thousand_sample_uais_are_valid_and_distinct() -> None:
    """A national ENT: one département holds only 10,000 numbers (issue 16)."""
    import random

    from yearchange_tui.ent.uai import is_valid_uai
    from yearchange_tui.sample.roster import _uai_for

    rng, used = random.Random(5), set()
    uais = [_uai_for(rng, "069", used) for _ in range(10_001)]
    assert len(set(uais)) == 10_001
    assert all(is_valid_uai(uai) for uai in uais)
    assert sum(uai.startswith("069") for uai in uais) == 10_000
