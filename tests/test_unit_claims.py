"""Every path claims a unit before running it (issue #17, « Every path claims »).

Two ``yearchange run archive`` of the same establishment: the second is refused with the
holder named (host, pid, since when) and the unit's attempts stay 1; a claim whose
process died (kill -9) is taken over and the unit resumes from its checkpoint; a claim
held from another host is live while its heartbeat is recent, taken over once stale.
Real processes, real SQLite and PostgreSQL databases.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from changeover_support import make_academy
from sqlalchemy import delete, insert, select, update

from yearchange_tui.ent.models import Establishment
from yearchange_tui.workflow.claims import ClaimHeartbeat, claim_unit, read_claim
from yearchange_tui.workflow.models import Step, StepUnit, UnitClaim, UnitStatus
from yearchange_tui.workflow.units import current_school_year, get_unit


def yearchange_command(url: str, storage: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "yearchange_tui.cli.main", "--db", url,
            "--storage", str(storage), *args]


def yearchange(url: str, storage: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YEARCHANGE_DATA_DIR": str(storage.parent / "data")}
    return subprocess.run(yearchange_command(url, storage, *args), capture_output=True,
                          text=True, check=False, env=env, stdin=subprocess.DEVNULL)


def start(url: str, storage: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "YEARCHANGE_DATA_DIR": str(storage.parent / "data")}
    return subprocess.Popen(yearchange_command(url, storage, *args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)


def wait_for_claim(database, process: subprocess.Popen[str]) -> UnitClaim:
    """Poll until the process holds a claim (it has begun its unit)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with database.session() as session:
            claim = session.scalar(select(UnitClaim).where(UnitClaim.pid == process.pid))
            if claim is not None:
                session.expunge(claim)
                return claim
        assert process.poll() is None, process.communicate()
        time.sleep(0.005)
    raise AssertionError("the run never claimed its unit")


def archive_unit(database, uai: str, step: Step = Step.ARCHIVE) -> StepUnit:
    with database.session() as session:
        year = current_school_year(session)
        establishment = session.scalars(select(Establishment).where(
            Establishment.uai == uai)).one()
        unit = get_unit(session, establishment.id, year.id, step)
        assert unit is not None
        session.expunge(unit)
        return unit


