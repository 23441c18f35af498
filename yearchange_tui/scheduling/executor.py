"""Execute one engine task, in whatever process runs it.

One code path for every unit the engine hands out: the engine's local worker processes
(SQLite, or PostgreSQL without ``yearchange worker``) and the procrastinate task of the
fleet's workers (PostgreSQL) both call :func:`execute_task` with a task id. It opens the
database by URL (once per process), checks the task may still start (not cancelled, not
paused, window not passed), runs the unit through :class:`ChangeoverRunner` audited for the
requester, and writes the task's outcome and events.

Cancel and stop reach the unit at its checkpoints: ``should_stop`` reads the task's
``cancel_requested_at`` (at most every :data:`CANCEL_POLL` seconds) and this process's stop event.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from yearchange_tui.changeover.runner import ChangeoverRunner
from yearchange_tui.config import LOG_FORMAT, MaskingFormatter
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.errors import describe_error
from yearchange_tui.ent.models import Establishment
from yearchange_tui.scheduling.calendar_sync import NOTICE_MILESTONES, miss_unit, missed_reason
from yearchange_tui.scheduling.events import EventWriter
from yearchange_tui.scheduling.lease import is_paused
from yearchange_tui.scheduling.models import (
    ACTIVE_TASK_STATUSES,
    EngineRequest,
    EngineTask,
    TaskStatus,
)
from yearchange_tui.scheduling.state import engine_log
from yearchange_tui.workflow.audit import on_behalf_of
from yearchange_tui.workflow.calendar import DEFAULT_TIMEZONE, Milestone, as_utc, build_plan
from yearchange_tui.workflow.claims import CLAIM_REFUSED_CODE, host_name
from yearchange_tui.workflow.establishments import EstablishmentRef
from yearchange_tui.workflow.localtime import operator_zone
from yearchange_tui.workflow.units import current_school_year, utcnow

log = engine_log()

TaskOutcome = tuple[TaskStatus, str]
"""A task's final status and its French reason."""

CANCEL_POLL = 0.25
"""Seconds between two reads of a running task's cancel flag."""


@dataclass
class ExecutionContext:
    """What a process needs to execute tasks on one database (built once per process)."""

    database: Database
    storage_root: Path
    read_only: bool = False
    timezone: str = DEFAULT_TIMEZONE
    stop: Any = field(default_factory=threading.Event)
    """Set when this process must stop: running units stop at their next checkpoint (a
    ``threading.Event`` or a ``multiprocessing`` one)."""
    events: EventWriter | None = None

    def __post_init__(self) -> None:
        if self.events is None:
            self.events = EventWriter(self.database)

    @property
    def writer(self) -> EventWriter:
        assert self.events is not None
        return self.events


_contexts: dict[tuple[str, str], ExecutionContext] = {}


def process_context(url: str, storage_root: str | Path, *, read_only: bool = False,
                    timezone: str = DEFAULT_TIMEZONE, stop: Any = None) -> ExecutionContext:
    """This process's context for ``url`` (database opened once, kept for the next tasks)."""
    key = (url, str(storage_root))
    context = _contexts.get(key)
    if context is None:
        database = open_database(url, migrate=False)
        context = _contexts[key] = ExecutionContext(
            database, Path(storage_root), read_only=read_only, timezone=timezone,
            stop=stop if stop is not None else threading.Event())
    elif stop is not None:
        context.stop = stop
    return context


@dataclass
class Executed:
    """What :func:`execute_task` did."""

    status: TaskStatus
    reason: str
    started: bool
    """False when the task did not start (cancelled, paused, missed, already settled)."""
    retry: bool = False
    """True when the unit failed and will be tried again (procrastinate's backoff)."""


@dataclass
class _Spec:
    task_id: int
    milestone: Milestone
    establishment_id: int
    request_id: int | None
    attempts: int
    uai: str


def milestone_label(value: str) -> str:
    """A task's milestone as operators read it (its value when unknown)."""
    try:
        return Milestone(value).label
    except ValueError:
        return value


