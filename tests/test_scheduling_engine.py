"""The engine in-process with a real APScheduler on a real database (SQLite, PostgreSQL).

Waits are on database state, never on the clock; the only sleep lets a maintenance
window pass while no engine runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from changeover_support import Academy, make_academy
from sqlalchemy import select, update

from yearchange_tui.changeover.verify import verify
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import Establishment
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.engine import Engine, EngineConfig, job_id
from yearchange_tui.scheduling.lease import (
    LEASE_NAME,
    LeaseHeldError,
    LeaseLostError,
    acquire,
    read_lease,
)
from yearchange_tui.scheduling.models import (
    EngineLease,
    EngineRequest,
    EngineTask,
    RequestStatus,
    TaskStatus,
)
from yearchange_tui.workflow.calendar import Milestone, add_window, set_date
from yearchange_tui.workflow.localtime import operator_zone
from yearchange_tui.workflow.models import Step, StepUnit, UnitStatus
from yearchange_tui.workflow.units import current_school_year, get_unit

PARIS = operator_zone("Europe/Paris")
STEPS_1_TO_3 = (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE)


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    """Poll ``predicate`` until it returns something true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"délai dépassé : {what}")


@contextmanager
def running_engine(database: Database, storage: Path, **settings: Any) -> Iterator[Engine]:
    """An engine on its own thread, stopped (and joined) at the end."""
    config = EngineConfig(poll_interval=0.1, heartbeat_interval=0.5, plan_sync_interval=1.0,
                          **settings)
    engine = Engine(database, storage, config)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            engine.run()
        except BaseException as error:  # noqa: BLE001 - reported to the test
            failures.append(error)

    thread = threading.Thread(target=run, name="engine-under-test")
    thread.start()
    wait_until(lambda: engine.ready.is_set() or failures, "démarrage du moteur", 30)
    if failures:
        raise failures[0]
    try:
        yield engine
    finally:
        engine.request_stop("fin du test")
        thread.join(60)
        assert not thread.is_alive(), "le moteur ne s'est pas arrêté"


def statuses(database: Database) -> dict[tuple[str, Step], tuple[UnitStatus, str]]:
    """(uai, step) → (status, error) of every unit of the current change-over."""
    with database.session() as session:
        rows = session.execute(select(Establishment.uai, StepUnit.step, StepUnit.status,
                                      StepUnit.error).join(
            Establishment, Establishment.id == StepUnit.establishment_id)).all()
    return {(uai, Step(step)): (UnitStatus(status), error) for uai, step, status, error in rows}


def uais(database: Database) -> list[str]:
    with database.session() as session:
        return list(session.scalars(select(Establishment.uai).order_by(Establishment.uai)))


def tasks(database: Database) -> list[EngineTask]:
    with database.session() as session:
        return list(session.scalars(select(EngineTask).order_by(EngineTask.id)))


def ticks_later(engine: Engine, count: int = 3) -> None:
    """Let the engine's main loop run ``count`` more passes."""
    target = engine.ticks + count
    wait_until(lambda: engine.ticks >= target, "tours du moteur", 30)


def run_and_cancel_while_running(database: Database, client: DatabaseEngineClient,
                                 uai: str) -> int:
    """Request step 2 of ``uai`` and cancel it while it runs; returns the run's request.

    On PostgreSQL the test holds the unit's row lock, so the unit's process waits as it
    begins the unit until the cancel is recorded (deterministic); on SQLite the cancel is
    sent as soon as the unit is seen running."""
    def running() -> bool:
        return statuses(database).get((uai, Step.ARCHIVE), (None, ""))[0] is UnitStatus.RUNNING

    def task_running() -> bool:
        with database.session() as session:
            return session.scalar(select(EngineTask.status).where(
                EngineTask.milestone == "archive").order_by(EngineTask.id.desc()).limit(1)
                ) is TaskStatus.RUNNING

    if database.is_sqlite:
        run_id = client.request(RequestAction.RUN, step="archive", uais=[uai])
        wait_until(running, "unité en cours", 120)
        client.wait_for_request(client.request(RequestAction.CANCEL, uais=[uai]), 30)
        return run_id
    with database.engine.connect() as holder:
        transaction = holder.begin()
        holder.execute(select(StepUnit.id).join(
            Establishment, Establishment.id == StepUnit.establishment_id).where(
            Establishment.uai == uai, StepUnit.step == Step.ARCHIVE).with_for_update(
            of=StepUnit))
        run_id = client.request(RequestAction.RUN, step="archive", uais=[uai])
        wait_until(task_running, "tâche prise par un processus", 120)
        client.wait_for_request(client.request(RequestAction.CANCEL, uais=[uai]), 30)
        transaction.rollback()
    return run_id


