"""Open the project database: engines, sessions, SQLite pragmas, schema checks and migrations.

Two ways in. :func:`open_database` creates or upgrades the schema (the engine, ``sample``,
``demo`` and ``yearchange db upgrade``). :func:`open_existing_database` opens a database
that must already be at this version's schema and never creates or migrates anything;
it can open it read-only (SQLite ``mode=ro``, PostgreSQL
``default_transaction_read_only``) or rollback-only (dry runs: writes inside a
transaction are allowed, a commit is refused).
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from yearchange_tui.french import plural

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Stable codes of the refusals to open a database (operators and scripts match on them).
CODE_INVALID_URL = "BASE-URL-INVALIDE"
CODE_UNREACHABLE = "BASE-INACCESSIBLE"
CODE_MISSING = "BASE-ABSENTE"
CODE_EMPTY = "BASE-VIDE"
CODE_FOREIGN = "BASE-INCONNUE"
CODE_OLDER = "BASE-A-METTRE-A-JOUR"
CODE_NEWER = "BASE-PLUS-RECENTE"
CODE_COMMIT_REFUSED = "BASE-ECRITURE-INTERDITE"
CODE_LOCKED = "BASE-VERROUILLEE"

# Seconds a connection waits for a SQLite database another program is writing to.
DEFAULT_LOCK_TIMEOUT = 30.0


class DatabaseError(Exception):
    """The database cannot be opened or upgraded; the message is French, for operators.

    Attributes:
        message: the French explanation, with the command to run when there is one.
        code: a stable code (``BASE-ABSENTE``, ``BASE-A-METTRE-A-JOUR``…).
    """

    def __init__(self, message: str, code: str = CODE_UNREACHABLE) -> None:
        super().__init__(f"[{code}] {message}")
        self.message = message
        self.code = code


class Access(enum.Enum):
    """How a command may use the database it opens."""

    READ_WRITE = "read-write"
    """Reads and writes (a run, an import, a calendar edit)."""
    READ_ONLY = "read-only"
    """Reads only; the connection itself refuses any write (status, rejects, --read-only)."""
    ROLLBACK_ONLY = "rollback-only"
    """Writes inside a transaction that is always rolled back; a commit raises (dry runs)."""


@dataclass
class Database:
    """An open database: its engine and a session factory."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session]
    access: Access = Access.READ_WRITE
    write_denied: str | None = None
    """Why the database itself refuses this account's writes (French), None when it
    accepts them: see :func:`write_denied`."""

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite database."""
        return self.engine.dialect.name == "sqlite"

    @property
    def read_only(self) -> bool:
        """True when the connection refuses every write."""
        return self.access is Access.READ_ONLY

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


def _sqlite_pragmas(dbapi_connection, _record, *,  # type: ignore[no-untyped-def]
                    busy_ms: int = int(DEFAULT_LOCK_TIMEOUT * 1000)) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.close()


def _sqlite_read_only_pragmas(dbapi_connection, _record, *,  # type: ignore[no-untyped-def]
                              busy_ms: int = int(DEFAULT_LOCK_TIMEOUT * 1000)) -> None:
    # The journal mode is the file's own (WAL once created); setting it would write.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def is_lock_error(error: BaseException) -> bool:
    """True for SQLite's « database is locked » (another program is writing)."""
    original = getattr(error, "orig", error)
    return isinstance(original, sqlite3.OperationalError) and "locked" in str(original)


def locked_message(url: str, seconds: float) -> str:
    """The French refusal when a SQLite database stayed locked for ``seconds``."""
    return (f"La base {display_url(url)} est restée verrouillée par un autre programme qui "
            f"y écrit pendant {seconds:g} s ; rien n'a été modifié. Réessayez quand il aura "
            "fini, ou allongez l'attente (lock_timeout dans le fichier de configuration, ou "
            "YEARCHANGE_LOCK_TIMEOUT).")


