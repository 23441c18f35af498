"""An interim engine client: reads the database directly and runs requests in-process.

Used until the scheduling package ships its database-backed client. It reads the grid
with :func:`~yearchange_tui.changeover.runner.unit_table` (plus a few establishment
fields), and executes requests one at a time on its own worker thread
(``console-engine``) with :class:`~yearchange_tui.changeover.runner.ChangeoverRunner`:
dry run and steps 1 to 3, retry, pause, resume, cancel between units, and AAF imports
through the AAF package when it is installed. Observer events from the runner arrive
on that worker thread; they only update this object's state under a lock. Nothing here
imports Textual.
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from yearchange_tui.changeover.runner import DRY_RUN_STEPS, ChangeoverRunner, unit_table
from yearchange_tui.scheduling.api import (
    CHANGING_ACTIONS,
    EngineEventView,
    EngineMode,
    EngineStatus,
    EstablishmentView,
    MaintenanceWindow,
    RequestAction,
    UnitView,
)
from yearchange_tui.workflow.events import (
    EngineEvent,
    UnitFailed,
    UnitFinished,
    UnitProgressed,
    UnitStarted,
)
from yearchange_tui.workflow.models import Step, UnitStatus

RUNNABLE_STEPS = DRY_RUN_STEPS
"""Steps this in-process engine runs (the runner's steps 1 to 3, those of the dry run)."""
TABLE_MAX_AGE = 2.0
"""Seconds a read of the unit table is reused while nothing finished."""
EVENT_MEMORY = 10000
REJECTS_STREAMED = 500


@dataclass
class _Live:
    """A unit running in this process."""

    key: str  # a step value, or "dry-run"
    started: float
    done: int = 0
    total: int = 0


@dataclass
class _Job:
    """One queued request."""

    id: int
    action: RequestAction
    params: dict[str, Any]
    cancelled_uais: set[str] = field(default_factory=set)
    cancel_all: bool = False


def _planned(kind: str, closing: dt.date | None, year_start: int | None) -> dict[str, dt.date]:
    """Planned dates from the seed's calendar: steps 1–3 the day after closing, 4 and 5 in
    late August, the dry run in late June."""
    if year_start is None:
        return {}
    summer = year_start + 1
    window = (closing + dt.timedelta(days=1)) if closing else (
        dt.date(summer, 7, 7) if kind == "college" else dt.date(summer, 7, 16))
    return {"dry-run": dt.date(summer, 6, 25), "purge-trash": window, "archive": window,
            "delete-obsolete": window, "init-directory": dt.date(summer, 8, 20),
            "init-school-life": dt.date(summer, 8, 28)}


class DirectEngineClient:
    """:class:`~yearchange_tui.scheduling.api.EngineClient` over the database, in-process.

    Args:
        database: the open database.
        storage_root: the storage folder of the ENT files.
        read_only: refuse every changing request (support staff).
        now: a fixed clock (tests).
    """

    runs_survive_console = False

    def __init__(self, database: Any, storage_root: Path, *, read_only: bool = False,
                 now: dt.datetime | None = None) -> None:
        self.database = database
        self.storage_root = Path(storage_root)
        self.read_only = read_only
        self.fixed_now = now
        self._lock = threading.RLock()
        self._events: list[EngineEventView] = []
        self._next_event_id = 1
        self._live: dict[tuple[str, str], _Live] = {}
        self._table: list[EstablishmentView] | None = None
        self._table_at = 0.0
        self._extras: dict[str, dict[str, Any]] | None = None
        self._year_start: int | None = None
        self._paused = threading.Event()
        self._stopping = threading.Event()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._pending: list[_Job] = []
        self._current: _Job | None = None
        self._request_id = 0
        self._worker = threading.Thread(target=self._work, name="console-engine", daemon=True)
        self._worker.start()
        self._holder = f"{socket.gethostname()}:{os.getpid()}"

    # -- EngineClient --------------------------------------------------------------------------

    def status(self) -> EngineStatus:
        """Attached (this process runs the units), with the next window from closing dates."""
        return EngineStatus(mode=EngineMode.ATTACHED, holder=f"{self._holder} (intégré)",
                            paused=self._paused.is_set(), read_only=self.read_only,
                            next_window=self._next_window(), heartbeat_at=self._now())

    def establishments(self) -> list[EstablishmentView]:
        """The unit table (re-read at most every 2 s, or when a unit ended) with live units."""
        with self._lock:
            stale = self._table is None or time.monotonic() - self._table_at > TABLE_MAX_AGE
        if stale:
            table = self._read_table()
            with self._lock:
                self._table = table
                self._table_at = time.monotonic()
        with self._lock:
            assert self._table is not None
            if not self._live:
                return list(self._table)
            return [self._overlay(view) for view in self._table]

    def events_after(self, last_id: int, limit: int = 500) -> list[EngineEventView]:
        """Events newer than ``last_id``."""
        with self._lock:
            return [event for event in self._events if event.id > last_id][:limit]

    def request(self, action: RequestAction, **params: Any) -> int:
        """Queue a request; pause, resume and cancel act at once.

        Raises:
            PermissionError: a changing request in read-only mode.
            ValueError: a request this interim engine cannot do (French message).
        """
        action = RequestAction(action)
        if self.read_only and action in CHANGING_ACTIONS:
            raise PermissionError("mode consultation : aucune modification n'est permise.")
        with self._lock:
            self._request_id += 1
            request_id = self._request_id
        if action is RequestAction.PAUSE:
            self._paused.set()
            self._log("Moteur intégré en pause : aucune nouvelle unité ne démarre.")
        elif action is RequestAction.RESUME:
            self._paused.clear()
            self._log("Moteur intégré relancé.")
        elif action is RequestAction.CANCEL:
            self._cancel(set(params.get("uais") or []))
        elif action is RequestAction.SET_DATE:
            raise ValueError("les dates planifiées sont tenues par le planificateur, absent du "
                             "moteur intégré provisoire.")
        elif action is RequestAction.IMPORT_TIMETABLE:
            raise ValueError("l'import d'emploi du temps n'est pas encore disponible dans ce "
                             "moteur.")
        elif action in (RequestAction.RUN, RequestAction.RETRY):
            step = Step(params["step"])
            if step not in RUNNABLE_STEPS:
                raise ValueError(f"l'étape {step.number} ne se lance pas ici : l'étape 4 passe "
                                 "par l'import AAF d'initialisation, l'étape 5 par "
                                 "l'établissement.")
            self._enqueue(_Job(request_id, action, dict(params)))
        else:
            self._enqueue(_Job(request_id, action, dict(params)))
        return request_id

    # -- extras the console uses ---------------------------------------------------------------

    def running_units(self) -> int:
        """Units running or queued in this process."""
        with self._lock:
            queued = sum(len(job.params.get("uais") or []) or 1 for job in self._pending)
            return len(self._live) + queued

    def close(self, wait: bool = True) -> None:
        """Stop taking requests; with ``wait``, let the queued units finish first."""
        if not wait:
            with self._lock:
                for job in self._pending:
                    job.cancel_all = True
                if self._current is not None:
                    self._current.cancel_all = True
        self._paused.clear()
        self._jobs.put(None)
        self._worker.join()

    # -- reading -----------------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        return self.fixed_now or dt.datetime.now()

    def _read_extras(self) -> dict[str, dict[str, Any]]:
        from sqlalchemy import select

        from yearchange_tui.ent.models import Establishment, Project
        from yearchange_tui.workflow.models import AuditEntry

        with self.database.session() as session:
            rows = session.execute(
                select(Establishment.uai, Establishment.id, Establishment.closing_date,
                       Project.code, Project.access_block_starts_on, Project.access_block_ends_on)
                .join(Project, Project.id == Establishment.project_id)).all()
            warned = set(session.scalars(select(AuditEntry.establishment_id).where(
                AuditEntry.action.in_(("warning", "second-warning")),
                AuditEntry.outcome == "done")))
        return {uai: {"id": establishment_id, "closing": closing, "project": code,
                      "block": (starts, ends), "warned": establishment_id in warned}
                for uai, establishment_id, closing, code, starts, ends in rows}

    def _read_table(self) -> list[EstablishmentView]:
        table = unit_table(self.database)
        extras = self._read_extras()
        if table and self._year_start is None:
            self._year_start = int(table[0]["school_year"][:4])
        today = self._now().date()
        views = []
        for row in table:
            uai = row["uai"]
            extra = extras.get(uai, {})
            planned = _planned(row["kind"], extra.get("closing"), self._year_start)
            units: dict[Any, UnitView] = {}
            for step in Step:
                data = row["steps"][step.value]
                done, total = data["progress"]
                units[step] = UnitView(uai=uai, step=step, status=UnitStatus(data["status"]),
                                       planned_on=planned.get(step.value), progress_done=done,
                                       progress_total=total, error=data["error"],
                                       dry_run_done=data["dry_run"])
            dry_done = all(units[step].dry_run_done for step in RUNNABLE_STEPS)
            started = any(units[step].status is not UnitStatus.PENDING for step in RUNNABLE_STEPS)
            units["dry-run"] = UnitView(
                uai=uai, step=Step.PURGE_TRASH,
                status=UnitStatus.DONE if dry_done else (
                    UnitStatus.SKIPPED if started else UnitStatus.PENDING),
                planned_on=planned.get("dry-run"))
            if extra.get("warned"):
                units["warnings"] = UnitView(uai=uai, step=Step.DELETE_OBSOLETE,
                                             status=UnitStatus.DONE)
            starts, ends = extra.get("block", (None, None))
            blocked = bool(starts and ends and starts <= today <= ends
                           and units[Step.INIT_DIRECTORY].status is UnitStatus.DONE)
            if starts:
                units["access-block"] = UnitView(
                    uai=uai, step=Step.INIT_DIRECTORY,
                    status=UnitStatus.RUNNING if blocked else (
                        UnitStatus.DONE if ends and today > ends else UnitStatus.PENDING),
                    planned_on=starts)
            views.append(EstablishmentView(uai=uai, name=row["name"], kind=row["kind"],
                                           project_code=extra.get("project", ""), units=units,
                                           access_blocked=blocked))
        return views

    def _overlay(self, view: EstablishmentView) -> EstablishmentView:
        """The view with this process's running units on top."""
        live = [(key, unit) for (uai, key), unit in self._live.items() if uai == view.uai]
        if not live:
            return view
        units = dict(view.units)
        now = time.monotonic()
        for key, unit in live:
            unit_key: Any = key if key == "dry-run" else Step(key)
            base = units.get(unit_key) or UnitView(view.uai, Step.PURGE_TRASH, UnitStatus.PENDING)
            elapsed = max(0.001, now - unit.started)
            rate = unit.done / elapsed if unit.done else None
            eta = (unit.total - unit.done) / rate if rate and unit.total else None
            units[unit_key] = replace(base, status=UnitStatus.RUNNING, progress_done=unit.done,
                                      progress_total=unit.total, rate_per_s=rate, eta_s=eta)
        return replace(view, units=units)

    def _next_window(self) -> MaintenanceWindow | None:
        with self._lock:
            table = self._table
        if not table:
            return None
        today = self._now().date()
        days = sorted({view.units[Step.PURGE_TRASH].planned_on for view in table
                       if view.units[Step.PURGE_TRASH].planned_on
                       and view.units[Step.PURGE_TRASH].status is UnitStatus.PENDING})
        upcoming = [day for day in days if day >= today]
        if not upcoming:
            return None
        day = upcoming[0]
        return MaintenanceWindow(dt.datetime.combine(day, dt.time(8, 0)),
                                 dt.datetime.combine(day, dt.time(20, 0)), "étapes 1 à 3")

    # -- events --------------------------------------------------------------------------------

    def _log(self, message: str, level: str = "info", *, kind: str = "log", uai: str = "",
             step: str = "", data: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._events.append(EngineEventView(id=self._next_event_id, at=self._now(),
                                                kind=kind, uai=uai, step=step, level=level,
                                                message=message, data=dict(data or {})))
            self._next_event_id += 1
            if len(self._events) > EVENT_MEMORY:
                del self._events[:len(self._events) - EVENT_MEMORY]

    def notify(self, event: EngineEvent) -> None:
        """Observer of the runner (worker thread): live progress and unit events."""
        key = "dry-run" if event.dry_run else event.step
        label = "passage à blanc" if event.dry_run else f"étape {Step(event.step).number}"
        with self._lock:
            if isinstance(event, UnitStarted):
                live = self._live.get((event.uai, key))
                if live is None:
                    self._live[(event.uai, key)] = _Live(key, time.monotonic(), 0,
                                                         3 if event.dry_run else event.total)
            elif isinstance(event, UnitProgressed):
                live = self._live.get((event.uai, key))
                if live is not None and not event.dry_run:
                    live.done, live.total = event.done, event.total
            elif isinstance(event, UnitFinished):
                if event.dry_run:
                    live = self._live.get((event.uai, key))
                    if live is not None:
                        live.done += 1
                    if event.step == Step.DELETE_OBSOLETE.value:
                        self._live.pop((event.uai, key), None)
                        self._table_at = 0.0
                else:
                    self._live.pop((event.uai, key), None)
                    self._table_at = 0.0
            elif isinstance(event, UnitFailed):
                self._live.pop((event.uai, key), None)
                self._table_at = 0.0
        if isinstance(event, UnitFinished):
            if event.dry_run:
                if event.step == Step.DELETE_OBSOLETE.value:
                    self._log("passage à blanc terminé", kind="unit", uai=event.uai,
                              step="dry-run")
            else:
                self._log(f"{label} terminée", kind="unit", uai=event.uai, step=event.step,
                          data={"counts": event.counts})
        elif isinstance(event, UnitFailed):
            verb = "refusée" if event.refused else "en échec"
            self._log(f"{label} {verb} : {event.error}", "error", kind="unit", uai=event.uai,
                      step=event.step)
        elif isinstance(event, UnitStarted) and not (event.dry_run and
                                                     event.step != Step.PURGE_TRASH.value):
            self._log(f"{label} commencé" if event.dry_run else f"{label} commencée",
                      kind="unit", uai=event.uai, step=key)

    # -- the worker thread ---------------------------------------------------------------------

    def _enqueue(self, job: _Job) -> None:
        with self._lock:
            self._pending.append(job)
        self._jobs.put(job)

    def _cancel(self, uais: set[str]) -> None:
        with self._lock:
            jobs = [*self._pending, *([self._current] if self._current else [])]
            for job in jobs:
                if uais:
                    job.cancelled_uais.update(uais)
                else:
                    job.cancel_all = True
        what = ", ".join(sorted(uais)) if uais else "toutes les unités"
        self._log(f"Annulation demandée ({what}) : l'unité en cours va jusqu'à son point de "
                  "reprise, les suivantes ne démarrent pas.", "warning")

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._lock:
                if job in self._pending:
                    self._pending.remove(job)
                self._current = job
            try:
                self._run_job(job)
            except Exception as error:  # noqa: BLE001 - reported, the engine keeps going
                self._log(f"Demande n° {job.id} en échec : {error}", "error", kind="request")
            finally:
                with self._lock:
                    self._current = None
                    self._table_at = 0.0

    def _wait_if_paused(self, job: _Job) -> bool:
        while self._paused.is_set():
            if job.cancel_all:
                return False
            time.sleep(0.1)
        return not job.cancel_all

    def _runner(self) -> ChangeoverRunner:
        return ChangeoverRunner(self.database, self.storage_root, observer=self,
                                read_only=self.read_only)

    def _run_job(self, job: _Job) -> None:
        runner = self._runner()
        if job.action is RequestAction.DRY_RUN:
            refs = runner.establishments(list(job.params.get("uais") or []) or None)
            self._log(f"Passage à blanc : {len(refs)} établissement(s).")
            for ref in refs:
                if not self._wait_if_paused(job) or ref.uai in job.cancelled_uais:
                    self._log("passage à blanc annulé", "warning", kind="unit", uai=ref.uai)
                    continue
                runner.dry_run([ref])
        elif job.action in (RequestAction.RUN, RequestAction.RETRY):
            step = Step(job.params["step"])
            refs = runner.establishments(list(job.params.get("uais") or []) or None)
            self._log(f"Étape {step.number} ({step.label}) : {len(refs)} établissement(s).")
            for ref in refs:
                if not self._wait_if_paused(job) or ref.uai in job.cancelled_uais:
                    self._log(f"étape {step.number} annulée avant son début", "warning",
                              kind="unit", uai=ref.uai, step=step.value)
                    continue
                outcome = runner.run_unit(step, ref)
                if outcome.differences:
                    self._log(f"étape {step.number} : {len(outcome.differences)} écart(s) avec "
                              "le passage à blanc", "warning", kind="unit", uai=ref.uai,
                              step=step.value, data={"differences": outcome.differences})
        elif job.action is RequestAction.IMPORT_AAF:
            self._import_aaf(str(job.params["path"]))

    def _import_aaf(self, path: str) -> None:
        try:
            from yearchange_tui.aaf.importer import import_delivery
        except ImportError:
            self._log("Import AAF impossible : le module AAF n'est pas installé.", "error",
                      kind="request")
            return
        self._log(f"Import AAF : {path}")
        result = import_delivery(self.database, [path],
                                 progress=lambda line: self._log(line))
        rejects = sum(result.rejects_by_code.values())
        self._stream_rejects(result.import_id)
        self._log(f"Import AAF n° {result.import_id} terminé : "
                  f"{sum(result.records.values())} enregistrement(s), {rejects} rejet(s).",
                  "warning" if rejects else "info")

    def _stream_rejects(self, import_id: int | None) -> None:
        """One event per reject of the import (the console's live reject pane)."""
        if import_id is None:
            return
        from sqlalchemy import select

        from yearchange_tui.importing.models import AafReject

        with self.database.session() as session:
            rows = session.execute(select(AafReject.uai, AafReject.code, AafReject.severity,
                                          AafReject.message).where(
                AafReject.import_id == import_id).order_by(AafReject.id)
                .limit(REJECTS_STREAMED)).all()
        for uai, code, severity, message in rows:
            level = {"erreur": "error", "avertissement": "warning"}.get(severity, "info")
            self._log(f"{code} : {message}", level, kind="reject", uai=uai or "",
                      data={"code": code, "severity": severity, "import_id": import_id})
