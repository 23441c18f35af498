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
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from yearchange_tui.changeover.runner import year_units
from yearchange_tui.ent.database import Database
from yearchange_tui.ent.errors import describe_error
from yearchange_tui.ent.models import Establishment, Project
from yearchange_tui.importing.models import AafImport, AafReject
from yearchange_tui.scheduling.api import (
    CHANGING_ACTIONS,
    EngineEventView,
    EngineMode,
    EngineStatus,
    EstablishmentView,
    FleetView,
    MaintenanceWindow,
    RequestAction,
    RequestOutcome,
    RequestView,
    TaskView,
    UnitView,
    describe_request,
)
from yearchange_tui.scheduling.changes import ChangeCursor, changes_since
from yearchange_tui.scheduling.fleet import fleet, fleet_now
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
from yearchange_tui.workflow.access_block import AccessWindow, BlockPhase, window_in_plan
from yearchange_tui.workflow.calendar import (
    Milestone,
    Plan,
    as_utc,
    build_plan,
    milestone_of,
    notices_sent,
)
from yearchange_tui.workflow.establishments import establishments_by_uai
from yearchange_tui.workflow.guards import run_window_problems
from yearchange_tui.workflow.localtime import to_local, zone_name
from yearchange_tui.workflow.models import Step, StepUnit, UnitStatus
from yearchange_tui.workflow.project_settings import describe
from yearchange_tui.workflow.units import (
    NoCurrentYearError,
    QueueState,
    current_school_year,
    utcnow,
)

FULL_READ_OVER = 2000
"""Changed establishments above which a poll reads every one (one query set instead of
long ``IN`` lists)."""


@dataclass(frozen=True)
class RefreshCursor:
    """Where a console's previous :meth:`DatabaseEngineClient.establishment_changes` stood."""

    changes: ChangeCursor
    today: dt.date
    """The operator's date then (a new day reads everything: access block phases)."""
    school_year_id: int
    uai_by_id: dict[int, str]
    """Every establishment known then (a deleted one is named by its UAI)."""


@dataclass(frozen=True)
class EstablishmentChanges:
    """What :meth:`DatabaseEngineClient.establishment_changes` read."""

    views: list[EstablishmentView]
    """The changed establishments (every one when ``complete``)."""
    removed: list[str]
    """UAIs of establishments gone since the cursor."""
    complete: bool
    """``views`` holds every establishment: any other UAI is gone."""
    cursor: RefreshCursor | None
    """Pass it to the next call (None when there is no current year)."""


