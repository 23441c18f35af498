"""``yearchange bench --db postgresql://…``: the same parts measured on PostgreSQL.

The bench never writes the database the URL names: it creates its own databases on the
same server (``yearchange_bench_<pid>_<token>_<label>``), copies them with
``CREATE DATABASE … TEMPLATE`` where the SQLite bench copies a file, and drops them all
at the end (even after a failure). The role must be allowed to create databases.

- Step 3: rows deleted per second by the engine (every establishment, one unit after
  the other, with its guards and its ``VACUUM (ANALYZE)``), against a TRUNCATE-class
  floor for the same rows (:func:`step3_floor`): the tables step 3 empties whole are
  truncated in one ``TRUNCATE``, the others lose the same rows through one set-based
  ``DELETE`` per table for all establishments at once, in one transaction. Wall ratio,
  and CPU ratio (this process and its PostgreSQL server processes, when the server runs
  on this machine).
- Step 2 and the AAF import: the functions of the SQLite bench, given PostgreSQL URLs.
- Linearity (:func:`run_linearity`): the dry run of freshly imported académies of
  several sizes, measured in one run, in seconds per establishment.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError

from yearchange_tui.aaf.importer import import_delivery
from yearchange_tui.bench.aaf import bench_aaf
from yearchange_tui.bench.changeover import (
    _RAW_STEP3,
    _rows_deleted,
    archive_check,
    archive_check_floor,
    load_average,
    same_work_ratio,
    step3_without_check,
)
from yearchange_tui.bench.measure import local_postgres_cpu
from yearchange_tui.bench.step2_floor import floor_work, step2_floor
from yearchange_tui.changeover.runner import ChangeoverRunner
from yearchange_tui.changeover.zipwriter import archive_level
from yearchange_tui.ent.database import display_url, normalise_url, open_database
from yearchange_tui.sample.build import build_sample
from yearchange_tui.workflow.models import ArchiveManifest, Step

CODE_BENCH_DB = "banc-base-refusee"


class BenchDatabaseError(Exception):
    """The PostgreSQL server cannot host the bench (French message, stable code)."""

    def __init__(self, message: str, code: str = CODE_BENCH_DB) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def is_postgresql(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database."""
    return normalise_url(url).startswith("postgresql")


