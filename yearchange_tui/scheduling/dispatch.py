"""The engine's dispatch: due tasks → unit worker threads (``unit-N``).

:meth:`Dispatcher.dispatch` runs on the engine's main thread: it starts due tasks in step
order within the concurrency, one unit per establishment at a time, says why a step waits
for a prerequisite still to come, and marks missed the tasks whose window passed.
:meth:`Dispatcher.run_task` runs one task to its end on a worker thread and writes its
outcome.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from yearchange_tui.changeover.runner import ChangeoverRunner
from yearchange_tui.ent.errors import describe_error
from yearchange_tui.ent.models import Establishment
from yearchange_tui.scheduling.calendar_sync import NOTICE_MILESTONES, miss_unit, missed_reason
from yearchange_tui.scheduling.lease import is_paused
from yearchange_tui.scheduling.models import (
    ACTIVE_TASK_STATUSES,
    EngineRequest,
    EngineTask,
    TaskStatus,
)
from yearchange_tui.scheduling.state import EngineState, RunningTask, engine_log
from yearchange_tui.workflow.audit import on_behalf_of
from yearchange_tui.workflow.calendar import MILESTONE_ORDER, Milestone, as_utc
from yearchange_tui.workflow.claims import CLAIM_REFUSED_CODE, ClaimInfo, claim_info, wall_now
from yearchange_tui.workflow.establishments import EstablishmentRef
from yearchange_tui.workflow.guards import GUARD_STEP_ORDER, has_override
from yearchange_tui.workflow.models import (
    STEP_PREREQUISITES,
    Step,
    StepUnit,
    UnitClaim,
    UnitStatus,
)

log = engine_log()

TaskOutcome = tuple[TaskStatus, str]
"""A task's final status and its French reason."""


def _milestone(value: str) -> Milestone | None:
    try:
        return Milestone(value)
    except ValueError:
        return None


def _label(value: str) -> str:
    milestone = _milestone(value)
    return milestone.label if milestone is not None else value


@dataclass
class TaskSpec:
    """What a unit worker needs to run a task (copied out of its row)."""

    task_id: int
    milestone: Milestone
    establishment_id: int
    request_id: int | None
    origin: str


@dataclass
class _Note:
    """An event to record once the dispatch pass committed."""

    message: str
    uai: str
    level: str
    event: str


@dataclass
class _DispatchState:
    """Unit statuses and active tasks, read once per dispatch pass."""

    statuses: dict[tuple[int, int], dict[Step, UnitStatus]]
    active: set[tuple[int, int, str]]
    held: dict[tuple[int, int, Step], ClaimInfo]
    """Units another live process runs (``yearchange run``, a worker), by (establishment,
    year, step)."""

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
        held = {}
        now = wall_now()
        for row in session.execute(select(
                StepUnit.establishment_id, StepUnit.school_year_id, StepUnit.step,
                UnitClaim).join(UnitClaim, UnitClaim.unit_id == StepUnit.id)):
            claim = claim_info(row[3])
            if claim.is_live(now) and not claim.is_this_process():
                held[(row[0], row[1], Step(row[2]))] = claim
        return cls(statuses, active, held)


@dataclass
class _Slots:
    """Room left in this dispatch pass: free workers and establishments already busy."""

    free: int
    busy: set[int]

    def allows(self, task: EngineTask) -> bool:
        return self.free > 0 and task.establishment_id not in self.busy

    def take(self, task: EngineTask) -> None:
        self.busy.add(task.establishment_id)
        self.free -= 1