def wait_for_write_lock(url: str, timeout: float = DEFAULT_LOCK_TIMEOUT,
                        report: Callable[[str], None] | None = None,
                        poll: float = 0.2) -> None:
    """Wait until a SQLite database can be written, saying so once while it waits.

    Takes and releases SQLite's write lock (``BEGIN IMMEDIATE`` then ``ROLLBACK``):
    nothing is written. Other backends lock rows, not the database: nothing to wait for.

    Raises:
        DatabaseError: ``BASE-VERROUILLEE`` when another program still holds the lock
            after ``timeout`` seconds.
    """
    path = sqlite_path(url)
    if path is None or not path.is_file():
        return
    try:
        connection = sqlite3.connect(str(path), timeout=0, isolation_level=None)
    except sqlite3.Error as error:
        raise DatabaseError(f"Base de données {display_url(url)} inaccessible : {error}") from error
    deadline = time.monotonic() + timeout
    announced = False
    try:
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                connection.execute("ROLLBACK")
                return
            except sqlite3.OperationalError as error:
                if not is_lock_error(error):
                    raise DatabaseError(f"Base de données {display_url(url)} inaccessible : "
                                        f"{error}") from error
            if time.monotonic() >= deadline:
                raise DatabaseError(locked_message(url, timeout), CODE_LOCKED)
            if not announced and report is not None:
                report(f"… La base {display_url(url)} est verrouillée par un autre programme "
                       f"qui y écrit : attente de sa libération (jusqu'à {timeout:g} s)…")
            announced = True
            time.sleep(poll)
    finally:
        connection.close()


def _refuse_commit(_connection: Any) -> None:
    raise DatabaseError("Passage à blanc : l'enregistrement (COMMIT) est interdit sur cette "
                        "connexion ; rien n'a été modifié.", CODE_COMMIT_REFUSED)


def normalise_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs; leave others untouched."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def display_url(url: str) -> str:
    """The URL as shown to operators: password hidden, SQLite as its file path.

    Raises:
        DatabaseError: when the URL is not understood.
    """
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite:///{parsed.database or ''}"
    return parsed.render_as_string(hide_password=True)


def _parse(url: str) -> URL:
    try:
        return make_url(normalise_url(url))
    except ArgumentError as error:
        raise DatabaseError(f"URL de base de données invalide : « {url} » ({error}).",
                            CODE_INVALID_URL) from error


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for another backend or an in-memory database)."""
    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def create_db_engine(url: str, access: Access = Access.READ_WRITE, *,
                     lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> Engine:
    """Create an engine for ``url`` with the project's connection settings.

    Args:
        url: SQLAlchemy URL.
        access: ``READ_ONLY`` opens SQLite with ``mode=ro`` and PostgreSQL with
            ``default_transaction_read_only=on``; ``ROLLBACK_ONLY`` refuses every commit.
        lock_timeout: seconds a SQLite statement waits for another program's write lock.

    Raises:
        DatabaseError: when the URL is not understood or its driver is missing.
    """
    url = normalise_url(url)
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        busy_ms = int(lock_timeout * 1000)
        if access is Access.READ_ONLY and path is not None:
            # The driver's own URI syntax: the path percent-encoded, mode=ro.
            location = urllib.parse.quote(str(path.resolve()))
            engine = create_engine(URL.create(parsed.drivername, database=f"file:{location}",
                                              query={"mode": "ro", "uri": "true"}),
                                   connect_args={"timeout": lock_timeout})
            event.listen(engine, "connect",
                         functools.partial(_sqlite_read_only_pragmas, busy_ms=busy_ms))
        else:
            if path is not None and access is Access.READ_WRITE:
                path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": lock_timeout})
            event.listen(engine, "connect", functools.partial(_sqlite_pragmas, busy_ms=busy_ms))
    else:
        connect_args: dict[str, Any] = {}
        if access is Access.READ_ONLY:
            connect_args["options"] = "-c default_transaction_read_only=on"
        try:
            engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        except ModuleNotFoundError as error:
            raise DatabaseError(
                f"Pilote absent pour « {parsed.get_backend_name()} » : installez l'extra "
                f"« pip install 'yearchange-tui[postgres]' » ({error}).") from error
    if access is Access.ROLLBACK_ONLY:
        event.listen(engine, "commit", _refuse_commit)
    return engine


# Tables every changing action writes (a run's units, the audit, the engine's lease and
# requests): an account that may not insert into them cannot change anything.
CORE_TABLES = ("step_units", "audit_entries", "engine_lease", "engine_requests")


def _sqlite_uri_read_only(url: str) -> bool:
    """True for a SQLite URL that asks the driver itself for ``mode=ro``
    (``sqlite:///file:/srv/yearchange.db?mode=ro&uri=true``)."""
    return _parse(url).query.get("mode") == "ro"


def sqlite_write_denied(url: str) -> str | None:
    """Why a SQLite database refuses this account's writes (French), from its URL and its
    file's mode alone (nothing opened); None when it accepts them or is not SQLite."""
    if _parse(url).get_backend_name() != "sqlite":
        return None
    if _sqlite_uri_read_only(url):
        return "la base SQLite est ouverte avec mode=ro"
    path = sqlite_path(url)
    if path is not None and path.is_file() and not os.access(path, os.W_OK):
        return f"le fichier {path} n'est pas accessible en écriture pour ce compte"
    return None


def write_denied(engine: Engine, url: str) -> str | None:
    """Why the database refuses this account's writes, in French; None when it accepts them.

    The database's answer, not a client flag: on PostgreSQL the role lacks ``INSERT`` on
    one of :data:`CORE_TABLES` (``yearchange db grant-readonly``) or the server is a
    read-only standby; on SQLite the file is not writable by this account or the URL
    opens it with ``mode=ro``. Never writes anything.

    Args:
        engine: an engine on the database (a read-only one is enough).
        url: the database's URL (SQLite: its file).
    """
    if engine.dialect.name == "sqlite":
        return sqlite_write_denied(url)
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        user = connection.execute(text("SELECT current_user")).scalar()
        if connection.execute(text("SELECT pg_is_in_recovery()")).scalar():
            return "le serveur PostgreSQL est un serveur de secours en lecture seule"
        for table in CORE_TABLES:
            allowed = connection.execute(text(
                "SELECT to_regclass(:t) IS NULL OR has_table_privilege(:t, 'INSERT')"),
                {"t": table}).scalar()
            if not allowed:
                return (f"le rôle PostgreSQL « {user} » ne peut que lire, sans droit "
                        f"d'INSERT sur {table}")
    return None


def alembic_config(engine: Engine):  # type: ignore[no-untyped-def]
    """The Alembic configuration that migrates ``engine`` with the shipped migrations."""
    # Alembic is needed only to migrate: not imported by read-only commands.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def _scripts():  # type: ignore[no-untyped-def]
    # Alembic's script directory is read only when a revision is looked up.
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR))


