"""``yearchange worker``: worker processes that run the fleet's units (PostgreSQL).

The command starts ``concurrency`` worker processes (spawned, not threads: Python-heavy
phases use every core). Each registers in ``workers`` (host, pid, heartbeat), runs a
procrastinate worker on the chosen queues, and executes each job through
:func:`~yearchange_tui.scheduling.executor.execute_task`. SIGTERM or SIGINT drains: no new
job is taken, the running unit stops at its next checkpoint (resumable), the row is marked
stopped.

Before anything, the storage root is compared with the one the database expects: the
database records a storage id, the root holds it in a marker file (written at first use);
a different or missing marker is refused (``STOCKAGE-DIFFERENT``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import multiprocessing
import os
import signal
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.scheduling.executor import ExecutionContext, task_queue
from yearchange_tui.scheduling.models import StorageIdentity, WorkerRow, WorkerState
from yearchange_tui.workflow.calendar import DEFAULT_TIMEZONE
from yearchange_tui.workflow.claims import (
    HOST_VARIABLE,
    claim_ttl,
    heartbeat_interval,
    host_name,
    wall_now,
)

log = logging.getLogger(__name__)

MARKER_NAME = ".yearchange-storage-id"
"""The marker file at the storage root."""

STORAGE_MISMATCH_CODE = "STOCKAGE-DIFFERENT"
WORKER_SQLITE_CODE = "WORKER-SQLITE"


class StorageMismatchError(Exception):
    """The storage root is not the one the database expects (French, names both)."""

    code = STORAGE_MISMATCH_CODE


def _read_marker(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip() or None
    except FileNotFoundError:
        return None


def _create_marker(path: Path, storage_id: str) -> str:
    """Write the marker unless it exists (atomic); returns the marker's id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return _read_marker(path) or storage_id
    with os.fdopen(descriptor, "w", encoding="ascii") as marker:
        marker.write(storage_id + "\n")
    return storage_id


def _recorded_storage(database: Database) -> str | None:
    with database.session() as session:
        return session.scalar(select(StorageIdentity.storage_id).where(
            StorageIdentity.name == "storage"))


def check_storage(database: Database, storage_root: Path) -> str:
    """The storage id shared by the database and ``storage_root`` (recorded at first use).

    Raises:
        StorageMismatchError: the root's marker differs from the database's id, or is
            missing while the database already has one.
    """
    marker = Path(storage_root) / MARKER_NAME
    recorded = _recorded_storage(database)
    if recorded is None:
        # First use: the marker first (exclusive create, so racing workers agree), then
        # the database (the first insert wins).
        storage_id = _create_marker(marker, uuid.uuid4().hex)
        module = postgresql if database.engine.dialect.name == "postgresql" else sqlite
        with database.engine.begin() as connection:
            connection.execute(module.insert(StorageIdentity).values(
                name="storage", storage_id=storage_id, created_at=wall_now(),
                created_by=f"{host_name()}:{os.getpid()} {storage_root}")
                .on_conflict_do_nothing(index_elements=["name"]))
        recorded = _recorded_storage(database)
    found = _read_marker(marker)
    if found != recorded:
        what = f"l'identifiant {found}" if found else "aucun repère"
        raise StorageMismatchError(
            f"Stockage différent (code {STORAGE_MISMATCH_CODE}) : la base attend le stockage "
            f"d'identifiant {recorded}, mais {storage_root} porte {what} ({marker}). "
            "Montez sur cette machine le stockage partagé de la base (le même chemin que "
            "les autres workers) et relancez ; rien n'a été démarré.")
    assert recorded is not None
    return recorded


WORKER_HISTORY = dt.timedelta(days=7)
"""How long ``workers --all`` remembers a worker after it stopped or went silent."""