class DatabaseEngineClient:
    """An :class:`EngineClient` over the project database."""

    def __init__(self, database: Database, *, read_only: bool = False,
                 timezone_name: str | None = None, lease_ttl: dt.timedelta = DEFAULT_TTL,
                 spawned_pid: int | None = None,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.database = database
        self.read_only = read_only
        self.timezone_name = timezone_name or zone_name()
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
            return self._views(session, year.id, year.start_year, now)

    def establishment_changes(self, cursor: RefreshCursor | None = None) -> EstablishmentChanges:
        """The establishments changed since ``cursor`` (every one when None), read from the
        change log the database's triggers keep (:mod:`~yearchange_tui.scheduling.changes`):
        a poll of an idle national ENT reads two small queries, not 10,000 establishments.

        Everything is read again when something every row depends on changed (project,
        year, calendar, windows, an AAF import), when the operator's date changed (the
        access block's phase), or when more than :data:`FULL_READ_OVER` establishments
        changed at once.
        """
        now = self.clock()
        today = to_local(now).date()
        with self.database.session() as session:
            changed = changes_since(session, cursor.changes if cursor is not None else None)
            try:
                year = current_school_year(session)
            except NoCurrentYearError:
                return EstablishmentChanges([], sorted(cursor.uai_by_id.values()) if cursor
                                            else [], True, None)
            full = (cursor is None or changed.everything or cursor.today != today
                    or cursor.school_year_id != year.id
                    or len(changed.establishment_ids) > FULL_READ_OVER)
            if full:
                views = self._views(session, year.id, year.start_year, now)
                uai_by_id = dict(session.execute(select(Establishment.id, Establishment.uai)).all())
                following = RefreshCursor(changed.cursor, today, year.id, uai_by_id)
                return EstablishmentChanges(views, [], True, following)
            ids = changed.establishment_ids
            uai_by_id = dict(cursor.uai_by_id)
            views = self._views(session, year.id, year.start_year, now, ids) if ids else []
            present = dict(session.execute(select(Establishment.id, Establishment.uai).where(
                Establishment.id.in_(ids))).all()) if ids else {}
            removed = [uai_by_id.pop(establishment_id) for establishment_id in ids
                       if establishment_id not in present and establishment_id in uai_by_id]
            renamed = {uai_by_id[key] for key in present
                       if key in uai_by_id and uai_by_id[key] != present[key]}
            uai_by_id.update(present)
            removed.extend(renamed)
            following = RefreshCursor(changed.cursor, today, year.id, uai_by_id)
            return EstablishmentChanges(views, removed, False, following)

    def _views(self, session: Any, school_year_id: int, start_year: int, now: dt.datetime,
               establishment_ids: set[int] | None = None) -> list[EstablishmentView]:
        """The views of every establishment (of ``establishment_ids`` when given), by UAI."""
        query = select(Establishment.id, Establishment.uai, Establishment.name,
                       Establishment.kind, Project.code).join(
            Project, Project.id == Establishment.project_id).order_by(Establishment.uai)
        if establishment_ids is not None:
            query = query.where(Establishment.id.in_(establishment_ids))
        rows = session.execute(query).all()
        if not rows:
            return []
        plan = build_plan(session, start_year, self.timezone_name,
                          [row[1] for row in rows] if establishment_ids is not None else None)
        units, dry_runs = year_units(session, school_year_id, establishment_ids)
        tasks = latest_tasks(session, school_year_id, establishment_ids)
        rejects = _reject_counts(session, establishment_ids)
        sent = notices_sent(session, start_year, establishment_ids)
        today = to_local(now).date()
        views = []
        for establishment_id, uai, name, kind, project_code in rows:
            step_views: dict[Any, UnitView] = {}
            for step in Step:
                unit = units.get((establishment_id, step))
                milestone = milestone_of(step)
                planned = plan.get(establishment_id, milestone) if milestone else None
                task = tasks.get((establishment_id, step.value))
                step_views[step] = _unit_view(uai, step, unit, planned, task,
                                              (establishment_id, step) in dry_runs, now)
            window = window_in_plan(plan, establishment_id)
            step_views.update(_milestone_views(
                uai, establishment_id, plan, step_views, sent, tasks, window, today))
            views.append(EstablishmentView(
                uai=uai, name=name, kind=str(getattr(kind, "value", kind)),
                project_code=project_code, units=step_views,
                reject_count=rejects.get(establishment_id, 0),
                access_blocked=window is not None and window.covers(today)))
        return views

    def run_window_problems(self, step: Step, uais: list[str]) -> list[str]:
        """Steps 1 to 3: why each establishment is out of its window or before its closure
        (one French line each; empty when the step may run now). The engine decides again."""
        with self.database.session() as session:
            refs = list(establishments_by_uai(session, uais).values())
            return [problem.line for problem in run_window_problems(
                session, refs, step, self.clock(), self.timezone_name)]

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

    def request_list(self, limit: int | None = 200) -> list[RequestView]:
        """The requests, newest first (every one when ``limit`` is None)."""
        with self.database.session() as session:
            query = select(EngineRequest).order_by(EngineRequest.id.desc())
            if limit is not None:
                query = query.limit(limit)
            return [RequestView(
                id=row.id, created_at=as_utc(row.created_at) or row.created_at,
                requested_by=row.requested_by, action=row.action,
                what=describe_request(row.action, _json(row.params)),
                status=RequestStatus(row.status), message=row.message or "",
                finished_at=as_utc(row.finished_at), read_only=bool(row.requester_read_only))
                for row in session.scalars(query)]

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

    def fleet(self) -> FleetView:
        """The worker processes and the units each runs (the one read of the fleet)."""
        with self.database.session() as session:
            workers = fleet(session)
        return FleetView(tuple(workers), fleet_now(), embedded=self.database.is_sqlite)

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


def latest_tasks(session: Any, school_year_id: int,
                 establishment_ids: int | Collection[int] | None = None
                 ) -> dict[tuple[int, str], EngineTask]:
    """The newest engine task of each (establishment, milestone) of the year (of one
    establishment, or of a collection of them, when given)."""
    newest = select(func.max(EngineTask.id)).where(
        EngineTask.school_year_id == school_year_id)
    if isinstance(establishment_ids, int):
        newest = newest.where(EngineTask.establishment_id == establishment_ids)
    elif establishment_ids is not None:
        newest = newest.where(EngineTask.establishment_id.in_(establishment_ids))
    newest = newest.group_by(
        EngineTask.establishment_id, EngineTask.milestone)
    return {(task.establishment_id, task.milestone): task
            for task in session.scalars(select(EngineTask).where(EngineTask.id.in_(newest)))}


def unit_state(unit: StepUnit | None,
               task: EngineTask | None) -> tuple[UnitStatus, QueueState | None, str]:
    """What a unit's cell shows: its status, its place in the queue, and why.

    The unit's own row wins once it ran (running, done, failed, blocked, missed). A unit
    not started yet reads its newest engine task: queued, waiting for a prerequisite, or
    refused / failed before the unit began (a step-4 request before any delivery leaves no
    unit row: the cell says the refusal, not the planned date). A unit that began and is
    back to pending was interrupted (cancelled, or the engine stopped) and resumes later;
    one cancelled before it began is interrupted too (never « planifié »).
    """
    status = UnitStatus(unit.status) if unit is not None else UnitStatus.PENDING
    error = unit.error if unit is not None else ""
    if status in (UnitStatus.RUNNING, UnitStatus.DONE, UnitStatus.SKIPPED):
        return status, None, error
    task_status = TaskStatus(task.status) if task is not None else None
    reason = (task.reason or "") if task is not None else ""
    if task_status in (TaskStatus.QUEUED, TaskStatus.RUNNING):
        return UnitStatus.PENDING, QueueState.QUEUED, reason or "en file d'attente du moteur"
    if task_status is TaskStatus.WAITING:
        return UnitStatus.PENDING, QueueState.WAITING, reason
    if status is not UnitStatus.PENDING:
        return status, None, error
    started = unit is not None and (unit.attempts or 0) > 0
    if started:
        return status, QueueState.INTERRUPTED, error or reason
    if task_status is TaskStatus.CANCELLED:
        # Cancelled before it began: not « planifié » (nothing will run it until asked
        # again or its calendar date comes back), but stopped by the operator.
        return status, QueueState.INTERRUPTED, reason or "annulée par l'opérateur"
    request = f" (demande n° {task.request_id})" if task is not None and task.request_id else ""
    if task_status is TaskStatus.BLOCKED:
        return UnitStatus.BLOCKED, None, f"refusée par le moteur{request} : {reason}"
    if task_status is TaskStatus.FAILED:
        return UnitStatus.FAILED, None, f"en échec{request} : {reason}"
    return status, None, error


def queue_states(session: Any, school_year_id: int
                 ) -> dict[tuple[int, str], tuple[UnitStatus, QueueState | None, str]]:
    """:func:`unit_state` of every unit or task of the year, by (establishment, step key)."""
    units, _dry_runs = year_units(session, school_year_id)
    tasks = latest_tasks(session, school_year_id)
    keys = {(establishment_id, step.value) for establishment_id, step in units} | {
        key for key in tasks if key[1] in {step.value for step in Step}}
    return {(establishment_id, key): unit_state(units.get((establishment_id, Step(key))),
                                                tasks.get((establishment_id, key)))
            for establishment_id, key in keys}


def queue_table(database: Database
                ) -> dict[tuple[str, str], tuple[UnitStatus, QueueState | None, str]]:
    """:func:`queue_states` of the current change-over by (UAI, step key) (``status``)."""
    with database.session() as session:
        try:
            year = current_school_year(session)
        except NoCurrentYearError:
            return {}
        uais = dict(session.execute(select(Establishment.id, Establishment.uai)).all())
        return {(uais[establishment_id], key): state for (establishment_id, key), state
                in queue_states(session, year.id).items() if establishment_id in uais}


def _unit_view(uai: str, step: Step, unit: StepUnit | None, planned: Any,
               task: EngineTask | None, dry_run_done: bool, now: dt.datetime) -> UnitView:
    status, queue, error = unit_state(unit, task)
    done = unit.progress_done if unit is not None else 0
    total = unit.progress_total if unit is not None else 0
    rate = eta = None
    if status is UnitStatus.RUNNING and unit is not None and unit.started_at and done:
        elapsed = (now - (as_utc(unit.started_at) or now)).total_seconds()
        if elapsed > 0:
            rate = done / elapsed
            eta = max(0.0, (total - done) / rate) if total else None
    if status is UnitStatus.PENDING and queue is None and not error and (
            planned is not None and planned.note):
        error = planned.note
    return UnitView(uai=uai, step=step, status=status,
                    planned_on=planned.on_date if planned is not None else None,
                    progress_done=done, progress_total=total, rate_per_s=rate, eta_s=eta,
                    error=error, dry_run_done=dry_run_done,
                    queue=queue.value if queue is not None else "")


_DRY_RUN_STEPS = (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE)
_STARTED = (UnitStatus.RUNNING, UnitStatus.DONE, UnitStatus.FAILED, UnitStatus.BLOCKED)
_QUEUED = "en file d'attente du moteur"


def _scheduled_on(plan: Plan, establishment_id: int, milestone: Milestone) -> dt.date | None:
    """The date the engine runs ``milestone`` for the establishment (what ``plan`` shows
    and the scheduler reads), or None when it is not scheduled."""
    planned = plan.get(establishment_id, milestone)
    return planned.on_date if planned is not None and planned.schedulable else None


def _milestone_views(uai: str, establishment_id: int, plan: Plan, steps: dict[Any, UnitView],
                     sent: set[tuple[int, Milestone]],
                     tasks: dict[tuple[int, str], EngineTask], window: AccessWindow | None,
                     today: dt.date) -> dict[str, UnitView]:
    """The grid's milestone columns (``dry-run``, ``warnings``, ``access-block``) from the
    engine's own sources: the plan it schedules from, the dry-run reports, the audited
    warnings, the queue, and the access block's window (:mod:`~yearchange_tui.workflow.
    access_block`) at the operator's date. A column left out is not planned."""
    views: dict[str, UnitView] = {}
    day = _scheduled_on(plan, establishment_id, Milestone.DRY_RUN)
    real = [steps.get(step) for step in _DRY_RUN_STEPS]
    if all(unit is not None and unit.dry_run_done for unit in real):
        views["dry-run"] = UnitView(uai, Step.PURGE_TRASH, UnitStatus.DONE, planned_on=day)
    elif any(unit is not None and unit.status in _STARTED for unit in real):
        views["dry-run"] = UnitView(uai, Step.PURGE_TRASH, UnitStatus.SKIPPED, planned_on=day,
                                    error="étapes 1 à 3 déjà lancées")
    elif (establishment_id, Milestone.DRY_RUN.value) in tasks:
        views["dry-run"] = UnitView(uai, Step.PURGE_TRASH, UnitStatus.PENDING, planned_on=day,
                                    error=_QUEUED)
    elif day is not None:
        views["dry-run"] = UnitView(uai, Step.PURGE_TRASH, UnitStatus.PENDING, planned_on=day)
    notices = (Milestone.WARNING, Milestone.SECOND_WARNING)
    scheduled = {m: _scheduled_on(plan, establishment_id, m) for m in notices}
    waiting = [m for m in notices if scheduled[m] is not None
               and (establishment_id, m) not in sent]
    queued = any((establishment_id, m.value) in tasks for m in notices)
    if waiting or queued:
        first = waiting[0] if waiting else Milestone.WARNING
        views["warnings"] = UnitView(uai, Step.DELETE_OBSOLETE, UnitStatus.PENDING,
                                     planned_on=scheduled[first],
                                     error=_QUEUED if queued else first.label)
    elif any((establishment_id, m) in sent for m in notices):
        views["warnings"] = UnitView(uai, Step.DELETE_OBSOLETE, UnitStatus.DONE,
                                     planned_on=scheduled[Milestone.WARNING])
    if window is not None:
        phase = window.phase(today)
        status = {BlockPhase.PLANNED: UnitStatus.PENDING, BlockPhase.ACTIVE: UnitStatus.RUNNING,
                  BlockPhase.LIFTED: UnitStatus.DONE}[phase]
        views["access-block"] = UnitView(uai, Step.INIT_DIRECTORY, status,
                                         planned_on=window.starts_on, ends_on=window.ends_on,
                                         word=phase.label, error=window.describe(today))
    return views


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def _reject_counts(session: Any, establishment_ids: set[int] | None = None) -> dict[int, int]:
    """Rejects of the newest AAF import per establishment (of ``establishment_ids`` only,
    when given)."""
    # Timetable imports share the reject store; the grid counts the AAF delivery's rejects.
    newest = session.scalar(select(func.max(AafImport.id)).where(AafImport.mode != "timetable"))
    if newest is None:
        return {}
    query = select(AafReject.establishment_id, func.count()).where(
        AafReject.import_id == newest, AafReject.establishment_id.is_not(None))
    if establishment_ids is not None:
        query = query.where(AafReject.establishment_id.in_(establishment_ids))
    return {establishment_id: count for establishment_id, count in session.execute(
        query.group_by(AafReject.establishment_id)).all()}


def connect(database: Database, storage: Path | str, *, read_only: bool = False,
            start_engine: bool = True, log_file: Path | None = None,
            config_file: Path | None = None, timezone_name: str | None = None,
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
    # Read-only by the flag or by the database's own answer (it refuses this account's
    # writes): support staff never start the engine.
    read_only = read_only or database.read_only
    client = DatabaseEngineClient(database, read_only=read_only, timezone_name=timezone_name)
    if not start_engine or read_only or client.engine_live():
        return client
    log_path = Path(log_file or default_log_file()).expanduser()
    try:
        process = spawn_engine(database.url, storage, log_file=log_path,
                               config_file=config_file)
    except OSError as error:
        raise EngineStartError(f"Le moteur n'a pas pu être lancé ({describe_error(error)}). "
                               f"Journal : {log_path}") from error
    client.spawned_pid = process.pid
    if not wait_for_engine(database, process, timeout=wait):
        raise EngineStartError(
            f"Le moteur lancé (pid {process.pid}) n'a pas pris le bail en {wait:g} s. "
            f"Journal : {log_path}")
    return client