def head_revision() -> str:
    """The newest migration revision shipped with this version."""
    head = _scripts().get_current_head()
    assert head is not None
    return head


def known_revisions() -> list[str]:
    """Every revision shipped with this version, oldest first."""
    return [script.revision for script in reversed(list(_scripts().walk_revisions()))]


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    if not inspect(engine).has_table("alembic_version"):
        return None
    with engine.connect() as connection:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _refuse_newer(url: str, revision: str) -> DatabaseError:
    return DatabaseError(
        f"La base {display_url(url)} est au schéma {revision}, plus récent que cette version "
        f"de yearchange (schéma {head_revision()}) : installez la version de yearchange qui "
        "l'a mise à jour ; rien n'a été modifié.", CODE_NEWER)


def upgrade(engine: Engine, report: Callable[[str], None] | None = None) -> bool:
    """Create or upgrade the schema to the newest revision.

    Args:
        engine: the database engine.
        report: receives one French line when something is created or upgraded.

    Returns:
        True when the schema changed.

    Raises:
        DatabaseError: when the database is unreachable or at a newer schema.
    """
    # Alembic runs only here, for the commands that create or migrate.
    from alembic import command

    try:
        before = current_revision(engine)
    except (OperationalError, DBAPIError) as error:
        raise DatabaseError(f"Base de données inaccessible : {error.orig}") from error
    head = head_revision()
    if before == head:
        return False
    url = engine.url.render_as_string(hide_password=True)
    if before is not None and before not in known_revisions():
        raise _refuse_newer(url, before)
    if report is not None:
        if before is None:
            report(f"Création de la base de données {url} (schéma {head}).")
        else:
            report(f"Mise à jour de la base de données {url} : schéma {before} → {head}.")
    command.upgrade(alembic_config(engine), "head")
    return True