@dataclass
class Dispatcher:
    """Starts due tasks on unit worker threads and finishes them."""

    state: EngineState
    executor: ThreadPoolExecutor | None = None
    """The unit worker pool, from :meth:`start` to :meth:`shutdown`."""

    def start(self) -> None:
        """Open the pool of ``concurrency`` unit worker threads."""
        self.executor = ThreadPoolExecutor(max_workers=self.state.config.concurrency,
                                           thread_name_prefix="unit")

    def shutdown(self) -> None:
        """Wait for the running units (they stop at their next checkpoint)."""
        if self.executor is not None:
            self.executor.shutdown(wait=True)

    # -- main thread -----------------------------------------------------------------------

    def dispatch(self) -> None:
        """Start due tasks in step order, within concurrency; mark overdue ones missed."""
        paused = is_paused(self.state.database)
        now = self.state.clock()
        to_start: list[TaskSpec] = []
        notes: list[_Note] = []
        with self.state.running_lock:
            slots = _Slots(self.state.config.concurrency - len(self.state.running),
                           {running.establishment_id for running in self.state.running.values()})
        with self.state.database.session() as session:
            tasks = list(session.scalars(select(EngineTask).where(
                EngineTask.status.in_([TaskStatus.QUEUED, TaskStatus.WAITING]))))
            if not tasks:
                return
            uais = dict(session.execute(select(Establishment.id, Establishment.uai)).all())
            known: _DispatchState | None = None
            tasks.sort(key=lambda t: (MILESTONE_ORDER.get(_milestone(t.milestone), 99),
                                      as_utc(t.due_at), uais.get(t.establishment_id, ""), t.id))
            for task in tasks:
                uai = uais.get(task.establishment_id, "?")
                if self._miss_if_overdue(session, task, uai, now, notes):
                    continue
                due_at = as_utc(task.due_at)
                assert due_at is not None
                if paused or due_at > now or not slots.allows(task):
                    continue
                if known is None:
                    known = _DispatchState.load(session)
                spec = self._start_or_wait(session, task, uai, now, known, notes)
                if spec is not None:
                    slots.take(task)
                    to_start.append(spec)
        for note in notes:
            self.state.events.record("unit", note.message, uai=note.uai, level=note.level,
                                     data={"event": note.event})
        self._submit(to_start)

    def _miss_if_overdue(self, session: Session, task: EngineTask, uai: str, now: dt.datetime,
                         notes: list[_Note]) -> bool:
        """Mark a task missed when its window passed; True when it did."""
        due_at, not_after = as_utc(task.due_at), as_utc(task.not_after)
        assert due_at is not None
        if not_after is None or now <= not_after:
            return False
        reason = missed_reason(self.state, due_at, not_after, "")
        task.status = TaskStatus.MISSED
        task.reason = reason
        task.finished_at = now
        milestone = _milestone(task.milestone)
        if milestone is not None:
            miss_unit(session, task.establishment_id, task.school_year_id, milestone, reason)
        notes.append(_Note(f"{uai} : {_label(task.milestone)} manquée — {reason}", uai,
                           "warning", "missed"))
        return True

    def _start_or_wait(self, session: Session, task: EngineTask, uai: str, now: dt.datetime,
                       known: _DispatchState, notes: list[_Note]) -> TaskSpec | None:
        """Mark a due task running (its spec) or waiting for a prerequisite (None)."""
        milestone = _milestone(task.milestone)
        waiting = self.wait_reason(session, task, milestone, now, known)
        if waiting:
            if task.status is not TaskStatus.WAITING or task.reason != waiting:
                task.status = TaskStatus.WAITING
                task.reason = waiting
                notes.append(_Note(f"{uai} : {_label(task.milestone)} {waiting}", uai, "info",
                                   "waiting"))
            return None
        if milestone is None:
            task.status = TaskStatus.FAILED
            task.reason = f"jalon inconnu « {task.milestone} »"
            return None
        task.status = TaskStatus.RUNNING
        task.started_at = now
        task.reason = ""
        return TaskSpec(task.id, milestone, task.establishment_id, task.request_id, task.origin)

    def _submit(self, to_start: list[TaskSpec]) -> None:
        assert self.executor is not None
        for spec in to_start:
            with self.state.running_lock:
                future = self.executor.submit(self.run_task, spec)
                self.state.running[spec.task_id] = RunningTask(spec.task_id,
                                                               spec.establishment_id, future)

    def wait_reason(self, session: Session, task: EngineTask, milestone: Milestone | None,
                    now: dt.datetime, known: _DispatchState) -> str:
        """Why a step must wait for a prerequisite still to come (empty: it may start; the
        runner's guard then refuses it with its reason when a prerequisite cannot come)."""
        step = milestone.step if milestone is not None else None
        if step is None:
            return ""
        holder = known.held.get((task.establishment_id, task.school_year_id, step))
        if holder is not None:
            return f"en attente : déjà en cours d'exécution par {holder.holder_text()}"
        statuses = known.statuses.get((task.establishment_id, task.school_year_id), {})
        missing = [p for p in STEP_PREREQUISITES[step]
                   if statuses.get(p, UnitStatus.PENDING) is not UnitStatus.DONE]
        if not missing or has_override(session, GUARD_STEP_ORDER, task.establishment_id):
            return ""
        coming = [prerequisite for prerequisite in missing
                  if self._coming(task, prerequisite, statuses, now, known)]
        if not coming:
            return ""
        names = ", ".join(f"l'étape {p.number} ({p.label})" for p in coming)
        return f"en attente de {names}"

    def _coming(self, task: EngineTask, prerequisite: Step,
                statuses: dict[Step, UnitStatus], now: dt.datetime,
                known: _DispatchState) -> bool:
        """True when a missing prerequisite is queued, running or planned later."""
        active = (task.establishment_id, task.school_year_id, prerequisite.value) in known.active
        plan = self.state.plan
        planned = (plan.get(task.establishment_id, Milestone(prerequisite.value))
                   if plan is not None else None)
        planned_later = (planned is not None and planned.schedulable
                         and planned.due_at is not None and planned.due_at > now)
        return active or statuses.get(prerequisite) is UnitStatus.RUNNING or planned_later

    # -- unit worker threads ---------------------------------------------------------------

    def runner(self, task_id: int) -> ChangeoverRunner:
        """A runner whose units stop when the engine stops or the task is cancelled."""
        state = self.state

        def should_stop() -> bool:
            return state.stop.is_set() or task_id in state.cancel_ids

        return ChangeoverRunner(state.database, state.storage_root, observer=state.events,
                                read_only=state.config.read_only, should_stop=should_stop)

    def requester(self, request_id: int | None) -> str | None:
        """Who sent the request that caused a task (None for the calendar's own tasks)."""
        if request_id is None:
            return None
        with self.state.database.session() as session:
            return session.scalar(select(EngineRequest.requested_by).where(
                EngineRequest.id == request_id)) or None

    def run_task(self, spec: TaskSpec) -> None:
        """Run one task to its end (unit worker thread), audited for its requester."""
        status, reason = TaskStatus.FAILED, ""
        try:
            runner = self.runner(spec.task_id)
            ref = next(r for r in runner.establishments() if r.id == spec.establishment_id)
            with on_behalf_of(self.requester(spec.request_id)):
                status, reason = self._execute(spec, runner, ref)
        except Exception as error:
            log.exception("Unité %s (tâche n°%d) en échec.", spec.milestone.value, spec.task_id)
            status, reason = TaskStatus.FAILED, describe_error(error)
        finally:
            self._finish_task(spec, status, reason)

    def _execute(self, spec: TaskSpec, runner: ChangeoverRunner,
                 ref: EstablishmentRef) -> TaskOutcome:
        milestone = spec.milestone
        if runner.should_stop is not None and runner.should_stop():
            return self._stopped_status(spec)
        if milestone is Milestone.DRY_RUN:
            runner.dry_run([ref])
            return TaskStatus.DONE, ""
        if milestone in NOTICE_MILESTONES:
            return self._send_notices(milestone, runner, ref)
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
            return self._stopped_status(spec)
        log.error("Unité %s de %s en échec : %s\n%s", step.value, ref.uai, outcome.error,
                  outcome.traceback)
        return TaskStatus.FAILED, outcome.error

    def _send_notices(self, milestone: Milestone, runner: ChangeoverRunner,
                      ref: EstablishmentRef) -> TaskOutcome:
        """The free-group warnings, announcing the establishment's step-3 date."""
        plan = self.state.plan
        planned = plan.get(ref.id, Milestone.DELETE_OBSOLETE) if plan else None
        if planned is None or planned.on_date is None:
            return TaskStatus.FAILED, ("pas de date d'étape 3 au calendrier : le message ne "
                                       "peut pas annoncer la date de suppression")
        outcome = runner.send_warnings([ref], planned.on_date,
                                       second=milestone is Milestone.SECOND_WARNING)[0]
        sent = outcome.counts.get("avertissements envoyés", 0)
        self.state.events.record("unit", f"{ref.uai} : {milestone.label} — {sent} message(s)",
                                 uai=ref.uai, step=milestone.value,
                                 data={"event": "finished", "counts": outcome.counts})
        return TaskStatus.DONE, f"{sent} message(s) envoyé(s)"

    def _stopped_status(self, spec: TaskSpec) -> TaskOutcome:
        if spec.task_id in self.state.cancel_ids:
            return TaskStatus.CANCELLED, "annulée par l'opérateur ; reprendra à son point de reprise"
        return TaskStatus.QUEUED, "interrompue par l'arrêt du moteur ; reprend au redémarrage"

    def _finish_task(self, spec: TaskSpec, status: TaskStatus, reason: str) -> None:
        state = self.state
        try:
            with state.database.session() as session:
                task = session.get(EngineTask, spec.task_id)
                if task is not None:
                    task.status = status
                    task.reason = reason
                    if status in (TaskStatus.QUEUED, TaskStatus.WAITING):
                        task.started_at = None
                    else:
                        task.finished_at = state.clock()
                uai = session.scalar(select(Establishment.uai).where(
                    Establishment.id == spec.establishment_id)) or ""
            if status in (TaskStatus.CANCELLED, TaskStatus.QUEUED):
                state.events.record("unit", f"{uai} : {spec.milestone.label} — {reason}", uai=uai,
                                    step=spec.milestone.value, level="warning",
                                    data={"event": "cancelled" if status is TaskStatus.CANCELLED
                                          else "interrupted"})
        finally:
            with state.running_lock:
                state.running.pop(spec.task_id, None)
            state.cancel_ids.discard(spec.task_id)
            state.wake.set()
