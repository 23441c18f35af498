"""The headless engine: one per database, it runs the calendar and the consoles' requests.

:class:`Engine.run` takes the lease, starts an APScheduler ``BackgroundScheduler`` whose
jobs live in the project database (``apscheduler_jobs``), and loops on the main thread:
it picks up requests (about once a second), turns due calendar batches into tasks, marks
the ones whose window passed as missed, and starts units on a pool of ``concurrency``
worker threads in step order, one unit per establishment at a time.

Threads: the caller's (main loop; signal handlers only set a flag), ``heartbeat``,
APScheduler's scheduler and job threads (:func:`fire_batch` only queues tasks), ``unit-N``
workers (one change-over unit each), ``event-writer``. Nothing here imports Textual.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from sqlalchemy import select
from sqlalchemy.orm import Session

from yearchange_tui.changeover.runner import ChangeoverRunner, EstablishmentRef
from yearchange_tui.ent.database import Database
from yearchange_tui.ent.models import Establishment
from yearchange_tui.scheduling.api import CHANGING_ACTIONS, RequestAction
from yearchange_tui.scheduling.events import EventLogHandler, EventWriter, step_label
from yearchange_tui.scheduling.lease import Lease, LeaseLostError, acquire, is_paused, set_paused
from yearchange_tui.scheduling.models import (
    ACTIVE_TASK_STATUSES,
    EngineRequest,
    EngineTask,
    RequestStatus,
    TaskStatus,
)
from yearchange_tui.workflow.audit import audit, operator_identity
from yearchange_tui.workflow.calendar import (
    DEFAULT_TIMEZONE,
    MILESTONE_ORDER,
    CalendarError,
    Milestone,
    Plan,
    PlannedMilestone,
    as_utc,
    build_plan,
    parse_date,
    parse_milestone,
    parse_time,
    resolve_target,
    set_date,
    timezone,
)
from yearchange_tui.workflow.establishments import UnknownEstablishmentError
from yearchange_tui.workflow.guards import GUARD_STEP_ORDER, has_override
from yearchange_tui.workflow.models import (
    STEP_PREREQUISITES,
    AuditEntry,
    Step,
    StepUnit,
    UnitStatus,
)
from yearchange_tui.workflow.units import (
    NoCurrentYearError,
    current_school_year,
    get_unit,
    utcnow,
)

log = logging.getLogger(__name__)

JOB_TABLE = "apscheduler_jobs"
JOB_PREFIX = "plan:"
NOTICE_MILESTONES = {Milestone.WARNING: "warning", Milestone.SECOND_WARNING: "second-warning"}

_active_engine: Engine | None = None


def fire_batch(milestone: str, due_at: str) -> None:
    """APScheduler job: queue the units of one calendar batch (runs in a scheduler thread).

    Args:
        milestone: the milestone value.
        due_at: the batch's start (ISO 8601, UTC).
    """
    engine = _active_engine
    if engine is None:
        log.warning("Tâche planifiée %s %s sans moteur actif : ignorée ici, le moteur suivant "
                    "la reprendra.", milestone, due_at)
        return
    engine.enqueue_calendar_batch(Milestone(milestone), dt.datetime.fromisoformat(due_at))


def job_id(milestone: Milestone, due_at: dt.datetime) -> str:
    """The scheduler job id of a calendar batch."""
    return f"{JOB_PREFIX}{milestone.value}@{due_at.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"


@dataclass
class EngineConfig:
    """Engine settings (``[yearchange.engine]`` in the config file, or CLI options)."""

    concurrency: int = 2
    """Units run at the same time."""
    poll_interval: float = 1.0
    """Seconds between two looks at the request table."""
    heartbeat_interval: float = 2.0
    lease_ttl: float = 60.0
    """Seconds without heartbeat after which another engine may take the lease over."""
    plan_sync_interval: float = 15.0
    """Seconds between two reconciliations of the calendar with the scheduler's jobs."""
    prune_interval: float = 60.0
    timezone: str = DEFAULT_TIMEZONE
    misfire_grace_time: int = 3600
    """Default for jobs; each calendar job gets the length of its window instead."""
    progress_interval: float = 0.5
    events_max_rows: int = 20_000
    events_max_age_days: float = 30.0
    read_only: bool = False
    log_path: str = ""

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None, **overrides: Any) -> EngineConfig:
        """Build from a config-file table, then CLI overrides (None values ignored).

        Raises:
            ValueError: for an unknown key (French message).
        """
        known = {f.name: f for f in fields(cls)}
        config = cls()
        for key, value in {**(values or {}), **overrides}.items():
            name = key.replace("-", "_")
            if value is None:
                continue
            if name not in known:
                raise ValueError(f"réglage moteur inconnu « {key} » "
                                 f"(connus : {', '.join(sorted(known))})")
            current = getattr(config, name)
            setattr(config, name, type(current)(value) if current is not None else value)
        if config.concurrency < 1:
            raise ValueError("concurrency doit être au moins 1")
        return config


@dataclass
class _Running:
    task_id: int
    establishment_id: int
    future: Future[None]


@dataclass
class _TaskSpec:
    task_id: int
    milestone: Milestone
    establishment_id: int
    request_id: int | None
    origin: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _DispatchState:
    """Unit statuses and active tasks, read once per dispatch pass."""

    statuses: dict[tuple[int, int], dict[Step, UnitStatus]]
    active: set[tuple[int, int, str]]

    @classmethod
    def load(cls, session: Session) -> _DispatchState:
        statuses: dict[tuple[int, int], dict[Step, UnitStatus]] = {}
        for establishment_id, year_id, step, status in session.execute(select(
                StepUnit.establishment_id, StepUnit.school_year_id, StepUnit.step,
                StepUnit.status)):
            statuses.setdefault((establishment_id, year_id), {})[Step(step)] = UnitStatus(status)
        active = {(row[0], row[1], row[2]) for row in session.execute(select(
            EngineTask.establishment_id, EngineTask.school_year_id, EngineTask.milestone)
            .where(EngineTask.status.in_(ACTIVE_TASK_STATUSES)))}
        return cls(statuses, active)