def open_database(url: str, *, migrate: bool = True,
                  report: Callable[[str], None] | None = None,
                  lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> Database:
    """Open the database at ``url``, creating or upgrading its schema on first use.

    For the commands that may create or migrate (``engine``, ``sample``, ``demo``,
    ``db upgrade``) and for tests; every other command uses :func:`open_existing_database`.

    Args:
        url: SQLAlchemy URL (``sqlite:///path``, ``postgresql://…``).
        migrate: create or upgrade the schema when needed.
        report: receives a French line when the schema is created or upgraded.
        lock_timeout: seconds a SQLite statement waits for another program's write lock.

    Raises:
        DatabaseError: when the database cannot be reached or upgraded.
    """
    engine = create_db_engine(url, lock_timeout=lock_timeout)
    if migrate:
        try:
            upgrade(engine, report)
        except OperationalError as error:
            engine.dispose()
            raise DatabaseError(f"Base de données inaccessible : {error.orig}") from error
        except DatabaseError:
            engine.dispose()
            raise
    return Database(url=normalise_url(url), engine=engine,
                    sessions=sessionmaker(engine, expire_on_commit=False))


def _how_to_create(url: str) -> str:
    return (f"\n  Pour la créer : yearchange --db {display_url(url)} db upgrade"
            "\n  Pour une académie d'exemple : yearchange sample --out DOSSIER "
            "(ou yearchange demo)")


def _unreachable(url: str, error: DBAPIError) -> str:
    shown = display_url(url)
    path = sqlite_path(url)
    if (path is not None and not os.access(path.parent, os.W_OK)
            and not path.with_name(f"{path.name}-shm").exists()):
        # SQLite reads a WAL database through its -shm file, which it must create when
        # no other connection holds the database open.
        return (f"La base {shown} ne peut pas être lue : elle est en mode WAL, son dossier "
                f"{path.parent} n'est pas accessible en écriture et aucun moteur ne l'a "
                f"ouverte (fichier {path.name}-shm absent). Lancez la commande pendant que le "
                "moteur tourne, ou avec un compte qui peut écrire dans ce dossier (la base "
                "elle-même n'est pas modifiée).")
    return f"Base de données {shown} inaccessible : {error.orig}"


def check_schema(engine: Engine, url: str) -> str:
    """Refuse a database that is not at this version's schema; never changes anything.

    Args:
        engine: an engine on the database (read-only is enough).
        url: the URL named in the messages.

    Returns:
        The schema revision (the newest one shipped).

    Raises:
        DatabaseError: ``BASE-VIDE`` (no schema), ``BASE-INCONNUE`` (tables but no
            yearchange schema), ``BASE-A-METTRE-A-JOUR`` (older schema),
            ``BASE-PLUS-RECENTE`` (newer schema) or ``BASE-INACCESSIBLE``.
    """
    shown = display_url(url)
    try:
        revision = current_revision(engine)
        tables = inspect(engine).get_table_names() if revision is None else []
    except DBAPIError as error:
        raise DatabaseError(_unreachable(url, error)) from error
    head = head_revision()
    if revision is None:
        if tables:
            raise DatabaseError(
                f"La base {shown} n'est pas une base yearchange ({len(tables)} table(s), aucune "
                "version de schéma) : vérifiez --db (ou YEARCHANGE_DB) ; rien n'a été modifié.",
                CODE_FOREIGN)
        raise DatabaseError(f"La base {shown} est vide ; rien n'a été modifié."
                            f"{_how_to_create(url)}", CODE_EMPTY)
    if revision == head:
        return revision
    if revision in known_revisions():
        raise DatabaseError(
            f"La base {shown} est au schéma {revision}, antérieur à celui de cette version "
            f"({head}) ; rien n'a été modifié.\n  Pour la mettre à jour (sauvegardez-la "
            f"d'abord) : yearchange --db {shown} db upgrade", CODE_OLDER)
    raise _refuse_newer(url, revision)


def open_existing_database(url: str, access: Access = Access.READ_WRITE, *,
                           lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> Database:
    """Open a database that already has this version's schema; create or migrate nothing.

    A missing SQLite file is not created (nor its folder), an empty database is not
    filled, an older schema is not upgraded: each is refused with the command to run.

    Args:
        url: SQLAlchemy URL (``sqlite:///path``, ``postgresql://…``).
        access: read-write, read-only (the connection refuses writes) or rollback-only.
        lock_timeout: seconds a SQLite statement waits for another program's write lock.

    Raises:
        DatabaseError: with a stable code (``BASE-ABSENTE``, ``BASE-VIDE``,
            ``BASE-A-METTRE-A-JOUR``, ``BASE-PLUS-RECENTE``, ``BASE-INACCESSIBLE``…).
    """
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        what = "n'est pas un fichier" if path.exists() else "n'existe pas"
        raise DatabaseError(f"La base {display_url(url)} {what} ; rien n'a été créé."
                            f"{_how_to_create(url)}", CODE_MISSING)
    # The schema is checked through the connection the command then uses (one open),
    # except for a SQLite file written to: a read-write SQLite connection would set WAL
    # mode, which writes to an empty or foreign file, so that check reads through a
    # read-only connection first.
    checked_with = Access.READ_ONLY if path is not None else access
    probe = create_db_engine(url, checked_with, lock_timeout=lock_timeout)
    try:
        check_schema(probe, url)
        denied = write_denied(probe, url)
    except DBAPIError as error:
        probe.dispose()
        raise DatabaseError(_unreachable(url, error)) from error
    except BaseException:
        probe.dispose()
        raise
    if denied is not None:
        # The database refuses this account's writes: every use of it is read-only.
        access = Access.READ_ONLY
    if access is checked_with:
        engine = probe
    else:
        probe.dispose()
        engine = create_db_engine(url, access, lock_timeout=lock_timeout)
    return Database(url=normalise_url(url), engine=engine,
                    sessions=sessionmaker(engine, expire_on_commit=False), access=access,
                    write_denied=denied)


# -- PostgreSQL planner statistics ---------------------------------------------------------
# PostgreSQL plans from statistics that only ANALYZE (or autovacuum, much later) gathers;
# on a freshly filled database without them the planner full-scans big tables once per row
# of another (issue 16: a 60-establishment dry run took 450 s instead of 77 s). Every bulk
# path (AAF import, sample building, step 3's deletes) calls refresh_statistics once its
# transaction is committed. SQLite needs nothing: its planner works from the indexes.

_CHANGED_TABLES = text(
    "SELECT relname FROM pg_stat_xact_user_tables "
    "WHERE n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY relname")


def tables_changed_in_transaction(connection: Any) -> list[str]:
    """Tables the open transaction of ``connection`` inserted, updated or deleted rows in.

    PostgreSQL only (``pg_stat_xact_user_tables``, exact for the current transaction);
    an empty list on SQLite. Call it just before the commit.
    """
    if connection.dialect.name != "postgresql":
        return []
    return [row[0] for row in connection.execute(_CHANGED_TABLES)]


def refresh_statistics(database: Database, tables: list[str] | None = None, *,
                       vacuum: bool = False,
                       report: Callable[[str], None] | None = None) -> list[str]:
    """``ANALYZE`` (``VACUUM ANALYZE`` with ``vacuum``) ``tables`` on PostgreSQL.

    Runs outside any transaction (autocommit), after the bulk change was committed.

    Args:
        database: the open database; nothing is done on SQLite or a read-only database.
        tables: table names; None for every table of the database.
        vacuum: also reclaim the rows deleted (after bulk deletes).
        report: receives one French line saying what was done.

    Returns:
        The tables analysed (empty when nothing was done).
    """
    if database.engine.dialect.name != "postgresql" or database.access is not Access.READ_WRITE:
        return []
    known = set(inspect(database.engine).get_table_names()) - {"alembic_version"}
    if tables is None:
        tables = list(known)
    names = sorted({name for name in tables if name in known})
    if not names:
        return []
    command = "VACUUM (ANALYZE)" if vacuum else "ANALYZE"
    started = time.perf_counter()
    preparer = database.engine.dialect.identifier_preparer
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"{command} " + ", ".join(preparer.quote(n) for n in names)))
    seconds = time.perf_counter() - started
    duration = f"{seconds:.1f}".replace(".", ",")
    line = (f"Statistiques PostgreSQL mises à jour ({command}) : "
            f"{plural(len(names), 'table')}, {duration} s.")
    log.info(line)
    if report is not None:
        report(line)
    return names
