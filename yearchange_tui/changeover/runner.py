"""Run the change-over steps (and their dry run) per establishment as resumable, audited units.

One lifecycle for every step of the registry (:mod:`yearchange_tui.changeover.steps`):
guards, begin, one transaction and checkpoint per phase, finish, fail or block, the
audit entries and the observer events. A step declares its phases; the runner never
names a step module.

Runs on the caller's thread (the CLI's, or a scheduler worker's); reports through an
:class:`~yearchange_tui.workflow.events.Observer`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import multiprocessing
import threading
import traceback
from collections.abc import Callable, Collection
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from yearchange_tui.changeover.dry_run import dry_run_units
from yearchange_tui.changeover.effects import Effects, RealEffects, RecordingEffects, Tally
from yearchange_tui.changeover.notices import (
    send_warnings,
)
from yearchange_tui.changeover.outcomes import ReadOnlyError, UnitOutcome
from yearchange_tui.changeover.steps import DRY_RUN, UNIT_STEPS, Phase, step_definition
from yearchange_tui.changeover.steps.base import (
    OVERRIDE,
    BatchContext,
    GuardInput,
    RunOptions,
    StepDefinition,
    UnitBlocked,
    UnitContext,
)
from yearchange_tui.ent.database import (
    Access,
    Database,
    open_database,
    refresh_statistics,
    tables_changed_in_transaction,
)
from yearchange_tui.ent.errors import describe_error
from yearchange_tui.ent.models import Establishment, Person, SchoolYear
from yearchange_tui.workflow.audit import audit
from yearchange_tui.workflow.claims import (
    Claim,
    ClaimHeartbeat,
    UnitClaimedError,
    claim_unit,
    release_claim,
)
from yearchange_tui.workflow.establishments import (
    EstablishmentRef,
    UnknownEstablishmentError,
    establishments_by_uai,
)
from yearchange_tui.workflow.events import (
    NullObserver,
    Observer,
    UnitFailed,
    UnitFinished,
    UnitProgressed,
    UnitStarted,
)
from yearchange_tui.workflow.guards import GuardRefused
from yearchange_tui.workflow.models import (
    UNIT_STATUS_GLYPHS,
    UNIT_STATUS_LABELS,
    DryRunReport,
    Step,
    StepUnit,
    UnitStatus,
)
from yearchange_tui.workflow.units import (
    begin_unit,
    checkpoint,
    current_school_year,
    fail_unit,
    finish_unit,
    get_unit,
    merge_counts,
    utcnow,
)

DRY_RUN_STEPS = DRY_RUN.replays

__all__ = ["DRY_RUN_STEPS", "ChangeoverRunner", "ReadOnlyError", "UnitOutcome",
           "UnknownEstablishmentError", "unit_table", "year_units"]

log = logging.getLogger(__name__)


@dataclass
class _Started:
    """A unit that passed its guards and is running."""

    definition: StepDefinition
    establishment: EstablishmentRef
    unit_id: int
    phases: list[Phase]
    state: dict[str, Any]
    year: SchoolYear
    obsolete: list[int]
    notes: list[str]
    claim: Claim

    @property
    def step(self) -> Step:
        assert self.definition.key is not None
        return self.definition.key


class ChangeoverRunner:
    """Runs change-over steps on one database and storage root."""

    def __init__(self, database: Database, storage_root: Path,
                 observer: Observer | None = None, now: dt.datetime | None = None,
                 read_only: bool = False,
                 should_stop: Callable[[], bool] | None = None) -> None:
        self.database = database
        self.storage_root = storage_root
        self.observer = observer or NullObserver()
        self.fixed_now = now
        self.read_only = read_only
        # Checked before each phase of a real run: True makes the unit stop at its last
        # checkpoint (pending again, resumable) instead of starting the next phase.
        self.should_stop = should_stop
        # Tables the units of the current run_units call changed (PostgreSQL), and whether
        # their statistics are left to the caller (a worker process: its parent refreshes).
        self._changed_tables: set[str] = set()
        self.defer_statistics = False

    def refuse_read_only(self, what: str) -> None:
        """Raise :class:`ReadOnlyError` when the runner is read-only."""
        if self.read_only:
            raise ReadOnlyError(f"Mode consultation : {what} — action interdite, rien n'a été "
                                "modifié.")

    # -- selection -------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        """The reference time (fixed in tests)."""
        return self.fixed_now or utcnow()

    def establishments(self, uais: list[str] | None = None) -> list[EstablishmentRef]:
        """The establishments named by ``uais`` (all when None), by UAI.

        Raises:
            UnknownEstablishmentError: for a UAI not in the database.
        """
        with self.database.session() as session:
            return list(establishments_by_uai(session, uais or None).values())

    def school_years(self, session: Session) -> tuple[SchoolYear, list[int]]:
        year = current_school_year(session)
        obsolete = list(session.scalars(select(SchoolYear.id).where(
            SchoolYear.start_year <= year.start_year)))
        return year, obsolete

    def unit_context(self, connection: Any, effects: Effects, establishment: EstablishmentRef,
                 year: SchoolYear, obsolete: list[int],
                 options: RunOptions | None = None) -> UnitContext:
        return UnitContext(connection=connection, effects=effects,
                           establishment_id=establishment.id, uai=establishment.uai,
                           establishment_name=establishment.name,
                           project_id=establishment.project_id,
                           closing_date=establishment.closing_date, year_id=year.id,
                           year_label=year.label, year_start=year.start_year,
                           obsolete_year_ids=obsolete, now=self.now(),
                           options=options or RunOptions())

    def batch_context(self, effects: Effects, establishments: list[EstablishmentRef],
                       year: SchoolYear, options: RunOptions) -> BatchContext:
        return BatchContext(database=self.database, effects=effects,
                            establishments=establishments, year_id=year.id, now=self.now(),
                            options=options)

    # -- dry run ---------------------------------------------------------------------------

    def dry_run(self, establishments: list[EstablishmentRef],
                steps: tuple[Step, ...] = DRY_RUN_STEPS,
                options: RunOptions | None = None, workers: int = 1) -> list[UnitOutcome]:
        """Simulate ``steps`` for each establishment (see :func:`dry_run.dry_run_units`).

        With ``workers`` > 1, establishments are simulated at the same time, each in a
        worker process with its own connection (a read-write database only: a read-only
        one is simulated here, one establishment after the other). Outcomes come back in
        the order of ``establishments``, each establishment's steps in order.
        """
        if (workers > 1 and len(establishments) > 1 and options is None
                and self.database.access is Access.READ_WRITE):
            per_establishment = in_workers(
                self, _dry_run_in_worker, establishments, workers, steps)
            return [outcome for outcomes in per_establishment for outcome in outcomes]
        return dry_run_units(self, establishments, steps, options)

    # -- real runs -------------------------------------------------------------------------

    def run(self, step: Step, establishments: list[EstablishmentRef], workers: int = 1,
            options: RunOptions | None = None) -> list[UnitOutcome]:
        """Run ``step`` for each establishment (see :meth:`run_units`)."""
        return self.run_units(step, establishments, workers, options=options)

    def run_units(self, step: Step, establishments: list[EstablishmentRef], workers: int = 1,
                  *, options: RunOptions | None = None) -> list[UnitOutcome]:
        """Run (or resume) ``step`` for each establishment; a failure does not stop the others.

        Args:
            step: the step.
            establishments: the establishments; outcomes come back in this order.
            workers: units run at the same time, each in its own process (its own
                connection); phases hold the database write lock only while they record
                their rows, so units of different establishments overlap well. A step
                with a batched phase (step 4) runs that phase once for all units.
            options: what the step needs beyond the establishments (step 4's delivery).

        Raises:
            ReadOnlyError: the runner is read-only.
            Exception: one of the step's input errors (bad input: a missing or refused
                AAF delivery), after the units concerned were recorded failed.
        """
        definition = step_definition(step)
        self.refuse_read_only(f"l'étape {definition.number} ({definition.label})")
        options = options or RunOptions()
        if definition.prepare is not None and establishments:
            definition.prepare(self.database, options)
        if definition.batch is None:
            if workers > 1 and len(establishments) > 1:
                return self._run_parallel(step, establishments, workers)
            self._changed_tables = set()
            outcomes_in_order = in_turn(
                self, definition, establishments,
                lambda establishment: self._run_one(definition, establishment, options))
            self._refresh_after(step)
            return outcomes_in_order
        outcomes: dict[int, UnitOutcome] = {}
        started: list[_Started] = []
        for establishment in establishments:
            begun = self._begin(definition, establishment, options)
            if isinstance(begun, UnitOutcome):
                outcomes[establishment.id] = begun
            else:
                started.append(begun)
        outcomes.update(self._run_batch(definition, started, options))
        for unit in started:
            if unit.establishment.id not in outcomes:
                outcomes[unit.establishment.id] = self._run_phases(unit, options)
        return [outcomes[establishment.id] for establishment in establishments]

    def _run_parallel(self, step: Step, establishments: list[EstablishmentRef],
                      workers: int) -> list[UnitOutcome]:
        outcomes = in_workers(self, _run_unit_in_worker, establishments, workers, step)
        if step is Step.DELETE_OBSOLETE:
            # The workers left it to this process: once, on every table (issue 16).
            refresh_statistics(self.database, None, vacuum=True)
        return outcomes

    def run_unit(self, step: Step, establishment: EstablishmentRef,
                 options: RunOptions | None = None) -> UnitOutcome:
        """Run (or resume) one unit of any step. A unit that is done is left as it is."""
        return self.run_units(step, [establishment], options=options)[0]

    def _run_one(self, definition: StepDefinition, establishment: EstablishmentRef,
                 options: RunOptions) -> UnitOutcome:
        begun = self._begin(definition, establishment, options)
        if isinstance(begun, UnitOutcome):
            return begun
        return self._run_phases(begun, options)

    def _begin(self, definition: StepDefinition, establishment: EstablishmentRef,
               options: RunOptions) -> UnitOutcome | _Started:
        """Check the guards and mark the unit running; an outcome when it does not start."""
        step = definition.key
        assert step is not None and definition.phases is not None
        uai = establishment.uai
        with self.database.session() as session:
            year, obsolete = self.school_years(session)
            session.expunge(year)
            unit = get_unit(session, establishment.id, year.id, step)
            assert unit is not None
            if unit.status is UnitStatus.DONE:
                return UnitOutcome(uai, step, "already-done", json.loads(unit.counts or "{}"))
            # Every path that runs a unit claims it first (engine, CLI, worker processes):
            # a second claimant is refused, a dead holder's claim is taken over.
            try:
                claim = claim_unit(session.connection(), unit.id,
                                   f"L'étape {definition.number} ({definition.label}) de {uai}")
            except UnitClaimedError as refusal:
                session.rollback()
                self.observer.notify(UnitFailed(uai, step.value, str(refusal), refused=True))
                return UnitOutcome(uai, step, "refused", error=str(refusal), code=refusal.code)
            session.refresh(unit)
            if unit.status is UnitStatus.DONE:  # finished by the holder we just followed
                release_claim(session.connection(), claim)
                return UnitOutcome(uai, step, "already-done", json.loads(unit.counts or "{}"))
            notes: set[str] = set()
            try:
                for guard in definition.guards:
                    notes |= guard(GuardInput(session, self.storage_root, establishment,
                                              year.id, step))
            except GuardRefused as refusal:
                release_claim(session.connection(), claim)
                return self._refuse(session, unit, establishment, step, refusal.code,
                                    refusal.message)
            ctx = self.unit_context(session.connection(),
                                RecordingEffects(self.storage_root, Tally(), self.database),
                                establishment, year, obsolete, options)
            phases = definition.phases(ctx)
            begin_unit(unit, total=len(phases))
            audit(session, "run", "started", establishment_id=establishment.id, step=step.value,
                  override=OVERRIDE in notes,
                  details={"notes": sorted(notes)} if notes else None)
            unit_id = unit.id
            state = checkpoint(unit)
        ClaimHeartbeat.of(self.database).hold(claim)
        self.observer.notify(UnitStarted(uai, step.value, len(phases)))
        self._remove_pending_files(unit_id, state)
        return _Started(definition, establishment, unit_id, phases, state, year, obsolete,
                        sorted(notes), claim)

    def _release(self, session: Session, started: _Started) -> None:
        """Give the unit's claim up, in the transaction that records how it stopped."""
        release_claim(session.connection(), started.claim)
        ClaimHeartbeat.of(self.database).drop(started.claim)

    def _save_phase(self, connection: Any, unit: _Started, name: str, index: int,
                    counts: dict[str, Any], warnings: list[str],
                    files_to_remove: list[str]) -> None:
        """Record a committed phase in the unit's checkpoint (in the phase's transaction)."""
        state = unit.state
        state.setdefault("phases", {})[name] = counts
        state["counts"] = merge_counts(state.get("counts", {}), counts)
        state["warnings"] = [*state.get("warnings", []), *warnings]
        state["pending_files"] = files_to_remove
        connection.execute(update(StepUnit).where(StepUnit.id == unit.unit_id).values(
            checkpoint=json.dumps(state, ensure_ascii=False, sort_keys=True),
            progress_done=index))

    def _run_batch(self, definition: StepDefinition, started: list[_Started],
                   options: RunOptions) -> dict[int, UnitOutcome]:
        """Run the batched phase once for the units that have not committed it.

        The phase commits its own work (the AAF import is one transaction); the units'
        checkpoints are recorded right after. A run killed in between imports again on
        resume, which gives the same end state.

        Returns:
            The outcomes of the units that stopped or failed.
        """
        name = definition.batch_phase
        assert name is not None and definition.batch is not None
        todo = [unit for unit in started if name not in unit.state.get("phases", {})]
        if not todo:
            return {}
        if self.should_stop is not None and self.should_stop():
            return {unit.establishment.id: self._stop(unit, 0) for unit in todo}
        index = [phase for phase, _ in todo[0].phases].index(name) + 1
        effects = RealEffects(self.storage_root, Tally(), self.database)
        try:
            counts = definition.batch(self.batch_context(
                effects, [unit.establishment for unit in todo], todo[0].year, options))
            with self.database.engine.begin() as connection:
                for unit in todo:
                    self._save_phase(connection, unit, name, index,
                                     counts.get(unit.establishment.id, {}), [], [])
        except Exception as error:  # any failure is recorded on the units
            failed = {unit.establishment.id: self._fail(unit, name, error) for unit in todo}
            if isinstance(error, definition.input_errors):
                raise
            return failed
        for unit in todo:
            self.observer.notify(UnitProgressed(unit.establishment.uai, unit.step.value, index,
                                                len(unit.phases)))
        return {}

    def _run_phases(self, unit: _Started, options: RunOptions) -> UnitOutcome:
        """Run the phases the unit has not committed yet, then finish it."""
        definition = unit.definition
        done_phases = unit.state.get("phases", {})
        changed: set[str] = set()
        for index, (name, run) in enumerate(unit.phases, start=1):
            if name in done_phases:
                continue
            if self.should_stop is not None and self.should_stop():
                return self._stop(unit, index - 1)
            tally = Tally()
            try:
                with self.database.engine.begin() as connection:
                    ctx = self.unit_context(connection,
                                        RealEffects(self.storage_root, tally, self.database),
                                        unit.establishment, unit.year, unit.obsolete, options)
                    run(ctx)
                    ctx.effects.finish_phase(connection)
                    counts, _lists = tally.as_dicts()
                    self._save_phase(connection, unit, name, index, counts, ctx.warnings,
                                     ctx.files_to_remove)
                    changed.update(tables_changed_in_transaction(connection))
            except UnitBlocked as blocked:
                return self._block(unit, blocked)
            except Exception as error:  # any failure is recorded on the unit
                outcome = self._fail(unit, name, error)
                if isinstance(error, definition.input_errors):
                    raise
                return outcome
            self._remove_pending_files(unit.unit_id, unit.state)
            self.observer.notify(UnitProgressed(unit.establishment.uai, unit.step.value, index,
                                                len(unit.phases)))
        self._changed_tables.update(changed)
        return self._finish(unit)

    def _refresh_after(self, step: Step) -> None:
        """After step 3's units of one call: ``VACUUM (ANALYZE)`` (PostgreSQL) the tables
        they changed, once per call — it costs seconds whatever it reclaims, so once per
        unit made step 3 grow with the square of the establishments (issue 16)."""
        changed, self._changed_tables = self._changed_tables, set()
        if step is Step.DELETE_OBSOLETE and changed and not self.defer_statistics:
            refresh_statistics(self.database, sorted(changed), vacuum=True)

    def _finish(self, started: _Started) -> UnitOutcome:
        establishment, step = started.establishment, started.step
        counts = started.state.get("counts", {})
        with self.database.session() as session:
            unit = session.get(StepUnit, started.unit_id)
            assert unit is not None
            finish_unit(unit, counts)
            self._release(session, started)
            differences = dry_run_differences(session, establishment.id, started.year.id,
                                              step, counts, unit.started_at)
            audit(session, "run", "done", establishment_id=establishment.id, step=step.value,
                  override=OVERRIDE in started.notes,
                  details={"counts": counts, "differences": differences})
        self.observer.notify(UnitFinished(establishment.uai, step.value, counts))
        return UnitOutcome(establishment.uai, step, "done", counts, {},
                           list(started.state.get("warnings", [])), differences=differences,
                           notes=started.notes)

    def send_warnings(self, establishments: list[EstablishmentRef], deletion_date: dt.date,
                      second: bool = False) -> list[UnitOutcome]:
        """Warn managers of year-limited free groups (see :func:`notices.send_warnings`)."""
        return send_warnings(self, establishments, deletion_date, second)

    def _remove_pending_files(self, unit_id: int, state: dict[str, Any]) -> None:
        pending = state.get("pending_files") or []
        if not pending:
            return
        RealEffects(self.storage_root, Tally()).remove_files(pending, "fichiers")
        state["pending_files"] = []
        with self.database.engine.begin() as connection:
            connection.execute(update(StepUnit).where(StepUnit.id == unit_id).values(
                checkpoint=json.dumps(state, ensure_ascii=False, sort_keys=True)))

    def _refuse(self, session: Session, unit: StepUnit, establishment: EstablishmentRef,
                step: Step, code: str, message: str) -> UnitOutcome:
        unit.status = UnitStatus.BLOCKED
        unit.error = message
        audit(session, "run", "refused", establishment_id=establishment.id, step=step.value,
              details={"code": code, "reason": message})
        self.observer.notify(UnitFailed(establishment.uai, step.value, message, refused=True))
        return UnitOutcome(establishment.uai, step, "refused", error=message, code=code)

    def _block(self, started: _Started, blocked: UnitBlocked) -> UnitOutcome:
        """A phase found the unit cannot be done yet: « bloqué » with its counts."""
        establishment, step = started.establishment, started.step
        counts = merge_counts(started.state.get("counts", {}), blocked.counts)
        with self.database.session() as session:
            unit = session.get(StepUnit, started.unit_id)
            assert unit is not None
            unit.status = UnitStatus.BLOCKED
            unit.error = blocked.message
            self._release(session, started)
            unit.counts = json.dumps(counts, ensure_ascii=False, sort_keys=True)
            audit(session, "run", "blocked", establishment_id=establishment.id,
                  step=step.value, override=OVERRIDE in started.notes,
                  details={"code": blocked.code, "counts": counts})
        self.observer.notify(UnitFailed(establishment.uai, step.value, blocked.message,
                                        refused=True))
        return UnitOutcome(establishment.uai, step, "refused", counts,
                           warnings=list(started.state.get("warnings", [])),
                           error=blocked.message, code=blocked.code, notes=started.notes)

    def _stop(self, started: _Started, done: int) -> UnitOutcome:
        total = len(started.phases)
        message = (f"Interrompue à la demande après {done} phase(s) sur {total} ; "
                   "elle reprendra à ce point au prochain lancement.")
        with self.database.session() as session:
            unit = session.get(StepUnit, started.unit_id)
            assert unit is not None
            unit.status = UnitStatus.PENDING
            unit.error = message
            self._release(session, started)
            audit(session, "run", "cancelled", establishment_id=started.establishment.id,
                  step=started.step.value, details={"phases_done": done, "phases": total})
        return UnitOutcome(started.establishment.uai, started.step, "cancelled", error=message,
                           notes=started.notes)

    def _fail(self, started: _Started, phase: str, error: Exception) -> UnitOutcome:
        establishment, step = started.establishment, started.step
        message = f"phase « {phase} » : {describe_error(error)}"
        trace = "".join(traceback.format_exception(error))
        log.debug("Unité %s %s en échec :\n%s", establishment.uai, step.value, trace)
        with self.database.session() as session:
            unit = session.get(StepUnit, started.unit_id)
            assert unit is not None
            fail_unit(unit, message)
            self._release(session, started)
            audit(session, "run", "failed", establishment_id=establishment.id, step=step.value,
                  details={"error": message})
        self.observer.notify(UnitFailed(establishment.uai, step.value, message))
        return UnitOutcome(establishment.uai, step, "failed", error=message,
                           notes=started.notes, traceback=trace)

