"""Template académies: built once per backend and test session, copied for each test.

Filling a sample académie (migrations, thousands of rows, documents on disk) takes
seconds; copying a filled one takes a fraction of that. Each distinct
(establishments, seed, year) gets its own template, built on first use from the same
seed and fixed year, so every copy holds the same rows and files. Tests only ever
receive copies:

* SQLite: the template database (WAL checkpointed, every connection closed) and its
  storage folder are copied file by file. Each copy is checked against the
  template's SHA-256 and file list, so a test that wrote into a template fails the
  next copy loudly instead of leaking its writes.
* PostgreSQL: the template is a database marked ``IS_TEMPLATE`` that accepts no
  connection at all; a copy is ``CREATE DATABASE … TEMPLATE`` under the name the
  test's ``database_url`` gave, with a copy of the template's storage folder.
* ``yearchange sample`` folders (database, storage, AAF delivery, timetables) and
  AAF deliveries alone are built once per key and copied whole.

``conftest.py`` opens the store for the session (``open_store``) and closes it at the
end (PostgreSQL templates are dropped); outside pytest the store opens itself in a
temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url

from yearchange_tui.ent.database import normalise_url, open_database
from yearchange_tui.sample.aaf_writer import write_aaf_delivery
from yearchange_tui.sample.build import build_sample
from yearchange_tui.sample.fill import fill_database
from yearchange_tui.sample.roster import build_academy

# Start year of school year N in every template: fixed, so templates never depend on the date.
TEMPLATE_YEAR = 2025

# The maintenance database used to create and drop PostgreSQL databases.
PG_ADMIN_DATABASE = "postgres"


class TemplateModifiedError(AssertionError):
    """A template no longer matches what was built: a test wrote into it."""


@dataclass(frozen=True)
class AcademyKey:
    """What makes two sample académies identical."""

    establishments: int
    seed: int
    year: int = TEMPLATE_YEAR

    @property
    def slug(self) -> str:
        """A name part for files and databases."""
        return f"e{self.establishments}_s{self.seed}_y{self.year}"


def _files(folder: str, prefix: str = "") -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every file under ``folder``: its relative path and its directory entry."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from _files(entry.path, f"{prefix}{entry.name}/")
            else:
                yield prefix + entry.name, entry


@dataclass(frozen=True)
class _FolderPrint:
    """Size and modification time of every file under a folder, by relative path."""

    files: dict[str, tuple[int, int]]

    @classmethod
    def of(cls, root: Path) -> _FolderPrint:
        return cls({relative: _size_and_mtime(entry) for relative, entry in _files(str(root))})


def _size_and_mtime(entry: os.DirEntry[str]) -> tuple[int, int]:
    status = entry.stat(follow_symlinks=False)
    return status.st_size, status.st_mtime_ns


@dataclass(frozen=True)
class _FilledTemplate:
    """A filled database (SQLite file or PostgreSQL template name) and its storage."""

    database: str
    storage: Path
    storage_print: _FolderPrint
    database_sha256: str = ""


@dataclass(frozen=True)
class _SampleTemplate:
    """A ``yearchange sample`` output folder."""

    folder: Path
    folder_print: _FolderPrint
    database_sha256: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_file_hashed(source: Path, target: Path) -> str:
    """Copy ``source`` to the new file ``target``; return the SHA-256 of what was copied."""
    digest = hashlib.sha256()
    with source.open("rb") as reader, target.open("xb") as writer:
        while chunk := reader.read(1 << 20):
            digest.update(chunk)
            writer.write(chunk)
    return digest.hexdigest()


def _copy_tree(source: Path, target: Path, expected: _FolderPrint,
               skip: frozenset[str] = frozenset()) -> None:
    """Copy the folder ``source`` into ``target`` and check ``source`` still is ``expected``.

    Files named in ``skip`` (relative paths) are left to the caller. Copies are new,
    plain files (never links), so nothing done to them reaches the template.
    """
    seen: dict[str, tuple[int, int]] = {}
    target.mkdir(parents=True, exist_ok=True)
    for folder, subfolders, _ in os.walk(source):
        relative = os.path.relpath(folder, source)
        for name in subfolders:
            os.mkdir(os.path.join(target, relative, name))
    for relative, entry in _files(str(source)):
        seen[relative] = _size_and_mtime(entry)
        if relative not in skip:
            with open(entry.path, "rb") as reader, open(target / relative, "xb") as writer:
                writer.write(reader.read())
    if seen != expected.files:
        raise TemplateModifiedError(
            f"the template folder {source} changed since it was built: a test wrote into it")


def _checkpointed(db_path: Path) -> None:
    """Fold the WAL into the database file and check nothing is left beside it."""
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.connect() as connection:
            busy, _, _ = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            assert busy == 0, f"{db_path}: the WAL checkpoint was blocked"
    finally:
        engine.dispose()
    wal = db_path.with_name(db_path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0, f"{wal} still holds pages"
    for suffix in ("-wal", "-shm"):
        db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)


def _admin_engine(server: URL) -> Engine:
    return create_engine(server.set(database=PG_ADMIN_DATABASE), isolation_level="AUTOCOMMIT")


class TemplateStore:
    """Templates of one test session, under ``root``, built on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._token = uuid.uuid4().hex[:8]
        self._sqlite: dict[AcademyKey, _FilledTemplate] = {}
        self._postgresql: dict[tuple[str, AcademyKey], _FilledTemplate] = {}
        self._samples: dict[AcademyKey, _SampleTemplate] = {}
        self._deliveries: dict[AcademyKey, tuple[Path, _FolderPrint]] = {}

    # SQLite -------------------------------------------------------------------------

    def _sqlite_template(self, key: AcademyKey) -> _FilledTemplate:
        template = self._sqlite.get(key)
        if template is None:
            folder = self.root / f"sqlite-{key.slug}"
            db_path, storage = folder / "yearchange.db", folder / "storage"
            database = open_database(f"sqlite:///{db_path}")
            try:
                with database.engine.begin() as connection:
                    fill_database(connection, storage,
                                  build_academy(key.establishments, key.seed, key.year))
            finally:
                database.dispose()
            _checkpointed(db_path)
            template = _FilledTemplate(str(db_path), storage, _FolderPrint.of(storage),
                                       _sha256(db_path))
            self._sqlite[key] = template
        return template

    def _copy_sqlite(self, key: AcademyKey, db_path: Path, storage: Path) -> None:
        template = self._sqlite_template(key)
        for path in (db_path, db_path.with_name(db_path.name + "-wal")):
            if path.exists():
                raise FileExistsError(f"{path} exists: a template is copied into a new database")
        db_path.parent.mkdir(parents=True, exist_ok=True)
        if _copy_file_hashed(Path(template.database), db_path) != template.database_sha256:
            db_path.unlink()
            raise TemplateModifiedError(
                f"the template database {template.database} changed since it was built")
        _copy_tree(template.storage, storage, template.storage_print)

    # PostgreSQL ---------------------------------------------------------------------

    def _postgresql_template(self, server: URL, key: AcademyKey) -> _FilledTemplate:
        server_name = server.set(database=PG_ADMIN_DATABASE).render_as_string(
            hide_password=False)
        template = self._postgresql.get((server_name, key))
        if template is None:
            name = f"yc_tmpl_{self._token}_{key.slug}"
            storage = self.root / f"postgresql-{key.slug}" / "storage"
            admin = _admin_engine(server)
            try:
                with admin.connect() as connection:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
                database = open_database(server.set(database=name).render_as_string(
                    hide_password=False))
                try:
                    with database.engine.begin() as connection:
                        fill_database(connection, storage,
                                      build_academy(key.establishments, key.seed, key.year))
                finally:
                    database.dispose()
                # A template accepts no connection: nothing can write into it.
                with admin.connect() as connection:
                    connection.execute(text(
                        f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false'))
            finally:
                admin.dispose()
            template = _FilledTemplate(name, storage, _FolderPrint.of(storage))
            self._postgresql[(server_name, key)] = template
        return template

    def _copy_postgresql(self, key: AcademyKey, url: URL, storage: Path) -> None:
        template = self._postgresql_template(url, key)
        name = url.database
        assert name and name != template.database, url
        admin = _admin_engine(url)
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                connection.execute(text(
                    f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"'))
        finally:
            admin.dispose()
        _copy_tree(template.storage, storage, template.storage_print)

    # Public -------------------------------------------------------------------------

    def copy_academy(self, key: AcademyKey, url: str, storage: Path) -> None:
        """Make the database at ``url`` and the folder ``storage`` a copy of a template.

        Args:
            key: which sample académie.
            url: a SQLite database that does not exist yet, or a PostgreSQL database
                (replaced by the copy).
            storage: the storage root to create.
        """
        parsed = make_url(normalise_url(url))
        if parsed.get_backend_name() == "sqlite":
            assert parsed.database and parsed.database != ":memory:", url
            self._copy_sqlite(key, Path(parsed.database), storage)
        else:
            self._copy_postgresql(key, parsed, storage)

    def copy_sample(self, key: AcademyKey, out_dir: Path) -> Path:
        """Copy the output of ``yearchange sample`` for ``key`` into the new folder ``out_dir``.

        Returns:
            ``out_dir``, resolved; its ``sample.json`` names the copy's database and storage.
        """
        template = self._samples.get(key)
        if template is None:
            folder = self.root / f"sample-{key.slug}"
            build_sample(folder, key.establishments, key.seed, key.year)
            _checkpointed(folder / "yearchange.db")
            template = _SampleTemplate(folder, _FolderPrint.of(folder),
                                       _sha256(folder / "yearchange.db"))
            self._samples[key] = template
        out_dir = out_dir.expanduser().resolve()
        if out_dir.exists() and any(out_dir.iterdir()):
            raise FileExistsError(f"{out_dir} is not empty: a sample is copied into a new folder")
        _copy_tree(template.folder, out_dir, template.folder_print,
                   skip=frozenset({"yearchange.db", "sample.json"}))
        db_path = out_dir / "yearchange.db"
        if _copy_file_hashed(template.folder / "yearchange.db", db_path) != (
                template.database_sha256):
            raise TemplateModifiedError(
                f"the template database {template.folder / 'yearchange.db'} changed")
        summary = json.loads((template.folder / "sample.json").read_text(encoding="utf-8"))
        summary["db"] = f"sqlite:///{db_path}"
        summary["storage"] = str(out_dir / "storage")
        (out_dir / "sample.json").write_text(
            json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return out_dir

    def copy_aaf_delivery(self, key: AcademyKey, target: Path) -> Path:
        """Copy the N+1 AAF delivery of ``key`` (``write_aaf_delivery``'s files) into ``target``.

        Returns:
            ``target``.
        """
        delivery = self._deliveries.get(key)
        if delivery is None:
            folder = self.root / f"aaf-{key.slug}"
            write_aaf_delivery(build_academy(key.establishments, key.seed, key.year), folder)
            delivery = folder, _FolderPrint.of(folder)
            self._deliveries[key] = delivery
        if target.exists() and any(target.iterdir()):
            raise FileExistsError(f"{target} is not empty: a delivery is copied into a new folder")
        _copy_tree(delivery[0], target, delivery[1])
        return target

    def postgresql_templates(self) -> list[str]:
        """Names of the PostgreSQL template databases built so far."""
        return [template.database for template in self._postgresql.values()]

    def close(self) -> None:
        """Drop the PostgreSQL templates (the folders go with the session's temporary root)."""
        for (server_name, _key), template in self._postgresql.items():
            admin = _admin_engine(make_url(server_name))
            try:
                with admin.connect() as connection:
                    connection.execute(text(
                        f'ALTER DATABASE "{template.database}" WITH IS_TEMPLATE false'))
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{template.database}"'))
            finally:
                admin.dispose()
        self._postgresql.clear()


_store: TemplateStore | None = None


def open_store(root: Path) -> TemplateStore:
    """Start the session's template store under ``root``."""
    global _store
    _store = TemplateStore(root)
    return _store


def close_store() -> None:
    """Drop what the session's store created in databases."""
    global _store
    if _store is not None:
        _store.close()
        _store = None


def store() -> TemplateStore:
    """The session's template store (one in a temporary folder outside pytest)."""
    global _store
    if _store is None:
        _store = TemplateStore(Path(tempfile.mkdtemp(prefix="yearchange-templates-")))
    return _store


def copy_academy(url: str, storage: Path, establishments: int = 1, seed: int = 5,
                 year: int = TEMPLATE_YEAR) -> None:
    """Make ``url`` and ``storage`` a copy of the sample académie for these parameters."""
    store().copy_academy(AcademyKey(establishments, seed, year), url, storage)


def copy_aaf_delivery(target: Path, establishments: int, seed: int,
                      year: int = TEMPLATE_YEAR) -> Path:
    """Make ``target`` a copy of the N+1 AAF delivery of the sample for these parameters."""
    return store().copy_aaf_delivery(AcademyKey(establishments, seed, year), target)


def copy_sample(out_dir: Path, establishments: int, seed: int,
                year: int = TEMPLATE_YEAR) -> Path:
    """Make ``out_dir`` a copy of ``yearchange sample`` output for these parameters."""
    return store().copy_sample(AcademyKey(establishments, seed, year), out_dir)