class BenchDatabases:
    """Databases the bench creates on the server of ``url``, and drops at :meth:`close`."""

    def __init__(self, url: str) -> None:
        if not is_postgresql(url):
            raise BenchDatabaseError(
                f"« {display_url(url)} » n'est pas une URL PostgreSQL : le banc d'essai "
                "mesure SQLite sans --db, PostgreSQL avec --db postgresql://….")
        self.server: URL = make_url(normalise_url(url))
        self.prefix = f"yearchange_bench_{os.getpid()}_{secrets.token_hex(3)}"
        self.created: list[str] = []
        self.admin = create_engine(self.server, isolation_level="AUTOCOMMIT",
                                   pool_pre_ping=True)
        try:
            with self.admin.connect() as connection:
                connection.execute(text("SELECT 1"))
        except DBAPIError as error:
            self.admin.dispose()
            raise BenchDatabaseError(
                f"Serveur PostgreSQL injoignable ({display_url(url)}) : "
                f"{str(error.orig).strip().splitlines()[0]}") from error

    def name(self, label: str) -> str:
        """The database name of ``label``."""
        return f"{self.prefix}_{label}"

    def url(self, label: str) -> str:
        """The URL of the database ``label``."""
        return self.server.set(database=self.name(label)).render_as_string(hide_password=False)

    def create(self, label: str, template: str | None = None) -> str:
        """Create the empty database ``label`` (a copy of ``template`` when given); its URL.

        Raises:
            BenchDatabaseError: the role may not create databases, or the name is taken
                by a database that holds something (never touched).
        """
        name = self.name(label)
        quoted = self.admin.dialect.identifier_preparer.quote
        with self.admin.connect() as connection:
            exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                        {"n": name}).first()
            if exists and name not in self.created:
                raise BenchDatabaseError(
                    f"La base « {name} » existe déjà sur le serveur : le banc d'essai ne "
                    "touche jamais une base qu'il n'a pas créée. Supprimez-la ou relancez.")
            if exists:
                connection.execute(text(f"DROP DATABASE {quoted(name)} WITH (FORCE)"))
            source = f" TEMPLATE {quoted(self.name(template))}" if template else ""
            if template:
                # A copy needs its template alone: the step-2 worker processes may still
                # be closing their connections to it (the bench's own database).
                connection.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"),
                    {"n": self.name(template)})
            try:
                connection.execute(text(f"CREATE DATABASE {quoted(name)}{source}"))
            except ProgrammingError as error:
                raise BenchDatabaseError(
                    f"Le rôle « {self.server.username} » ne peut pas créer de base sur "
                    f"{display_url(self.server.render_as_string())} : le banc d'essai "
                    "PostgreSQL mesure dans des bases qu'il crée puis supprime (droit "
                    f"CREATEDB nécessaire). {str(error.orig).strip().splitlines()[0]}"
                ) from error
        if name not in self.created:
            self.created.append(name)
        return self.url(label)

    def drop(self, label: str) -> None:
        """Drop the database ``label`` (one the bench created)."""
        name = self.name(label)
        if name in self.created:
            quoted = self.admin.dialect.identifier_preparer.quote
            with self.admin.connect() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS {quoted(name)} WITH (FORCE)"))
            self.created.remove(name)

    def size(self, label: str) -> int:
        """Bytes on disk of the database ``label``."""
        with self.admin.connect() as connection:
            return int(connection.execute(text("SELECT pg_database_size(:n)"),
                                          {"n": self.name(label)}).scalar_one())

    def close(self) -> None:
        """Drop every database the bench created."""
        for name in list(self.created):
            self.drop(name.removeprefix(f"{self.prefix}_"))
        self.admin.dispose()


@contextmanager
def bench_databases(url: str) -> Iterator[BenchDatabases]:
    """:class:`BenchDatabases` for ``url``, every database dropped on the way out."""
    databases = BenchDatabases(url)
    try:
        yield databases
    finally:
        databases.close()


# -- CPU of the server processes ----------------------------------------------------------

def server_cpu(connection: Connection) -> dict[int, float] | None:
    """CPU seconds so far of the server processes serving the current database.

    None when the server is not on this machine (its processes cannot be read).
    """
    pids = [row[0] for row in connection.execute(text(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))]
    seconds = {pid: local_postgres_cpu(pid) for pid in pids}
    if not pids or any(value is None for value in seconds.values()):
        return None
    return {pid: value for pid, value in seconds.items() if value is not None}


def cpu_between(before: dict[int, float] | None, after: dict[int, float] | None) -> float | None:
    """Server CPU seconds spent between two :func:`server_cpu` readings."""
    if before is None or after is None:
        return None
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


# -- Step 3's floor ---------------------------------------------------------------------------

_TABLE_OF = "DELETE FROM "


def _statement_table(statement: str) -> str | None:
    if not statement.startswith(_TABLE_OF) or statement == "DELETE FROM doomed_files":
        return None
    return statement[len(_TABLE_OF):].split()[0]


def _set_based(statement: str) -> str:
    """A statement of the SQLite floor for every establishment at once."""
    return statement.replace("establishment_id=:e", "establishment_id = ANY(:es)")


def _truncatable(connection: Connection, emptied: set[str]) -> set[str]:
    """The tables of ``emptied`` one ``TRUNCATE`` may empty: none referenced by a table
    left out (PostgreSQL refuses to truncate a table another table points to)."""
    references = connection.execute(text(
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c "
        "WHERE c.contype = 'f' AND c.conrelid <> c.confrelid")).all()
    chosen = set(emptied)
    changed = True
    while changed:
        changed = False
        for child, parent in references:
            if parent in chosen and child not in chosen:
                chosen.discard(parent)
                changed = True
    return chosen


