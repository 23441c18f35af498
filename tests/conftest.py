"""Shared fixtures: a fresh database per test on SQLite, and on PostgreSQL when configured.

Set ``YEARCHANGE_TEST_PG_URL`` (a PostgreSQL URL the tests may create databases from)
to run every ``database_url`` test on PostgreSQL too. Filled sample académies come
from templates built once per session (``template_support``) and copied per test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_support import PG_URL, drop_pg_database, fresh_pg_database
from template_support import TemplateStore, close_store, open_store

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

for variable in ("NO_COLOR", "TEXTUAL_THEME", "TEXTUAL_COLOR_SYSTEM", "YEARCHANGE_DB",
                 "YEARCHANGE_STORAGE", "YEARCHANGE_READ_ONLY", "YEARCHANGE_CONFIG"):
    os.environ.pop(variable, None)

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session", autouse=True)
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemplateStore]:
    """The session's template académies (built on first use); PostgreSQL ones dropped after."""
    store = open_store(tmp_path_factory.mktemp("templates"))
    yield store
    close_store()


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real user data or config folders."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("YEARCHANGE_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("YEARCHANGE_CONFIG", str(home / "config.toml"))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a new, empty database: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    url, name = fresh_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture(params=BACKENDS)
def two_database_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two new, empty databases of the same backend (to compare two runs)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'first.db'}", f"sqlite:///{tmp_path / 'second.db'}"
        return
    first, first_name = fresh_pg_database()
    second, second_name = fresh_pg_database()
    try:
        yield first, second
    finally:
        drop_pg_database(first_name)
        drop_pg_database(second_name)
