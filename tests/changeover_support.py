"""Helpers for the change-over tests: a filled database and comparable snapshots."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, func, inspect, select, text
from template_support import TEMPLATE_YEAR, copy_academy

from yearchange_tui.changeover.runner import ChangeoverRunner
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import ENT_MODELS

# After the collège closes (4 July 2026), inside the window of steps 1 to 3.
WINDOW = dt.datetime(2026, 7, 8, 9, 0, tzinfo=dt.UTC)


@dataclass
class Academy:
    """A filled database with its storage root."""

    database: Database
    storage: Path
    url: str

    def runner(self, **kwargs: Any) -> ChangeoverRunner:
        kwargs.setdefault("now", WINDOW)
        return ChangeoverRunner(self.database, self.storage, **kwargs)


def make_academy(url: str, storage: Path, establishments: int = 1, seed: int = 5) -> Academy:
    """A sample académie for school year 2025-2026 at ``url``, its files under ``storage``.

    The database and the storage root are a private copy of the session's template for
    (``establishments``, ``seed``, 2025), so a test may change them freely.

    Args:
        url: a SQLite database that does not exist yet, or an empty PostgreSQL database.
        storage: the storage root to create.
        establishments: number of establishments.
        seed: random seed of the sample.
    """
    copy_academy(url, storage, establishments, seed, TEMPLATE_YEAR)
    return Academy(open_database(url), storage, url)


def table_rows(database: Database, *, with_keys: bool = True,
               stamped_from: dt.datetime | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every ENT table, sorted; without ``with_keys``, primary and foreign keys
    are left out (ids differ between databases after rolled-back inserts). With
    ``stamped_from``, a timestamp at or after that moment becomes ``"<stamped by the run>"``
    (a run stamps what it writes with the time it ran, which two runs never share)."""
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    with database.engine.connect() as connection:
        for model in ENT_MODELS:
            table = model.__table__
            columns = [column for column in table.columns
                       if with_keys or not (column.primary_key or column.foreign_keys)]
            if not columns:  # only keys: compare the number of rows
                snapshot[table.name] = [(connection.execute(
                    select(func.count()).select_from(table)).scalar(),)]
                continue
            rows = connection.execute(select(*columns)).all()
            normalised = []
            for row in rows:
                values = []
                for column, value in zip(columns, row):
                    if isinstance(column.type, DateTime) and value is not None:
                        if stamped_from is not None and _aware(value) >= stamped_from:
                            value = "<stamped by the run>"
                        else:
                            value = value.replace(tzinfo=None).isoformat()
                    values.append(value)
                normalised.append(tuple(values))
            snapshot[table.name] = sorted(normalised, key=repr)
    return snapshot


def _aware(value: dt.datetime) -> dt.datetime:
    """A stored timestamp as an aware one (SQLite gives them back naive, in UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def storage_files(storage: Path) -> dict[str, str]:
    """Relative path → SHA-256 of every file under the storage root (temporary files too)."""
    return {path.relative_to(storage).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(storage.rglob("*")) if path.is_file()}


def count(database: Database, sql: str, **params: Any) -> int:
    """One integer from a SQL query."""
    with database.engine.connect() as connection:
        return int(connection.execute(text(sql), params).scalar() or 0)


def engine_tables(database: Database) -> set[str]:
    """Tables present in the database."""
    return set(inspect(database.engine).get_table_names())
