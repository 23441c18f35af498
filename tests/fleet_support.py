"""Helpers for the fleet tests: an engine and ``yearchange worker`` processes on one
PostgreSQL database and one storage root, faults done to them, and end states to compare.

Every worker is a separate ``yearchange worker --host NAME`` process in its own session
(so ``kill -9`` of its process group takes the whole "machine" down), with its own work
folder as current directory, ``TMPDIR`` and data folder; all of them share the database
and the storage root, as the machines of a real fleet do.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from changeover_support import storage_files, table_rows
from sqlalchemy import select, text

from yearchange_tui.ent.database import Database
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.spawn import spawn_engine, wait_for_engine
from yearchange_tui.workflow.models import StepUnit, UnitClaim, UnitStatus

ROOT = Path(__file__).resolve().parents[1]

STEPS_1_TO_3 = ("purge-trash", "archive", "delete-obsolete")

# The storage root's marker (written by the first worker, checked by every other one):
# it names the database's storage id, so a reference académie run without workers has
# none and every fleet run has its own.
STORAGE_MARKER = ".yearchange-storage-id"


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 300.0,
               pause: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(pause)
    raise AssertionError(f"délai dépassé : {what}")


# -- end states ------------------------------------------------------------------------------


def ent_snapshot(database: Database, run_started: dt.datetime) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every ENT table, sorted, with what legitimately differs between two
    runs of the same change-over left out:

    - primary and foreign keys (``with_keys=False``): PostgreSQL sequences are not
      transactional, so the inserts of a unit rolled back by a kill or a cut connection use
      ids up, and the rows written when the unit resumes get other ids than in an
      uninterrupted run; every other column is compared;
    - the moment in timestamps the run wrote: steps 1-3 stamp what they write with the time
      they ran (``created_at`` of the archive rubrics, ``trashed_at``, ``sent_at`` of the
      messages…), which two runs never share. A timestamp at or after ``run_started``
      becomes a marker, so whether the run stamped the row is still compared; the sample's
      own timestamps (school year N, long before) are compared as they are.
    """
    return table_rows(database, with_keys=False, stamped_from=run_started)


def archive_bytes(storage: Path) -> dict[str, str]:
    """SHA-256 of every file under the storage root (archives, documents, and any
    temporary file left behind), but the storage marker: it holds the id of the database
    it belongs to, which differs between the reference database and the fleet's."""
    files = storage_files(storage)
    files.pop(STORAGE_MARKER, None)
    return files


def first_difference(expected: dict[str, Any], found: dict[str, Any]) -> str:
    """A short description of where two snapshots differ (for assertion messages)."""
    for name in sorted(set(expected) | set(found)):
        if expected.get(name) != found.get(name):
            left, right = expected.get(name), found.get(name)
            if isinstance(left, list) and isinstance(right, list):
                missing = [row for row in left if row not in right][:3]
                extra = [row for row in right if row not in left][:3]
                return (f"{name}: {len(left)} rows expected, {len(right)} found; "
                        f"missing {missing}, unexpected {extra}")
            return f"{name}: expected {left!r}, found {right!r}"
    return "no difference"


def unit_states(database: Database) -> dict[tuple[int, str], tuple[str, int]]:
    """(establishment id, step) → (status, attempts) of every unit."""
    with database.session() as session:
        rows = session.execute(select(StepUnit.establishment_id, StepUnit.step,
                                      StepUnit.status, StepUnit.attempts)).all()
    return {(row[0], str(getattr(row[1], "value", row[1]))): (
        str(getattr(row[2], "value", row[2])), row[3]) for row in rows}


# -- the fleet -------------------------------------------------------------------------------


