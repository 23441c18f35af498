"""Engine lifecycle (issue #12 finding 8): `yearchange engine-stop` stops a real detached
engine cleanly and says so; the console's farewell says whether the engine keeps running
and how to stop it; `yearchange demo` stops the engine of the demo it replaces, so the old
engine's « Moteur arrêté » never reaches the new demo's journal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select
from template_support import copy_sample

from yearchange_tui.ent.database import open_database
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.lease import read_lease
from yearchange_tui.scheduling.models import EngineEventRow
from yearchange_tui.scheduling.spawn import spawn_engine, wait_for_engine
from yearchange_tui.tui.app import quit_summary


def yearchange(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YEARCHANGE_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "yearchange_tui.cli.main", *args],
                          capture_output=True, text=True, check=False, env=env,
                          stdin=subprocess.DEVNULL)


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)


def test_engine_stop_stops_a_detached_engine_cleanly(tmp_path: Path) -> None:
    out = copy_sample(tmp_path / "academie", 1, 5)
    url = f"sqlite:///{out / 'yearchange.db'}"
    database = open_database(url)
    data = tmp_path / "data"
    none = yearchange(data, "--db", url, "engine-stop")
    assert none.returncode == 0, none.stderr
    assert "Aucun moteur ne tourne sur cette base : rien à arrêter." in none.stdout

    process = spawn_engine(url, out / "storage", log_file=tmp_path / "engine.log",
                           extra_args=("--poll", "0.2"))
    try:
        assert wait_for_engine(database, process, 60)
        client = DatabaseEngineClient(database)
        holder = read_lease(database).holder  # type: ignore[union-attr]
        summary = quit_summary(client)
        assert f"Le moteur {holder} continue de tourner" in summary
        assert f"pour l'arrêter : yearchange engine-stop --db {url}" in summary

        read_only = yearchange(data, "--db", url, "--read-only", "engine-stop")
        assert read_only.returncode == 2
        assert process.poll() is None  # still running

        stopped = yearchange(data, "--db", url, "engine-stop")
        assert stopped.returncode == 0, stopped.stderr
        assert f"Arrêt demandé au moteur {holder}" in stopped.stdout
        assert f"Moteur {holder} arrêté proprement." in stopped.stdout
        assert process.wait(30) == 0  # it had already exited when engine-stop returned
        lease = read_lease(database)
        assert lease is not None and not lease.held
        with database.session() as session:
            messages = [row.message for row in session.scalars(select(EngineEventRow))]
        assert any("Arrêt demandé par" in message for message in messages)
        assert "Moteur arrêté." in messages
        assert quit_summary(client) == "Console fermée. Aucun moteur ne tourne sur cette base."
    finally:
        kill(process)
        database.dispose()


def test_demo_stops_the_engine_of_the_demo_it_replaces(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = yearchange(data, "demo", "--no-console", "--establishments", "1")
    assert first.returncode == 0, first.stderr
    db_file = data / "demo" / "yearchange.db"
    url = f"sqlite:///{db_file}"
    database = open_database(url)
    process = spawn_engine(url, data / "demo" / "storage", log_file=tmp_path / "engine.log",
                           extra_args=("--poll", "0.2"))
    try:
        assert wait_for_engine(database, process, 60)
        holder = read_lease(database).holder  # type: ignore[union-attr]
        database.dispose()
        second = yearchange(data, "demo", "--no-console", "--establishments", "1")
        assert second.returncode == 0, second.stderr
        assert f"Démo précédente : Moteur {holder} arrêté proprement." in second.stderr
        assert process.poll() is not None  # the old engine is gone
        fresh = open_database(url)
        with fresh.session() as session:
            messages = [row.message for row in session.scalars(select(EngineEventRow))]
        fresh.dispose()
        assert not any("Moteur arrêté" in message or "Arrêt" in message
                       for message in messages)
        assert read_lease(open_database(url)) is None or not read_lease(
            open_database(url)).held  # type: ignore[union-attr]
    finally:
        kill(process)