@pytest.fixture
def academy2(database_url: str, tmp_path: Path) -> Iterator[Academy]:
    academy = make_academy(database_url, tmp_path / "storage", establishments=2)
    yield academy
    academy.database.dispose()


@pytest.fixture
def academy1(database_url: str, tmp_path: Path) -> Iterator[Academy]:
    academy = make_academy(database_url, tmp_path / "storage", establishments=1)
    yield academy
    academy.database.dispose()


def test_calendar_jobs_fire_in_step_order_within_the_concurrency(academy2: Academy) -> None:
    database = academy2.database
    now = dt.datetime.now(dt.UTC)
    soon = (now + dt.timedelta(seconds=3)).astimezone(PARIS).replace(microsecond=0)
    with database.session() as session:
        add_window(session, 2025, "1-3", now - dt.timedelta(hours=1), now + dt.timedelta(hours=2))
        for step in STEPS_1_TO_3:
            set_date(session, 2025, Milestone(step.value), soon.date(), soon.time())
    client = DatabaseEngineClient(database)
    with running_engine(database, academy2.storage, concurrency=1):
        wait_until(lambda: all(statuses(database).get((uai, step), (None,))[0] is UnitStatus.DONE
                               for uai in uais(database) for step in STEPS_1_TO_3),
                   "étapes 1 à 3 terminées par le calendrier")
    step_tasks = [t for t in tasks(database) if t.milestone in {s.value for s in STEPS_1_TO_3}
                  and t.status is TaskStatus.DONE]
    assert len(step_tasks) == 6 and {t.origin for t in step_tasks} == {"calendar"}

    events = [e for e in client.events_after(0, 5000)
              if e.kind == "unit" and not e.data.get("dry_run")
              and e.data.get("event") in ("started", "finished")]
    running, most = 0, 0
    for event in events:
        running += 1 if event.data["event"] == "started" else -1
        most = max(most, running)
    assert most == 1, "deux unités en même temps avec une concurrence de 1"
    for uai in uais(database):
        order = [(e.step, e.data["event"]) for e in events if e.uai == uai]
        third = order.index(("delete-obsolete", "started"))
        assert order.index(("purge-trash", "finished")) < third
        assert order.index(("archive", "finished")) < third


def test_a_window_that_passed_gives_missed_units_never_dropped(academy1: Academy) -> None:
    database = academy1.database
    [uai] = uais(database)
    now = dt.datetime.now(dt.UTC)
    # Far enough ahead that a loaded machine still starts the engine before the window.
    starts, ends = now + dt.timedelta(seconds=15), now + dt.timedelta(seconds=16)
    local = starts.astimezone(PARIS)
    with database.session() as session:
        add_window(session, 2025, "1-3", starts, ends)
        set_date(session, 2025, Milestone.ARCHIVE, local.date(), local.time())
    with running_engine(database, academy1.storage) as engine:
        # The job is in APScheduler's store in the database; the engine stops before it runs.
        wait_until(lambda: engine.scheduler.get_jobs(), "tâche planifiée enregistrée", 30)
        archive_job = next(job.id for job in engine.scheduler.get_jobs()
                           if job.id.startswith("plan:archive@"))
        assert archive_job == job_id(Milestone.ARCHIVE, starts)
    time.sleep(max(0.0, (ends - dt.datetime.now(dt.UTC)).total_seconds()) + 0.5)

    with running_engine(database, academy1.storage) as engine:
        wait_until(lambda: statuses(database).get((uai, Step.ARCHIVE), (None,))[0]
                   is UnitStatus.MISSED, "étape 2 manquée")
        wait_until(lambda: engine.scheduler.get_job(archive_job) is None,
                   "tâche retirée du magasin", 30)
    error = statuses(database)[(uai, Step.ARCHIVE)][1]
    assert "passée sans exécution" in error and "étapes 1 à 3" in error
    # The template's dates of summer 2026 have all passed: every runnable milestone is
    # recorded as missed (steps, dry run), once, and shown; the free-group warnings have
    # no date unless the project sets one (seed §6.3), so none is missed.
    client = DatabaseEngineClient(database)
    missed = [t.milestone for t in tasks(database) if t.status is TaskStatus.MISSED]
    assert sorted(missed) == sorted(["dry-run", "purge-trash", "archive",
                                     "delete-obsolete", "init-directory", "init-school-life"])
    [view] = client.establishments()
    assert view.units[Step.ARCHIVE].status is UnitStatus.MISSED
    assert view.units[Step.ARCHIVE].planned_on == local.date()
    missed_events = [e for e in client.events_after(0, 5000) if e.data.get("event") == "missed"]
    assert {e.step for e in missed_events} == set(missed)
    with running_engine(database, academy1.storage) as engine:
        ticks_later(engine)
    assert len([t for t in tasks(database) if t.status is TaskStatus.MISSED]) == len(missed)