def in_turn(runner: ChangeoverRunner, definition: StepDefinition,
            establishments: list[EstablishmentRef],
            run_one: Callable[[EstablishmentRef], UnitOutcome]) -> list[UnitOutcome]:
    """The units one after the other; the step's warm-up of each (outside any
    transaction) runs on a thread while the previous unit runs."""
    warm = definition.warm
    if warm is None:
        return [run_one(establishment) for establishment in establishments]

    def warm_up(establishment: EstablishmentRef) -> None:
        try:
            warm(runner.database, runner.storage_root, establishment)
        except Exception:  # the guard does the whole work itself
            log.debug("Préparation de %s ignorée.", establishment.uai, exc_info=True)

    outcomes = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="warm") as warmer:
        ahead = warmer.submit(warm_up, establishments[0]) if establishments else None
        for index, establishment in enumerate(establishments):
            assert ahead is not None
            ahead.result()
            if index + 1 < len(establishments):
                ahead = warmer.submit(warm_up, establishments[index + 1])
            outcomes.append(run_one(establishment))
    return outcomes


def in_workers(runner: ChangeoverRunner, function: Callable[..., Any],
               establishments: list[EstablishmentRef], workers: int, what: Any) -> list[Any]:
    """``function(url, storage, now, what, ref)`` for each establishment, in ``workers``
    processes; the workers' events reach the runner's observer.

    The processes are forked from a server process that imported this module once
    (``forkserver``, where the system has it; never a bare ``fork`` of this process, whose
    threads would be copied mid-flight): a worker no longer pays the import of the whole
    product, which was most of a short run's cost (3 establishments on 2 processes used
    more CPU than in 1).
    """
    context = worker_context()
    events = context.SimpleQueue()

    def forward() -> None:
        while True:
            event = events.get()
            if event is None:
                return
            runner.observer.notify(event)

    forwarder = threading.Thread(target=forward, name="unit-events", daemon=True)
    forwarder.start()
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                 initializer=_set_worker_events, initargs=(events,)) as pool:
            # Largest establishments first, so no worker is left alone with a big one
            # at the end; outcomes are still returned in the given order.
            sizes = establishment_sizes(runner.database)
            futures = {ref.id: pool.submit(function, runner.database.url,
                                           str(runner.storage_root), runner.fixed_now, what,
                                           ref)
                       for ref in sorted(establishments,
                                         key=lambda ref: -sizes.get(ref.id, 0))}
            outcomes = [futures[ref.id].result() for ref in establishments]
    finally:
        events.put(None)
        forwarder.join(timeout=10)
    return outcomes


