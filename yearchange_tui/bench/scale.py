"""``yearchange bench --scale``: units per second with 1 then 2 worker processes on one
PostgreSQL database, and what that means for a national ENT.

The bench never writes the database the URL names: it builds a sample académie in a
database of its own on the same server (``yearchange_scale_<pid>_<token>_modele``), copies
it with ``CREATE DATABASE … TEMPLATE`` (and its storage folder) for each measured run, and
drops everything at the end, even after a failure. Each run is the real thing: a headless
engine that hands units out (``local_workers = 0``) and ``yearchange worker`` processes
(1, then 2) on the copy; steps 1, 2 and 3 are requested one after the other for every
establishment, as an operator would.

Measured, per run: seconds per step and in all, units per second, the CPU seconds of the
worker processes (``RUSAGE_CHILDREN`` once they are reaped) and of the PostgreSQL backends
serving the run's database (their ``/proc/<pid>/stat``, sampled while it runs; « non
mesurable » when the server is not on this machine). Derived: the speed-up of 2 processes
over 1, each step's cost per establishment for one worker process, the database server's
share of the CPU, and the projection for :data:`NATIONAL_ESTABLISHMENTS` establishments on
8, 16 and 32 worker cores. The machine's 1-minute load average is taken after each figure.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from yearchange_tui.bench.changeover import load_average
from yearchange_tui.bench.measure import local_postgres_cpu, process_cpu
from yearchange_tui.bench.postgres import BenchDatabaseError, BenchDatabases, bench_databases
from yearchange_tui.ent.database import display_url, normalise_url, open_database
from yearchange_tui.ent.models import Establishment, Person
from yearchange_tui.sample.build import build_sample
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.models import WorkerRow, WorkerState
from yearchange_tui.scheduling.spawn import spawn_engine, wait_for_engine
from yearchange_tui.workflow.models import Step

SCALE_DB_CODE = "BANC-ECHELLE-POSTGRESQL"
BENCH_URL_VARIABLE = "YEARCHANGE_BENCH_PG_URL"

NATIONAL_ESTABLISHMENTS = 10_000
"""A national ENT (issue 17: about 10,000 establishments, 5 million students)."""

WORKER_CORES = (8, 16, 32)
SPEEDUP_TARGET = 1.8
NIGHT_HOURS = 8.0
STEPS = (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE)
STEP_TIMEOUT = 3600.0


class ScaleBenchError(Exception):
    """The scale bench cannot run (French message, stable code)."""

    code = SCALE_DB_CODE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def scale_url(explicit: str | None) -> str:
    """The PostgreSQL server to measure on: ``--db``, else ``YEARCHANGE_BENCH_PG_URL``.

    Raises:
        ScaleBenchError: none given, or not PostgreSQL.
    """
    url = explicit or os.environ.get(BENCH_URL_VARIABLE, "")
    if not url:
        raise ScaleBenchError(
            f"bench --scale mesure des processus de travail sur PostgreSQL (code "
            f"{SCALE_DB_CODE}) : donnez le serveur avec --db postgresql://… ou la variable "
            f"{BENCH_URL_VARIABLE}. Le banc y crée ses propres bases puis les supprime ; "
            "rien n'a été fait.")
    if not normalise_url(url).startswith("postgresql"):
        raise ScaleBenchError(
            f"bench --scale demande PostgreSQL (code {SCALE_DB_CODE}) : « {display_url(url)} » "
            "n'en est pas une URL (les workers de la flotte ne tournent que sur PostgreSQL) ; "
            "rien n'a été fait.")
    return url


# -- databases the bench owns ------------------------------------------------------------------


@contextmanager
def _bench_databases(url: str) -> Iterator[BenchDatabases]:
    """The bench's own databases (:func:`~yearchange_tui.bench.postgres.bench_databases`),
    its refusals under this bench's code."""
    try:
        with bench_databases(url) as databases:
            yield databases
    except BenchDatabaseError as error:
        raise ScaleBenchError(f"{error.message} (code {SCALE_DB_CODE})") from error


