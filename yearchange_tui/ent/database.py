"""Open the project database: engine, sessions, SQLite pragmas and migrations on first use."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class DatabaseError(Exception):
    """The database cannot be opened or upgraded; the message is French, for operators."""


@dataclass
class Database:
    """An open database: its engine and a session factory."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite database."""
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def normalise_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs; leave others untouched."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def create_db_engine(url: str) -> Engine:
    """Create an engine for ``url`` with the project's connection settings.

    Raises:
        DatabaseError: when the URL is not understood or its folder cannot be created.
    """
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise DatabaseError(f"URL de base de données invalide : « {url} » ({error}).") from error
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as error:
        raise DatabaseError(
            f"Pilote absent pour « {parsed.get_backend_name()} » : installez l'extra "
            f"« pip install 'yearchange-tui[postgres]' » ({error})."
        ) from error


def _alembic_config(engine: Engine):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """The newest migration revision shipped with this version."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    if not inspect(engine).has_table("alembic_version"):
        return None
    with engine.connect() as connection:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, report: Callable[[str], None] | None = None) -> bool:
    """Create or upgrade the schema to the newest revision.

    Args:
        engine: the database engine.
        report: receives one French line when something is created or upgraded.

    Returns:
        True when the schema changed.
    """
    from alembic import command

    try:
        before = current_revision(engine)
    except OperationalError as error:
        raise DatabaseError(f"Base de données inaccessible : {error.orig}") from error
    head = head_revision()
    if before == head:
        return False
    url = engine.url.render_as_string(hide_password=True)
    if report is not None:
        if before is None:
            report(f"Création de la base de données {url} (schéma {head}).")
        else:
            report(f"Mise à jour de la base de données {url} : schéma {before} → {head}.")
    command.upgrade(_alembic_config(engine), "head")
    return True


def open_database(url: str, *, migrate: bool = True,
                  report: Callable[[str], None] | None = None) -> Database:
    """Open the database at ``url``, creating or upgrading its schema on first use.

    Args:
        url: SQLAlchemy URL (``sqlite:///path``, ``postgresql://…``).
        migrate: create or upgrade the schema when needed.
        report: receives a French line when the schema is created or upgraded.

    Raises:
        DatabaseError: when the database cannot be reached or upgraded.
    """
    engine = create_db_engine(url)
    if migrate:
        try:
            upgrade(engine, report)
        except OperationalError as error:
            engine.dispose()
            raise DatabaseError(f"Base de données inaccessible : {error.orig}") from error
    return Database(url=normalise_url(url), engine=engine,
                    sessions=sessionmaker(engine, expire_on_commit=False))
