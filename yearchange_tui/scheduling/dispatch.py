"""The engine's dispatch: due tasks → worker processes.

:meth:`Dispatcher.dispatch` runs on the engine's main thread: it hands due tasks out in
step order, largest establishments first, one unit per establishment at a time, within the
caps per step and per project; says why a step waits for a prerequisite still to come, and
marks missed the tasks whose window passed. On SQLite the tasks run in the engine's own
``concurrency`` local worker processes; on PostgreSQL each becomes a procrastinate job that
any worker of the fleet runs (``yearchange worker``; the engine starts local ones unless
``local_workers = 0``). Both run :func:`~yearchange_tui.scheduling.executor.execute_task`.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from yearchange_tui.changeover.runner import establishment_sizes
from yearchange_tui.ent.database import refresh_statistics
from yearchange_tui.ent.errors import describe_error
from yearchange_tui.ent.models import Establishment
from yearchange_tui.scheduling.calendar_sync import miss_unit, missed_reason
from yearchange_tui.scheduling.config import EngineConfig
from yearchange_tui.scheduling.executor import (
    init_local_worker,
    milestone_label,
    run_local_task,
)
from yearchange_tui.scheduling.jobqueue import FINISHED_JOB_STATES, JobQueue, job_states
from yearchange_tui.scheduling.lease import is_paused
from yearchange_tui.scheduling.models import (
    ACTIVE_TASK_STATUSES,
    EngineTask,
    TaskStatus,
)
from yearchange_tui.scheduling.spawn import DB_VARIABLE
from yearchange_tui.scheduling.state import EngineState, RunningTask, engine_log
from yearchange_tui.workflow.calendar import MILESTONE_ORDER, Milestone, as_utc
from yearchange_tui.workflow.claims import ClaimInfo, claim_info, claim_ttl, wall_now
from yearchange_tui.workflow.guards import GUARD_STEP_ORDER, has_override
from yearchange_tui.workflow.models import (
    STEP_PREREQUISITES,
    Step,
    StepUnit,
    UnitClaim,
    UnitStatus,
)

log = engine_log()

def _milestone(value: str) -> Milestone | None:
    try:
        return Milestone(value)
    except ValueError:
        return None


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
    """Room left in this dispatch pass: free local processes, establishments already busy,
    units in flight per step and per project (caps across the fleet)."""

    free: int
    busy: set[int]
    per_step: dict[str, int]
    per_project: dict[int, int]
    config: EngineConfig
    projects: dict[int, int]

    def allows(self, task: EngineTask) -> bool:
        if self.free <= 0 or task.establishment_id in self.busy:
            return False
        step_cap = self.config.step_cap(task.milestone)
        if step_cap and self.per_step.get(task.milestone, 0) >= step_cap:
            return False
        project_cap = self.config.max_units_per_project
        project = self.projects.get(task.establishment_id, 0)
        return not (project_cap and self.per_project.get(project, 0) >= project_cap)

    def take(self, task: EngineTask) -> None:
        self.busy.add(task.establishment_id)
        self.free -= 1
        self.per_step[task.milestone] = self.per_step.get(task.milestone, 0) + 1
        project = self.projects.get(task.establishment_id, 0)
        self.per_project[project] = self.per_project.get(project, 0) + 1


SIZES_REFRESH = 60.0
"""Seconds between two counts of the establishments' sizes (largest first)."""

STALLED_CHECK = 5.0
"""Seconds between two looks for jobs left by dead workers (PostgreSQL)."""

VACUUM_EVERY = 200
"""Step-3 units settled between two ``VACUUM (ANALYZE)`` while a long batch still runs."""

VACUUM_CHECK = 5.0
"""Seconds between two looks at whether a batch of step 3 drained (PostgreSQL)."""

ORPHAN_GRACE = dt.timedelta(seconds=60)
"""A task marked handed out without a job this long ago was never deferred (its engine
stopped in between)."""