@dataclass
class BackendCpu:
    """Samples the CPU time of the backends serving one database while a run goes on.

    A backend seen at the first sample counts from that sample; one that appears later
    counts whole (it was started for the run). A backend that ends between two samples
    loses at most one interval (the run's connections live as long as its processes).
    """

    admin: Any
    database: str
    interval: float = 0.5
    first: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    measurable: bool = True
    started: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def sample(self) -> None:
        with self.admin.connect() as connection:
            pids = [row[0] for row in connection.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :name"),
                {"name": self.database})]
        for pid in pids:
            seconds = local_postgres_cpu(pid)
            if seconds is None:
                self.measurable = False
                continue
            if pid not in self.first:
                self.first[pid] = seconds if not self.started else 0.0
            self.last[pid] = seconds
        self.started = True

    def __enter__(self) -> Self:
        self.sample()
        self.thread = threading.Thread(target=self._run, name="cpu-postgresql", daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.sample()
            except DBAPIError:
                continue

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        self.sample()

    def seconds(self) -> float | None:
        """CPU seconds spent by the backends since :meth:`__enter__` (None: not local)."""
        if not self.measurable:
            return None
        return round(sum(value - self.first.get(pid, 0.0) for pid, value in self.last.items()),
                     2)


# -- one measured run ---------------------------------------------------------------------------


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stop(process: subprocess.Popen[bytes], timeout: float = 300.0) -> None:
    """SIGTERM a process group and reap it (SIGKILL after ``timeout``)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(60)


def _measure_run(url: str, storage: Path, folder: Path, workers: int, admin: Any,
                 database_name: str, say: Callable[[str], None]) -> dict[str, Any]:
    """Steps 1-3 for every establishment of the database at ``url`` by ``workers``
    worker processes (one ``yearchange worker --concurrency N``)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.toml"
    config.write_text("[yearchange.engine]\nlocal_workers = 0\nretries = 0\n"
                      "poll_interval = 0.2\n", encoding="utf-8")
    environment = {**os.environ, "YEARCHANGE_DB": url,
                   "YEARCHANGE_DATA_DIR": str(folder / "data")}
    database = open_database(url)
    engine = spawn_engine(url, storage, log_file=folder / "engine.log", config_file=config,
                          extra_args=("--poll", "0.2"), env=environment)
    worker: subprocess.Popen[bytes] | None = None
    try:
        if not wait_for_engine(database, engine, 120):
            raise ScaleBenchError(f"Le moteur de mesure n'a pas démarré (journal : "
                                  f"{folder / 'engine.log'}).")
        before = _children_cpu()
        with (folder / "worker.log").open("ab") as output:
            worker = subprocess.Popen(
                [sys.executable, "-m", "yearchange_tui", "--storage", str(storage),
                 "--config", str(config), "worker", "--concurrency", str(workers),
                 "--host", f"banc-{workers}"],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                env=environment, cwd=folder, start_new_session=True)
        pids = _wait_for_workers(database, worker, workers, folder)
        client = DatabaseEngineClient(database)
        steps: dict[str, dict[str, Any]] = {}
        units = 0
        with BackendCpu(admin, database_name) as backends:
            started = time.perf_counter()
            for step in STEPS:
                say(f"{workers} processus : étape {step.value}…")
                step_started = time.perf_counter()
                cpu_before = _workers_cpu(pids)
                backends.sample()
                db_before = backends.seconds()
                request = client.request(RequestAction.RUN, step=step.value)
                state = client.wait_for_request(request, STEP_TIMEOUT, until_units_finish=True)
                seconds = time.perf_counter() - step_started
                tasks = (state or {}).get("tasks", [])
                statuses = sorted({task["status"] for task in tasks})
                if state is None or statuses != ["done"]:
                    raise ScaleBenchError(
                        f"Étape {step.value} avec {workers} processus : unités "
                        f"{', '.join(statuses) or 'jamais terminées'} (journaux dans {folder}).")
                units += len(tasks)
                backends.sample()
                db_after = backends.seconds()
                steps[step.value] = {
                    "seconds": round(seconds, 2), "units": len(tasks), "load": load_average(),
                    "worker_cpu_s": round(_workers_cpu(pids) - cpu_before, 2),
                    "db_cpu_s": (None if db_before is None or db_after is None
                                 else round(db_after - db_before, 2))}
            elapsed = time.perf_counter() - started
        _stop(worker)
        worker_cpu = _children_cpu() - before
        worker = None
        return {"workers": workers, "seconds": round(elapsed, 2), "units": units,
                "units_per_s": round(units / elapsed, 4), "steps": steps,
                "worker_cpu_s": round(worker_cpu, 2), "db_cpu_s": backends.seconds(),
                "load": load_average()}
    finally:
        if worker is not None:
            _stop(worker, 60)
        _stop(engine, 120)
        database.dispose()


def _workers_cpu(pids: list[int]) -> float:
    """CPU seconds so far of the worker processes (they run on this machine)."""
    return sum(process_cpu(pid) or 0.0 for pid in pids)


def _wait_for_workers(database: Any, worker: subprocess.Popen[bytes], count: int,
                      folder: Path) -> list[int]:
    """The pids of the ``count`` worker processes, once all are registered."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with database.session() as session:
            pids = list(session.scalars(select(WorkerRow.pid).where(
                WorkerRow.state == WorkerState.RUNNING)))
        if len(pids) == count:
            return pids
        if worker.poll() is not None:
            break
        time.sleep(0.2)
    raise ScaleBenchError(f"Les {count} processus de travail n'ont pas démarré (journal : "
                          f"{folder / 'worker.log'}).")


# -- the bench ----------------------------------------------------------------------------------


def run_scale_bench(url: str, establishments: int, work: Path,
                    progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure steps 1-3 with 1 then 2 worker processes on copies of one sample.

    Args:
        url: a PostgreSQL server URL (the database it names is never touched).
        establishments: size of the sample académie.
        work: a folder for the sample's storage, the copies and the logs.
        progress: receives French progress lines.
    """
    say = progress or (lambda line: None)
    with _bench_databases(url) as databases:
        say(f"construction d'une académie de {establishments} établissements sur PostgreSQL…")
        model_url = databases.create("modele")
        started = time.perf_counter()
        sample = build_sample(work / "modele", establishments, seed=1, year=2025,
                              db_url=model_url)
        build_seconds = time.perf_counter() - started
        students = _students_per_establishment(model_url)
        runs = []
        for workers in (1, 2):
            label = f"w{workers}"
            say(f"copie de l'académie pour la mesure à {workers} processus…")
            run_url = databases.create(label, template="modele")
            storage = work / label / "storage"
            shutil.copytree(sample.storage_dir, storage)
            runs.append(_measure_run(run_url, storage, work / label, workers, databases.admin,
                                     databases.name(label), say))
    return _result(establishments, build_seconds, students, runs)


def _students_per_establishment(url: str) -> float:
    database = open_database(url)
    try:
        with database.session() as session:
            count = session.scalar(select(func.count()).select_from(Establishment)) or 1
            students = session.scalar(select(func.count()).select_from(Person).where(
                Person.kind == "student")) or 0
        return round(students / count, 1)
    finally:
        database.dispose()


def _result(establishments: int, build_seconds: float, students: float,
            runs: list[dict[str, Any]]) -> dict[str, Any]:
    one, two = runs
    speedup = two["units_per_s"] / one["units_per_s"]
    efficiency = min(1.0, speedup / 2)
    cost = {step: one["steps"][step]["seconds"] / establishments for step in one["steps"]}
    # CPU seconds of the worker processes per establishment (both runs: the same work);
    # unlike wall time, insensitive to the other programs sharing the machine.
    cpu_cost = {step: sum(run["steps"][step]["worker_cpu_s"] for run in runs)
                / (len(runs) * establishments) for step in one["steps"]}
    db_steps = [run["steps"][step]["db_cpu_s"] for run in runs for step in run["steps"]]
    db_cost = (None if None in db_steps else
               {step: sum(run["steps"][step]["db_cpu_s"] for run in runs)
                / (len(runs) * establishments) for step in one["steps"]})
    cpu_projection = {}
    for cores in WORKER_CORES:
        hours = {step: round(NATIONAL_ESTABLISHMENTS * seconds / cores / 3600, 2)
                 for step, seconds in cpu_cost.items()}
        cpu_projection[str(cores)] = {"hours_per_step": hours,
                                      "steps_1_to_3_hours": round(sum(hours.values()), 2)}
    projection = {}
    for cores in WORKER_CORES:
        hours = {step: round(NATIONAL_ESTABLISHMENTS * seconds / (cores * efficiency) / 3600, 2)
                 for step, seconds in cost.items()}
        projection[str(cores)] = {"hours_per_step": hours,
                                  "steps_1_to_3_hours": round(sum(hours.values()), 2)}
    db_cpu = [run["db_cpu_s"] for run in runs]
    db_share = None
    db_cores_per_worker_core = None
    if None not in db_cpu:
        total_db = sum(db_cpu)
        total_workers = sum(run["worker_cpu_s"] for run in runs)
        db_share = round(total_db / (total_db + total_workers), 3) if total_db else 0.0
        db_cores_per_worker_core = round(total_db / total_workers, 3) if total_workers else None
    return {
        "establishments": establishments, "students_per_establishment": students,
        "sample_build_seconds": round(build_seconds, 2), "cores": os.cpu_count(),
        "runs": runs, "speedup": round(speedup, 3), "speedup_target": SPEEDUP_TARGET,
        "parallel_efficiency": round(efficiency, 3),
        "cost_per_establishment_s": {step: round(value, 3) for step, value in cost.items()},
        "worker_cpu_per_establishment_s": {step: round(value, 3)
                                           for step, value in cpu_cost.items()},
        "db_cpu_per_establishment_s": (None if db_cost is None else
                                       {step: round(value, 3) for step, value in db_cost.items()}),
        "cpu_projection": cpu_projection,
        "db_cpu_share": db_share, "db_cores_per_worker_core": db_cores_per_worker_core,
        "national_establishments": NATIONAL_ESTABLISHMENTS, "projection": projection,
        "night_hours": NIGHT_HOURS,
    }


def _load(value: float | None) -> str:
    return "[charge n/d]" if value is None else f"[charge {value:.2f}]"


def scale_lines(result: dict[str, Any]) -> list[str]:
    """The bench's report in French, the load average beside each figure."""
    labels = {step.value: f"étape {number}" for number, step in enumerate(STEPS, start=1)}
    lines = [(f"Banc d'échelle — {result['establishments']} établissements "
              f"({result['students_per_establishment']} élèves en moyenne), PostgreSQL, "
              f"{result['cores']} cœurs ; charge 1 min relevée après chaque mesure (machine "
              "partagée : comparer les rapports, pas les débits)")]
    for run in result["runs"]:
        lines.append(f"  {run['workers']} processus : {run['units']} unités en "
                     f"{run['seconds']} s → {run['units_per_s']} unités/s {_load(run['load'])}")
        lines.append("    " + " ; ".join(
            f"{labels[step]} {figures['seconds']} s {_load(figures['load'])}"
            for step, figures in run["steps"].items()))
    last = result["runs"][-1]
    lines.append(f"  accélération 2 processus / 1 : ×{result['speedup']} (cible ≥ "
                 f"{result['speedup_target']} sur 2 cœurs) {_load(last['load'])}")
    lines.append("  coût par établissement (1 processus) : " + " ; ".join(
        f"{labels[step]} {seconds} s" for step, seconds in
        result["cost_per_establishment_s"].items()) + f" {_load(result['runs'][0]['load'])}")
    db_cost = result["db_cpu_per_establishment_s"]
    lines.append("  CPU par établissement (processus de travail, moyenne des 2 mesures) : "
                 + " ; ".join(f"{labels[step]} {seconds} s" for step, seconds in
                              result["worker_cpu_per_establishment_s"].items())
        + ("" if db_cost is None else " ; base : " + " ; ".join(
            f"{labels[step]} {seconds} s" for step, seconds in db_cost.items()))
        + f" {_load(last['load'])}")
    if result["db_cpu_share"] is None:
        lines.append("  CPU du serveur PostgreSQL : non mesurable (serveur sur une autre "
                     "machine)")
    else:
        db = sum(run["db_cpu_s"] for run in result["runs"])
        workers = sum(run["worker_cpu_s"] for run in result["runs"])
        lines.append(f"  CPU du serveur PostgreSQL : {db:.1f} s pour {workers:.1f} s des "
                     f"workers → part de la base {result['db_cpu_share'] * 100:.1f} %, "
                     f"{result['db_cores_per_worker_core']} cœur de base par cœur de worker "
                     f"{_load(last['load'])}")
    lines.append(f"  projection pour {result['national_establishments']:,} établissements "
                 .replace(",", " ")
                 + f"(coût mesuré, efficacité parallèle {result['parallel_efficiency']} "
                 "gardée) :")
    for cores, figures in result["projection"].items():
        steps = " ; ".join(f"{labels[step]} {hours} h"
                           for step, hours in figures["hours_per_step"].items())
        total = figures["steps_1_to_3_hours"]
        target = (f" (cible < {result['night_hours']:g} h : "
                  f"{'tenue' if total < result['night_hours'] else 'non tenue'})"
                  if cores == "16" else "")
        db_cores = ("" if result["db_cores_per_worker_core"] is None else
                    f" ; base : {int(cores) * result['db_cores_per_worker_core']:.1f} cœurs")
        lines.append(f"    {cores} cœurs : {steps} → étapes 1–3 {total} h{target}{db_cores}")
    lines.append("  projection au CPU mesuré (cœurs dédiés, sans autre charge) :")
    for cores, figures in result["cpu_projection"].items():
        steps = " ; ".join(f"{labels[step]} {hours} h"
                           for step, hours in figures["hours_per_step"].items())
        lines.append(f"    {cores} cœurs dédiés : {steps} → étapes 1–3 "
                     f"{figures['steps_1_to_3_hours']} h")
    return lines
