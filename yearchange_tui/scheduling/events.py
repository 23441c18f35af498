"""Persisted engine events: an :class:`~yearchange_tui.workflow.events.Observer` that
writes unit state changes, coalesced progress, rejects and log lines to ``engine_events``,
so any console sees them live and after the fact.

Progress is coalesced: at most one row per unit per ``progress_interval`` (the latest
value wins; :meth:`EventWriter.flush` writes what is left). Retention is bounded by age
and by count (:meth:`EventWriter.prune`).

Called from unit worker threads, scheduler threads and the engine's main thread; every
method is thread-safe and returns at once: rows are written in batches by one writer thread
(``event-writer``), so a caller holding a database transaction never waits on its own event.
Never imports Textual.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import OperationalError

from yearchange_tui.ent.database import Database
from yearchange_tui.scheduling.models import EngineEventRow
from yearchange_tui.workflow.events import (
    EngineEvent,
    UnitFailed,
    UnitFinished,
    UnitProgressed,
    UnitStarted,
)
from yearchange_tui.workflow.models import Step
from yearchange_tui.workflow.units import utcnow

log = logging.getLogger(__name__)

DEFAULT_PROGRESS_INTERVAL = 0.5
DEFAULT_MAX_ROWS = 20_000
DEFAULT_MAX_AGE = dt.timedelta(days=30)


def step_label(step: str, dry_run: bool = False) -> str:
    """French name of a step value (or of another milestone) for messages."""
    try:
        known = Step(step)
    except ValueError:
        return step
    prefix = "Passage à blanc — " if dry_run else ""
    return f"{prefix}étape {known.number} ({known.label})"


class EventWriter:
    """Writes engine events to the database; an Observer for the change-over runner."""

    def __init__(self, database: Database, *,
                 progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
                 max_rows: int = DEFAULT_MAX_ROWS, max_age: dt.timedelta = DEFAULT_MAX_AGE,
                 clock: Callable[[], dt.datetime] = utcnow,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.database = database
        self.progress_interval = progress_interval
        self.max_rows = max_rows
        self.max_age = max_age
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._last_write: dict[tuple[str, str, bool], float] = {}
        self._pending: dict[tuple[str, str, bool], UnitProgressed] = {}
        self._rows: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._written = threading.Condition()
        self._queued_count = 0
        self._done_count = 0
        self._thread: threading.Thread | None = None

    # -- the Observer protocol -------------------------------------------------------------

    def notify(self, event: EngineEvent) -> None:
        """Persist one runner event (progress coalesced)."""
        if isinstance(event, UnitProgressed):
            self._progress(event)
            return
        key = (event.uai, event.step, event.dry_run)
        with self._lock:
            self._pending.pop(key, None)
            self._last_write.pop(key, None)
        label = step_label(event.step, event.dry_run)
        if isinstance(event, UnitStarted):
            self.record("unit", f"{event.uai} : {label} démarrée", uai=event.uai, step=event.step,
                        data={"event": "started", "total": event.total, "dry_run": event.dry_run})
        elif isinstance(event, UnitFinished):
            self.record("unit", f"{event.uai} : {label} terminée", uai=event.uai, step=event.step,
                        data={"event": "finished", "counts": event.counts,
                              "dry_run": event.dry_run})
            for code, warning in event.warnings:
                self.record("dry-run-warning", f"{event.uai} : {label} : ⚠ {warning}",
                            uai=event.uai, step=event.step, level="warning",
                            data={"event": "warning", "code": code, "dry_run": event.dry_run})
        elif isinstance(event, UnitFailed):
            word = "refusée" if event.refused else "en échec"
            self.record("unit", f"{event.uai} : {label} {word} : {event.error}", uai=event.uai,
                        step=event.step, level="warning" if event.refused else "error",
                        data={"event": "refused" if event.refused else "failed",
                              "error": event.error, "dry_run": event.dry_run})

    def _progress(self, event: UnitProgressed) -> None:
        key = (event.uai, event.step, event.dry_run)
        now = self.monotonic()
        with self._lock:
            last = self._last_write.get(key)
            if last is not None and now - last < self.progress_interval:
                self._pending[key] = event
                return
            self._last_write[key] = now
            self._pending.pop(key, None)
        self._write_progress(event)

    def _write_progress(self, event: UnitProgressed) -> None:
        label = step_label(event.step, event.dry_run)
        self.record("progress", f"{event.uai} : {label} {event.done}/{event.total}",
                    uai=event.uai, step=event.step,
                    data={"done": event.done, "total": event.total, "dry_run": event.dry_run})

    def flush(self, force: bool = False) -> int:
        """Queue the coalesced progress whose interval has elapsed (all of it with ``force``).

        Returns:
            The number of progress rows queued.
        """
        now = self.monotonic()
        due: list[UnitProgressed] = []
        with self._lock:
            for key, event in list(self._pending.items()):
                if force or now - self._last_write.get(key, 0.0) >= self.progress_interval:
                    due.append(event)
                    self._last_write[key] = now
                    del self._pending[key]
        for event in due:
            self._write_progress(event)
        return len(due)

    # -- other events ----------------------------------------------------------------------

    def record(self, kind: str, message: str, *, uai: str = "", step: str = "",
               level: str = "info", data: dict[str, Any] | None = None) -> None:
        """Queue one event for writing (never blocks, never raises)."""
        row = {"at": self.clock(), "kind": kind, "uai": uai[:8], "step": step[:32],
               "level": level, "message": message,
               "data": json.dumps(data or {}, ensure_ascii=False, default=str)}
        with self._written:
            self._queued_count += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._write_loop, name="event-writer",
                                                daemon=True)
                self._thread.start()
        self._rows.put(row)

    def _write_loop(self) -> None:
        while True:
            first = self._rows.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < 500:
                try:
                    item = self._rows.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._write(batch)
            with self._written:
                self._done_count += len(batch)
                self._written.notify_all()
            if stop:
                return

    def _write(self, batch: list[dict[str, Any]]) -> None:
        for attempt in range(1, 6):
            try:
                with self.database.engine.begin() as connection:
                    connection.execute(insert(EngineEventRow), batch)
                return
            except OperationalError:
                time.sleep(0.2 * attempt)
            except Exception as error:  # noqa: BLE001 - events never stop the engine
                log.debug("%d événement(s) non enregistré(s) : %s", len(batch), error)
                return
        log.debug("%d événement(s) non enregistré(s) : base occupée", len(batch))

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued event is written.

        Returns:
            False when ``timeout`` passed first.
        """
        with self._written:
            return self._written.wait_for(lambda: self._done_count >= self._queued_count,
                                          timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write the pending progress and every queued event, then stop the writer."""
        self.flush(force=True)
        self.drain(timeout)
        with self._written:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._rows.put(None)
            thread.join(timeout)

    def prune(self) -> int:
        """Delete events older than ``max_age`` and all but the newest ``max_rows``.

        Returns:
            The number of rows deleted.
        """
        removed = 0
        with self.database.engine.begin() as connection:
            result = connection.execute(delete(EngineEventRow).where(
                EngineEventRow.at < self.clock() - self.max_age))
            removed += int(result.rowcount or 0)
            newest = connection.execute(select(func.max(EngineEventRow.id))).scalar()
            if newest is not None:
                result = connection.execute(delete(EngineEventRow).where(
                    EngineEventRow.id <= newest - self.max_rows))
                removed += int(result.rowcount or 0)
        return removed


class EventLogHandler(logging.Handler):
    """Copies log lines into the events table (kind ``log``)."""

    def __init__(self, writer: EventWriter, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.writer = writer
        self._inside = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        """Persist one log line (re-entrant calls are dropped)."""
        if getattr(self._inside, "active", False):
            return
        self._inside.active = True
        try:
            level = ("error" if record.levelno >= logging.ERROR
                     else "warning" if record.levelno >= logging.WARNING else "info")
            self.writer.record("log", record.getMessage(), level=level,
                               data={"logger": record.name})
        finally:
            self._inside.active = False