class Engine:
    """The engine process's work: lease, scheduler, requests, units."""

    def __init__(self, database: Database, storage_root: Path,
                 config: EngineConfig | None = None, *,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.database = database
        self.storage_root = Path(storage_root)
        self.config = config or EngineConfig()
        self.clock = clock
        self.zone = timezone(self.config.timezone)
        self.events = EventWriter(database, progress_interval=self.config.progress_interval,
                                  max_rows=self.config.events_max_rows,
                                  max_age=dt.timedelta(days=self.config.events_max_age_days),
                                  clock=clock)
        self.ready = threading.Event()
        """Set once the lease is held and the scheduler runs."""
        self.stopped = threading.Event()
        self.exit_status = 0
        self.stop_reason = ""
        self.ticks = 0
        """Main-loop passes so far (tests wait on it rather than on the clock)."""
        self.lease: Lease | None = None
        self.scheduler: Any = None
        self._stop = threading.Event()
        self._heartbeat_stop = threading.Event()
        self._wake = threading.Event()
        self._running: dict[int, _Running] = {}
        self._running_lock = threading.Lock()
        self._cancel_ids: set[int] = set()
        self._calendar_lock = threading.Lock()
        self._job_notes: queue.SimpleQueue[tuple[str, str, dt.datetime | None]] = queue.SimpleQueue()
        self._imports: dict[int, subprocess.Popen[str]] = {}
        self._imports_to_start: list[tuple[int, RequestAction, list[str]]] = []
        self._plan: Plan | None = None
        self._plan_dirty = True
        self._last_sync = float("-inf")
        self._last_prune = float("-inf")
        self._no_year_logged = False
        self._executor: ThreadPoolExecutor | None = None
        self._heartbeat: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def request_stop(self, reason: str = "") -> None:
        """Ask the engine to stop: running units stop at their next checkpoint (any thread,
        signal handlers included)."""
        if not self.stop_reason:
            self.stop_reason = reason or "arrêt demandé"
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        """True once a stop was asked."""
        return self._stop.is_set()

    def wake(self) -> None:
        """Run the main loop now rather than at the next poll."""
        self._wake.set()

    def run(self) -> int:
        """Run until :meth:`request_stop`; returns the exit status (0 clean, 1 lease lost).

        Raises:
            LeaseHeldError: when another live engine holds the lease (nothing started).
        """
        global _active_engine
        self.lease = acquire(self.database, ttl=dt.timedelta(seconds=self.config.lease_ttl),
                             read_only=self.config.read_only, log_path=self.config.log_path,
                             clock=self.clock)
        logger = logging.getLogger("yearchange_tui.scheduling")
        handler = EventLogHandler(self.events)
        logger.addHandler(handler)
        try:
            if self.lease.previous is not None:
                log.warning("Bail repris au moteur arrêté %s (plus de signe de vie).",
                            self.lease.previous.holder)
            _active_engine = self
            self._recover()
            self._executor = ThreadPoolExecutor(max_workers=self.config.concurrency,
                                                thread_name_prefix="unit")
            self.scheduler = self._make_scheduler()
            self.scheduler.start()
            self._heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat",
                                               daemon=True)
            self._heartbeat.start()
            log.info("Moteur démarré (%s) : %d unité(s) en parallèle, fuseau %s%s.",
                     self.lease_holder, self.config.concurrency, self.config.timezone,
                     ", mode consultation" if self.config.read_only else "")
            self.ready.set()
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception:
                    log.exception("Erreur dans la boucle du moteur ; nouvel essai.")
                self._wake.wait(self.config.poll_interval)
                self._wake.clear()
        finally:
            try:
                self._shutdown()
            finally:
                logger.removeHandler(handler)
                self.events.close()
                _active_engine = None
                self.stopped.set()
        return self.exit_status

    @property
    def lease_holder(self) -> str:
        """``host:pid`` of this engine."""
        from yearchange_tui.scheduling.lease import holder_name

        return holder_name()

    def _make_scheduler(self) -> Any:
        from apscheduler.events import (
            EVENT_JOB_ERROR,
            EVENT_JOB_MAX_INSTANCES,
            EVENT_JOB_MISSED,
        )
        from apscheduler.executors.pool import ThreadPoolExecutor as JobThreadPool
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.database.engine,
                                                     tablename=JOB_TABLE)},
            executors={"default": JobThreadPool(max_workers=2)},
            job_defaults={"misfire_grace_time": self.config.misfire_grace_time,
                          "coalesce": True, "max_instances": 1},
            timezone=dt.UTC)
        scheduler.add_listener(self._on_job_event,
                               EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
        return scheduler

    def _on_job_event(self, event: Any) -> None:
        """APScheduler listener (scheduler thread): note it for the main loop, nothing more."""
        from apscheduler.events import EVENT_JOB_MISSED

        kind = "missed" if event.code == EVENT_JOB_MISSED else "error"
        self._job_notes.put((kind, str(event.job_id), getattr(event, "scheduled_run_time", None)))
        self._wake.set()

    def _heartbeat_loop(self) -> None:
        assert self.lease is not None
        # Beats until the units have stopped, so no other engine takes over meanwhile.
        while not self._heartbeat_stop.wait(self.config.heartbeat_interval):
            try:
                self.lease.heartbeat()
            except LeaseLostError as error:
                log.error("%s Le moteur s'arrête.", error)
                self.exit_status = 1
                self.request_stop("bail perdu")
                return
            except Exception:
                log.warning("Signe de vie non enregistré ; nouvel essai.", exc_info=True)

    def _recover(self) -> None:
        """Tasks and imports left running by a stopped engine go back to the queue."""
        with self.database.session() as session:
            tasks = list(session.scalars(select(EngineTask).where(
                EngineTask.status == TaskStatus.RUNNING)))
            for task in tasks:
                task.status = TaskStatus.QUEUED
                task.started_at = None
                task.reason = "reprise après l'arrêt du moteur précédent"
            requests = list(session.scalars(select(EngineRequest).where(
                EngineRequest.status == RequestStatus.RUNNING)))
            for request in requests:
                request.status = RequestStatus.QUEUED
        if tasks:
            log.info("%d unité(s) interrompue(s) reprise(s) à leur dernier point de reprise.",
                     len(tasks))

    def _shutdown(self) -> None:
        log.info("Arrêt du moteur (%s) : les unités en cours s'arrêtent à leur prochain point "
                 "de reprise.", self.stop_reason or "arrêt")
        self._stop.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        for process in list(self._imports.values()):
            if process.poll() is None:
                process.terminate()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        for thread in [t for t in threading.enumerate() if t.name.startswith("import-")]:
            thread.join(timeout=60)
        self._heartbeat_stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=10)
        log.info("Moteur arrêté.")
        if self.lease is not None and self.exit_status == 0:
            try:
                self.lease.release()
            except Exception:
                log.warning("Bail non libéré (il expirera).", exc_info=True)

    # -- the main loop ---------------------------------------------------------------------

    def tick(self) -> None:
        """One pass of the main loop (main thread)."""
        self._drain_job_notes()
        now_mono = time.monotonic()
        if self._plan_dirty or now_mono - self._last_sync >= self.config.plan_sync_interval:
            self._plan_dirty = False
            self._last_sync = now_mono
            self.sync_plan()
        self._process_requests()
        self._dispatch()
        self.events.flush()
        if now_mono - self._last_prune >= self.config.prune_interval:
            self._last_prune = now_mono
            self.events.prune()
        self.ticks += 1

    def _drain_job_notes(self) -> None:
        while True:
            try:
                kind, identifier, run_time = self._job_notes.get_nowait()
            except queue.Empty:
                return
            if kind == "error":
                log.error("La tâche planifiée %s a échoué (voir le journal).", identifier)
                continue
            log.warning("Tâche planifiée %s manquée (moteur arrêté pendant sa fenêtre).",
                        identifier)
            if identifier.startswith(JOB_PREFIX) and run_time is not None:
                milestone = Milestone(identifier[len(JOB_PREFIX):].split("@", 1)[0])
                self._plan_dirty = True
                self._miss_batch(milestone, as_utc(run_time))

    # -- the calendar ----------------------------------------------------------------------

    def _load_plan(self) -> tuple[Plan, int] | None:
        with self.database.session() as session:
            try:
                year = current_school_year(session)
            except NoCurrentYearError:
                if not self._no_year_logged:
                    log.warning("Aucune année scolaire courante : le calendrier attend.")
                    self._no_year_logged = True
                return None
            plan = build_plan(session, year.start_year, self.config.timezone)
            year_id = year.id
        self._plan = plan
        return plan, year_id

    def _calendar_state(self, session: Session, year_id: int,
                        plan: Plan) -> tuple[set[tuple[int, str]], set[tuple[int, str, str]]]:
        """(settled units, calendar tasks already made by due time)."""
        settled = {(row[0], str(getattr(row[1], "value", row[1]))) for row in session.execute(
            select(StepUnit.establishment_id, StepUnit.step).where(
                StepUnit.school_year_id == year_id,
                StepUnit.status.in_([UnitStatus.DONE, UnitStatus.SKIPPED])))}
        since = dt.datetime(plan.school_year_start + 1, 1, 1, tzinfo=dt.UTC)
        for establishment_id, action in session.execute(select(
                AuditEntry.establishment_id, AuditEntry.action).where(
                AuditEntry.action.in_(list(NOTICE_MILESTONES.values())),
                AuditEntry.outcome == "done", AuditEntry.at >= since)):
            if establishment_id is not None:
                settled.add((establishment_id, action))
        made = {(row[0], row[1], _stamp(row[2])) for row in session.execute(
            select(EngineTask.establishment_id, EngineTask.milestone, EngineTask.due_at).where(
                EngineTask.school_year_id == year_id, EngineTask.origin == "calendar"))}
        return settled, made

    @staticmethod
    def _needs_task(planned: PlannedMilestone, settled: set[tuple[int, str]],
                    made: set[tuple[int, str, str]]) -> bool:
        assert planned.due_at is not None
        key = planned.milestone.value
        if planned.milestone is not Milestone.DRY_RUN and (planned.establishment_id, key) in settled:
            return False
        return (planned.establishment_id, key, _stamp(planned.due_at)) not in made

    def sync_plan(self) -> None:
        """Make the scheduler's jobs match the calendar; mark batches whose window passed."""
        loaded = self._load_plan()
        if loaded is None:
            return
        plan, year_id = loaded
        now = self.clock()
        existing = {job.id for job in self.scheduler.get_jobs() if job.id.startswith(JOB_PREFIX)}
        wanted: set[str] = set()
        with self._calendar_lock:
            with self.database.session() as session:
                settled, made = self._calendar_state(session, year_id, plan)
            for (milestone, due_at, not_after), units in sorted(
                    plan.batches().items(), key=lambda item: (item[0][1], MILESTONE_ORDER[item[0][0]])):
                if self.config.read_only and milestone is not Milestone.DRY_RUN:
                    continue
                pending = [u for u in units if self._needs_task(u, settled, made)]
                if not pending:
                    continue
                if not_after is not None and now >= not_after:
                    self._mark_missed(year_id, pending)
                    continue
                identifier = job_id(milestone, due_at)
                wanted.add(identifier)
                if identifier in existing:
                    continue
                grace = (int((not_after - due_at).total_seconds()) if not_after is not None
                         else self.config.misfire_grace_time)
                self.scheduler.add_job(
                    "yearchange_tui.scheduling.engine:fire_batch", "date", run_date=due_at,
                    args=[milestone.value, due_at.isoformat()], id=identifier,
                    name=f"{milestone.label} — {len(pending)} établissement(s)",
                    misfire_grace_time=max(1, grace), coalesce=True, max_instances=1,
                    replace_existing=True)
                log.info("Planifié : %s le %s (%d établissement(s)).", milestone.label,
                         self._local(due_at), len(pending))
        for identifier in existing - wanted:
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(identifier)

    def enqueue_calendar_batch(self, milestone: Milestone, due_at: dt.datetime) -> int:
        """Queue a due batch's units (scheduler thread). Returns the number queued."""
        loaded = self._load_plan()
        if loaded is None:
            return 0
        plan, year_id = loaded
        due_at = due_at.astimezone(dt.UTC)
        queued = 0
        with self._calendar_lock, self.database.session() as session:
            settled, made = self._calendar_state(session, year_id, plan)
            for planned in plan.milestones:
                if (planned.milestone is not milestone or planned.due_at != due_at
                        or not planned.schedulable
                        or not self._needs_task(planned, settled, made)):
                    continue
                session.add(EngineTask(
                    origin="calendar", milestone=milestone.value,
                    establishment_id=planned.establishment_id, school_year_id=year_id,
                    status=TaskStatus.QUEUED, due_at=due_at, not_after=planned.not_after,
                    reason="", created_at=self.clock()))
                queued += 1
        if queued:
            log.info("Calendrier : %s pour %d établissement(s).", milestone.label, queued)
        self._wake.set()
        return queued

    def _miss_batch(self, milestone: Milestone, due_at: dt.datetime | None) -> None:
        loaded = self._load_plan()
        if loaded is None or due_at is None:
            return
        plan, year_id = loaded
        with self._calendar_lock:
            with self.database.session() as session:
                settled, made = self._calendar_state(session, year_id, plan)
            pending = [p for p in plan.milestones
                       if p.milestone is milestone and p.due_at == due_at and p.schedulable
                       and self._needs_task(p, settled, made)]
            self._mark_missed(year_id, pending)

    def _missed_reason(self, due_at: dt.datetime | None, not_after: dt.datetime | None,
                       window_label: str) -> str:
        where = f"fenêtre « {window_label} »" if window_label else "créneau prévu"
        span = ""
        if due_at is not None and not_after is not None:
            span = f" (du {self._local(due_at)} au {self._local(not_after)})"
        return (f"{where}{span} passée sans exécution : relancez-la "
                "(yearchange engine-request run) ou replanifiez-la (yearchange plan set).")

    def _mark_missed(self, year_id: int, pending: list[PlannedMilestone]) -> None:
        """Record missed calendar units: a task row and, for steps, the unit's status."""
        if not pending:
            return
        notes = []
        with self.database.session() as session:
            for planned in pending:
                reason = self._missed_reason(planned.due_at, planned.not_after,
                                             planned.window_label)
                assert planned.due_at is not None
                session.add(EngineTask(
                    origin="calendar", milestone=planned.milestone.value,
                    establishment_id=planned.establishment_id, school_year_id=year_id,
                    status=TaskStatus.MISSED, due_at=planned.due_at,
                    not_after=planned.not_after, reason=reason, created_at=self.clock(),
                    finished_at=self.clock()))
                _miss_unit(session, planned.establishment_id, year_id, planned.milestone,
                           reason)
                notes.append((planned, reason))
        for planned, reason in notes:
            self.events.record("unit", f"{planned.uai} : {planned.milestone.label} manquée — "
                               f"{reason}", uai=planned.uai, step=planned.milestone.value,
                               level="warning", data={"event": "missed"})
        log.warning("%d unité(s) manquée(s) : %s.", len(notes),
                    ", ".join(sorted({p.milestone.label for p, _ in notes})))

    def _local(self, moment: dt.datetime) -> str:
        return moment.astimezone(self.zone).strftime("%d/%m/%Y %H:%M")

    # -- requests --------------------------------------------------------------------------

    def _process_requests(self) -> None:
        with self.database.session() as session:
            rows = [(row.id, row.action, row.params, row.requester_read_only, row.requested_by)
                    for row in session.scalars(select(EngineRequest).where(
                        EngineRequest.status == RequestStatus.QUEUED)
                        .order_by(EngineRequest.id).limit(50))]
        for request_id, action, params, requester_read_only, requested_by in rows:
            try:
                decoded = json.loads(params or "{}")
                status, message = self._handle(request_id, action, decoded,
                                               requester_read_only)
            except (ValueError, CalendarError, UnknownEstablishmentError) as error:
                status, message = RequestStatus.REFUSED, str(error)
            except Exception as error:
                log.exception("Demande n°%d (%s) en échec.", request_id, action)
                status, message = RequestStatus.FAILED, str(error)
            with self.database.session() as session:
                row = session.get(EngineRequest, request_id)
                if row is None:
                    continue
                row.picked_at = row.picked_at or self.clock()
                row.status = status
                row.message = message
                if status is not RequestStatus.RUNNING:
                    row.finished_at = self.clock()
            level = {RequestStatus.REFUSED: "warning", RequestStatus.FAILED: "error"}.get(
                status, "info")
            self.events.record("request", f"Demande n°{request_id} ({action}) : {message}",
                               level=level, data={"request_id": request_id, "action": action,
                                                  "status": status.value,
                                                  "requested_by": requested_by})
        while self._imports_to_start:
            request_id, action_value, command = self._imports_to_start.pop(0)
            threading.Thread(target=self._run_import, name=f"import-{request_id}",
                             args=(request_id, action_value, command), daemon=True).start()

    def _handle(self, request_id: int, action_value: str, params: dict[str, Any],
                requester_read_only: bool) -> tuple[RequestStatus, str]:
        try:
            action = RequestAction(action_value)
        except ValueError:
            return RequestStatus.REFUSED, f"action inconnue « {action_value} »"
        if action in CHANGING_ACTIONS and (self.config.read_only or requester_read_only):
            return RequestStatus.REFUSED, ("mode consultation : cette demande modifierait les "
                                           "données, elle est refusée")
        handler = {
            RequestAction.RUN: self._request_run,
            RequestAction.DRY_RUN: self._request_dry_run,
            RequestAction.PAUSE: self._request_pause,
            RequestAction.RESUME: self._request_resume,
            RequestAction.CANCEL: self._request_cancel,
            RequestAction.RETRY: self._request_retry,
            RequestAction.SET_DATE: self._request_set_date,
            RequestAction.IMPORT_AAF: self._request_import,
            RequestAction.IMPORT_TIMETABLE: self._request_import,
        }[action]
        return handler(request_id, action, params)

    def _refs(self, params: dict[str, Any]) -> list[EstablishmentRef]:
        runner = ChangeoverRunner(self.database, self.storage_root, read_only=True)
        refs = runner.establishments(_uais(params) or None)
        if not refs:
            raise ValueError("aucun établissement dans la base")
        return refs

    def _queue_tasks(self, request_id: int, origin: str, milestone: Milestone,
                     refs: list[EstablishmentRef]) -> tuple[int, int, int]:
        """Queue one task per establishment; returns (queued, already done, already queued)."""
        now = self.clock()
        step = milestone.step
        ids = [ref.id for ref in refs]
        with self.database.session() as session:
            year = current_school_year(session)
            done_ids: set[int] = set()
            if step is not None:
                done_ids = set(session.scalars(select(StepUnit.establishment_id).where(
                    StepUnit.establishment_id.in_(ids), StepUnit.school_year_id == year.id,
                    StepUnit.step == step, StepUnit.status == UnitStatus.DONE)))
            busy_ids = set(session.scalars(select(EngineTask.establishment_id).where(
                EngineTask.establishment_id.in_(ids), EngineTask.school_year_id == year.id,
                EngineTask.milestone == milestone.value,
                EngineTask.status.in_(ACTIVE_TASK_STATUSES)))) - done_ids
            skipped = done_ids | busy_ids
            to_queue = [ref.id for ref in refs if ref.id not in skipped]
            session.add_all(EngineTask(request_id=request_id, origin=origin,
                                       milestone=milestone.value, establishment_id=ref_id,
                                       school_year_id=year.id, status=TaskStatus.QUEUED,
                                       due_at=now, not_after=None, reason="", created_at=now)
                            for ref_id in to_queue)
        self._wake.set()
        return len(to_queue), len(done_ids), len(busy_ids)

    @staticmethod
    def _queued_message(label: str, queued: int, done: int, busy: int) -> str:
        parts = [f"{label} : {queued} unité(s) en file"]
        if done:
            parts.append(f"{done} déjà terminée(s)")
        if busy:
            parts.append(f"{busy} déjà en file ou en cours")
        return ", ".join(parts)

    def _request_run(self, request_id: int, _action: RequestAction,
                     params: dict[str, Any]) -> tuple[RequestStatus, str]:
        if not params.get("step"):
            raise ValueError("précisez l'étape (step)")
        milestone = parse_milestone(str(params["step"]))
        if not milestone.runs_units:
            raise ValueError(f"« {milestone.label} » n'est pas une opération exécutable")
        queued, done, busy = self._queue_tasks(request_id, "request", milestone,
                                               self._refs(params))
        return RequestStatus.DONE, self._queued_message(milestone.label, queued, done, busy)

    def _request_dry_run(self, request_id: int, _action: RequestAction,
                         params: dict[str, Any]) -> tuple[RequestStatus, str]:
        queued, done, busy = self._queue_tasks(request_id, "request", Milestone.DRY_RUN,
                                               self._refs(params))
        return RequestStatus.DONE, self._queued_message(Milestone.DRY_RUN.label, queued, done,
                                                        busy)

    def _request_pause(self, _request_id: int, _action: RequestAction,
                       _params: dict[str, Any]) -> tuple[RequestStatus, str]:
        set_paused(self.database, True)
        log.info("Moteur en pause : aucune nouvelle unité ne démarre.")
        return RequestStatus.DONE, ("moteur en pause : aucune nouvelle unité ne démarre, celles "
                                    "en cours se terminent")

    def _request_resume(self, _request_id: int, _action: RequestAction,
                        _params: dict[str, Any]) -> tuple[RequestStatus, str]:
        set_paused(self.database, False)
        log.info("Moteur relancé.")
        self._wake.set()
        return RequestStatus.DONE, "moteur relancé"

    def _matching_tasks(self, session: Session, params: dict[str, Any],
                        statuses: tuple[TaskStatus, ...]) -> list[EngineTask]:
        query = select(EngineTask).where(EngineTask.status.in_(statuses))
        if _uais(params):
            ids = [ref.id for ref in self._refs(params)]
            query = query.where(EngineTask.establishment_id.in_(ids))
        if params.get("step"):
            query = query.where(EngineTask.milestone == parse_milestone(str(params["step"])).value)
        return list(session.scalars(query))

    def _request_cancel(self, request_id: int, _action: RequestAction,
                        params: dict[str, Any]) -> tuple[RequestStatus, str]:
        removed = stopping = 0
        with self.database.session() as session:
            for task in self._matching_tasks(session, params, ACTIVE_TASK_STATUSES):
                if task.status is TaskStatus.RUNNING:
                    self._cancel_ids.add(task.id)
                    stopping += 1
                else:
                    task.status = TaskStatus.CANCELLED
                    task.reason = f"annulée par l'opérateur (demande n°{request_id})"
                    task.finished_at = self.clock()
                    removed += 1
        return RequestStatus.DONE, (f"{removed} unité(s) retirée(s) de la file, {stopping} en "
                                    "cours s'arrête(nt) à leur prochain point de reprise")

    def _request_retry(self, request_id: int, _action: RequestAction,
                       params: dict[str, Any]) -> tuple[RequestStatus, str]:
        with self.database.session() as session:
            year = current_school_year(session)
            query = select(StepUnit.establishment_id, StepUnit.step).where(
                StepUnit.school_year_id == year.id, StepUnit.status == UnitStatus.FAILED)
            if params.get("step"):
                step = parse_milestone(str(params["step"])).step
                if step is None:
                    raise ValueError("seules les étapes 1 à 5 se relancent")
                query = query.where(StepUnit.step == step)
            if _uais(params):
                query = query.where(StepUnit.establishment_id.in_(
                    [ref.id for ref in self._refs(params)]))
            failed = session.execute(query).all()
            refs = {ref.id: ref for ref in self._refs({})}
        by_step: dict[Step, list[EstablishmentRef]] = {}
        for establishment_id, step in failed:
            by_step.setdefault(Step(step), []).append(refs[establishment_id])
        queued = busy = 0
        for step, step_refs in by_step.items():
            q, _done, b = self._queue_tasks(request_id, "retry", Milestone(step.value), step_refs)
            queued += q
            busy += b
        if not failed:
            return RequestStatus.DONE, "aucune unité en échec à relancer"
        return RequestStatus.DONE, (f"{queued} unité(s) en échec relancée(s)"
                                    + (f", {busy} déjà en file" if busy else ""))

    def _request_set_date(self, _request_id: int, _action: RequestAction,
                          params: dict[str, Any]) -> tuple[RequestStatus, str]:
        if not params.get("step") or "date" not in params:
            raise ValueError("précisez le jalon (step) et la date (date)")
        milestone = parse_milestone(str(params["step"]))
        on_date = parse_date(str(params["date"])) if params["date"] is not None else None
        at_time = parse_time(params.get("time"))
        uais = _uais(params)
        with self.database.session() as session:
            year = current_school_year(session)
            targets = ([resolve_target(session, uai=uai) for uai in uais] if uais else
                       [resolve_target(session, kind=params.get("kind"),
                                       project=params.get("project"))])
            actor = "moteur (demande)"
            for target in targets:
                set_date(session, year.start_year, milestone, on_date, at_time, target=target,
                         actor=actor)
            audit(session, "plan", "set", details={
                "milestone": milestone.value, "date": str(on_date), "time": str(at_time),
                "uais": uais, "kind": params.get("kind"), "project": params.get("project")})
        self._plan_dirty = True
        self._wake.set()
        when = f"{on_date:%d/%m/%Y}" if on_date else "sans date"
        return RequestStatus.DONE, f"{milestone.label} : {when} ({len(targets)} cible(s))"

    def _request_import(self, request_id: int, action: RequestAction,
                        params: dict[str, Any]) -> tuple[RequestStatus, str]:
        path = params.get("path")
        if not path:
            raise ValueError("précisez le chemin (path)")
        command = ["import-aaf", str(path)] if action is RequestAction.IMPORT_AAF else [
            "import-timetable", str(path), "--uai", str(params.get("uai") or "")]
        if action is RequestAction.IMPORT_TIMETABLE and not params.get("uai"):
            raise ValueError("précisez l'établissement (uai)")
        self._imports_to_start.append((request_id, action, command))
        return RequestStatus.RUNNING, f"import lancé : {path}"

    def _run_import(self, request_id: int, action: RequestAction, command: list[str]) -> None:
        """Run an import as a ``yearchange`` child process (its own transaction)."""
        argv = [sys.executable, "-m", "yearchange_tui", "--db", self.database.url,
                "--storage", str(self.storage_root), *command, "--json"]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, text=True)
        self._imports[request_id] = process
        try:
            out, err = process.communicate()
        finally:
            self._imports.pop(request_id, None)
        if self.stopping and process.returncode not in (0, 1, 2):
            status, message = RequestStatus.QUEUED, "interrompu par l'arrêt du moteur ; reprise"
        elif process.returncode == 0:
            status, message = RequestStatus.DONE, _import_summary(out) or "import terminé"
        else:
            lines = [line.strip() for line in (err or "").splitlines() if line.strip()
                     and not line.startswith("…")]
            said = [line for line in lines if line.startswith("yearchange :")]
            status = RequestStatus.REFUSED if process.returncode == 2 else RequestStatus.FAILED
            message = (" ".join(said) if said else lines[-1] if lines
                       else f"import en échec (code {process.returncode})")
        with self.database.session() as session:
            row = session.get(EngineRequest, request_id)
            if row is not None:
                row.status = status
                row.message = message
                row.finished_at = None if status is RequestStatus.QUEUED else self.clock()
        self.events.record("request", f"Demande n°{request_id} ({action.value}) : {message}",
                           level="info" if status is RequestStatus.DONE else "warning",
                           data={"request_id": request_id, "status": status.value})
        for uai, count in _reject_counts(out).items():
            self.events.record("reject", f"{uai} : {count} rejet(s) à l'import", uai=uai,
                               level="warning", data={"count": count,
                                                      "request_id": request_id})

    # -- dispatching units -----------------------------------------------------------------

    def _dispatch(self) -> None:
        """Start due tasks in step order, within concurrency; mark overdue ones missed."""
        paused = is_paused(self.database)
        now = self.clock()
        to_start: list[_TaskSpec] = []
        notes: list[tuple[str, str, str, str, dict[str, Any]]] = []
        with self._running_lock:
            busy = {running.establishment_id for running in self._running.values()}
            slots = self.config.concurrency - len(self._running)
        with self.database.session() as session:
            tasks = list(session.scalars(select(EngineTask).where(
                EngineTask.status.in_([TaskStatus.QUEUED, TaskStatus.WAITING]))))
            if not tasks:
                return
            uais = dict(session.execute(select(Establishment.id, Establishment.uai)).all())
            state: _DispatchState | None = None
            tasks.sort(key=lambda t: (MILESTONE_ORDER.get(_milestone(t.milestone), 99),
                                      as_utc(t.due_at), uais.get(t.establishment_id, ""), t.id))
            for task in tasks:
                milestone = _milestone(task.milestone)
                uai = uais.get(task.establishment_id, "?")
                due_at, not_after = as_utc(task.due_at), as_utc(task.not_after)
                assert due_at is not None
                if not_after is not None and now > not_after:
                    reason = self._missed_reason(due_at, not_after, "")
                    task.status = TaskStatus.MISSED
                    task.reason = reason
                    task.finished_at = now
                    if milestone is not None:
                        _miss_unit(session, task.establishment_id, task.school_year_id,
                                   milestone, reason)
                    notes.append(("unit", f"{uai} : {_label(task.milestone)} manquée — {reason}",
                                  uai, "warning", {"event": "missed"}))
                    continue
                if paused or due_at > now or slots <= 0 or task.establishment_id in busy:
                    continue
                if state is None:
                    state = _DispatchState.load(session)
                waiting = self._wait_reason(session, task, milestone, now, state)
                if waiting:
                    if task.status is not TaskStatus.WAITING or task.reason != waiting:
                        task.status = TaskStatus.WAITING
                        task.reason = waiting
                        notes.append(("unit", f"{uai} : {_label(task.milestone)} {waiting}",
                                      uai, "info", {"event": "waiting"}))
                    continue
                if milestone is None:
                    task.status = TaskStatus.FAILED
                    task.reason = f"jalon inconnu « {task.milestone} »"
                    continue
                task.status = TaskStatus.RUNNING
                task.started_at = now
                task.reason = ""
                busy.add(task.establishment_id)
                slots -= 1
                to_start.append(_TaskSpec(task.id, milestone, task.establishment_id,
                                          task.request_id, task.origin))
        for kind, message, uai, level, data in notes:
            self.events.record(kind, message, uai=uai, level=level, data=data)
        assert self._executor is not None
        for spec in to_start:
            with self._running_lock:
                future = self._executor.submit(self._run_task, spec)
                self._running[spec.task_id] = _Running(spec.task_id, spec.establishment_id,
                                                       future)

    def _wait_reason(self, session: Session, task: EngineTask, milestone: Milestone | None,
                     now: dt.datetime, state: _DispatchState) -> str:
        """Why a step must wait for a prerequisite still to come (empty: it may start; the
        runner's guard then refuses it with its reason when a prerequisite cannot come)."""
        step = milestone.step if milestone is not None else None
        if step is None:
            return ""
        statuses = state.statuses.get((task.establishment_id, task.school_year_id), {})
        missing = [p for p in STEP_PREREQUISITES[step]
                   if statuses.get(p, UnitStatus.PENDING) is not UnitStatus.DONE]
        if not missing or has_override(session, GUARD_STEP_ORDER, task.establishment_id):
            return ""
        coming = []
        for prerequisite in missing:
            active = (task.establishment_id, task.school_year_id,
                      prerequisite.value) in state.active
            planned = (self._plan.get(task.establishment_id, Milestone(prerequisite.value))
                       if self._plan is not None else None)
            planned_later = (planned is not None and planned.schedulable
                             and planned.due_at is not None and planned.due_at > now)
            if active or statuses.get(prerequisite) is UnitStatus.RUNNING or planned_later:
                coming.append(prerequisite)
        if not coming:
            return ""
        names = ", ".join(f"l'étape {p.number} ({p.label})" for p in coming)
        return f"en attente de {names}"

    def _runner(self, task_id: int) -> ChangeoverRunner:
        def should_stop() -> bool:
            return self._stop.is_set() or task_id in self._cancel_ids

        return ChangeoverRunner(self.database, self.storage_root, observer=self.events,
                                read_only=self.config.read_only, should_stop=should_stop)

    def _run_task(self, spec: _TaskSpec) -> None:
        """Run one task to its end (unit worker thread)."""
        status, reason = TaskStatus.FAILED, ""
        try:
            runner = self._runner(spec.task_id)
            ref = next(r for r in runner.establishments() if r.id == spec.establishment_id)
            status, reason = self._execute(spec, runner, ref)
        except Exception as error:
            log.exception("Unité %s (tâche n°%d) en échec.", spec.milestone.value, spec.task_id)
            status, reason = TaskStatus.FAILED, str(error)
        finally:
            self._finish_task(spec, status, reason)

    def _execute(self, spec: _TaskSpec, runner: ChangeoverRunner,
                 ref: EstablishmentRef) -> tuple[TaskStatus, str]:
        milestone = spec.milestone
        if runner.should_stop is not None and runner.should_stop():
            return self._stopped_status(spec)
        if milestone is Milestone.DRY_RUN:
            runner.dry_run([ref])
            return TaskStatus.DONE, ""
        if milestone in NOTICE_MILESTONES:
            planned = self._plan.get(ref.id, Milestone.DELETE_OBSOLETE) if self._plan else None
            if planned is None or planned.on_date is None:
                return TaskStatus.FAILED, ("pas de date d'étape 3 au calendrier : le message ne "
                                           "peut pas annoncer la date de suppression")
            outcome = runner.send_warnings([ref], planned.on_date,
                                           second=milestone is Milestone.SECOND_WARNING)[0]
            sent = outcome.counts.get("avertissements envoyés", 0)
            self.events.record("unit", f"{ref.uai} : {milestone.label} — {sent} message(s)",
                               uai=ref.uai, step=milestone.value,
                               data={"event": "finished", "counts": outcome.counts})
            return TaskStatus.DONE, f"{sent} message(s) envoyé(s)"
        step = milestone.step
        assert step is not None
        if step is Step.INIT_DIRECTORY:
            return self._run_later_step("yearchange_tui.aaf.step4", "run_init_directory",
                                        ref, step)
        if step is Step.INIT_SCHOOL_LIFE:
            return self._run_later_step("yearchange_tui.timetable.step5",
                                        "run_init_school_life", ref, step)
        outcome = runner.run_unit(step, ref)
        if outcome.status in ("done", "already-done"):
            return TaskStatus.DONE, ""
        if outcome.status == "refused":
            return TaskStatus.BLOCKED, outcome.error
        if outcome.status == "cancelled":
            return self._stopped_status(spec)
        return TaskStatus.FAILED, outcome.error

    def _stopped_status(self, spec: _TaskSpec) -> tuple[TaskStatus, str]:
        if spec.task_id in self._cancel_ids:
            return TaskStatus.CANCELLED, "annulée par l'opérateur ; reprendra à son point de reprise"
        return TaskStatus.QUEUED, "interrompue par l'arrêt du moteur ; reprend au redémarrage"

    def _run_later_step(self, module_name: str, function_name: str, ref: EstablishmentRef,
                        step: Step) -> tuple[TaskStatus, str]:
        """Steps 4 and 5 come from their own packages, when installed."""
        import importlib

        try:
            module = importlib.import_module(module_name)
            function = getattr(module, function_name)
        except (ImportError, AttributeError):
            message = (f"L'étape {step.number} ({step.label}) n'est pas encore disponible dans "
                       "cette version.")
            self.events.record("unit", f"{ref.uai} : {message}", uai=ref.uai, step=step.value,
                               level="warning", data={"event": "unavailable"})
            return TaskStatus.FAILED, message
        try:
            report = function(self.database, [ref.id], self.events)
        except Exception as error:  # noqa: BLE001 - e.g. no AAF delivery yet: the unit fails
            self.events.record("unit", f"{ref.uai} : {step_label(step.value)} en échec : {error}",
                               uai=ref.uai, step=step.value, level="error",
                               data={"event": "failed", "error": str(error)})
            return TaskStatus.FAILED, str(error)
        refused = getattr(report, "refused", {}) or {}
        failed = getattr(report, "failed", {}) or {}
        if ref.uai in refused:
            return TaskStatus.BLOCKED, str(refused[ref.uai])
        if ref.uai in failed:
            return TaskStatus.FAILED, str(failed[ref.uai])
        return TaskStatus.DONE, ""

    def _finish_task(self, spec: _TaskSpec, status: TaskStatus, reason: str) -> None:
        try:
            with self.database.session() as session:
                task = session.get(EngineTask, spec.task_id)
                if task is not None:
                    task.status = status
                    task.reason = reason
                    if status is TaskStatus.QUEUED:
                        task.started_at = None
                    else:
                        task.finished_at = self.clock()
                uai = session.scalar(select(Establishment.uai).where(
                    Establishment.id == spec.establishment_id)) or ""
            if status in (TaskStatus.CANCELLED, TaskStatus.QUEUED):
                self.events.record("unit", f"{uai} : {spec.milestone.label} — {reason}", uai=uai,
                                   step=spec.milestone.value, level="warning",
                                   data={"event": "cancelled" if status is TaskStatus.CANCELLED
                                         else "interrupted"})
        finally:
            with self._running_lock:
                self._running.pop(spec.task_id, None)
            self._cancel_ids.discard(spec.task_id)
            self._wake.set()