def test_a_second_run_of_the_same_unit_is_refused_naming_the_holder(
        database_url: str, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    academy = make_academy(database_url, storage, establishments=2)
    database = academy.database
    with database.session() as session:
        uai = min(session.scalars(select(Establishment.uai)))
    purged = yearchange(database_url, storage, "run", "1", "--all", "--yes")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    first = start(database_url, storage, "run", "archive", "--uai", uai, "--yes")
    try:
        wait_for_claim(database, first)
        os.kill(first.pid, signal.SIGSTOP)  # the holder is alive but does not move on
        second = yearchange(database_url, storage, "run", "archive", "--uai", uai, "--yes")
    finally:
        os.kill(first.pid, signal.SIGCONT)
    out, errors = first.communicate(timeout=300)
    assert first.returncode == 0, out + errors
    assert second.returncode == 1, second.stdout + second.stderr
    said = " ".join(second.stdout.split())
    assert "⊘ refusé" in said
    assert f"déjà en cours d'exécution par {socket.gethostname()} (pid {first.pid}) depuis le" in said
    unit = archive_unit(database, uai)
    assert unit.status is UnitStatus.DONE and unit.attempts == 1
    with database.session() as session:
        assert session.scalars(select(UnitClaim)).all() == []  # released when done


def test_a_claim_whose_process_was_killed_is_taken_over_and_the_unit_resumes(
        database_url: str, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    academy = make_academy(database_url, storage)
    database = academy.database
    with database.session() as session:
        uai = session.scalars(select(Establishment.uai)).one()
    purged = yearchange(database_url, storage, "run", "1", "--all", "--yes")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    first = start(database_url, storage, "run", "archive", "--uai", uai, "--yes")
    held = wait_for_claim(database, first)
    first.kill()
    first.communicate(timeout=60)
    unit = archive_unit(database, uai)
    if unit.status is UnitStatus.DONE:  # it finished before the kill landed: nothing held
        return
    with database.engine.connect() as connection:
        stale = read_claim(connection, held.unit_id)
    assert stale is not None and stale.pid == first.pid  # left behind by the dead process

    again = yearchange(database_url, storage, "run", "archive", "--uai", uai, "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "✓ terminé" in again.stdout
    unit = archive_unit(database, uai)
    assert unit.status is UnitStatus.DONE and unit.attempts == 2
    verified = yearchange(database_url, storage, "verify", "--uai", uai)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_claim_from_another_host_holds_while_its_heartbeat_is_recent(
        database_url: str, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    academy = make_academy(database_url, storage)
    database = academy.database
    with database.session() as session:
        uai = session.scalars(select(Establishment.uai)).one()
    purged = yearchange(database_url, storage, "run", "1", "--all", "--yes")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    unit = archive_unit(database, uai)
    now = dt.datetime.now(dt.UTC)
    with database.engine.begin() as connection:
        connection.execute(insert(UnitClaim).values(
            unit_id=unit.id, token="a" * 32, host="worker-b.example", pid=4242,
            claimed_at=now, heartbeat_at=now))

    refused = yearchange(database_url, storage, "run", "archive", "--uai", uai, "--yes")
    assert refused.returncode == 1
    assert "déjà en cours d'exécution par worker-b.example (pid 4242)" in " ".join(
        refused.stdout.split())
    assert archive_unit(database, uai).attempts == 0  # nothing was started

    with database.engine.begin() as connection:  # worker-b stopped beating ten minutes ago
        connection.execute(update(UnitClaim).values(
            heartbeat_at=now - dt.timedelta(minutes=10)))
    taken = yearchange(database_url, storage, "run", "archive", "--uai", uai, "--yes")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    unit = archive_unit(database, uai)
    assert unit.status is UnitStatus.DONE and unit.attempts == 1


def test_the_holder_keeps_its_claims_alive_with_a_heartbeat(
        database_url: str, tmp_path: Path) -> None:
    academy = make_academy(database_url, tmp_path / "storage")
    database = academy.database
    with database.session() as session:
        uai = session.scalars(select(Establishment.uai)).one()
    unit = archive_unit(database, uai)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with database.engine.begin() as connection:
        claim = claim_unit(connection, unit.id, "L'étape 2", now=long_ago)
    beat = ClaimHeartbeat(database, interval=0.05)
    beat.hold(claim)
    deadline = time.monotonic() + 60
    while True:
        with database.engine.connect() as connection:
            info = read_claim(connection, unit.id)
        assert info is not None
        if info.heartbeat_at > long_ago + dt.timedelta(minutes=30):
            break
        assert time.monotonic() < deadline, "the heartbeat never refreshed the claim"
        time.sleep(0.05)
    beat.drop(claim)


def test_the_engine_waits_for_a_unit_another_process_runs_and_says_who(
        database_url: str, tmp_path: Path) -> None:
    from test_scheduling_engine import running_engine, tasks, wait_until

    from yearchange_tui.scheduling.api import RequestAction
    from yearchange_tui.scheduling.client import DatabaseEngineClient
    from yearchange_tui.scheduling.models import TaskStatus

    academy = make_academy(database_url, tmp_path / "storage")
    database = academy.database
    with database.session() as session:
        uai = session.scalars(select(Establishment.uai)).one()
        year = current_school_year(session)
        establishment_id = session.scalar(select(Establishment.id))
        unit_id = get_unit(session, establishment_id, year.id, Step.PURGE_TRASH).id
    now = dt.datetime.now(dt.UTC)
    with database.engine.begin() as connection:  # `yearchange run 1` on worker-b, running
        connection.execute(insert(UnitClaim).values(
            unit_id=unit_id, token="b" * 32, host="worker-b.example", pid=4242,
            claimed_at=now, heartbeat_at=now))
    alive = threading.Event()
    alive.set()

    def worker_b_heartbeat() -> None:  # worker-b stays alive until it finishes below
        while alive.is_set():
            with database.engine.begin() as connection:
                connection.execute(update(UnitClaim).where(UnitClaim.host == "worker-b.example")
                                   .values(heartbeat_at=dt.datetime.now(dt.UTC)))
            time.sleep(1)

    beating = threading.Thread(target=worker_b_heartbeat, daemon=True)
    beating.start()
    client = DatabaseEngineClient(database)
    with running_engine(database, academy.storage):
        client.request(RequestAction.RUN, step="1", uais=[uai])

        def purge_task():
            return next((t for t in reversed(tasks(database))  # the request's, not the calendar's
                         if t.milestone == Step.PURGE_TRASH.value and t.origin != "calendar"),
                        None)

        wait_until(lambda: (task := purge_task()) is not None
                   and task.status is TaskStatus.WAITING, "étape 1 en attente")
        task = purge_task()
        assert "déjà en cours d'exécution par worker-b.example (pid 4242)" in task.reason
        [view] = client.establishments()
        assert view.units[Step.PURGE_TRASH].status is not UnitStatus.DONE
        alive.clear()
        beating.join()
        with database.engine.begin() as connection:  # worker-b finished and let go
            connection.execute(delete(UnitClaim))
        wait_until(lambda: purge_task().status is TaskStatus.DONE, "étape 1 faite")
    unit = archive_unit(database, uai, Step.PURGE_TRASH)
    assert unit.status is UnitStatus.DONE and unit.attempts == 1
