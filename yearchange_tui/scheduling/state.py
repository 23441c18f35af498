"""The engine's shared state: one dataclass handed to each of its collaborators.

The engine's main loop, its unit workers (``unit-N``), its import threads (``import-N``)
and APScheduler's job threads all read it; each field says what guards it when several
threads write it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from yearchange_tui.ent.database import Database
from yearchange_tui.scheduling.config import EngineConfig
from yearchange_tui.scheduling.events import EventWriter
from yearchange_tui.workflow.calendar import Plan
from yearchange_tui.workflow.localtime import operator_zone

ENGINE_LOGGER = "yearchange_tui.scheduling.engine"
"""Every collaborator logs under the engine's name, the one operators read in its log."""


def engine_log() -> logging.Logger:
    """The logger the engine and its collaborators write to."""
    return logging.getLogger(ENGINE_LOGGER)


@dataclass
class RunningTask:
    """A task handed to one of the engine's local worker processes."""

    task_id: int
    establishment_id: int
    future: Future[tuple[str, str]]


@dataclass
class EngineState:
    """What the engine's collaborators share (built once, by :meth:`create`)."""

    database: Database
    storage_root: Path
    config: EngineConfig
    clock: Callable[[], dt.datetime]
    events: EventWriter
    zone: ZoneInfo
    stop: threading.Event = field(default_factory=threading.Event)
    """Set once a stop was asked; units stop at their next checkpoint."""
    wake: threading.Event = field(default_factory=threading.Event)
    """Set to run the main loop now rather than at the next poll."""
    running: dict[int, RunningTask] = field(default_factory=dict)
    """Tasks in local worker processes, by task id (guarded by :attr:`running_lock`)."""
    running_lock: threading.Lock = field(default_factory=threading.Lock)
    plan: Plan | None = None
    """The calendar as last loaded (replaced whole, never changed in place)."""
    plan_dirty: bool = True
    """True when the calendar must be reconciled with the scheduler at the next tick."""

    @classmethod
    def create(cls, database: Database, storage_root: Path, config: EngineConfig,
               clock: Callable[[], dt.datetime]) -> EngineState:
        """The state of a new engine, with its events writer.

        Raises:
            TimezoneError: for an unknown time zone in ``config``.
        """
        zone = operator_zone(config.timezone)
        events = EventWriter(database, progress_interval=config.progress_interval,
                             max_rows=config.events_max_rows,
                             max_age=dt.timedelta(days=config.events_max_age_days), clock=clock)
        return cls(database=database, storage_root=Path(storage_root), config=config,
                   clock=clock, events=events, zone=zone)

    @property
    def stopping(self) -> bool:
        """True once a stop was asked."""
        return self.stop.is_set()

    def local(self, moment: dt.datetime) -> str:
        """A moment as operators read it (``dd/mm/YYYY HH:MM``, calendar's time zone)."""
        return moment.astimezone(self.zone).strftime("%d/%m/%Y %H:%M")
