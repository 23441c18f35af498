"""Timetable imports: CPU seconds per establishment, one process each against one batch.

The engine used to start a child process per timetable request (one establishment each);
it now imports the requests of many establishments in one child
(:class:`~yearchange_tui.scheduling.imports.ImportChild`). This measures both on the same
files of a sample académie, alternated, each pass re-importing every establishment's
export (UDT for collèges, EDT for lycées) through the engine's child as the engine does:
``before`` starts one child per establishment, ``after`` one child for all. CPU seconds
are the parent's plus its ended children's.

Run: ``python -m yearchange_tui.bench.timetables --establishments 20`` (builds the sample in
a temporary folder; steps 1 to 3 are marked done and the sample's AAF delivery is imported
as step 4, so the N+1 classes exist).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from yearchange_tui.bench.changeover import load_average
from yearchange_tui.bench.measure import cpu_seconds
from yearchange_tui.changeover.runner import ChangeoverRunner
from yearchange_tui.changeover.steps.init_directory import import_aaf_delivery
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import Establishment
from yearchange_tui.importing.outcome import ImportOutcome
from yearchange_tui.sample.build import build_sample
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.imports import ImportChild
from yearchange_tui.workflow.models import Step
from yearchange_tui.workflow.units import current_school_year, finish_unit, get_unit

Order = dict[str, Any]
"""The params of one ``import-timetable`` request: path, uai, version."""


def ready_for_timetables(database: Database, storage: Path, aaf: Path) -> None:
    """Mark steps 1 to 3 done for every establishment and import the AAF delivery ``aaf``
    as their step 4 (the classes of N+1 exist: timetables can be imported)."""
    with database.session() as session:
        year = current_school_year(session)
        for establishment_id in session.scalars(select(Establishment.id)):
            for step in (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE):
                unit = get_unit(session, establishment_id, year.id, step)
                assert unit is not None
                finish_unit(unit, {})
    import_aaf_delivery(ChangeoverRunner(database, storage), [aaf])


def timetable_orders(folder: Path) -> list[Order]:
    """One request per establishment: its UDT (collège) or EDT (lycée) export of
    ``folder`` (a sample's ``timetables/``), with the version the sample's software has."""
    orders = []
    for path in sorted(folder.iterdir()):
        if path.name.endswith("_UDT.zip"):
            orders.append({"path": str(path), "uai": path.name[:8], "version": "26"})
        elif path.name.startswith("Edt_To_"):
            orders.append({"path": str(path), "uai": path.name.split("_")[3],
                           "version": "2020"})
    return orders


def import_in_one_process(url: str, storage: Path, orders: list[Order]
                          ) -> list[ImportOutcome | None]:
    """The engine's way: every order in one child process, one after the other."""
    child = ImportChild(url, storage, "timetable")
    try:
        return [child.run(RequestAction.IMPORT_TIMETABLE, order)[0] for order in orders]
    finally:
        child.close()


def import_one_process_each(url: str, storage: Path, orders: list[Order]
                            ) -> list[ImportOutcome | None]:
    """The former way (the reference): a child process started per order."""
    return [import_in_one_process(url, storage, [order])[0] for order in orders]



def bench_timetable_imports(url: str, storage: Path, orders: list[Order], repeats: int,
                            say: Callable[[str], None],
                            load: Callable[[], float | None]) -> dict[str, Any]:
    """CPU and wall seconds per establishment, one process each against one batch
    (alternated after one unmeasured pass, best of ``repeats``)."""
    say(f"import des {len(orders)} emplois du temps (premier passage, non mesuré)…")
    import_in_one_process(url, storage, orders)
    ways = {"one_process_each": import_one_process_each, "batch": import_in_one_process}
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    wall: dict[str, list[float]] = {name: [] for name in ways}
    statuses: dict[str, list[str]] = {}
    for attempt in range(repeats):
        for name, way in ways.items():
            say(f"imports d'emplois du temps ({name}), mesure {attempt + 1}/{repeats}…")
            started, cpu_started = time.perf_counter(), cpu_seconds()
            outcomes = way(url, storage, orders)
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(cpu_seconds() - cpu_started)
            statuses[name] = [o.status.value if o else "none" for o in outcomes]
    count = len(orders)
    return {
        "establishments": count,
        "cpu_s_per_establishment": {name: round(min(t) / count, 3) for name, t in cpu.items()},
        "wall_s_per_establishment": {name: round(min(t) / count, 3) for name, t in wall.items()},
        "statuses": statuses["batch"],
        "same_statuses": statuses["batch"] == statuses["one_process_each"],
        "load": load(),
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m yearchange_tui.bench.timetables``."""

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--establishments", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="yearchange-edt-") as folder:
        work = args.keep or Path(folder)
        print(f"… académie de {args.establishments} établissements", flush=True)
        build_sample(work, args.establishments, seed=1, year=2025)
        url = f"sqlite:///{work / 'yearchange.db'}"
        database = open_database(url)
        ready_for_timetables(database, work / "storage", work / "aaf")
        database.dispose()
        result = bench_timetable_imports(url, work / "storage",
                                         timetable_orders(work / "timetables"), args.repeats,
                                         lambda line: print(f"… {line}", flush=True),
                                         load_average)
    print(result)


if __name__ == "__main__":
    main()