def test_a_step_waits_for_a_prerequisite_to_come_or_is_blocked_with_the_reason(
        academy1: Academy) -> None:
    database = academy1.database
    [uai] = uais(database)
    now = dt.datetime.now(dt.UTC)
    tomorrow = (now + dt.timedelta(days=1)).astimezone(PARIS)
    with database.session() as session:
        add_window(session, 2025, "1-3", now, now + dt.timedelta(days=2))
        for step in STEPS_1_TO_3:
            set_date(session, 2025, Milestone(step.value), tomorrow.date(), tomorrow.time())
    client = DatabaseEngineClient(database)
    with running_engine(database, academy1.storage):
        # An operator's request for a destructive step is never held for later: refused.
        refused = client.wait_for_request(
            client.request(RequestAction.RUN, step="3", uais=[uai]), 30)
        assert refused is not None and refused["status"] == "refused"
        assert "l'étape 1 (Purge de la corbeille) n'est pas terminée" in refused["message"]
        assert not [t for t in tasks(database) if t.milestone == Step.DELETE_OBSOLETE.value]
        # The calendar's own step-3 unit, due now, waits visibly for its prerequisites.
        with database.session() as session:
            year = current_school_year(session)
            establishment_id = session.scalar(select(Establishment.id).where(
                Establishment.uai == uai))
            planned = EngineTask(origin="calendar", milestone=Step.DELETE_OBSOLETE.value,
                                 establishment_id=establishment_id, school_year_id=year.id,
                                 status=TaskStatus.QUEUED, due_at=now, reason="",
                                 not_after=now + dt.timedelta(days=2), created_at=now)
            session.add(planned)
            session.flush()
            planned_id = planned.id

        def planned_status() -> TaskStatus:
            return next(t.status for t in tasks(database) if t.id == planned_id)

        wait_until(lambda: planned_status() is TaskStatus.WAITING, "étape 3 en attente")
        [view] = client.establishments()
        unit = view.units[Step.DELETE_OBSOLETE]
        assert unit.status is UnitStatus.PENDING and unit.queue == "waiting"
        assert "en attente de l'étape 1 (Purge de la corbeille)" in unit.error
        assert "l'étape 2 (Archivage de fin d'année N)" in unit.error

        # Steps 1 and 2 taken off the calendar: nothing will come, the guard blocks step 3.
        for step in ("1", "2"):
            client.wait_for_request(client.request(RequestAction.SET_DATE, step=step,
                                                   date="aucune"), 30)
        wait_until(lambda: statuses(database).get((uai, Step.DELETE_OBSOLETE), (None,))[0]
                   is UnitStatus.BLOCKED, "étape 3 bloquée")
        wait_until(lambda: planned_status() is TaskStatus.BLOCKED, "tâche bloquée")
    error = statuses(database)[(uai, Step.DELETE_OBSOLETE)][1]
    assert "ne peut pas commencer avant la fin de" in error and "étape 1" in error
    [view] = client.establishments()
    assert view.units[Step.DELETE_OBSOLETE].status is UnitStatus.BLOCKED
    assert view.units[Step.PURGE_TRASH].planned_on is None


