"""Faults of a fleet of real worker processes on one PostgreSQL database (issue #17).

Three ``yearchange worker`` processes with different host names (separate processes,
sessions, work folders and TMPDIRs; one database, one storage root) and a headless engine
that hands units out run steps 1-3 of a 20-establishment sample académie:

- ``kill -9`` of one worker while it holds a unit with a committed checkpoint: another
  worker takes the unit over once the claim's heartbeat is older than its time-to-live
  (6 s here) and resumes it; the end state is the uninterrupted run's;
- every connection of the database cut mid-phase (``pg_terminate_backend``, in the test's
  own database only): the workers reconnect and finish, nothing is lost, same end state;
- a unit that keeps failing (a document of the storage replaced by a folder: real bad
  data, the same failure at every attempt) stops after the configured retries and
  ``yearchange status`` says why.

The reference is one uninterrupted run of steps 1-3 on a copy of the same sample; "end
state" is every row of every ENT table and the SHA-256 of every file under the storage
root (see :func:`fleet_support.ent_snapshot` for what is left out, and why).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from changeover_support import make_academy
from fleet_support import (
    STEPS_1_TO_3,
    Fleet,
    archive_bytes,
    claim_with_checkpoint,
    ent_snapshot,
    first_difference,
    running_fleet,
    terminate_backends,
    unit_states,
    wait_until,
)
from pg_support import PG_URL, drop_pg_database, fresh_pg_database
from sqlalchemy import select
from template_support import TemplateStore

from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.workflow.models import Step, StepUnit, UnitClaim, UnitStatus

pytestmark = [
    # Three change-overs of 20 establishments (the reference, the kill, the cut) and a
    # small one, with their engine and workers: minutes even on a quiet machine. CI runs them; the inner
    # loop (`pytest -m "not slow"`) leaves them out, like the benches.
    pytest.mark.slow,
    pytest.mark.skipif(not PG_URL, reason="the fleet runs on PostgreSQL only: set "
                                          "YEARCHANGE_TEST_PG_URL to run the fault tests"),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and sessions"),
]

ESTABLISHMENTS = 20
HOSTS = ("machine-a", "machine-b", "machine-c")
CLAIM_TTL = 6.0
"""Seconds of silence after which a worker's claims are taken over (120 by default)."""


@dataclass(frozen=True)
class Reference:
    """The end state of an uninterrupted run of steps 1-3."""

    tables: dict[str, list[tuple[Any, ...]]]
    files: dict[str, str]


@pytest.fixture(scope="module")
def pg_database() -> Iterator[Any]:
    """A factory of fresh PostgreSQL databases, all dropped at the end of the module."""
    names: list[str] = []

    def create() -> str:
        url, name = fresh_pg_database()
        names.append(name)
        return url

    yield create
    for name in names:
        drop_pg_database(name)


