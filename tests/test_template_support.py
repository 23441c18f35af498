"""Template académies: a copy holds what a fresh fill writes, and no test reaches a template."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from changeover_support import make_academy, storage_files
from sqlalchemy import MetaData, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from template_support import AcademyKey, TemplateModifiedError, TemplateStore, copy_sample, store

from yearchange_tui.ent.database import Database, normalise_url, open_database
from yearchange_tui.sample.fill import fill_database
from yearchange_tui.sample.roster import build_academy


def all_rows(database: Database) -> dict[str, list[str]]:
    """Every row of every table (the migration version too), sorted — but the console's
    change log, written by triggers with transaction ids and times (a copy is one more
    transaction)."""
    metadata = MetaData()
    metadata.reflect(database.engine)
    with database.engine.connect() as connection:
        return {table.name: sorted(repr(tuple(row)) for row in connection.execute(select(table)))
                for table in metadata.sorted_tables if table.name != "console_changes"}


def test_a_copy_holds_exactly_what_a_fresh_fill_writes(two_database_urls: tuple[str, str],
                                                       tmp_path: Path) -> None:
    fresh_url, copy_url = two_database_urls
    fresh = open_database(fresh_url)
    with fresh.engine.begin() as connection:
        fill_database(connection, tmp_path / "fresh", build_academy(1, 5, 2025))
    copy = make_academy(copy_url, tmp_path / "copy", establishments=1, seed=5)
    try:
        copied_rows = all_rows(copy.database)
        assert copied_rows == all_rows(fresh)
        assert sum(len(rows) for rows in copied_rows.values()) > 1000
        assert storage_files(copy.storage) == storage_files(tmp_path / "fresh")
    finally:
        fresh.dispose()
        copy.database.dispose()


def test_what_a_test_does_to_its_copy_never_reaches_the_next_copy(
        two_database_urls: tuple[str, str], tmp_path: Path) -> None:
    first_url, second_url = two_database_urls
    first = make_academy(first_url, tmp_path / "first")
    rows_before, files_before = all_rows(first.database), storage_files(first.storage)
    with first.database.engine.begin() as connection:
        connection.execute(text("DELETE FROM messages"))
    stored = sorted(path for path in first.storage.rglob("*") if path.is_file())
    stored[0].write_bytes(b"changed in place")
    stored[1].unlink()
    (first.storage / "new-file.txt").write_text("new", encoding="utf-8")
    assert all_rows(first.database) != rows_before
    first.database.dispose()

    second = make_academy(second_url, tmp_path / "second")
    try:
        assert all_rows(second.database) == rows_before
        assert storage_files(second.storage) == files_before
    finally:
        second.database.dispose()


def test_a_template_that_changed_is_refused_not_copied(tmp_path: Path) -> None:
    templates = TemplateStore(tmp_path / "templates")
    key = AcademyKey(1, 5)
    templates.copy_academy(key, f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "a")
    folder = tmp_path / "templates" / f"sqlite-{key.slug}"

    document = next(path for path in (folder / "storage").rglob("*") if path.is_file())
    document.write_bytes(document.read_bytes() + b"!")
    with pytest.raises(TemplateModifiedError, match="changed since it was built"):
        templates.copy_academy(key, f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "b")

    with (folder / "yearchange.db").open("ab") as database_file:
        database_file.write(b"\0")
    with pytest.raises(TemplateModifiedError, match="changed since it was built"):
        templates.copy_academy(key, f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "c")
    assert not (tmp_path / "c.db").exists()


@pytest.mark.skipif(os.environ.get("YEARCHANGE_TEST_PG_URL") is None,
                    reason="YEARCHANGE_TEST_PG_URL absent")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_postgresql_template_accepts_no_connection(database_url: str, tmp_path: Path) -> None:
    make_academy(database_url, tmp_path / "storage").database.dispose()
    names = store().postgresql_templates()
    assert names
    for name in names:
        engine = create_engine(make_url(normalise_url(database_url)).set(database=name))
        try:
            with pytest.raises(OperationalError, match="not currently accepting connections"):
                engine.connect()
        finally:
            engine.dispose()


def test_a_sample_copy_names_its_own_database_and_storage(tmp_path: Path) -> None:
    first = copy_sample(tmp_path / "first", 2, 7)
    second = copy_sample(tmp_path / "second", 2, 7)
    summary: dict[str, Any] = json.loads((second / "sample.json").read_text(encoding="utf-8"))
    assert summary["db"] == f"sqlite:///{second / 'yearchange.db'}"
    assert summary["storage"] == str(second / "storage")
    assert sorted(path.name for path in (second / "aaf").iterdir()) == sorted(
        summary["aaf_files"])
    assert storage_files(first / "aaf") == storage_files(second / "aaf")
    database = open_database(summary["db"])
    try:
        with database.engine.connect() as connection:
            uais = connection.execute(text("SELECT uai FROM establishments")).scalars().all()
        assert sorted(uais) == sorted(e["uai"] for e in summary["establishments"])
    finally:
        database.dispose()