def emptied_tables(url: str) -> set[str]:
    """Tables of step 3's floor that hold no row (read after the engine's step 3)."""
    engine = create_engine(make_url(normalise_url(url)))
    try:
        with engine.connect() as connection:
            tables = {table for table in map(_statement_table, _RAW_STEP3) if table}
            return {table for table in tables
                    if connection.execute(text(f"SELECT NOT EXISTS (SELECT 1 FROM {table})"))
                    .scalar()}
    finally:
        engine.dispose()


def step3_floor(url: str, storage: Path, establishment_ids: list[int], year_start: int,
                emptied: set[str]) -> dict[str, Any]:
    """The same work as step 3 done the fastest way PostgreSQL allows, to the same end state.

    Tables step 3 empties whole (``emptied``, taken from the engine's run on a copy) are
    emptied by one ``TRUNCATE``; the others lose the same rows as the raw SQLite floor by
    one set-based ``DELETE`` per table for every establishment at once (indexed keys,
    ``= ANY``); the stored files of credentials and photos are collected first. One
    transaction, committed; then the same files are removed from the storage (a plain
    ``unlink`` loop) and the tables deleted from are vacuumed and analysed, the truncated
    ones analysed (the engine leaves no dead rows and current statistics: the server
    runs without autovacuum here). Rows truncated are counted beforehand (not timed).

    Returns:
        rows, seconds (wall), cpu_seconds (this process and the server process, or None)
        and the tables truncated.
    """
    engine = create_engine(make_url(normalise_url(url)))
    try:
        with engine.connect() as connection:
            year = connection.execute(text("SELECT id FROM school_years WHERE start_year = :s"),
                                      {"s": year_start}).scalar_one()
            truncated = sorted(_truncatable(connection, emptied))
            truncated_rows = sum(
                int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in truncated)
            connection.execute(text("CREATE TEMP TABLE doomed_files (id BIGINT)"))
            connection.commit()
            parameters = {"es": establishment_ids, "y": year}
            deleted = truncated_rows
            server_before = server_cpu(connection)
            cpu_started = time.process_time()
            started = time.perf_counter()
            for statement in _RAW_STEP3:
                if statement.startswith("INSERT INTO doomed_files"):
                    connection.execute(text(_set_based(statement)), parameters)
            paths = connection.execute(text(
                "SELECT relative_path FROM stored_files WHERE id IN "
                "(SELECT id FROM doomed_files)")).scalars().all()
            if truncated:
                connection.execute(text("TRUNCATE " + ", ".join(truncated)))
            deleted_from = []
            for statement in _RAW_STEP3:
                table = _statement_table(statement)
                if table is None or table in truncated:
                    continue
                deleted += connection.execute(text(_set_based(statement)), parameters).rowcount
                deleted_from.append(table)
            connection.commit()
            rows_seconds = time.perf_counter() - started
            for relative_path in paths:
                try:
                    os.unlink(storage / relative_path)
                except FileNotFoundError:
                    pass
            files_seconds = time.perf_counter() - started - rows_seconds
            autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
            autocommit.execute(text("VACUUM (ANALYZE) " + ", ".join(sorted(set(deleted_from)))))
            if truncated:
                autocommit.execute(text("ANALYZE " + ", ".join(truncated)))
            seconds = time.perf_counter() - started
            client_cpu = time.process_time() - cpu_started
            server = cpu_between(server_before, server_cpu(connection))
    finally:
        engine.dispose()
    return {"rows": deleted, "seconds": seconds,
            "cpu_seconds": None if server is None else client_cpu + server,
            "truncated": truncated, "files": len(paths),
            "seconds_rows": rows_seconds, "seconds_files": files_seconds,
            "seconds_vacuum": seconds - rows_seconds - files_seconds}