@pytest.fixture(scope="module")
def reference(_templates: TemplateStore, pg_database: Any,
              tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """Steps 1-3 on the sample, uninterrupted (the engine's runner, two processes)."""
    storage = tmp_path_factory.mktemp("reference") / "storage"
    academy = make_academy(pg_database(), storage, ESTABLISHMENTS)
    started = dt.datetime.now(dt.UTC)
    try:
        runner = academy.runner(now=None)  # the real clock, as the workers have
        for step in STEPS_1_TO_3:
            outcomes = runner.run(Step(step), runner.establishments(), workers=2)
            assert {outcome.status for outcome in outcomes} == {"done"}
        return Reference(ent_snapshot(academy.database, started), archive_bytes(storage))
    finally:
        academy.database.dispose()


def _start(fleet: Fleet) -> None:
    fleet.start_engine()
    for host in HOSTS:
        fleet.start_worker(host)


def _all_done(fleet: Fleet, state: dict[str, Any], step: str) -> None:
    statuses = {task["status"] for task in state["tasks"]}
    assert statuses == {"done"}, (step, [(task["uai"], task["status"], task["reason"])
                                         for task in state["tasks"]])


def _assert_reference_end_state(fleet: Fleet, started: dt.datetime,
                                reference: Reference) -> None:
    tables = ent_snapshot(fleet.database, started)
    assert tables == reference.tables, first_difference(reference.tables, tables)
    files = archive_bytes(fleet.storage)
    assert files == reference.files, first_difference(reference.files, files)
    states = unit_states(fleet.database)
    assert {state for (_establishment, step), (state, _attempts) in states.items()
            if step in STEPS_1_TO_3} == {UnitStatus.DONE.value}


def _run_with_fault(fleet: Fleet, step: str, fault: Any) -> dict[str, Any]:
    """Request ``step``, do ``fault`` once a worker holds a unit mid-phase, wait for the end."""
    request = fleet.client.request(RequestAction.RUN, step=step)
    fault()
    state = fleet.client.wait_for_request(request, 900, until_units_finish=True)
    assert state is not None, fleet.engine_log()[-3000:]
    return state


def test_a_worker_killed_mid_phase_is_taken_over_and_the_end_state_is_the_reference(
        reference: Reference, pg_database: Any, tmp_path: Path) -> None:
    url = pg_database()
    academy = make_academy(url, tmp_path / "storage", ESTABLISHMENTS)
    started = dt.datetime.now(dt.UTC)
    victim: dict[str, Any] = {}

    with running_fleet(url, academy.storage, tmp_path / "fleet", academy.database,
                       claim_ttl=CLAIM_TTL) as fleet:
        _start(fleet)

        def kill_a_worker_holding_a_checkpoint() -> None:
            while True:
                host, unit_id = wait_until(lambda: claim_with_checkpoint(
                    academy.database, set(HOSTS)), "un worker au milieu d'une unité")
                worker = fleet.workers[host]
                os.killpg(worker.process.pid, signal.SIGSTOP)  # freeze, then make sure
                with academy.database.session() as session:
                    still_held = session.scalar(select(UnitClaim.host).where(
                        UnitClaim.unit_id == unit_id)) == host
                if still_held:
                    worker.kill()
                    victim.update(host=host, unit_id=unit_id)
                    return
                os.killpg(worker.process.pid, signal.SIGCONT)  # it had just finished

        _all_done(fleet, fleet.run_step("purge-trash"), "purge-trash")
        _all_done(fleet, _run_with_fault(fleet, "archive", kill_a_worker_holding_a_checkpoint),
                  "archive")
        _all_done(fleet, fleet.run_step("delete-obsolete"), "delete-obsolete")

        survivors = [worker for host, worker in fleet.workers.items() if host != victim["host"]]
        taken_over = [worker.host for worker in survivors
                      if f"Unité {victim['unit_id']} reprise à {victim['host']}"
                      in worker.output()]
        assert len(taken_over) == 1, [worker.output()[-2000:] for worker in survivors]
        assert all(worker.process.poll() is None for worker in survivors)
        with academy.database.session() as session:
            unit = session.get(StepUnit, victim["unit_id"])
            assert unit is not None
            # Begun by the victim, resumed from its checkpoint by the survivor.
            assert unit.status is UnitStatus.DONE and unit.attempts == 2
        _assert_reference_end_state(fleet, started, reference)
    academy.database.dispose()


def test_cut_database_connections_mid_phase_lose_nothing(
        reference: Reference, pg_database: Any, tmp_path: Path) -> None:
    url = pg_database()
    academy = make_academy(url, tmp_path / "storage", ESTABLISHMENTS)
    started = dt.datetime.now(dt.UTC)
    cuts: list[int] = []

    with running_fleet(url, academy.storage, tmp_path / "fleet", academy.database,
                       claim_ttl=CLAIM_TTL, retries=2, retry_wait=1.0) as fleet:
        _start(fleet)

        def cut_every_connection() -> None:
            wait_until(lambda: claim_with_checkpoint(academy.database, set(HOSTS)),
                       "un worker au milieu d'une unité")
            cuts.append(terminate_backends(academy.database))
            academy.database.engine.dispose()  # the test's own pooled connections were cut too

        _all_done(fleet, fleet.run_step("purge-trash"), "purge-trash")
        _all_done(fleet, _run_with_fault(fleet, "archive", cut_every_connection), "archive")
        _all_done(fleet, _run_with_fault(fleet, "delete-obsolete", cut_every_connection),
                  "delete-obsolete")

        # Every worker and the engine had connections (at least one each), all were cut.
        assert min(cuts) >= len(HOSTS) + 1, cuts
        assert all(worker.process.poll() is None for worker in fleet.workers.values()), [
            worker.output()[-2000:] for worker in fleet.workers.values()]
        assert fleet.engine is not None and fleet.engine.poll() is None
        _assert_reference_end_state(fleet, started, reference)
    academy.database.dispose()


def test_a_unit_that_keeps_failing_stops_after_the_retries_and_says_why(
        pg_database: Any, tmp_path: Path) -> None:
    url = pg_database()
    academy = make_academy(url, tmp_path / "storage", establishments=2)
    good, bad = sorted(path.name for path in academy.storage.iterdir() if path.is_dir())

    with running_fleet(url, academy.storage, tmp_path / "fleet", academy.database,
                       claim_ttl=CLAIM_TTL, retries=2, retry_wait=1.0) as fleet:
        fleet.start_engine()
        for host in HOSTS[:2]:
            fleet.start_worker(host)
        _all_done(fleet, fleet.run_step("purge-trash"), "purge-trash")
        # Real bad data: a class-textbook attachment of the bad establishment (one step 2
        # archives) is a folder on the storage, so its step 2 fails the same way at every
        # attempt (root may read any file, so a permission would not do).
        document = min((academy.storage / bad / "textbook").iterdir())
        document.unlink()
        document.mkdir()
        state = fleet.run_step("archive")
        tasks = {task["uai"]: task for task in state["tasks"]}
        assert tasks[good]["status"] == "done"
        assert tasks[bad]["status"] == "failed"
        # The engine's task says how many attempts were made and why the last one failed.
        assert tasks[bad]["reason"].startswith("en échec après 3 essais : "), tasks[bad]
        assert "c'est un dossier, pas un fichier" in tasks[bad]["reason"], tasks[bad]

        status = subprocess.run(
            [sys.executable, "-m", "yearchange_tui", "--db", url, "--storage",
             str(academy.storage), "status", "--json"],
            capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL)
        rows = {row["uai"]: row["steps"]["archive"] for row in json.loads(status.stdout)}
        assert rows[good]["status"] == "done"
        assert rows[bad]["status"] == "failed"
        assert "c'est un dossier, pas un fichier" in rows[bad]["error"]
        assert str(document) in rows[bad]["error"]

    with academy.database.session() as session:
        attempts = dict(session.execute(
            select(StepUnit.establishment_id, StepUnit.attempts).where(
                StepUnit.step == Step.ARCHIVE, StepUnit.status == UnitStatus.FAILED)).all())
    # Tried once, then twice again (retries = 2), then left failed: never a fourth time.
    assert list(attempts.values()) == [3]
    academy.database.dispose()
