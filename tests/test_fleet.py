"""Units run by worker processes (issue #17): ``yearchange worker`` on PostgreSQL through
procrastinate, the engine's own local worker processes on SQLite, the storage marker, the
caps, the window and cancel reaching a unit in another process. Real processes, real
databases.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from changeover_support import Academy, make_academy
from pg_support import PG_URL, drop_pg_database, fresh_pg_database
from sqlalchemy import select, text
from test_scheduling_engine import running_engine, statuses, uais, wait_until

from yearchange_tui.ent.database import open_database
from yearchange_tui.ent.models import Establishment
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.models import (
    EngineTask,
    StorageIdentity,
    TaskStatus,
    WorkerRow,
    WorkerState,
)
from yearchange_tui.scheduling.worker import MARKER_NAME, Registration
from yearchange_tui.workflow.claims import host_name
from yearchange_tui.workflow.models import Step, StepUnit, UnitStatus

STEPS_1_TO_3 = (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE)


def command(url: str, storage: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "yearchange_tui.cli.main", "--db", url,
            "--storage", str(storage), *args]


def environment(storage: Path) -> dict[str, str]:
    return {**os.environ, "YEARCHANGE_DATA_DIR": str(storage.parent / "data"),
            "YEARCHANGE_CLAIM_HEARTBEAT": "0.5"}


def start_worker(url: str, storage: Path, host: str, *args: str) -> subprocess.Popen[str]:
    log = (storage.parent / f"worker-{host}.log").open("w")
    return subprocess.Popen(command(url, storage, "worker", "--host", host, *args),
                            stdout=log, stderr=subprocess.STDOUT, text=True,
                            env=environment(storage), stdin=subprocess.DEVNULL)


def stop_worker(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(120)


def yearchange(url: str, storage: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(url, storage, *args), capture_output=True, text=True,
                          check=False, env=environment(storage), stdin=subprocess.DEVNULL)


@pytest.fixture
def pg_academy(tmp_path: Path) -> Iterator[Academy]:
    """A 4-establishment sample académie on a fresh PostgreSQL database."""
    if not PG_URL:
        pytest.skip("PostgreSQL only (YEARCHANGE_TEST_PG_URL)")
    url, name = fresh_pg_database()
    academy = make_academy(url, tmp_path / "storage", establishments=4)
    try:
        yield academy
    finally:
        academy.database.dispose()
        drop_pg_database(name)


def fleet_ready(academy: Academy, hosts: set[str]) -> bool:
    """Every host has a registered worker whose procrastinate worker listens."""
    with academy.database.engine.connect() as connection:
        registered = {row[0] for row in connection.execute(select(WorkerRow.host).where(
            WorkerRow.state == WorkerState.RUNNING))}
        listening = connection.execute(text("SELECT count(*) FROM procrastinate_workers")
                                       ).scalar()
    return hosts <= registered and (listening or 0) >= len(hosts)


def run_steps(client: DatabaseEngineClient, steps: tuple[Step, ...]) -> None:
    for step in steps:
        state = client.wait_for_request(client.request(RequestAction.RUN, step=step.value),
                                        300, until_units_finish=True)
        assert state is not None
        assert {task["status"] for task in state["tasks"]} == {"done"}, state


def test_two_workers_on_two_hosts_run_steps_1_to_3(pg_academy: Academy) -> None:
    academy = pg_academy
    url, storage = academy.url, academy.storage
    workers = [start_worker(url, storage, host) for host in ("machine-a", "machine-b")]
    try:
        wait_until(lambda: fleet_ready(academy, {"machine-a", "machine-b"}),
                   "workers prêts", 180)
        listed = yearchange(url, storage, "workers", "--json")
        assert listed.returncode == 0, listed.stderr
        assert {row["host"] for row in json.loads(listed.stdout)["workers"]} == {
            "machine-a", "machine-b"}
        client = DatabaseEngineClient(academy.database)
        with running_engine(academy.database, storage, local_workers=0):
            run_steps(client, STEPS_1_TO_3)
    finally:
        codes = [stop_worker(process) for process in workers]
    assert codes == [0, 0]
    states = statuses(academy.database)
    assert {state for (_uai, step), (state, _e) in states.items()
            if step in STEPS_1_TO_3} == {UnitStatus.DONE}
    with academy.database.session() as session:
        attempts = set(session.scalars(select(StepUnit.attempts).where(
            StepUnit.step.in_(STEPS_1_TO_3))))
        hosts = {worker.split(":")[0] for worker in session.scalars(
            select(EngineTask.worker).where(EngineTask.status == TaskStatus.DONE))}
        stopped = set(session.scalars(select(WorkerRow.state)))
    assert attempts == {1}
    assert hosts == {"machine-a", "machine-b"}, "units spread over both machines"
    assert stopped == {WorkerState.STOPPED}


def test_a_worker_refuses_a_storage_root_that_is_not_the_databases(
        pg_academy: Academy, tmp_path: Path) -> None:
    academy = pg_academy
    with academy.database.session() as session:
        assert session.scalar(select(StorageIdentity.storage_id)) is None
    # First use: the marker is written and recorded; a worker with that root starts.
    worker = start_worker(academy.url, academy.storage, "machine-a")
    try:
        wait_until(lambda: fleet_ready(academy, {"machine-a"}), "worker prêt", 180)
    finally:
        assert stop_worker(worker) == 0
    marker = (academy.storage / MARKER_NAME).read_text().strip()
    with academy.database.session() as session:
        assert session.scalar(select(StorageIdentity.storage_id)) == marker
        before = session.query(WorkerRow).count()
    other = tmp_path / "other-storage"
    other.mkdir()
    refused = yearchange(academy.url, other, "worker", "--host", "machine-b")
    assert refused.returncode == 2
    assert "STOCKAGE-DIFFERENT" in refused.stderr and marker in refused.stderr
    assert str(other) in refused.stderr
    (other / MARKER_NAME).write_text("0" * 32 + "\n")
    refused = yearchange(academy.url, other, "worker", "--host", "machine-b")
    assert refused.returncode == 2 and "0" * 32 in refused.stderr
    with academy.database.session() as session:
        assert session.query(WorkerRow).count() == before, "nothing registered"


def test_a_worker_on_sqlite_is_refused(tmp_path: Path) -> None:
    academy = make_academy(f"sqlite:///{tmp_path / 'test.db'}", tmp_path / "storage")
    refused = yearchange(academy.url, academy.storage, "worker")
    assert refused.returncode == 2
    assert "WORKER-SQLITE" in refused.stderr and "SQLite" in refused.stderr
    assert not (academy.storage / MARKER_NAME).exists()


def test_the_engine_on_sqlite_runs_units_in_its_own_processes(tmp_path: Path) -> None:
    academy = make_academy(f"sqlite:///{tmp_path / 'test.db'}", tmp_path / "storage",
                           establishments=2)
    client = DatabaseEngineClient(academy.database)
    with running_engine(academy.database, academy.storage, concurrency=2):
        run_steps(client, (Step.PURGE_TRASH,))
    with academy.database.session() as session:
        workers = set(session.scalars(select(EngineTask.worker).where(
            EngineTask.status == TaskStatus.DONE)))
    pids = {int(worker.split(":")[1]) for worker in workers}
    assert pids and os.getpid() not in pids, "units ran in the engine's worker processes"


def test_a_cap_per_step_keeps_units_of_that_step_one_at_a_time(tmp_path: Path) -> None:
    academy = make_academy(f"sqlite:///{tmp_path / 'test.db'}", tmp_path / "storage",
                           establishments=3)
    client = DatabaseEngineClient(academy.database)
    with running_engine(academy.database, academy.storage, concurrency=3,
                        step_caps={"archive": 1}):
        run_steps(client, (Step.PURGE_TRASH, Step.ARCHIVE))
    with academy.database.session() as session:
        spans = sorted(session.execute(select(StepUnit.started_at, StepUnit.finished_at)
                                       .where(StepUnit.step == Step.ARCHIVE)).all())
    assert len(spans) == 3 and all(end is not None for _start, end in spans)
    for (_start, end), (next_start, _end) in itertools.pairwise(spans):
        assert end <= next_start, "two archive units ran at the same time"


def test_a_job_picked_after_its_window_is_missed_and_never_started(
        pg_academy: Academy) -> None:
    import datetime as dt

    from yearchange_tui.scheduling.jobqueue import JobQueue
    from yearchange_tui.workflow.units import current_school_year

    academy = pg_academy
    first = uais(academy.database)[0]
    now = dt.datetime.now(dt.UTC)
    with academy.database.session() as session:
        year = current_school_year(session)
        establishment_id = session.scalar(select(Establishment.id).where(
            Establishment.uai == first))
        task = EngineTask(origin="calendar", milestone="purge-trash",
                          establishment_id=establishment_id, school_year_id=year.id,
                          status=TaskStatus.QUEUED, due_at=now - dt.timedelta(hours=2),
                          not_after=now - dt.timedelta(minutes=1), created_at=now,
                          deferred_at=now - dt.timedelta(hours=2))
        session.add(task)
        session.flush()
        task_id = task.id
    queue = JobQueue(academy.url)
    try:
        queue.defer(task_id, "purge-trash", establishment_id)
    finally:
        queue.close()
    worker = start_worker(academy.url, academy.storage, "machine-a")
    try:
        def settled() -> bool:
            with academy.database.session() as session:
                return session.scalar(select(EngineTask.status).where(
                    EngineTask.id == task_id)) is not TaskStatus.QUEUED
        wait_until(settled, "tâche prise par le worker", 180)
    finally:
        assert stop_worker(worker) == 0
    with academy.database.session() as session:
        done = session.get(EngineTask, task_id)
        assert done is not None
        assert done.status is TaskStatus.MISSED and "jamais démarrée" in done.reason
        assert done.attempts == 0 and done.started_at is None
    state, error = statuses(academy.database)[(first, Step.PURGE_TRASH)]
    assert state is UnitStatus.MISSED and "jamais démarrée" in error


def test_workers_lists_what_runs(pg_academy: Academy) -> None:
    academy = pg_academy
    worker = start_worker(academy.url, academy.storage, "machine-a", "--queues", "archive",
                          "--concurrency", "1")
    try:
        wait_until(lambda: fleet_ready(academy, {"machine-a"}), "worker prêt", 180)
        listed = yearchange(academy.url, academy.storage, "workers")
        assert listed.returncode == 0, listed.stderr
        assert "machine-a" in listed.stdout and "actif" in listed.stdout
        assert "files : archive" in listed.stdout
    finally:
        assert stop_worker(worker) == 0
    after = yearchange(academy.url, academy.storage, "workers", "--all", "--json")
    [row] = json.loads(after.stdout)["workers"]
    assert row["state"] == "stopped" and row["units"] == []


def test_a_task_marked_handed_out_but_never_deferred_is_not_stuck(
        pg_academy: Academy) -> None:
    """An engine that stopped between marking a task handed to the fleet and deferring its
    job leaves it « handed out » with no job: the next engine gives it back to the queue
    and it runs (before, it held its establishment and the caps for good)."""
    import datetime as dt

    from yearchange_tui.workflow.units import current_school_year, utcnow

    academy = pg_academy
    first = uais(academy.database)[0]
    now = utcnow()
    with academy.database.session() as session:
        year = current_school_year(session)
        establishment_id = session.scalar(select(Establishment.id).where(
            Establishment.uai == first))
        task = EngineTask(origin="request", milestone="purge-trash",
                          establishment_id=establishment_id, school_year_id=year.id,
                          status=TaskStatus.QUEUED, due_at=now - dt.timedelta(minutes=5),
                          created_at=now - dt.timedelta(minutes=5),
                          deferred_at=now - dt.timedelta(minutes=5))
        session.add(task)
        session.flush()
        task_id = task.id
    os.environ["YEARCHANGE_DATA_DIR"] = str(academy.storage.parent / "data")
    with running_engine(academy.database, academy.storage, concurrency=1):
        def settled() -> bool:
            with academy.database.session() as session:
                return session.scalar(select(EngineTask.status).where(
                    EngineTask.id == task_id)) is TaskStatus.DONE
        wait_until(settled, "tâche orpheline reprise et exécutée", 240)
    state, _ = statuses(academy.database)[(first, Step.PURGE_TRASH)]
    assert state is UnitStatus.DONE


def test_a_worker_asked_for_an_unknown_queue_is_refused(tmp_path: Path) -> None:
    """A typo in --queues would serve nothing forever: refused, French, exit 2."""
    storage = tmp_path / "storage"
    storage.mkdir()
    refused = yearchange(f"sqlite:///{tmp_path / 'x.db'}", storage, "worker", "--queues",
                         "archive,archvie")
    assert refused.returncode == 2
    assert "FILE-INCONNUE" in refused.stderr and "« archvie »" in refused.stderr
    assert "archive" in refused.stderr and "Rien n'a été démarré" in refused.stderr


def test_the_fleet_forgets_workers_stopped_or_silent_for_more_than_a_week(
        database_url: str, tmp_path: Path) -> None:
    """``workers --all`` keeps a week of history: a worker that starts removes the rows of
    workers stopped, or silent (killed with their machine), for longer; recent ones stay."""
    database = open_database(database_url)
    now = dt.datetime.now(dt.UTC)
    ages = {"arrete-il-y-a-8-jours": (8, WorkerState.STOPPED),
            "muet-depuis-8-jours": (8, WorkerState.RUNNING),
            "arrete-hier": (1, WorkerState.STOPPED), "actif": (0, WorkerState.RUNNING)}
    with database.session() as session:
        for host, (days, state) in ages.items():
            when = now - dt.timedelta(days=days)
            session.add(WorkerRow(host=host, pid=1, queues="", concurrency=1, state=state,
                                  started_at=when, heartbeat_at=when,
                                  stopped_at=when if state is WorkerState.STOPPED else None,
                                  storage_root=str(tmp_path)))
    registration = Registration.register(database, "", 1, tmp_path)
    registration.set_state(WorkerState.STOPPED)
    with database.session() as session:
        hosts = set(session.scalars(select(WorkerRow.host)))
    database.dispose()
    assert hosts == {"arrete-hier", "actif", host_name()}