@dataclass
class Worker:
    """One ``yearchange worker`` process tree (one simulated machine)."""

    host: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """``kill -9`` the whole machine: the command and its worker processes."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(60)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@dataclass
class Fleet:
    """An engine that hands units out (``local_workers = 0``) and named workers."""

    url: str
    storage: Path
    folder: Path
    database: Database
    environment: dict[str, str]
    config_file: Path
    engine: subprocess.Popen[bytes] | None = None
    workers: dict[str, Worker] = field(default_factory=dict)

    @property
    def client(self) -> DatabaseEngineClient:
        return DatabaseEngineClient(self.database)

    def start_engine(self) -> None:
        self.engine = spawn_engine(self.url, self.storage, log_file=self.folder / "engine.log",
                                   config_file=self.config_file,
                                   extra_args=("--poll", "0.2"), env=self.environment)
        assert wait_for_engine(self.database, self.engine, 120), self.engine_log()

    def engine_log(self) -> str:
        path = self.folder / "engine.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def start_worker(self, host: str, concurrency: int = 1) -> Worker:
        """``yearchange worker --host HOST`` in its own folder, session and TMPDIR."""
        home = self.folder / host
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        log = home / "worker.log"
        environment = {**self.environment, "TMPDIR": str(home / "tmp"),
                       "YEARCHANGE_DATA_DIR": str(home / "data")}
        with log.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "yearchange_tui", "--storage", str(self.storage),
                 "--config", str(self.config_file), "worker", "--host", host,
                 "--concurrency", str(concurrency)],
                cwd=home, env=environment, stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True)
        worker = self.workers[host] = Worker(host, process, log)
        return worker

    def run_step(self, step: str, timeout: float = 600.0) -> dict[str, Any]:
        """Ask the engine to run ``step`` for every establishment and wait for its units."""
        request = self.client.request(RequestAction.RUN, step=step)
        state = self.client.wait_for_request(request, timeout, until_units_finish=True)
        assert state is not None, f"{step}: the engine never answered\n{self.engine_log()}"
        return state

    def stop(self) -> None:
        """SIGTERM every process (workers drain, the engine lets its lease go), then
        SIGKILL whatever is still there."""
        processes = [worker.process for worker in self.workers.values()]
        if self.engine is not None:
            processes.append(self.engine)
        for process in processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in processes:
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)


@contextmanager
def running_fleet(url: str, storage: Path, folder: Path, database: Database, *,
                  claim_ttl: float = 6.0, retries: int = 0, retry_wait: float = 1.0,
                  ) -> Iterator[Fleet]:
    """An engine that runs no unit itself and room for workers, stopped on exit.

    Args:
        claim_ttl: seconds after which a silent holder's claims are taken over (the
            heartbeat beats every third of it).
        retries: times a failed unit is tried again by the workers.
        retry_wait: seconds before the first retry.
    """
    folder.mkdir(parents=True, exist_ok=True)
    config_file = folder / "config.toml"
    config_file.write_text(
        "[yearchange.engine]\n"
        "local_workers = 0\n"
        f"retries = {retries}\n"
        f"retry_wait = {retry_wait}\n"
        "poll_interval = 0.2\n", encoding="utf-8")
    environment = {**os.environ, "YEARCHANGE_DB": url, "YEARCHANGE_CLAIM_TTL": str(claim_ttl),
                   "YEARCHANGE_CLAIM_HEARTBEAT": str(max(0.5, claim_ttl / 3)),
                   "PYTHONPATH": os.pathsep.join(filter(None, [
                       str(ROOT), os.environ.get("PYTHONPATH", "")]))}
    fleet = Fleet(url, storage, folder, database, environment, config_file)
    try:
        yield fleet
    finally:
        fleet.stop()


# -- faults ----------------------------------------------------------------------------------


def claim_with_checkpoint(database: Database, hosts: set[str]) -> tuple[str, int] | None:
    """(host, unit id) of a unit one of ``hosts`` holds and has committed a phase of."""
    with database.session() as session:
        rows = session.execute(
            select(UnitClaim.host, StepUnit.id, StepUnit.checkpoint)
            .join(StepUnit, StepUnit.id == UnitClaim.unit_id)
            .where(UnitClaim.host.in_(sorted(hosts)),
                   StepUnit.status == UnitStatus.RUNNING)).all()
    for host, unit_id, checkpoint in rows:
        if checkpoint and checkpoint.strip() not in ("", "{}") and '"phases": []' not in checkpoint:
            return host, unit_id
    return None


def terminate_backends(database: Database) -> int:
    """``pg_terminate_backend`` on every other connection to this database (its workers'
    and engine's), never on another database of the server; returns how many."""
    with database.engine.connect() as connection:
        terminated = connection.execute(text(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'")).scalar()
    return int(terminated or 0)
