"""Planner statistics at académie scale (issue 16), and ``yearchange sample --db``.

PostgreSQL plans from statistics only ``ANALYZE`` gathers; the product refreshes them after
every bulk path (the sample, the AAF import, step 3's deletes). These tests run on
SQLite always and check the statistics on PostgreSQL when ``YEARCHANGE_TEST_PG_URL`` is set.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from changeover_support import make_academy
from sqlalchemy import text

from yearchange_tui.aaf.importer import import_delivery
from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import Database, open_database, refresh_statistics
from yearchange_tui.sample.fill import refuse_filled_database
from yearchange_tui.workflow.models import Step

ARGS = ["sample", "--establishments", "1", "--seed", "3", "--year", "2025"]


def _is_pg(url: str) -> bool:
    return url.startswith("postgresql")


def _analysed(database: Database) -> dict[str, tuple[object, float]]:
    """Per table: when it was last analysed (by us or autovacuum) and its estimated rows."""
    with database.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT s.relname, coalesce(s.last_analyze, s.last_autoanalyze), c.reltuples "
            "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid")).all()
    return {row[0]: (row[1], float(row[2])) for row in rows}


def test_sample_writes_the_academie_into_the_database_given(
        database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "academie"
    assert main(["--db", database_url, *ARGS, "--out", str(out)]) == 0
    assert not (out / "yearchange.db").exists()
    assert (out / "aaf").is_dir() and (out / "storage").is_dir()
    assert "Statistiques PostgreSQL mises à jour" in capsys.readouterr().err or not _is_pg(
        database_url)
    database = open_database(database_url)
    try:
        with database.engine.connect() as connection:
            with pytest.raises(Exception, match="contient déjà un projet"):
                refuse_filled_database(connection)
            count = connection.execute(text("SELECT count(*) FROM establishments")).scalar()
        assert count == 1
        if _is_pg(database_url):
            stats = _analysed(database)
            for table in ("establishments", "people", "classes", "class_memberships"):
                analysed_at, estimated = stats[table]
                assert analysed_at is not None, table
                assert estimated > 0, table
    finally:
        database.dispose()


def test_sample_refuses_a_filled_database_and_changes_nothing(
        database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = tmp_path / "first"
    assert main(["--db", database_url, *ARGS, "--out", str(first)]) == 0
    capsys.readouterr()
    second = tmp_path / "second"
    assert main(["--db", database_url, *ARGS, "--out", str(second)]) == 2
    assert "contient déjà un projet" in capsys.readouterr().err
    assert not second.exists()


def test_an_aaf_import_refreshes_the_statistics_of_what_it_filled(
        database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not _is_pg(database_url):
        pytest.skip("statistiques du planificateur : PostgreSQL seulement")
    out = tmp_path / "academie"
    assert main(["--db", database_url, *ARGS, "--out", str(out)]) == 0
    database = open_database(database_url)
    try:
        before = _analysed(database)
        assert before["aaf_imports"][0] is None  # the sample imports nothing
        lines: list[str] = []
        import_delivery(database, [out / "aaf"], progress=lines.append)
        after = _analysed(database)
        assert any("Statistiques PostgreSQL mises à jour (ANALYZE)" in line for line in lines)
        for table in ("aaf_imports", "aaf_import_files"):
            assert after[table][0] is not None, table
            assert after[table][1] > 0, table
    finally:
        database.dispose()


def test_refresh_statistics_does_nothing_on_sqlite(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'y.db'}")
    try:
        assert refresh_statistics(database, vacuum=True) == []
    finally:
        database.dispose()


def test_step_3_vacuums_and_analyses_what_it_deleted(database_url: str, tmp_path: Path) -> None:
    """After step 3's bulk deletes the tables are vacuumed and analysed: the planner's
    estimate of ``grades`` drops to what is left (PostgreSQL)."""
    if not _is_pg(database_url):
        pytest.skip("VACUUM ANALYZE : PostgreSQL seulement")
    academy = make_academy(database_url, tmp_path / "storage")
    try:
        runner = academy.runner()
        establishments = runner.establishments()
        for step in (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE):
            outcomes = runner.run(step, establishments)
            assert [o.status for o in outcomes] == ["done"], outcomes
        with academy.database.engine.connect() as connection:
            vacuumed = dict(connection.execute(text(
                "SELECT relname, last_vacuum FROM pg_stat_user_tables")).all())
            left = connection.execute(text("SELECT count(*) FROM grades")).scalar()
        stats = _analysed(academy.database)
        for table in ("grades", "classes", "courses"):
            assert vacuumed[table] is not None, table
            assert stats[table][0] is not None, table
        assert stats["grades"][1] == left
    finally:
        academy.database.dispose()
