"""A real database for the console bench: an académie's establishments (the product's own
sample writer, :func:`~yearchange_tui.sample.fill.fill_console_database`) with units and
engine tasks in every state, written set-based, and a writer process that advances the
running units as the engine's runner does (one ``UPDATE`` of the unit per phase).

Builds 10,000 establishments in seconds (``yearchange sample`` writes their people too,
which the console never reads).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import time
from typing import Any

from sqlalchemy import insert, select, update

from yearchange_tui.ent.database import open_database
from yearchange_tui.ent.models import SchoolYear
from yearchange_tui.sample.fill import fill_console_database
from yearchange_tui.sample.roster import establishment_heads
from yearchange_tui.scheduling.models import EngineTask, TaskStatus
from yearchange_tui.workflow.models import Step, StepUnit, UnitStatus

RUNNING_TOTAL = 100_000
"""Items of a running unit (the writer advances it)."""


def _unit(establishment_id: int, year_id: int, step: Step, status: UnitStatus,
          at: dt.datetime, **values: Any) -> dict[str, Any]:
    row = {"establishment_id": establishment_id, "school_year_id": year_id, "step": step,
           "status": status, "started_at": at, "finished_at": None, "progress_done": 0,
           "progress_total": 0, "checkpoint": "{}", "counts": "{}", "error": "", "attempts": 1}
    row.update(values)
    return row


def build_console_database(url: str, establishments: int, running: int = 8,
                           seed: int = 1) -> dict[str, Any]:
    """Fill the empty database at ``url`` for the console bench.

    Every 10th establishment has steps 1 to 3 done, every 37th a failed archive, every
    50th a queued engine task; the first ``running`` ones archive now.

    Returns:
        ``seconds`` spent and the ``running_unit_ids``.
    """
    started = time.perf_counter()
    database = open_database(url)
    try:
        academy, heads = establishment_heads(establishments, seed)
        with database.engine.begin() as connection:
            by_uai = fill_console_database(connection, academy, heads)
            year_id = connection.scalar(select(SchoolYear.id).where(SchoolYear.is_current))
            now = dt.datetime.now(dt.UTC)
            units: list[dict[str, Any]] = []
            tasks: list[dict[str, Any]] = []
            for index, establishment_id in enumerate(by_uai.values()):
                if index < running:
                    units.append(_unit(establishment_id, year_id, Step.ARCHIVE,
                                       UnitStatus.RUNNING, now, progress_total=RUNNING_TOTAL))
                elif index % 10 == 0:
                    units.extend(_unit(establishment_id, year_id, step, UnitStatus.DONE, now,
                                       finished_at=now, progress_done=3, progress_total=3)
                                 for step in (Step.PURGE_TRASH, Step.ARCHIVE,
                                              Step.DELETE_OBSOLETE))
                elif index % 37 == 0:
                    units.append(_unit(establishment_id, year_id, Step.ARCHIVE,
                                       UnitStatus.FAILED, now, finished_at=now,
                                       error="disque plein"))
                if index % 50 == 25:
                    tasks.append({"request_id": None, "origin": "calendar",
                                  "milestone": Step.PURGE_TRASH.value,
                                  "establishment_id": establishment_id,
                                  "school_year_id": year_id, "status": TaskStatus.QUEUED,
                                  "due_at": now, "reason": "", "created_at": now})
            connection.execute(insert(StepUnit), units)
            if tasks:
                connection.execute(insert(EngineTask), tasks)
            running_ids = list(connection.scalars(select(StepUnit.id).where(
                StepUnit.status == UnitStatus.RUNNING)))
    finally:
        database.dispose()
    return {"seconds": round(time.perf_counter() - started, 1),
            "running_unit_ids": running_ids}


def _advance(url: str, unit_ids: list[int], period: float, stop: Any) -> None:
    """Advance each running unit by one phase every ``period`` seconds (child process)."""
    database = open_database(url, migrate=False)
    try:
        done = 0
        while not stop.wait(period):
            done = (done + 997) % RUNNING_TOTAL
            with database.engine.begin() as connection:
                for unit_id in unit_ids:
                    connection.execute(update(StepUnit).where(StepUnit.id == unit_id).values(
                        progress_done=done))
    finally:
        database.dispose()


class UnitWriter:
    """Another process advancing the running units while the console polls."""

    def __init__(self, url: str, unit_ids: list[int], period: float = 0.25) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._process = context.Process(target=_advance, args=(url, unit_ids, period,
                                                               self._stop), daemon=True)

    def start(self) -> None:
        """Start the writer process."""
        self._process.start()

    def stop(self) -> None:
        """Stop it and wait for it."""
        self._stop.set()
        self._process.join(10)