def test_pause_resume_cancel_and_retry_of_failed_units_only(academy2: Academy) -> None:
    database = academy2.database
    first, second = uais(database)
    client = DatabaseEngineClient(database)
    with running_engine(database, academy2.storage, concurrency=2) as engine:
        assert client.wait_for_request(client.request(RequestAction.PAUSE), 30)["status"] == "done"
        assert client.status().paused
        run_id = client.request(RequestAction.RUN, step="purge-trash")
        client.wait_for_request(run_id, 30)
        ticks_later(engine)
        assert [t["status"] for t in client.tasks_of(run_id)] == ["queued", "queued"]
        cancel_id = client.request(RequestAction.CANCEL, uais=[first])
        client.wait_for_request(cancel_id, 30)
        client.wait_for_request(client.request(RequestAction.RESUME), 30)
        state = client.wait_for_request(run_id, 60, until_units_finish=True)
        assert {t["uai"]: t["status"] for t in state["tasks"]} == {first: "cancelled",
                                                                  second: "done"}
        assert statuses(database)[(second, Step.PURGE_TRASH)][0] is UnitStatus.DONE
        assert statuses(database)[(first, Step.PURGE_TRASH)][0] is not UnitStatus.DONE

        # Cancel a running unit: it stops at its next checkpoint, and resumes from there.
        # The unit runs in a worker process: the cancel reaches it through the database.
        archive_id = run_and_cancel_while_running(database, client, second)
        state = client.wait_for_request(archive_id, 60, until_units_finish=True)
        assert [t["status"] for t in state["tasks"]] == ["cancelled"]
        with database.session() as session:
            unit = session.scalars(select(StepUnit).join(
                Establishment, Establishment.id == StepUnit.establishment_id).where(
                Establishment.uai == second, StepUnit.step == Step.ARCHIVE)).one()
            assert unit.status is UnitStatus.PENDING and "Interrompue" in unit.error
            assert len(json.loads(unit.checkpoint).get("phases", {})) < unit.progress_total
        again = client.request(RequestAction.RUN, step="archive", uais=[second])
        client.wait_for_request(again, 60, until_units_finish=True)
        assert statuses(database)[(second, Step.ARCHIVE)][0] is UnitStatus.DONE
        with database.session() as session:
            year = current_school_year(session)
            ids = list(session.scalars(select(Establishment.id).where(Establishment.uai == second)))
            assert [r.problems for r in verify(session, academy2.storage, ids, year.id)] == [[]]

        # Retry: only the failed unit runs again, not the blocked one.
        with database.session() as session:
            year = current_school_year(session)
            by_uai = dict(session.execute(select(Establishment.uai, Establishment.id)).all())
            failed = get_unit(session, by_uai[first], year.id, Step.PURGE_TRASH)
            failed.status, failed.error = UnitStatus.FAILED, "disque plein"
            blocked = get_unit(session, by_uai[second], year.id, Step.DELETE_OBSOLETE)
            blocked.status, blocked.error = UnitStatus.BLOCKED, "archives manquantes"
        retry_id = client.request(RequestAction.RETRY)
        state = client.wait_for_request(retry_id, 60, until_units_finish=True)
        assert "1 unité(s) en échec relancée(s)" in state["message"]
        assert [(t["uai"], t["milestone"], t["status"]) for t in state["tasks"]] == [
            (first, "purge-trash", "done")]
        assert statuses(database)[(first, Step.PURGE_TRASH)][0] is UnitStatus.DONE
        assert statuses(database)[(second, Step.DELETE_OBSOLETE)][0] is UnitStatus.BLOCKED

        # Support staff: the client refuses, and so does the engine.
        with pytest.raises(PermissionError):
            DatabaseEngineClient(database, read_only=True).request(RequestAction.RUN, step="1")
        with database.session() as session:
            row = EngineRequest(created_at=dt.datetime.now(dt.UTC), action="run",
                                params=json.dumps({"step": "3"}), requester_read_only=True,
                                status=RequestStatus.QUEUED, message="", requested_by="support")
            session.add(row)
            session.flush()
            sneaky = row.id
        state = client.wait_for_request(sneaky, 30)
        assert state["status"] == "refused" and "consultation" in state["message"]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_one_engine_per_database_and_a_stale_lease_is_taken_over(database_url: str,
                                                                  tmp_path: Path) -> None:
    database = open_database(database_url)
    try:
        with running_engine(database, tmp_path):
            second = Engine(database, tmp_path, EngineConfig())
            with pytest.raises(LeaseHeldError, match="Un moteur tourne déjà"):
                second.run()
            info = read_lease(database)
            assert info is not None and info.held and info.pid == os.getpid()
        assert not read_lease(database).held

        def holder(host: str, pid: int, age: dt.timedelta) -> None:
            with database.session() as session:
                session.execute(update(EngineLease).where(EngineLease.name == LEASE_NAME).values(
                    token="ancien", holder=f"{host}:{pid}", host=host, pid=pid,
                    heartbeat_at=dt.datetime.now(dt.UTC) - age))

        holder("autre-serveur", 4242, dt.timedelta(seconds=5))
        with pytest.raises(LeaseHeldError, match="autre-serveur:4242"):
            acquire(database)
        holder("autre-serveur", 4242, dt.timedelta(minutes=10))
        taken = acquire(database)
        assert taken.previous is not None and taken.previous.holder == "autre-serveur:4242"

        import socket

        dead = _dead_pid()
        holder(socket.gethostname(), dead, dt.timedelta(seconds=1))
        again = acquire(database)
        assert again.previous is not None and again.previous.pid == dead
        with pytest.raises(LeaseLostError):
            taken.heartbeat()
        again.release()
    finally:
        database.dispose()