def _start(context: ExecutionContext, task_id: int) -> _Spec | Executed:
    """Mark the task running here, or say why it does not start."""
    database = context.database
    now = utcnow()
    paused = is_paused(database)
    note: tuple[str, str, str] | None = None
    with database.session() as session:
        query = select(EngineTask).where(EngineTask.id == task_id)
        if not database.is_sqlite:
            query = query.with_for_update()
        task = session.scalar(query)
        if task is None:
            return Executed(TaskStatus.FAILED, "tâche inconnue", started=False)
        uai = session.scalar(select(Establishment.uai).where(
            Establishment.id == task.establishment_id)) or "?"
        if task.status not in ACTIVE_TASK_STATUSES:
            return Executed(TaskStatus(task.status), task.reason, started=False)
        if task.cancel_requested_at is not None:
            task.status = TaskStatus.CANCELLED
            task.reason = "annulée par l'opérateur avant son démarrage"
            task.finished_at = now
            return Executed(TaskStatus.CANCELLED, task.reason, started=False)
        not_after = as_utc(task.not_after)
        if not_after is not None and now > not_after:
            reason = missed_reason(operator_zone(context.timezone), task.due_at,
                                   task.not_after)
            task.status, task.reason, task.finished_at = TaskStatus.MISSED, reason, now
            try:
                miss_unit(session, task.establishment_id, task.school_year_id,
                          Milestone(task.milestone), reason)
            except ValueError:
                pass
            note = (f"{uai} : {milestone_label(task.milestone)} manquée — {reason}", "warning", "missed")
            result: _Spec | Executed = Executed(TaskStatus.MISSED, reason, started=False)
        elif paused:
            # Pause stops new units fleet-wide: the task goes back to the engine's queue.
            task.status, task.reason = TaskStatus.QUEUED, "en pause : reprendra à la relance"
            task.started_at = task.deferred_at = task.job_id = None
            result = Executed(TaskStatus.QUEUED, task.reason, started=False)
        else:
            try:
                milestone = Milestone(task.milestone)
            except ValueError:
                task.status = TaskStatus.FAILED
                task.reason = f"jalon inconnu « {task.milestone} »"
                return Executed(TaskStatus.FAILED, task.reason, started=False)
            task.status, task.reason = TaskStatus.RUNNING, ""
            task.started_at = task.started_at or now
            task.attempts = (task.attempts or 0) + 1
            task.worker = f"{host_name()}:{os.getpid()}"
            result = _Spec(task.id, milestone, task.establishment_id, task.request_id,
                           task.attempts, uai)
    if note is not None:
        context.writer.record("unit", note[0], uai=uai, level=note[1],
                              data={"event": note[2]})
    return result


class _Stopper:
    """``should_stop`` of a task's runner: this process stops, or the task was cancelled
    (read from the database at most once every :data:`CANCEL_POLL` seconds)."""

    def __init__(self, context: ExecutionContext, task_id: int) -> None:
        self.context = context
        self.task_id = task_id
        self.cancelled = False
        self._last = float("-inf")

    def __call__(self) -> bool:
        if self.context.stop.is_set():
            return True
        now = time.monotonic()
        if not self.cancelled and now - self._last >= CANCEL_POLL:
            self._last = now
            with self.context.database.session() as session:
                self.cancelled = session.scalar(select(EngineTask.cancel_requested_at).where(
                    EngineTask.id == self.task_id)) is not None
        return self.cancelled


def execute_task(context: ExecutionContext, task_id: int, *,
                 retry_left: bool = False) -> Executed:
    """Run one engine task to its end in this process and write its outcome.

    Args:
        context: this process's context (:func:`process_context`).
        task_id: the ``engine_tasks`` row.
        retry_left: a failure will be tried again (the task stays handed out, its reason
            says so) rather than recorded failed.
    """
    begun = _start(context, task_id)
    if isinstance(begun, Executed):
        context.writer.flush(force=True)
        return begun
    spec = begun
    stopper = _Stopper(context, task_id)
    status, reason = TaskStatus.FAILED, ""
    try:
        runner = ChangeoverRunner(context.database, context.storage_root,
                                  observer=context.writer, read_only=context.read_only,
                                  should_stop=stopper)
        # Step 3's VACUUM (ANALYZE) is the engine's, once per batch (dispatch).
        runner.defer_statistics = True
        # One establishment read, not the académie's: a unit per task at national size.
        ref = runner.establishments([spec.uai])[0]
        with on_behalf_of(_requester(context.database, spec.request_id)):
            status, reason = _execute(context, spec, runner, ref, stopper)
    except Exception as error:  # any failure is the task's outcome
        log.exception("Unité %s (tâche n°%d) en échec.", spec.milestone.value, spec.task_id)
        status, reason = TaskStatus.FAILED, describe_error(error)
    retry = status is TaskStatus.FAILED and retry_left
    _finish(context, spec, status, reason, retry)
    return Executed(status, reason, started=True, retry=retry)


def _requester(database: Database, request_id: int | None) -> str | None:
    """Who sent the request that caused a task (None for the calendar's own tasks)."""
    if request_id is None:
        return None
    with database.session() as session:
        return session.scalar(select(EngineRequest.requested_by).where(
            EngineRequest.id == request_id)) or None