def _engine_step3(url: str, storage: Path) -> dict[str, Any]:
    """Step 3 by the engine on every establishment (one unit after the other), timed."""
    database = open_database(url)
    try:
        runner = ChangeoverRunner(database, storage)
        refs = runner.establishments()
        check_seconds, hashed = archive_check(database, storage, [ref.id for ref in refs])
        check_floor = archive_check_floor(database, storage, [ref.id for ref in refs])
        with database.engine.connect() as connection:
            server_before = server_cpu(connection)
        cpu_started = time.process_time()
        started = time.perf_counter()
        outcomes = runner.run(Step.DELETE_OBSOLETE, refs, workers=1)
        seconds = time.perf_counter() - started
        client_cpu = time.process_time() - cpu_started
        # The pool keeps the connections the run used: their server processes are still
        # there to read (the reading connection itself is one of them).
        with database.engine.connect() as connection:
            server = cpu_between(server_before, server_cpu(connection))
    finally:
        database.dispose()
    return {"rows": sum(_rows_deleted(outcome.counts) for outcome in outcomes),
            "seconds": seconds, "cpu_seconds": None if server is None else client_cpu + server,
            "all_done": all(outcome.status == "done" for outcome in outcomes),
            "archive_check_seconds": check_seconds, "archive_check_bytes": hashed,
            "archive_check_floor_seconds": check_floor,
            "establishment_ids": [ref.id for ref in refs]}


