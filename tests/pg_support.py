"""PostgreSQL databases for tests: created fresh on the server of ``YEARCHANGE_TEST_PG_URL``
and dropped after (shared by ``conftest.py``'s fixtures and module-scoped fixtures)."""

from __future__ import annotations

import os
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from yearchange_tui.ent.database import normalise_url

PG_URL = os.environ.get("YEARCHANGE_TEST_PG_URL")


def fresh_pg_database() -> tuple[str, str]:
    """A new, empty database on the test server: its URL and its name."""
    assert PG_URL is not None
    server = make_url(normalise_url(PG_URL))
    name = f"yc_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server.set(database=name).render_as_string(hide_password=False), name


def drop_pg_database(name: str) -> None:
    """Drop a database :func:`fresh_pg_database` created (its connections closed first)."""
    assert PG_URL is not None
    admin = create_engine(make_url(normalise_url(PG_URL)), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