def worker_context() -> Any:
    """The start method of the runner's worker processes: ``forkserver`` with this module
    preloaded, else ``spawn``."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # Only read when the server starts (once per process); later calls change nothing.
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


_worker_events: Any = None
"""The queue a worker process sends its events to (set when the process starts)."""


def _set_worker_events(queue: Any) -> None:
    global _worker_events
    _worker_events = queue


def establishment_sizes(database: Database) -> dict[int, int]:
    """People per establishment: how the work of a unit grows."""
    with database.session() as session:
        return {row[0]: int(row[1]) for row in session.execute(
            select(Person.establishment_id, func.count())
            .group_by(Person.establishment_id)).all() if row[0] is not None}


def dry_run_differences(session: Session, establishment_id: int, year_id: int, step: Step,
                        counts: dict[str, Any],
                        started_at: dt.datetime | None) -> list[dict[str, Any]]:
    """Compare real counts with the last dry run made before the unit started."""
    query = select(DryRunReport.counts).where(
        DryRunReport.establishment_id == establishment_id,
        DryRunReport.school_year_id == year_id, DryRunReport.step == step)
    if started_at is not None:
        query = query.where(DryRunReport.created_at <= started_at)
    report = session.scalar(query.order_by(DryRunReport.created_at.desc(),
                                           DryRunReport.id.desc()).limit(1))
    if report is None:
        return []
    planned = json.loads(report)
    numbers = {key for key in set(planned) | set(counts)
               if isinstance(planned.get(key, 0), int) and isinstance(counts.get(key, 0), int)}
    return [{"count": key, "dry_run": planned.get(key, 0), "real": counts.get(key, 0)}
            for key in sorted(numbers) if planned.get(key, 0) != counts.get(key, 0)]


class _QueueObserver:
    """Forwards a worker's events to the parent process."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def notify(self, event: Any) -> None:
        self.queue.put(event)