def _miss_unit(session: Session, establishment_id: int, year_id: int, milestone: Milestone,
               reason: str) -> None:
    """Mark a step's unit missed when it has not started (nothing for other milestones)."""
    if milestone.step is None:
        return
    unit = get_unit(session, establishment_id, year_id, milestone.step)
    assert unit is not None
    if unit.status is UnitStatus.PENDING:
        unit.status = UnitStatus.MISSED
        unit.error = reason


def _uais(params: dict[str, Any]) -> list[str]:
    """The establishments a request names (``uais``, or one ``uai``)."""
    uais = params.get("uais") or params.get("uai") or []
    return [uais] if isinstance(uais, str) else list(uais)


def _stamp(value: dt.datetime | None) -> str:
    moment = as_utc(value)
    return moment.strftime("%Y%m%dT%H%M%S") if moment is not None else ""


def _milestone(value: str) -> Milestone | None:
    try:
        return Milestone(value)
    except ValueError:
        return None


def _label(value: str) -> str:
    milestone = _milestone(value)
    return milestone.label if milestone is not None else value


def _import_summary(out: str) -> str:
    try:
        data = json.loads(out)
    except (TypeError, ValueError):
        return ""
    if not isinstance(data, dict):
        return ""
    records = data.get("records")
    rejects = data.get("rejects_by_code") or data.get("rejects")
    parts = ["import terminé"]
    if isinstance(records, (int, dict)):
        total = records if isinstance(records, int) else sum(
            v for v in records.values() if isinstance(v, int))
        parts.append(f"{total} enregistrement(s)")
    if isinstance(rejects, dict):
        parts.append(f"{sum(v for v in rejects.values() if isinstance(v, int))} rejet(s)")
    return ", ".join(parts)


def _reject_counts(out: str) -> dict[str, int]:
    try:
        data = json.loads(out)
    except (TypeError, ValueError):
        return {}
    counts: dict[str, int] = {}
    if isinstance(data, dict):
        for summary in data.get("establishments") or []:
            if isinstance(summary, dict) and summary.get("uai"):
                rejects = summary.get("rejects") or {}
                total = sum(v for v in rejects.values() if isinstance(v, int)) if isinstance(
                    rejects, dict) else 0
                if total:
                    counts[str(summary["uai"])] = total
    return counts


def engine_identity() -> str:
    """Who asks: OS user, host, pid (and SSH client) for request rows."""
    identity = operator_identity()
    ssh = f" depuis {identity['ssh_client']}" if identity["ssh_client"] else ""
    return f"{identity['os_user']}@{identity['host']} pid {os.getpid()}{ssh}"
