"""The engine's calendar: plan → scheduler jobs, due batches → tasks, passed windows → missed.

:meth:`CalendarSync.sync` runs on the engine's main thread;
:meth:`CalendarSync.enqueue_batch` on an APScheduler job thread (through
:func:`yearchange_tui.scheduling.engine.fire_batch`). A lock keeps the two from making the
same task twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import select
from sqlalchemy.orm import Session

from yearchange_tui.scheduling.jobs import FIRE_BATCH, JOB_PREFIX, JobNote, job_id, job_milestone
from yearchange_tui.scheduling.models import EngineTask, TaskStatus
from yearchange_tui.scheduling.state import EngineState, engine_log
from yearchange_tui.workflow.calendar import (
    MILESTONE_ORDER,
    NOTICE_ACTIONS,
    Milestone,
    Plan,
    PlannedMilestone,
    as_utc,
    build_plan,
    notices_sent,
)
from yearchange_tui.workflow.models import StepUnit, UnitStatus
from yearchange_tui.workflow.units import NoCurrentYearError, current_school_year, get_unit

log = engine_log()

NOTICE_MILESTONES = NOTICE_ACTIONS
"""The free-group warnings, with their audit action (they have no step unit)."""


def missed_reason(zone: ZoneInfo, due_at: dt.datetime | None,
                  not_after: dt.datetime | None, window_label: str = "") -> str:
    """The French reason of a unit whose window passed before it started (the calendar's
    and the executor's: one wording), times in the operator's ``zone``."""
    where = f"fenêtre « {window_label} »" if window_label else "créneau prévu"
    span = ""
    if due_at is not None and not_after is not None:
        span = (f" (du {as_utc(due_at).astimezone(zone):%d/%m/%Y %H:%M} au "
                f"{as_utc(not_after).astimezone(zone):%d/%m/%Y %H:%M})")
    return (f"{where}{span} passée sans exécution : jamais démarrée ; relancez-la "
            "(yearchange engine-request run) ou replanifiez-la (yearchange plan set).")


def miss_unit(session: Session, establishment_id: int, year_id: int, milestone: Milestone,
              reason: str) -> None:
    """Mark a step's unit missed when it has not started (nothing for other milestones)."""
    if milestone.step is None:
        return
    unit = get_unit(session, establishment_id, year_id, milestone.step)
    assert unit is not None
    if unit.status is UnitStatus.PENDING:
        unit.status = UnitStatus.MISSED
        unit.error = reason


def _stamp(value: dt.datetime | None) -> str:
    moment = as_utc(value)
    return moment.strftime("%Y%m%dT%H%M%S") if moment is not None else ""


@dataclass
class _CalendarState:
    """Settled units and calendar tasks already made, read under the calendar lock."""

    settled: set[tuple[int, str]]
    """(establishment id, milestone value) done, skipped or (notices) sent this year."""
    made: set[tuple[int, str, str]]
    """(establishment id, milestone value, due stamp) of calendar tasks already made."""

    @classmethod
    def load(cls, session: Session, year_id: int, plan: Plan) -> _CalendarState:
        settled = {(row[0], str(getattr(row[1], "value", row[1]))) for row in session.execute(
            select(StepUnit.establishment_id, StepUnit.step).where(
                StepUnit.school_year_id == year_id,
                StepUnit.status.in_([UnitStatus.DONE, UnitStatus.SKIPPED])))}
        settled.update((establishment_id, NOTICE_MILESTONES[milestone]) for
                       establishment_id, milestone in notices_sent(session,
                                                                   plan.school_year_start))
        made = {(row[0], row[1], _stamp(row[2])) for row in session.execute(
            select(EngineTask.establishment_id, EngineTask.milestone, EngineTask.due_at).where(
                EngineTask.school_year_id == year_id, EngineTask.origin == "calendar"))}
        return cls(settled, made)

    def needs_task(self, planned: PlannedMilestone) -> bool:
        """True when a planned unit has neither settled nor a calendar task at its time."""
        assert planned.due_at is not None
        key = planned.milestone.value
        if (planned.milestone is not Milestone.DRY_RUN
                and (planned.establishment_id, key) in self.settled):
            return False
        return (planned.establishment_id, key, _stamp(planned.due_at)) not in self.made


@dataclass
class CalendarSync:
    """Keeps the scheduler's jobs and the task queue in line with the project calendar."""

    state: EngineState
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while reading what exists and making tasks (main and job threads)."""
    no_year_logged: bool = False
    """True once the missing school year was logged (said once per engine)."""

    def load_plan(self) -> tuple[Plan, int] | None:
        """Load the current year's calendar into the state (None without a current year)."""
        with self.state.database.session() as session:
            try:
                year = current_school_year(session)
            except NoCurrentYearError:
                if not self.no_year_logged:
                    log.warning("Aucune année scolaire courante : le calendrier attend.")
                    self.no_year_logged = True
                return None
            plan = build_plan(session, year.start_year, self.state.config.timezone)
            year_id = year.id
        self.state.plan = plan
        return plan, year_id

    def sync(self, scheduler: BaseScheduler) -> None:
        """Make the scheduler's jobs match the calendar; mark batches whose window passed."""
        loaded = self.load_plan()
        if loaded is None:
            return
        plan, year_id = loaded
        now = self.state.clock()
        existing = {job.id for job in scheduler.get_jobs() if job.id.startswith(JOB_PREFIX)}
        wanted: set[str] = set()
        with self.lock:
            with self.state.database.session() as session:
                known = _CalendarState.load(session, year_id, plan)
            for (milestone, due_at, not_after), units in sorted(
                    plan.batches().items(),
                    key=lambda item: (item[0][1], MILESTONE_ORDER[item[0][0]])):
                if self.state.config.read_only and milestone is not Milestone.DRY_RUN:
                    continue
                pending = [unit for unit in units if known.needs_task(unit)]
                if not pending:
                    continue
                if not_after is not None and now >= not_after:
                    self.mark_missed(year_id, pending)
                    continue
                identifier = job_id(milestone, due_at)
                wanted.add(identifier)
                if identifier not in existing:
                    self._add_job(scheduler, identifier, milestone, due_at, not_after,
                                  len(pending))
        for identifier in existing - wanted:
            with contextlib.suppress(JobLookupError):
                scheduler.remove_job(identifier)

    def _add_job(self, scheduler: BaseScheduler, identifier: str, milestone: Milestone,
                 due_at: dt.datetime, not_after: dt.datetime | None, pending: int) -> None:
        grace = (int((not_after - due_at).total_seconds()) if not_after is not None
                 else self.state.config.misfire_grace_time)
        scheduler.add_job(
            FIRE_BATCH, "date", run_date=due_at,
            args=[milestone.value, due_at.isoformat()], id=identifier,
            name=f"{milestone.label} — {pending} établissement(s)",
            misfire_grace_time=max(1, grace), coalesce=True, max_instances=1,
            replace_existing=True)
        log.info("Planifié : %s le %s (%d établissement(s)).", milestone.label,
                 self.state.local(due_at), pending)

    def enqueue_batch(self, milestone: Milestone, due_at: dt.datetime) -> int:
        """Queue a due batch's units (scheduler thread). Returns the number queued."""
        loaded = self.load_plan()
        if loaded is None:
            return 0
        plan, year_id = loaded
        due_at = due_at.astimezone(dt.UTC)
        queued = 0
        with self.lock, self.state.database.session() as session:
            known = _CalendarState.load(session, year_id, plan)
            for planned in plan.milestones:
                if (planned.milestone is not milestone or planned.due_at != due_at
                        or not planned.schedulable or not known.needs_task(planned)):
                    continue
                session.add(EngineTask(
                    origin="calendar", milestone=milestone.value,
                    establishment_id=planned.establishment_id, school_year_id=year_id,
                    status=TaskStatus.QUEUED, due_at=due_at, not_after=planned.not_after,
                    reason="", created_at=self.state.clock()))
                queued += 1
        if queued:
            log.info("Calendrier : %s pour %d établissement(s).", milestone.label, queued)
        self.state.wake.set()
        return queued

    def take_job_notes(self, notes: list[JobNote]) -> None:
        """Log the scheduler's missed and failed jobs; mark a missed batch's units (main
        thread)."""
        for note in notes:
            if note.kind == "error":
                log.error("La tâche planifiée %s a échoué (voir le journal).", note.job_id)
                continue
            log.warning("Tâche planifiée %s manquée (moteur arrêté pendant sa fenêtre).",
                        note.job_id)
            milestone = job_milestone(note.job_id)
            if milestone is not None and note.run_time is not None:
                self.state.plan_dirty = True
                self.miss_batch(milestone, as_utc(note.run_time))

    def miss_batch(self, milestone: Milestone, due_at: dt.datetime | None) -> None:
        """Mark missed the units of a batch the scheduler did not fire in its window."""
        loaded = self.load_plan()
        if loaded is None or due_at is None:
            return
        plan, year_id = loaded
        with self.lock:
            with self.state.database.session() as session:
                known = _CalendarState.load(session, year_id, plan)
            pending = [planned for planned in plan.milestones
                       if planned.milestone is milestone and planned.due_at == due_at
                       and planned.schedulable and known.needs_task(planned)]
            self.mark_missed(year_id, pending)

    def mark_missed(self, year_id: int, pending: list[PlannedMilestone]) -> None:
        """Record missed calendar units: a task row and, for steps, the unit's status."""
        if not pending:
            return
        notes = []
        with self.state.database.session() as session:
            for planned in pending:
                reason = missed_reason(self.state.zone, planned.due_at, planned.not_after,
                                       planned.window_label)
                assert planned.due_at is not None
                session.add(EngineTask(
                    origin="calendar", milestone=planned.milestone.value,
                    establishment_id=planned.establishment_id, school_year_id=year_id,
                    status=TaskStatus.MISSED, due_at=planned.due_at,
                    not_after=planned.not_after, reason=reason, created_at=self.state.clock(),
                    finished_at=self.state.clock()))
                miss_unit(session, planned.establishment_id, year_id, planned.milestone, reason)
                notes.append((planned, reason))
        for planned, reason in notes:
            self.state.events.record(
                "unit", f"{planned.uai} : {planned.milestone.label} manquée — {reason}",
                uai=planned.uai, step=planned.milestone.value, level="warning",
                data={"event": "missed"})
        log.warning("%d unité(s) manquée(s) : %s.", len(notes),
                    ", ".join(sorted({planned.milestone.label for planned, _ in notes})))