def _execute(context: ExecutionContext, spec: _Spec, runner: ChangeoverRunner,
             ref: EstablishmentRef, stopper: _Stopper) -> TaskOutcome:
    milestone = spec.milestone
    if stopper():
        return _stopped_status(stopper)
    if milestone is Milestone.DRY_RUN:
        runner.dry_run([ref])
        return TaskStatus.DONE, ""
    if milestone in NOTICE_MILESTONES:
        return _send_notices(context, milestone, runner, ref)
    step = milestone.step
    assert step is not None
    outcome = runner.run_unit(step, ref)
    if outcome.status in ("done", "already-done"):
        return TaskStatus.DONE, ""
    if outcome.code == CLAIM_REFUSED_CODE:  # run elsewhere meanwhile: wait for it
        return TaskStatus.WAITING, outcome.error
    if outcome.status == "refused":
        return TaskStatus.BLOCKED, outcome.error
    if outcome.status == "cancelled":
        return _stopped_status(stopper)
    log.error("Unité %s de %s en échec : %s\n%s", step.value, ref.uai, outcome.error,
              outcome.traceback)
    return TaskStatus.FAILED, outcome.error


def _send_notices(context: ExecutionContext, milestone: Milestone, runner: ChangeoverRunner,
                  ref: EstablishmentRef) -> TaskOutcome:
    """The free-group warnings, announcing the establishment's step-3 date."""
    with context.database.session() as session:
        year = current_school_year(session)
        plan = build_plan(session, year.start_year, context.timezone, [ref.uai])
    planned = plan.get(ref.id, Milestone.DELETE_OBSOLETE)
    if planned is None or planned.on_date is None:
        return TaskStatus.FAILED, ("pas de date d'étape 3 au calendrier : le message ne "
                                   "peut pas annoncer la date de suppression")
    outcome = runner.send_warnings([ref], planned.on_date,
                                   second=milestone is Milestone.SECOND_WARNING)[0]
    sent = outcome.counts.get("avertissements envoyés", 0)
    context.writer.record("unit", f"{ref.uai} : {milestone.label} — {sent} message(s)",
                          uai=ref.uai, step=milestone.value,
                          data={"event": "finished", "counts": outcome.counts})
    return TaskStatus.DONE, f"{sent} message(s) envoyé(s)"


def _stopped_status(stopper: _Stopper) -> TaskOutcome:
    if stopper.cancelled:
        return TaskStatus.CANCELLED, "annulée par l'opérateur ; reprendra à son point de reprise"
    return TaskStatus.QUEUED, "interrompue par l'arrêt de son processus ; reprend ensuite"


def _finish(context: ExecutionContext, spec: _Spec, status: TaskStatus, reason: str,
            retry: bool) -> None:
    now = utcnow()
    with context.database.session() as session:
        task = session.get(EngineTask, spec.task_id)
        uai = session.scalar(select(Establishment.uai).where(
            Establishment.id == spec.establishment_id)) or ""
        if task is not None:
            if retry:
                # Still handed out: procrastinate runs it again after its backoff.
                task.status = TaskStatus.QUEUED
                task.reason = (f"essai n°{spec.attempts} en échec : {reason} — nouvel essai "
                               "après une attente")
            else:
                task.status = status
                task.reason = reason
                if status is TaskStatus.FAILED and spec.attempts > 1:
                    task.reason = f"en échec après {spec.attempts} essais : {reason}"
                if status in (TaskStatus.QUEUED, TaskStatus.WAITING):
                    # Back to the engine, which hands it out again.
                    task.started_at = task.deferred_at = task.job_id = None
                else:
                    task.finished_at = now
            task.cancel_requested_at = None if status is not TaskStatus.CANCELLED else (
                task.cancel_requested_at)
    if status in (TaskStatus.CANCELLED, TaskStatus.QUEUED) and not retry:
        context.writer.record("unit", f"{uai} : {spec.milestone.label} — {reason}", uai=uai,
                              step=spec.milestone.value, level="warning",
                              data={"event": "cancelled" if status is TaskStatus.CANCELLED
                                    else "interrupted"})
    context.writer.flush(force=True)
    context.writer.drain(10.0)


# -- the engine's local worker processes (a ProcessPoolExecutor) ------------------------

_local_stop: Any = None


def init_local_worker(stop: Any, log_path: str = "") -> None:
    """Pool initializer: remember the engine's stop event (a ``multiprocessing.Event``) and
    write this process's log lines (a failed unit's traceback) to the engine's log."""
    global _local_stop
    _local_stop = stop
    if log_path:
        handler = logging.handlers.WatchedFileHandler(log_path, encoding="utf-8")
        handler.setFormatter(MaskingFormatter(LOG_FORMAT))
        logger = logging.getLogger("yearchange_tui")
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)


def run_local_task(url: str, storage_root: str, read_only: bool, timezone: str,
                   task_id: int) -> tuple[str, str]:
    """Execute one task in an engine's local worker process; returns (status, reason)."""
    context = process_context(url, storage_root, read_only=read_only, timezone=timezone,
                              stop=_local_stop)
    done = execute_task(context, task_id)
    return done.status.value, done.reason


def task_queue(milestone: str) -> str:
    """The procrastinate queue of a milestone's tasks (``step-archive``, ``step-dry-run``…)."""
    return f"step-{milestone}"

