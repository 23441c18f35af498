"""``yearchange bench``: the dry run against the former dry run, measured in the same run.

The dry run used to build every archive in full (deflated, hashed into a sink that kept
nothing), one establishment after the other. It now builds the same archives member by
member but only measures them (:class:`~yearchange_tui.changeover.effects.RecordingEffects`),
and ``--workers`` simulates establishments in parallel processes. The reference here is
the former path, kept only for this comparison (:class:`FullBuildEffects`), on the same
database and storage; the reports of both are compared row for row.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import Connection

from yearchange_tui.bench.measure import cpu_seconds
from yearchange_tui.changeover.dry_run import dry_run_units
from yearchange_tui.changeover.effects import (
    ArchiveBuild,
    ArchiveResult,
    RecordingEffects,
    _build_zip,
)
from yearchange_tui.changeover.outcomes import UnitOutcome
from yearchange_tui.changeover.runner import DRY_RUN_STEPS, ChangeoverRunner
from yearchange_tui.ent.database import Database


class FullBuildEffects(RecordingEffects):
    """The former dry run (reference only): every archive built, deflated and hashed into
    a sink that keeps nothing."""

    def write_archive(self, connection: Connection, *, key: str, kind: str, relative_path: str,
                      establishment_id: int, build: ArchiveBuild, rubric_id: int | None,
                      title: str, created_at: dt.datetime,
                      school_year_id: int | None = None) -> ArchiveResult:
        entries, sink = _build_zip(None, build)
        self._count_archive(kind, entries)
        return ArchiveResult(key, kind, relative_path, entries, sink.position,
                             sink.digest.hexdigest())

    def archive_members(self) -> AbstractContextManager[None]:
        return nullcontext()


def report_rows(outcomes: list[UnitOutcome]) -> list[tuple[Any, ...]]:
    """What a dry run reports per unit (counts, lists, warnings), comparable across runs."""
    return [(outcome.uai, outcome.step, outcome.counts, outcome.lists,
             list(zip(outcome.warning_codes, outcome.warnings, strict=True)))
            for outcome in outcomes]



def bench_dry_run(database: Database, runner: ChangeoverRunner, workers: int, repeats: int,
                  say: Callable[[str], None], load: Callable[[], float | None]
                  ) -> dict[str, Any]:
    """The dry run of every establishment: the former full build (1 process) against the
    new dry run with 1 and with ``workers`` processes, alternated, best of ``repeats``.

    CPU seconds include the worker processes (they have ended when the run returns).
    """
    refs = runner.establishments()
    runs: dict[str, Callable[[], list[UnitOutcome]]] = {
        "full_build": lambda: dry_run_units(runner, refs, DRY_RUN_STEPS,
                                            effects=FullBuildEffects),
        "measured": lambda: runner.dry_run(refs, DRY_RUN_STEPS),
        "measured_workers": lambda: runner.dry_run(refs, DRY_RUN_STEPS, workers=workers),
    }
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    reports: dict[str, list[tuple[Any, ...]]] = {}
    for attempt in range(repeats):
        for name, run in runs.items():
            say(f"passage à blanc ({name}), mesure {attempt + 1}/{repeats}…")
            started, cpu_started = time.perf_counter(), cpu_seconds()
            outcomes = run()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(cpu_seconds() - cpu_started)
            reports[name] = report_rows(outcomes)
    best = {name: min(times) for name, times in wall.items()}
    return {
        "establishments": len(refs), "workers": workers,
        "seconds": {name: [round(t, 3) for t in times] for name, times in wall.items()},
        "cpu_seconds": {name: [round(t, 3) for t in times] for name, times in cpu.items()},
        "speedup_same_process": round(best["full_build"] / best["measured"], 2),
        "speedup": round(best["full_build"] / best["measured_workers"], 2),
        "cpu_ratio_same_process": round(min(cpu["full_build"]) / min(cpu["measured"]), 2),
        "cpu_ratio": round(min(cpu["full_build"]) / min(cpu["measured_workers"]), 2),
        "same_report": reports["full_build"] == reports["measured"]
        == reports["measured_workers"],
        "backend": database.engine.dialect.name,
        "load": load(),
    }