def _worker_runner(url: str, storage_root: str, now: dt.datetime | None) -> ChangeoverRunner:
    """A runner in a worker process, with its own database connection.

    A worker keeps its database (engine, pooled connection, compiled statements) for the
    units that follow; it is closed when the pool ends the process.
    """
    database = _worker_databases.get(url)
    if database is None:
        database = _worker_databases[url] = open_database(url, migrate=False)
    runner = ChangeoverRunner(database, Path(storage_root), _QueueObserver(_worker_events), now)
    runner.defer_statistics = True
    return runner


def _run_unit_in_worker(url: str, storage_root: str, now: dt.datetime | None, step: Step,
                        establishment: EstablishmentRef) -> UnitOutcome:
    """Run one unit in a worker process."""
    return _worker_runner(url, storage_root, now).run_unit(step, establishment)


def _dry_run_in_worker(url: str, storage_root: str, now: dt.datetime | None,
                       steps: tuple[Step, ...],
                       establishment: EstablishmentRef) -> list[UnitOutcome]:
    """Simulate ``steps`` for one establishment in a worker process (``dry-run --workers``)."""
    return _worker_runner(url, storage_root, now).dry_run([establishment], steps)


_worker_databases: dict[str, Database] = {}


def year_units(session: Session, school_year_id: int,
               establishment_ids: Collection[int] | None = None
               ) -> tuple[dict[tuple[int, Step], StepUnit], set[tuple[int, Step]]]:
    """The units of a change-over by (establishment id, step), and the (establishment id,
    step) pairs that have a dry-run report (of ``establishment_ids`` only, when given)."""
    units_query = select(StepUnit).where(StepUnit.school_year_id == school_year_id)
    reports_query = select(DryRunReport.establishment_id, DryRunReport.step).where(
        DryRunReport.school_year_id == school_year_id)
    if establishment_ids is not None:
        units_query = units_query.where(StepUnit.establishment_id.in_(establishment_ids))
        reports_query = reports_query.where(
            DryRunReport.establishment_id.in_(establishment_ids))
    by_key = {(unit.establishment_id, Step(unit.step)): unit
              for unit in session.scalars(units_query)}
    dry_runs = {(row[0], Step(row[1])) for row in session.execute(reports_query.distinct())}
    return by_key, dry_runs