@dataclass
class Registration:
    """This process's row in ``workers``, kept alive by a heartbeat thread."""

    database: Database
    worker_id: int
    stop: threading.Event
    thread: threading.Thread | None = None

    @classmethod
    def register(cls, database: Database, queues: str, concurrency: int,
                 storage_root: Path) -> Registration:
        now = wall_now()
        with database.session() as session:
            # The fleet's history is kept a week: rows of workers stopped, or silent, for
            # longer go (a worker killed with its machine never writes « arrêté »).
            forgotten = now - WORKER_HISTORY
            session.execute(delete(WorkerRow).where(or_(
                WorkerRow.stopped_at < forgotten, WorkerRow.heartbeat_at < forgotten)))
            row = WorkerRow(host=host_name(), pid=os.getpid(), queues=queues,
                            concurrency=concurrency, state=WorkerState.RUNNING, started_at=now,
                            heartbeat_at=now, storage_root=str(storage_root))
            session.add(row)
            session.flush()
            worker_id = row.id
        registration = cls(database, worker_id, threading.Event())
        registration.thread = threading.Thread(target=registration._beat, name="worker-beat",
                                               daemon=True)
        registration.thread.start()
        return registration

    def _beat(self) -> None:
        while not self.stop.wait(heartbeat_interval()):
            try:
                with self.database.engine.begin() as connection:
                    connection.execute(update(WorkerRow).where(
                        WorkerRow.id == self.worker_id).values(heartbeat_at=wall_now()))
            except SQLAlchemyError as error:  # the database is away: the next beat retries
                log.warning("Signe de vie du worker non enregistré : %s", error)

    def set_state(self, state: WorkerState) -> None:
        values: dict[str, Any] = {"state": state, "heartbeat_at": wall_now()}
        if state is WorkerState.STOPPED:
            values["stopped_at"] = wall_now()
            self.stop.set()
        for _attempt in range(3):
            try:
                with self.database.engine.begin() as connection:
                    connection.execute(update(WorkerRow).where(
                        WorkerRow.id == self.worker_id).values(**values))
                return
            except SQLAlchemyError as error:
                log.warning("État du worker non enregistré : %s", error)


def queue_names(queues: str) -> list[str] | None:
    """``archive,init`` (or ``step-archive``…) as procrastinate queues; None: every queue."""
    names = [name.strip() for name in queues.split(",") if name.strip()]
    if not names:
        return None
    return [name if name.startswith("step-") else task_queue(name) for name in names]


@dataclass(frozen=True)
class WorkerOptions:
    """What each worker process needs (picklable: handed to spawned processes)."""

    url: str
    storage_root: str
    queues: str = ""
    retries: int = 2
    retry_wait: float = 30.0
    timezone: str = DEFAULT_TIMEZONE
    host: str = ""


def worker_process_main(options: WorkerOptions, index: int) -> None:
    """One worker process: register, take jobs until SIGTERM/SIGINT, mark stopped."""
    stop = threading.Event()
    # A stop asked while this process still starts (before its event loop listens) is
    # honoured: it registers, takes no job and stops cleanly.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    if options.host:
        os.environ[HOST_VARIABLE] = options.host
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    database = open_database(options.url, migrate=False)
    context = ExecutionContext(database, Path(options.storage_root), timezone=options.timezone,
                               stop=stop)
    registration = Registration.register(database, options.queues, 1,
                                         Path(options.storage_root))
    try:
        asyncio.run(_serve(options, context, registration, index))
    finally:
        context.writer.close(10.0)
        registration.set_state(WorkerState.STOPPED)
        database.dispose()


async def _serve(options: WorkerOptions, context: ExecutionContext,
                 registration: Registration, index: int) -> None:
    # procrastinate is a PostgreSQL-only dependency (the postgres extra): loaded on use.
    from procrastinate.worker import Worker

    from yearchange_tui.scheduling.jobqueue import make_app

    app = make_app(options.url, context=context, retries=options.retries,
                   retry_wait=options.retry_wait)
    beat = max(0.5, heartbeat_interval())
    async with app.open_async():
        worker = Worker(app=app, queues=queue_names(options.queues), concurrency=1,
                        name=f"{host_name()}:{os.getpid()}", install_signal_handlers=False,
                        fetch_job_polling_interval=1.0, delete_jobs="successful",
                        update_heartbeat_interval=beat,
                        stalled_worker_timeout=max(claim_ttl().total_seconds(), 3 * beat))
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            if context.stop.is_set():
                return
            log.info("Worker %d : arrêt demandé, l'unité en cours s'arrête à son point de "
                     "reprise.", index)
            context.stop.set()
            registration.set_state(WorkerState.STOPPING)
            worker.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        if context.stop.is_set():  # asked to stop while starting
            registration.set_state(WorkerState.STOPPING)
            return
        await worker.run()


def run_worker_processes(options: WorkerOptions, concurrency: int,
                         on_started: Any = None) -> int:
    """Start ``concurrency`` worker processes and wait for them; SIGTERM/SIGINT drain them.

    Returns:
        0 when every process stopped cleanly, 1 otherwise.
    """
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=worker_process_main, args=(options, index),
                                 name=f"worker-{index}") for index in range(concurrency)]
    stopping = threading.Event()

    def forward(signum: int, _frame: Any) -> None:
        stopping.set()
        for process in processes:
            if process.pid is not None and process.is_alive():
                try:
                    os.kill(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        del signum

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for process in processes:
            process.start()
        if on_started is not None:
            on_started([process.pid for process in processes])
        for process in processes:
            process.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # A process the stop reached before Python had started it (killed by the forwarded
    # SIGTERM, holding nothing yet) stopped as asked too.
    clean = (0, -signal.SIGTERM) if stopping.is_set() else (0,)
    return 0 if all(process.exitcode in clean for process in processes) else 1