def _best(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [run[key] for run in runs if run[key] is not None]
    return min(values) if values else None


def _ratio(engine: float | None, floor: float | None) -> float | None:
    """Throughput ratio engine/floor for the same work: floor time over engine time."""
    if not engine or floor is None:
        return None
    return round(floor / engine, 3)


def run_pg_bench(url: str, establishments: int, work: Path,
                 progress: Callable[[str], None] | None = None, repeats: int = 3,
                 workers: int | None = None, with_aaf: bool = True,
                 attachments: str = "realistic") -> dict[str, Any]:
    """Build a sample académie in fresh PostgreSQL databases and measure steps 3 and 2 and
    the AAF import against their floors (see the module docstring)."""
    say = progress or (lambda line: None)
    workers = workers or min(2, os.cpu_count() or 1)
    with bench_databases(url) as databases:
        say(f"construction d'une académie de {establishments} établissements "
            "(PostgreSQL)…")
        started = time.perf_counter()
        sample_url = databases.create("sample")
        sample = build_sample(work / "academie", establishments, seed=1, year=2025,
                              db_url=sample_url, attachments=attachments)
        build_seconds = time.perf_counter() - started
        storage = work / "academie" / "storage"
        say("étape 1…")
        database = open_database(sample_url)
        runner = ChangeoverRunner(database, storage)
        refs = runner.establishments()
        runner.run(Step.PURGE_TRASH, refs)
        database.dispose()

        step2_times: list[float] = []
        manifests: list[Any] = []
        for attempt in range(repeats):
            say(f"étape 2 ({workers} processus), mesure {attempt + 1}/{repeats}…")
            for relative_path, _ in manifests:
                (storage / relative_path).unlink(missing_ok=True)
            databases.drop("step2")
            step2_url = databases.create("step2", template="sample")
            database = open_database(step2_url)
            runner = ChangeoverRunner(database, storage)
            started = time.perf_counter()
            outcomes2 = runner.run(Step.ARCHIVE, refs, workers=workers)
            step2_times.append(time.perf_counter() - started)
            with database.engine.connect() as connection:
                manifests = [tuple(row) for row in connection.execute(
                    ArchiveManifest.__table__.select().with_only_columns(
                        ArchiveManifest.relative_path, ArchiveManifest.size))]
            database.dispose()
        step2_load = load_average()
        floor = floor_work(storage, [row[0] for row in manifests])
        zlib_times = []
        for attempt in range(repeats):
            say(f"plancher : zlib et écriture des mêmes octets ({workers} processus), "
                f"mesure {attempt + 1}/{repeats}…")
            zlib_times.append(step2_floor(floor, workers, work))
        floor_load = load_average()

        engine_runs: list[dict[str, Any]] = []
        floor_runs: list[dict[str, Any]] = []
        size_before = databases.size("step2")
        sizes_after: dict[str, int] = {}
        files = _stored_file_bytes(databases.url("step2"), storage)
        for attempt in range(repeats):
            say(f"étape 3 et plancher TRUNCATE, mesure {attempt + 1}/{repeats}…")
            databases.drop("step3")
            engine_runs.append(_engine_step3(databases.create("step3", template="step2"),
                                             storage))
            sizes_after["engine"] = databases.size("step3")
            emptied = emptied_tables(databases.url("step3"))
            _restore_files(storage, files)
            databases.drop("floor3")
            floor_url = databases.create("floor3", template="step2")
            floor_runs.append(step3_floor(floor_url, storage,
                                          engine_runs[-1]["establishment_ids"],
                                          sample.academy.year, emptied))
            sizes_after["floor"] = databases.size("floor3")
            _restore_files(storage, files)
        step3_load = load_average()
        aaf = None
        if with_aaf:
            say("import AAF (PostgreSQL)…")
            counter = iter(range(1000))

            def fresh_url(label: str) -> str:
                return databases.create(f"aaf{next(counter)}")

            aaf = bench_aaf(work / "academie", quick=establishments <= 3, fresh_url=fresh_url)
            if aaf:
                aaf["load"] = load_average()

    engine_seconds = _best(engine_runs, "seconds")
    floor_seconds = _best(floor_runs, "seconds")
    rows = engine_runs[-1]["rows"]
    uncompressed = floor.uncompressed
    engine_mb_s = uncompressed / 1e6 / min(step2_times)
    zlib_mb_s = uncompressed / 1e6 / min(zlib_times)
    return {
        "backend": "postgresql",
        "server": display_url(url),
        "establishments": establishments,
        "repeats": repeats,
        "sample_build_seconds": round(build_seconds, 2),
        "cores": os.cpu_count(),
        "step3": {
            "rows_engine": rows, "rows_floor": floor_runs[-1]["rows"],
            "engine_seconds": [round(run["seconds"], 3) for run in engine_runs],
            "floor_seconds": [round(run["seconds"], 3) for run in floor_runs],
            "engine_cpu_seconds": _rounded(_best(engine_runs, "cpu_seconds")),
            "floor_cpu_seconds": _rounded(_best(floor_runs, "cpu_seconds")),
            "engine_rows_per_s": round(rows / engine_seconds) if engine_seconds else None,
            "floor_rows_per_s": round(floor_runs[-1]["rows"] / floor_seconds)
            if floor_seconds else None,
            "ratio": _ratio(engine_seconds, floor_seconds),
            "ratio_cpu": _ratio(_best(engine_runs, "cpu_seconds"),
                                _best(floor_runs, "cpu_seconds")),
            "archive_check_seconds": [round(run["archive_check_seconds"], 3)
                                      for run in engine_runs],
            "archive_check_bytes": engine_runs[-1]["archive_check_bytes"],
            "ratio_without_archive_check": step3_without_check(
                rows, engine_seconds or 0.0, _best(engine_runs, "archive_check_seconds") or 0.0,
                floor_seconds or 0.0),
            "archive_check_floor_seconds": [round(run["archive_check_floor_seconds"], 3)
                                            for run in engine_runs],
            "ratio_same_work": same_work_ratio(
                engine_seconds or 0.0, floor_seconds or 0.0,
                _best(engine_runs, "archive_check_floor_seconds") or 0.0),
            "tables_truncated": floor_runs[-1]["truncated"],
            "floor_parts_seconds": {
                part: round(min(run[f"seconds_{part}"] for run in floor_runs), 3)
                for part in ("rows", "files", "vacuum")},
            "files_removed": floor_runs[-1]["files"],
            "database_bytes_before": size_before,
            "database_bytes_after_engine": sizes_after.get("engine"),
            "database_bytes_after_floor": sizes_after.get("floor"),
            "load": step3_load,
            "all_done": all(run["all_done"] for run in engine_runs)},
        "step2": {"workers": workers, "archives": len(manifests),
                  "archive_bytes": sum(row[1] for row in manifests),
                  "uncompressed_bytes": uncompressed,
                  "engine_seconds": [round(t, 3) for t in step2_times],
                  "zlib_seconds": [round(t, 3) for t in zlib_times],
                  "archive_level": archive_level(),
                  "engine_mb_per_s": round(engine_mb_s, 2), "zlib_mb_per_s": round(zlib_mb_s, 2),
                  "engine_mb_per_s_per_core": round(engine_mb_s / workers, 2),
                  "zlib_mb_per_s_per_core": round(zlib_mb_s / workers, 2),
                  "ratio": round(engine_mb_s / zlib_mb_s, 3),
                  "load": step2_load, "floor_load": floor_load,
                  "all_done": all(o.status == "done" for o in outcomes2)},
        "aaf": aaf,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _stored_file_bytes(url: str, storage: Path) -> dict[Path, bytes]:
    """The files step 3 removes (photos, credentials files: small), read before it."""
    engine = create_engine(make_url(normalise_url(url)))
    try:
        with engine.connect() as connection:
            paths = connection.execute(text(
                "SELECT relative_path FROM stored_files WHERE id IN (SELECT stored_file_id "
                "FROM photos UNION SELECT stored_file_id FROM credentials_files)")).scalars()
            files = [storage / relative_path for relative_path in paths]
    finally:
        engine.dispose()
    return {path: path.read_bytes() for path in files if path.is_file()}


def _restore_files(storage: Path, files: dict[Path, bytes]) -> None:
    """Put back the files step 3 removed, for the next attempt."""
    for path, data in files.items():
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


# -- Linearity of the dry run -----------------------------------------------------------------

def run_linearity(url: str, sizes: tuple[int, ...], work: Path,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The dry run of a freshly imported PostgreSQL académie of each size, in one run.

    Each académie is built by the sample in a fresh database, its N+1 AAF delivery
    imported (the product's own import, with its ``ANALYZE``), then the dry run of every
    establishment is timed (one process).

    Returns:
        per size: establishments, seconds, seconds per establishment, load; and the
        spread of the per-establishment times (largest over smallest, minus one).
    """
    say = progress or (lambda line: None)
    points = []
    with bench_databases(url) as databases:
        for size in sizes:
            label = f"lin{size}"
            say(f"académie de {size} établissements (PostgreSQL)…")
            db_url = databases.create(label)
            folder = work / label
            build_sample(folder, size, seed=1, year=2025, db_url=db_url)
            database = open_database(db_url)
            try:
                say(f"import AAF de {size} établissements…")
                started = time.perf_counter()
                import_delivery(database, [str(folder / "aaf")])
                import_seconds = time.perf_counter() - started
                runner = ChangeoverRunner(database, folder / "storage")
                refs = runner.establishments()
                say(f"simulation de {size} établissements…")
                with database.engine.connect() as connection:
                    server_before = server_cpu(connection)
                cpu_started = time.process_time()
                started = time.perf_counter()
                runner.dry_run(refs)
                seconds = time.perf_counter() - started
                client_cpu = time.process_time() - cpu_started
                # The pool keeps the dry run's connections: their server processes are read.
                with database.engine.connect() as connection:
                    server = cpu_between(server_before, server_cpu(connection))
            finally:
                database.dispose()
            databases.drop(label)
            cpu = None if server is None else client_cpu + server
            points.append({"establishments": size, "seconds": round(seconds, 2),
                           "seconds_per_establishment": round(seconds / size, 3),
                           "client_cpu_seconds": round(client_cpu, 2),
                           "server_cpu_seconds": _rounded(server),
                           "cpu_seconds_per_establishment": (
                               None if cpu is None else round(cpu / size, 3)),
                           "import_seconds": round(import_seconds, 2),
                           "load": load_average()})
    return {"backend": "postgresql", "server": display_url(url), "points": points,
            "spread": _spread([point["seconds_per_establishment"] for point in points]),
            "spread_cpu": _spread([point["cpu_seconds_per_establishment"] for point in points]),
            "target_spread": 0.2, "cores": os.cpu_count()}


def _spread(values: list[float | None]) -> float | None:
    """Largest over smallest, minus one (None when a value is missing)."""
    if not values or any(value is None or value <= 0 for value in values):
        return None
    known = [value for value in values if value is not None]
    return round(max(known) / min(known) - 1, 3)