def unit_table(database: Database) -> list[dict[str, Any]]:
    """Every establishment with the state of each step of the current change-over: stable
    snake_case keys and identifiers, each state with its French label and glyph beside it,
    ``dry_run_report`` when a dry run of that step is stored (the unit itself is real), and
    the unit's start and end as stored (UTC; the CLI prints them in the operator's zone)."""
    with database.session() as session:
        year = current_school_year(session)
        establishments = session.execute(select(
            Establishment.id, Establishment.uai, Establishment.name, Establishment.kind)
            .order_by(Establishment.uai)).all()
        by_key, dry_runs = year_units(session, year.id)
        table = []
        for establishment_id, uai, name, kind in establishments:
            steps = {}
            for step in (definition.key for definition in UNIT_STEPS if definition.key):
                unit = by_key.get((establishment_id, step))
                status = unit.status if unit is not None else UnitStatus.PENDING
                steps[step.value] = {
                    "step": step.number,
                    "label": step.label,
                    "status": UnitStatus(status).value,
                    "status_label": UNIT_STATUS_LABELS[UnitStatus(status)],
                    "glyph": UNIT_STATUS_GLYPHS[UnitStatus(status)],
                    "progress": [unit.progress_done, unit.progress_total] if unit else [0, 0],
                    "error": unit.error if unit else "",
                    "counts": json.loads(unit.counts) if unit and unit.counts else {},
                    "dry_run_report": (establishment_id, step) in dry_runs,
                    "started_at": unit.started_at if unit else None,
                    "finished_at": unit.finished_at if unit else None,
                }
            table.append({"uai": uai, "name": name, "kind": str(kind.value if hasattr(kind, "value") else kind),
                          "school_year": year.label, "steps": steps})
    return table
