"""The real :class:`~yearchange_tui.scheduling.api.EngineClient`: reads the shared database,
writes requests the engine picks up within a second or two.

A console builds one with :func:`connect` on the database it already opened, which starts
a detached engine when none holds the lease (the console is then "attaché"); otherwise it
is an observer. Every method is a
short blocking read or write: call it from a worker thread, never from the UI loop.
Never imports Textual.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from yearchange_tui.changeover.runner import year_units
from yearchange_tui.ent.database import Database
from yearchange_tui.ent.models import Establishment, Project
from yearchange_tui.importing.models import AafImport, AafReject
from yearchange_tui.scheduling.api import (
    CHANGING_ACTIONS,
    EngineEventView,
    EngineMode,
    EngineStatus,
    EstablishmentView,
    MaintenanceWindow,
    RequestAction,
    RequestOutcome,
    TaskView,
    UnitView,
)
from yearchange_tui.scheduling.lease import DEFAULT_TTL, LeaseInfo, read_lease
from yearchange_tui.scheduling.models import (
    REQUEST_STATUS_LABELS,
    EngineEventRow,
    EngineRequest,
    EngineTask,
    RequestStatus,
    TaskStatus,
)
from yearchange_tui.scheduling.spawn import (
    EngineStartError,
    default_log_file,
    spawn_engine,
    wait_for_engine,
)
from yearchange_tui.workflow.access_block import window_in_plan
from yearchange_tui.workflow.calendar import (
    DEFAULT_TIMEZONE,
    Plan,
    as_utc,
    build_plan,
    milestone_of,
)
from yearchange_tui.workflow.models import Step, StepUnit, UnitStatus
from yearchange_tui.workflow.project_settings import describe
from yearchange_tui.workflow.units import NoCurrentYearError, current_school_year, utcnow


class DatabaseEngineClient:
    """An :class:`EngineClient` over the project database."""

    def __init__(self, database: Database, *, read_only: bool = False,
                 timezone_name: str = DEFAULT_TIMEZONE, lease_ttl: dt.timedelta = DEFAULT_TTL,
                 spawned_pid: int | None = None,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.database = database
        self.read_only = read_only
        self.timezone_name = timezone_name
        self.lease_ttl = lease_ttl
        self.spawned_pid = spawned_pid
        """Pid of the engine this console started (it is then "attaché")."""
        self.clock = clock

    # -- EngineClient ----------------------------------------------------------------------

    def lease(self) -> LeaseInfo | None:
        """The engine lease as stored."""
        return read_lease(self.database)

    def engine_live(self) -> bool:
        """True while an engine holds the lease."""
        info = self.lease()
        return info is not None and info.is_live(self.clock(), self.lease_ttl)

    def status(self) -> EngineStatus:
        """Engine mode, lease holder, pause state, next window."""
        info = self.lease()
        now = self.clock()
        live = info is not None and info.is_live(now, self.lease_ttl)
        if not live:
            mode = EngineMode.NONE
        elif self.spawned_pid is not None and info is not None and info.pid == self.spawned_pid:
            mode = EngineMode.ATTACHED
        else:
            mode = EngineMode.OBSERVER
        return EngineStatus(
            mode=mode, holder=info.holder if info is not None and live else "",
            paused=bool(info and info.paused),
            read_only=self.read_only or bool(info and live and info.read_only),
            next_window=self._next_window(now),
            heartbeat_at=info.heartbeat_at if info is not None else None)

    def _next_window(self, now: dt.datetime) -> MaintenanceWindow | None:
        try:
            with self.database.session() as session:
                plan = build_plan(session, None, self.timezone_name, with_establishments=False)
        except NoCurrentYearError:
            return None
        upcoming = sorted((w for windows in plan.windows.values() for w in windows
                           if w.ends_at > now), key=lambda w: w.starts_at)
        if not upcoming:
            return None
        first = upcoming[0]
        return MaintenanceWindow(first.starts_at, first.ends_at, first.label)

    def project_settings(self) -> list[dict[str, Any]]:
        """Every project's settings for the current change-over (the console's project
        dialog; :func:`yearchange_tui.workflow.project_settings.describe`)."""
        with self.database.session() as session:
            year = current_school_year(session).start_year
            return [describe(session, project, year)
                    for project in session.scalars(select(Project).order_by(Project.code))]

    def plan(self, uais: list[str] | None = None) -> Plan:
        """The calendar of the current change-over."""
        with self.database.session() as session:
            return build_plan(session, None, self.timezone_name, uais)

    def establishments(self) -> list[EstablishmentView]:
        """Every establishment with the state of each step."""
        now = self.clock()
        with self.database.session() as session:
            try:
                year = current_school_year(session)
            except NoCurrentYearError:
                return []
            plan = build_plan(session, year.start_year, self.timezone_name)
            rows = session.execute(select(
                Establishment.id, Establishment.uai, Establishment.name, Establishment.kind,
                Project.code).join(
                Project, Project.id == Establishment.project_id)
                .order_by(Establishment.uai)).all()
            units, dry_runs = year_units(session, year.id)
            tasks: dict[tuple[int, str], EngineTask] = {}
            for task in session.scalars(select(EngineTask).where(
                    EngineTask.school_year_id == year.id,
                    EngineTask.status.in_([TaskStatus.QUEUED, TaskStatus.WAITING]))
                    .order_by(EngineTask.id)):
                tasks[(task.establishment_id, task.milestone)] = task
            rejects = _reject_counts(session)
            views = []
            for establishment_id, uai, name, kind, project_code in rows:
                step_views = {}
                for step in Step:
                    unit = units.get((establishment_id, step))
                    milestone = milestone_of(step)
                    planned = plan.get(establishment_id, milestone) if milestone else None
                    task = tasks.get((establishment_id, step.value))
                    step_views[step] = _unit_view(uai, step, unit, planned, task,
                                                  (establishment_id, step) in dry_runs, now)
                window = window_in_plan(plan, establishment_id)
                views.append(EstablishmentView(
                    uai=uai, name=name, kind=str(getattr(kind, "value", kind)),
                    project_code=project_code, units=step_views,
                    reject_count=rejects.get(establishment_id, 0),
                    access_blocked=window is not None and window.covers(now.date())))
        return views

    def events_after(self, last_id: int, limit: int = 500) -> list[EngineEventView]:
        """Events newer than ``last_id``, oldest first."""
        with self.database.session() as session:
            rows = session.scalars(select(EngineEventRow).where(EngineEventRow.id > last_id)
                                   .order_by(EngineEventRow.id).limit(limit)).all()
            return [EngineEventView(id=row.id, at=as_utc(row.at) or row.at, kind=row.kind,
                                    uai=row.uai, step=row.step, level=row.level,
                                    message=row.message, data=_json(row.data))
                    for row in rows]

    def last_event_id(self) -> int:
        """Id of the newest event (0 when none): a console starts from here to show only
        what happens next."""
        with self.database.session() as session:
            return int(session.scalar(select(func.max(EngineEventRow.id))) or 0)

    def request(self, action: RequestAction, **params: Any) -> int:
        """Queue a request for the engine; returns its id.

        Raises:
            PermissionError: when read-only and the action changes data.
        """
        # Deferred: the engine module loads APScheduler, which a console never needs.
        from yearchange_tui.scheduling.engine import engine_identity

        action = RequestAction(action)
        if self.read_only and action in CHANGING_ACTIONS:
            raise PermissionError("Mode consultation : cette action modifierait les données, "
                                  "elle est refusée.")
        with self.database.session() as session:
            row = EngineRequest(created_at=self.clock(), action=action.value,
                                params=json.dumps(params, ensure_ascii=False, default=str),
                                requested_by=engine_identity(),
                                requester_read_only=self.read_only,
                                status=RequestStatus.QUEUED, message="")
            session.add(row)
            session.flush()
            return row.id

    def request_outcome(self, request_id: int) -> RequestOutcome | None:
        """Where a request stands: the engine's answer and the units it queued."""
        state = self.request_state(request_id)
        if state is None:
            return None
        tasks = tuple(TaskView(uai=task["uai"], milestone=task["milestone"],
                               status=TaskStatus(task["status"]), reason=task["reason"] or "")
                      for task in self.tasks_of(request_id))
        return RequestOutcome(id=request_id, action=state["action"],
                              status=RequestStatus(state["status"]),
                              message=state["message"] or "", tasks=tasks)

    # -- extras for the CLI and scripts ----------------------------------------------------

    def request_state(self, request_id: int) -> dict[str, Any] | None:
        """A request's status and message (None when unknown)."""
        with self.database.session() as session:
            row = session.get(EngineRequest, request_id)
            if row is None:
                return None
            status = RequestStatus(row.status)
            return {"id": row.id, "action": row.action, "params": _json(row.params),
                    "status": status.value, "label": REQUEST_STATUS_LABELS[status],
                    "message": row.message, "requested_by": row.requested_by,
                    "created_at": as_utc(row.created_at), "picked_at": as_utc(row.picked_at),
                    "finished_at": as_utc(row.finished_at)}

    def tasks_of(self, request_id: int) -> list[dict[str, Any]]:
        """The units a request queued, with their state."""
        with self.database.session() as session:
            rows = session.execute(select(EngineTask, Establishment.uai).join(
                Establishment, Establishment.id == EngineTask.establishment_id).where(
                EngineTask.request_id == request_id).order_by(EngineTask.id)).all()
            return [{"id": task.id, "uai": uai, "milestone": task.milestone,
                     "status": TaskStatus(task.status).value, "reason": task.reason}
                    for task, uai in rows]

    def wait_for_request(self, request_id: int, timeout: float = 30.0,
                         until_units_finish: bool = False,
                         poll: float = 0.2) -> dict[str, Any] | None:
        """Wait until the engine handled a request (and, optionally, until its units end).

        Returns:
            The request's state, or None when ``timeout`` passed first.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.request_state(request_id)
            if state is not None and state["status"] not in (RequestStatus.QUEUED.value,
                                                              RequestStatus.RUNNING.value):
                if not until_units_finish:
                    return state
                active = {TaskStatus.QUEUED.value, TaskStatus.WAITING.value,
                          TaskStatus.RUNNING.value}
                tasks = self.tasks_of(request_id)
                if not any(task["status"] in active for task in tasks):
                    state["tasks"] = tasks
                    return state
            time.sleep(poll)
        return None


def _unit_view(uai: str, step: Step, unit: StepUnit | None, planned: Any,
               task: EngineTask | None, dry_run_done: bool, now: dt.datetime) -> UnitView:
    status = UnitStatus(unit.status) if unit is not None else UnitStatus.PENDING
    error = unit.error if unit is not None else ""
    done = unit.progress_done if unit is not None else 0
    total = unit.progress_total if unit is not None else 0
    rate = eta = None
    if status is UnitStatus.RUNNING and unit is not None and unit.started_at and done:
        elapsed = (now - (as_utc(unit.started_at) or now)).total_seconds()
        if elapsed > 0:
            rate = done / elapsed
            eta = max(0.0, (total - done) / rate) if total else None
    if status not in (UnitStatus.RUNNING, UnitStatus.DONE) and task is not None:
        if TaskStatus(task.status) is TaskStatus.WAITING:
            status, error = UnitStatus.PENDING, task.reason
        else:
            status, error = UnitStatus.PENDING, task.reason or "en file d'attente du moteur"
    elif status is UnitStatus.PENDING and not error and planned is not None and planned.note:
        error = planned.note
    return UnitView(uai=uai, step=step, status=status,
                    planned_on=planned.on_date if planned is not None else None,
                    progress_done=done, progress_total=total, rate_per_s=rate, eta_s=eta,
                    error=error, dry_run_done=dry_run_done)


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def _reject_counts(session: Any) -> dict[int, int]:
    """Rejects of the newest AAF import per establishment."""
    # Timetable imports share the reject store; the grid counts the AAF delivery's rejects.
    newest = session.scalar(select(func.max(AafImport.id)).where(AafImport.mode != "timetable"))
    if newest is None:
        return {}
    return {establishment_id: count for establishment_id, count in session.execute(
        select(AafReject.establishment_id, func.count()).where(
            AafReject.import_id == newest, AafReject.establishment_id.is_not(None))
        .group_by(AafReject.establishment_id)).all()}


def connect(database: Database, storage: Path | str, *, read_only: bool = False,
            start_engine: bool = True, log_file: Path | None = None,
            config_file: Path | None = None, timezone_name: str = DEFAULT_TIMEZONE,
            wait: float = 20.0) -> DatabaseEngineClient:
    """A client on the open ``database``; start a detached engine when none is live.

    Args:
        database: the open database (the caller owns it and disposes of it).
        storage: the storage root.
        read_only: a support-staff console (changing requests refused).
        start_engine: start a detached engine when none holds the lease (ignored when
            read-only: support staff never start the engine).
        log_file: the detached engine's log (default: the data folder's ``logs/engine.log``).
        config_file: passed to the engine process.
        timezone_name: the calendar's zone.
        wait: seconds to wait for a started engine to take the lease.

    Raises:
        EngineStartError: the engine could not be started, stopped before taking the lease,
            or did not take it within ``wait`` seconds (French message with the log path).
    """
    client = DatabaseEngineClient(database, read_only=read_only, timezone_name=timezone_name)
    if not start_engine or read_only or client.engine_live():
        return client
    log_path = Path(log_file or default_log_file()).expanduser()
    try:
        process = spawn_engine(database.url, storage, log_file=log_path,
                               config_file=config_file)
    except OSError as error:
        raise EngineStartError(f"Le moteur n'a pas pu être lancé ({error}). Journal : "
                               f"{log_path}") from error
    client.spawned_pid = process.pid
    if not wait_for_engine(database, process, timeout=wait):
        raise EngineStartError(
            f"Le moteur lancé (pid {process.pid}) n'a pas pris le bail en {wait:g} s. "
            f"Journal : {log_path}")
    return client