@dataclass
class Dispatcher:
    """Hands due tasks out: to local worker processes (SQLite) or to the fleet's workers
    through procrastinate (PostgreSQL); both run :func:`execute_task`."""

    state: EngineState
    pool: ProcessPoolExecutor | None = None
    """SQLite: the engine's local worker processes, from :meth:`start` to :meth:`shutdown`."""
    queue: JobQueue | None = None
    """PostgreSQL: procrastinate, where tasks become jobs."""
    stop_event: Any = None
    local_workers: subprocess.Popen[bytes] | None = None
    """PostgreSQL: the ``yearchange worker`` the engine starts on its own machine."""
    _sizes: dict[int, int] = field(default_factory=dict)
    _sizes_at: float = float("-inf")
    _stalled_at: float = float("-inf")
    _step3_settled: int | None = None
    """Attempts of the settled step-3 tasks when the last ``VACUUM (ANALYZE)`` was decided
    (None: not read yet)."""
    _vacuum: threading.Thread | None = None
    _vacuum_checked_at: float = float("-inf")

    @property
    def fleet_mode(self) -> bool:
        """True on PostgreSQL: units run in the fleet's worker processes."""
        return self.state.database.engine.dialect.name == "postgresql"

    def start(self) -> None:
        """Open the local worker processes (SQLite) or the job queue (PostgreSQL)."""
        if self.fleet_mode:
            self.queue = JobQueue(self.state.database.url)
            self._start_local_workers()
            return
        context = multiprocessing.get_context("spawn")
        self.stop_event = context.Event()
        self.pool = ProcessPoolExecutor(max_workers=self.state.config.concurrency,
                                        mp_context=context, initializer=init_local_worker,
                                        initargs=(self.stop_event, self.state.config.log_path))

    def _start_local_workers(self) -> None:
        config = self.state.config
        count = config.concurrency if config.local_workers < 0 else config.local_workers
        if count <= 0 or config.read_only:
            return
        command = [sys.executable, "-m", "yearchange_tui", "--storage",
                   str(self.state.storage_root), "worker", "--concurrency", str(count),
                   "--retries", str(config.retries)]
        log_path = Path(config.log_path) if config.log_path else None
        output: Any = subprocess.DEVNULL
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            output = log_path.open("ab")
        try:
            self.local_workers = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                env={**os.environ, DB_VARIABLE: self.state.database.url})
        finally:
            if log_path is not None:
                output.close()
        log.info("%d processus de travail locaux démarrés (yearchange worker, pid %d).",
                 count, self.local_workers.pid)

    def shutdown(self) -> None:
        """Stop handing out; running units stop at their next checkpoint."""
        if self.stop_event is not None:
            self.stop_event.set()
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        if self.local_workers is not None:
            self.local_workers.send_signal(signal.SIGTERM)
            try:
                self.local_workers.wait()
            finally:
                self.local_workers = None
        if self.queue is not None:
            self.queue.close()
        if self._vacuum is not None:
            self._vacuum.join()

    def sizes(self) -> dict[int, int]:
        """People per establishment (refreshed every :data:`SIZES_REFRESH` seconds)."""
        now = time.monotonic()
        if now - self._sizes_at >= SIZES_REFRESH:
            self._sizes = establishment_sizes(self.state.database)
            self._sizes_at = now
        return self._sizes

    # -- main thread -----------------------------------------------------------------------

    def dispatch(self) -> None:
        """Start due tasks in step order, largest establishments first, within the local
        processes and the caps; mark overdue ones missed."""
        if self.queue is not None and time.monotonic() - self._stalled_at >= STALLED_CHECK:
            self._stalled_at = time.monotonic()
            self._requeue_stalled()
        self._vacuum_after_step3()
        paused = is_paused(self.state.database)
        now = self.state.clock()
        to_start: list[TaskSpec] = []
        notes: list[_Note] = []
        with self.state.running_lock:
            running = len(self.state.running)
        with self.state.database.session() as session:
            tasks = list(session.scalars(select(EngineTask).where(
                EngineTask.status.in_([TaskStatus.QUEUED, TaskStatus.WAITING]))))
            if not tasks:
                return
            uais = dict(session.execute(select(Establishment.id, Establishment.uai)).all())
            projects = dict(session.execute(select(Establishment.id,
                                                   Establishment.project_id)).all())
            slots = self._slots(session, running, projects)
            sizes = self.sizes()
            known: _DispatchState | None = None
            tasks.sort(key=lambda t: (MILESTONE_ORDER.get(_milestone(t.milestone), 99),
                                      as_utc(t.due_at), -sizes.get(t.establishment_id, 0),
                                      uais.get(t.establishment_id, ""), t.id))
            for task in tasks:
                uai = uais.get(task.establishment_id, "?")
                if task.deferred_at is not None:
                    # Handed to the fleet: the worker that takes it decides (a task whose
                    # window passed meanwhile is missed there; one waiting out its retry
                    # backoff is not missed here after a partial attempt).
                    continue
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

    def _vacuum_after_step3(self) -> None:
        """PostgreSQL: ``VACUUM (ANALYZE)`` once when a batch of step 3 drains (no step-3
        task queued, waiting or running any more), and every :data:`VACUUM_EVERY` units
        of a batch that runs on; on its own thread, the dispatch goes on meanwhile.

        The units the engine hands out leave it to this (each is one task, often in
        another process): once per unit, step 3 grew with the square of the
        establishments (issue 16).
        """
        if not self.fleet_mode or self.state.config.read_only:
            return
        if self._vacuum is not None and self._vacuum.is_alive():
            return
        if time.monotonic() - self._vacuum_checked_at < VACUUM_CHECK:
            return
        self._vacuum_checked_at = time.monotonic()
        step3 = Milestone.DELETE_OBSOLETE.value
        with self.state.database.session() as session:
            active, settled = session.execute(select(
                func.count().filter(EngineTask.status.in_(ACTIVE_TASK_STATUSES)),
                # Attempts of the settled tasks: grows with every unit run to its end, a
                # retried one included; a missed task never started (0 attempts).
                func.coalesce(func.sum(EngineTask.attempts).filter(
                    EngineTask.status.not_in(ACTIVE_TASK_STATUSES)), 0))
                .where(EngineTask.milestone == step3)).one()
        if self._step3_settled is None:
            self._step3_settled = settled  # what an earlier engine left is not ours
            return
        if settled == self._step3_settled or (
                active and settled - self._step3_settled < VACUUM_EVERY):
            return
        units = settled - self._step3_settled
        self._step3_settled = settled
        database, events = self.state.database, self.state.events
        left = f", {active} encore à faire" if active else ""

        def say(line: str) -> None:
            events.record("log", f"Étape 3 : {line.rstrip('.')} après {units} unité(s){left}.",
                          step=step3, data={"event": "vacuum"})

        def vacuum() -> None:
            try:
                refresh_statistics(database, None, vacuum=True, report=say)
            except Exception:
                log.exception("VACUUM (ANALYZE) après l'étape 3 non fait.")

        self._vacuum = threading.Thread(target=vacuum, name="vacuum-step3", daemon=True)
        self._vacuum.start()

    def _slots(self, session: Session, running: int, projects: dict[int, int]) -> _Slots:
        """The room of this pass: units in flight anywhere count against the caps."""
        config = self.state.config
        in_flight = session.execute(select(EngineTask.establishment_id, EngineTask.milestone)
                                    .where(or_(EngineTask.status == TaskStatus.RUNNING,
                                               and_(EngineTask.status == TaskStatus.QUEUED,
                                                    EngineTask.deferred_at.is_not(None))))).all()
        per_step: dict[str, int] = {}
        per_project: dict[int, int] = {}
        for establishment_id, milestone in in_flight:
            per_step[milestone] = per_step.get(milestone, 0) + 1
            project = projects.get(establishment_id, 0)
            per_project[project] = per_project.get(project, 0) + 1
        with self.state.running_lock:
            busy = {task.establishment_id for task in self.state.running.values()}
        busy |= {row[0] for row in in_flight}
        free = (len(projects) + 1 if self.queue is not None
                else config.concurrency - running)
        return _Slots(free, busy, per_step, per_project, config, projects)

    def _requeue_stalled(self) -> None:
        assert self.queue is not None
        try:
            requeued = self.queue.requeue_stalled(claim_ttl().total_seconds())
            self._reconcile()
        except Exception:
            log.warning("Tâches des workers disparus non relancées ; nouvel essai.",
                        exc_info=True)
            return
        if requeued:
            log.warning("%d unité(s) d'un worker sans nouvelles remise(s) en file : un autre "
                        "worker les reprend à leur dernier point de reprise.", len(requeued))

    def _reconcile(self) -> None:
        """Tasks handed to the fleet whose job ended without the task's answer go back to
        the engine's queue (or stay failed after their retries): an engine stopped between
        marking a task handed out and deferring its job, or a job procrastinate recorded
        failed because its process lost the database before writing the outcome. Without
        this such a task would hold its establishment and the caps for good."""
        now = self.state.clock()
        retries = self.state.config.retries
        with self.state.database.session() as session:
            tasks = list(session.scalars(select(EngineTask).where(
                EngineTask.status.in_([TaskStatus.QUEUED, TaskStatus.RUNNING]),
                or_(EngineTask.deferred_at.is_not(None), EngineTask.job_id.is_not(None)))))
            job_ids = [task.job_id for task in tasks if task.job_id is not None]
            states = job_states(session, job_ids)
            for task in tasks:
                if task.job_id is None:
                    deferred = as_utc(task.deferred_at)
                    if deferred is None or now - deferred < ORPHAN_GRACE:
                        continue
                    why = "jamais confiée aux processus de travail (moteur arrêté entre-temps)"
                else:
                    state = states.get(task.job_id)
                    if state is not None and state not in FINISHED_JOB_STATES:
                        continue
                    why = (f"sa tâche procrastinate n° {task.job_id} "
                           f"{'a disparu' if state is None else f'est finie ({state})'} "
                           "sans réponse de l'unité")
                if (task.attempts or 0) > retries:
                    task.status, task.finished_at = TaskStatus.FAILED, now
                    task.reason = f"en échec après {task.attempts} essais : {why}"
                else:
                    task.status = TaskStatus.QUEUED
                    task.reason = f"remise en file : {why} ; reprend à son point de reprise"
                    task.started_at = None
                task.deferred_at = task.job_id = None
                log.warning("Tâche n°%d : %s.", task.id, task.reason)

    def _miss_if_overdue(self, session: Session, task: EngineTask, uai: str, now: dt.datetime,
                         notes: list[_Note]) -> bool:
        """Mark a task missed when its window passed; True when it did."""
        due_at, not_after = as_utc(task.due_at), as_utc(task.not_after)
        assert due_at is not None
        if not_after is None or now <= not_after:
            return False
        reason = missed_reason(self.state.zone, due_at, not_after)
        task.status = TaskStatus.MISSED
        task.reason = reason
        task.finished_at = now
        milestone = _milestone(task.milestone)
        if milestone is not None:
            miss_unit(session, task.establishment_id, task.school_year_id, milestone, reason)
        notes.append(_Note(f"{uai} : {milestone_label(task.milestone)} manquée — {reason}", uai,
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
                notes.append(_Note(f"{uai} : {milestone_label(task.milestone)} {waiting}", uai, "info",
                                   "waiting"))
            return None
        if milestone is None:
            task.status = TaskStatus.FAILED
            task.reason = f"jalon inconnu « {task.milestone} »"
            return None
        task.reason = ""
        task.cancel_requested_at = None
        if self.queue is not None:
            task.deferred_at = now  # handed to the fleet; a worker marks it running
        else:
            task.status = TaskStatus.RUNNING
            task.started_at = now
        return TaskSpec(task.id, milestone, task.establishment_id, task.request_id, task.origin)

    def _submit(self, to_start: list[TaskSpec]) -> None:
        if self.queue is not None:
            self._defer(to_start)
            return
        assert self.pool is not None
        config = self.state.config
        for spec in to_start:
            with self.state.running_lock:
                future = self.pool.submit(run_local_task, self.state.database.url,
                                          str(self.state.storage_root), config.read_only,
                                          config.timezone, spec.task_id)
                self.state.running[spec.task_id] = RunningTask(spec.task_id,
                                                               spec.establishment_id, future)
            future.add_done_callback(lambda done, spec=spec: self._task_done(spec, done))

    def _defer(self, to_start: list[TaskSpec]) -> None:
        """One procrastinate job per task: queue per step, lock per establishment, the
        largest establishments first."""
        assert self.queue is not None
        sizes = self.sizes()
        for spec in to_start:
            try:
                job_id = self.queue.defer(spec.task_id, spec.milestone.value,
                                          spec.establishment_id,
                                          priority=sizes.get(spec.establishment_id, 0))
            except Exception as error:
                log.exception("Tâche n°%d non confiée aux workers.", spec.task_id)
                job_id = None
                reason = f"non confiée aux workers : {describe_error(error)} ; nouvel essai"
            with self.state.database.session() as session:
                task = session.get(EngineTask, spec.task_id)
                if task is None:
                    continue
                if job_id is None:
                    task.deferred_at = None
                    task.reason = reason
                else:
                    task.job_id = job_id

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

    # -- running tasks ---------------------------------------------------------------------

    def _task_done(self, spec: TaskSpec, future: Future[tuple[str, str]]) -> None:
        """A local worker process finished a task (it wrote the outcome itself)."""
        state = self.state
        try:
            error = future.exception()
            if error is not None:  # the process died: the task must not stay « en cours »
                log.error("Unité %s (tâche n°%d) : processus arrêté : %s",
                          spec.milestone.value, spec.task_id, error)
                with state.database.session() as session:
                    task = session.get(EngineTask, spec.task_id)
                    if task is not None and task.status is TaskStatus.RUNNING:
                        task.status = TaskStatus.FAILED
                        task.reason = f"processus de l'unité arrêté : {describe_error(error)}"
                        task.finished_at = state.clock()
        except Exception:
            log.exception("Issue de la tâche n°%d non enregistrée.", spec.task_id)
        finally:
            with state.running_lock:
                state.running.pop(spec.task_id, None)
            state.wake.set()
