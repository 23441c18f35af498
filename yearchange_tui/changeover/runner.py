"""Run steps 1–3 (and their dry run) per establishment as resumable, audited units.

Runs on the caller's thread (the CLI's, or a scheduler worker's); reports through an
:class:`~yearchange_tui.workflow.events.Observer`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from yearchange_tui.changeover.effects import RealEffects, RecordingEffects, Tally
from yearchange_tui.changeover.steps import STEP_PHASES, UnitContext
from yearchange_tui.changeover.verify import archive_problems
from yearchange_tui.ent.database import Database
from yearchange_tui.ent.models import Establishment, Person, SchoolYear
from yearchange_tui.workflow.audit import audit
from yearchange_tui.workflow.establishments import (
    EstablishmentRef,
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
from yearchange_tui.workflow.guards import GuardRefused, check_step_order
from yearchange_tui.workflow.models import DryRunReport, Step, StepUnit, UnitStatus
from yearchange_tui.workflow.units import (
    begin_unit,
    checkpoint,
    current_school_year,
    fail_unit,
    finish_unit,
    get_unit,
    utcnow,
)

DRY_RUN_STEPS = (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE)
GUARD_ARCHIVES = "archives-invalides"


class ReadOnlyError(Exception):
    """A change was asked of an engine opened read-only (support staff)."""


@dataclass
class UnitOutcome:
    """What happened to one (establishment, step)."""

    uai: str
    step: Step
    status: str  # done, already-done, failed, refused, dry-run
    counts: dict[str, int] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    code: str = ""
    differences: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"uai": self.uai, "step": self.step.value, "status": self.status,
                "counts": self.counts, "lists": self.lists, "warnings": self.warnings,
                "error": self.error, "code": self.code, "differences": self.differences}


def _merge_counts(total: dict[str, int], new: dict[str, int]) -> dict[str, int]:
    merged = defaultdict(int, total)
    for key, value in new.items():
        merged[key] += value
    return dict(sorted(merged.items()))


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

    def _refuse_read_only(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyError(f"Mode consultation : {what} est interdit.")

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

    def _year(self, session: Session) -> tuple[SchoolYear, list[int]]:
        year = current_school_year(session)
        obsolete = list(session.scalars(select(SchoolYear.id).where(
            SchoolYear.start_year <= year.start_year)))
        return year, obsolete

    def _context(self, connection: Any, effects: Any, establishment: EstablishmentRef,
                 year: SchoolYear, obsolete: list[int]) -> UnitContext:
        return UnitContext(connection=connection, effects=effects,
                           establishment_id=establishment.id, uai=establishment.uai,
                           establishment_name=establishment.name,
                           project_id=establishment.project_id,
                           closing_date=establishment.closing_date, year_id=year.id,
                           year_label=year.label, year_start=year.start_year,
                           obsolete_year_ids=obsolete, now=self.now())

    # -- dry run ---------------------------------------------------------------------------

    def dry_run(self, establishments: list[EstablishmentRef],
                steps: tuple[Step, ...] = DRY_RUN_STEPS) -> list[UnitOutcome]:
        """Simulate ``steps`` for each establishment; store and return the reports.

        Nothing is changed in the ENT data, the storage or the messaging; only the dry-run
        reports and one audit entry per establishment are written (nothing at all on a
        read-only database connection).
        """
        outcomes: list[UnitOutcome] = []
        with self.database.session() as session:
            year, obsolete = self._year(session)
            session.expunge(year)
        for establishment in establishments:
            for step in steps:
                self.observer.notify(UnitStarted(establishment.uai, step.value, 0, dry_run=True))
                tally = Tally()
                with self.database.engine.connect() as connection:
                    transaction = connection.begin()
                    try:
                        ctx = self._context(connection, RecordingEffects(self.storage_root, tally),
                                            establishment, year, obsolete)
                        phases = STEP_PHASES[step](ctx)
                        for index, (_name, run) in enumerate(phases, start=1):
                            run(ctx)
                            self.observer.notify(UnitProgressed(
                                establishment.uai, step.value, index, len(phases), dry_run=True))
                    finally:
                        transaction.rollback()
                counts, lists = tally.as_dicts()
                outcome = UnitOutcome(establishment.uai, step, "dry-run", counts, lists,
                                      ctx.warnings)
                if not self.database.read_only:  # a read-only connection: shown, not stored
                    self._store_dry_run(establishment, year, step, outcome)
                self.observer.notify(UnitFinished(establishment.uai, step.value, counts,
                                                  dry_run=True))
                outcomes.append(outcome)
        return outcomes

    def _store_dry_run(self, establishment: EstablishmentRef, year: SchoolYear, step: Step,
                       outcome: UnitOutcome) -> None:
        counts, lists, warnings = outcome.counts, outcome.lists, outcome.warnings
        with self.database.session() as session:
            session.execute(insert(DryRunReport).values(
                establishment_id=establishment.id, school_year_id=year.id, step=step,
                created_at=self.now(), counts=json.dumps(counts, ensure_ascii=False),
                lists=json.dumps(lists, ensure_ascii=False),
                warnings=json.dumps(warnings, ensure_ascii=False)))
            audit(session, "dry-run", "done", establishment_id=establishment.id,
                  step=step.value, details={"counts": counts, "warnings": len(warnings)})

    # -- real runs -------------------------------------------------------------------------

    def run(self, step: Step, establishments: list[EstablishmentRef],
            workers: int = 1) -> list[UnitOutcome]:
        """Run ``step`` for each establishment; a failure does not stop the others.

        Args:
            step: the step.
            establishments: the establishments, run in UAI order.
            workers: units run at the same time, each in its own process (its own
                connection); phases hold the database write lock only while they record
                their rows, so units of different establishments overlap well.
        """
        self._refuse_read_only(f"l'étape {step.number} ({step.label})")
        if workers <= 1 or len(establishments) <= 1:
            return [self.run_unit(step, establishment) for establishment in establishments]
        return self._run_parallel(step, establishments, workers)

    def _run_parallel(self, step: Step, establishments: list[EstablishmentRef],
                      workers: int) -> list[UnitOutcome]:
        import multiprocessing
        import threading
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        manager = context.Manager()
        events = manager.Queue()

        def forward() -> None:
            while True:
                event = events.get()
                if event is None:
                    return
                self.observer.notify(event)

        forwarder = threading.Thread(target=forward, name="unit-events", daemon=True)
        forwarder.start()
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                # Largest establishments first, so no worker is left alone with a big one
                # at the end; outcomes are still returned in the given order.
                sizes = self._establishment_sizes()
                futures = {ref.id: pool.submit(_run_unit_in_worker, self.database.url,
                                               str(self.storage_root), self.fixed_now, step,
                                               ref, events)
                           for ref in sorted(establishments,
                                             key=lambda ref: -sizes.get(ref.id, 0))}
                outcomes = [futures[ref.id].result() for ref in establishments]
        finally:
            events.put(None)
            forwarder.join(timeout=10)
            manager.shutdown()
        return outcomes

    def _establishment_sizes(self) -> dict[int, int]:
        """People per establishment: how the work of a unit grows."""
        with self.database.session() as session:
            return {row[0]: int(row[1]) for row in session.execute(
                select(Person.establishment_id, func.count())
                .group_by(Person.establishment_id)).all() if row[0] is not None}

    def run_unit(self, step: Step, establishment: EstablishmentRef) -> UnitOutcome:
        """Run (or resume) one unit. A unit that is done is left as it is."""
        self._refuse_read_only(f"l'étape {step.number} ({step.label})")
        uai = establishment.uai
        with self.database.session() as session:
            year, obsolete = self._year(session)
            session.expunge(year)
            unit = get_unit(session, establishment.id, year.id, step)
            assert unit is not None
            if unit.status is UnitStatus.DONE:
                return UnitOutcome(uai, step, "already-done", json.loads(unit.counts or "{}"))
            try:
                overridden = check_step_order(session, establishment.id, year.id, step)
            except GuardRefused as refusal:
                return self._refuse(session, unit, establishment, step, refusal.code,
                                    refusal.message)
            if step is Step.DELETE_OBSOLETE:
                problems = archive_problems(session, self.storage_root, establishment.id,
                                            year.id)
                if problems:
                    message = (f"{uai} : l'étape 3 est refusée, les archives de l'étape 2 sont "
                               f"manquantes ou altérées : {'; '.join(problems[:5])}")
                    return self._refuse(session, unit, establishment, step, GUARD_ARCHIVES,
                                        message)
            ctx = self._context(session.connection(), None, establishment, year, obsolete)
            phases = STEP_PHASES[step](ctx)
            begin_unit(unit, total=len(phases))
            audit(session, "run", "started", establishment_id=establishment.id, step=step.value,
                  override=overridden)
            unit_id = unit.id
            state = checkpoint(unit)
        done_phases = state.get("phases", {})
        self.observer.notify(UnitStarted(uai, step.value, len(phases)))
        self._remove_pending_files(unit_id, state)
        warnings: list[str] = list(state.get("warnings", []))
        for index, (name, run) in enumerate(phases, start=1):
            if name in done_phases:
                continue
            if self.should_stop is not None and self.should_stop():
                return self._stop(unit_id, establishment, step, index - 1, len(phases))
            tally = Tally()
            try:
                with self.database.engine.begin() as connection:
                    ctx = self._context(connection, RealEffects(self.storage_root, tally),
                                        establishment, year, obsolete)
                    run(ctx)
                    ctx.effects.finish_phase(connection)
                    counts, _lists = tally.as_dicts()
                    state.setdefault("phases", {})[name] = counts
                    state["counts"] = _merge_counts(state.get("counts", {}), counts)
                    warnings.extend(ctx.warnings)
                    state["warnings"] = warnings
                    state["pending_files"] = ctx.files_to_remove
                    connection.execute(update(StepUnit).where(StepUnit.id == unit_id).values(
                        checkpoint=json.dumps(state, ensure_ascii=False, sort_keys=True),
                        progress_done=index))
            except Exception as error:  # noqa: BLE001 - any failure is recorded on the unit
                return self._fail(unit_id, establishment, step, f"phase « {name} » : {error}")
            self._remove_pending_files(unit_id, state)
            self.observer.notify(UnitProgressed(uai, step.value, index, len(phases)))
        counts = state.get("counts", {})
        with self.database.session() as session:
            unit = session.get(StepUnit, unit_id)
            assert unit is not None
            finish_unit(unit, counts)
            differences = self._differences(session, establishment.id, year.id, step, counts,
                                            unit.started_at)
            audit(session, "run", "done", establishment_id=establishment.id, step=step.value,
                  details={"counts": counts, "differences": differences})
        self.observer.notify(UnitFinished(uai, step.value, counts))
        return UnitOutcome(uai, step, "done", counts, {}, warnings, differences=differences)

    def send_warnings(self, establishments: list[EstablishmentRef], deletion_date: dt.date,
                      second: bool = False) -> list[UnitOutcome]:
        """Warn managers of year-limited free groups that step 3 will delete them.

        One message per manager listing all their groups, each with its lifetime link.
        """
        from yearchange_tui.changeover.notices import (
            WARNING_SUBJECT,
            groups_by_manager,
            lifetime_url,
            warning_body,
        )

        self._refuse_read_only("l'envoi des avertissements")
        action = "second-warning" if second else "warning"
        outcomes = []
        for establishment in establishments:
            tally = Tally()
            with self.database.engine.begin() as connection:
                effects = RealEffects(self.storage_root, tally)
                for entry in groups_by_manager(connection, establishment.id):
                    links = [(name, lifetime_url(connection, establishment.project_id, group_id))
                             for group_id, name in entry.groups]
                    effects.send_message(
                        connection, establishment_id=establishment.id,
                        recipient_ids=[entry.manager_id], subject=WARNING_SUBJECT,
                        body=warning_body(deletion_date, links), sent_at=self.now(),
                        label="avertissements envoyés")
                    effects.tally.add("groupes signalés", len(entry.groups))
            counts, _ = tally.as_dicts()
            with self.database.session() as session:
                audit(session, action, "done", establishment_id=establishment.id,
                      details={"counts": counts, "deletion_date": deletion_date.isoformat()})
            outcomes.append(UnitOutcome(establishment.uai, Step.DELETE_OBSOLETE, "done", counts))
        return outcomes

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

    def _stop(self, unit_id: int, establishment: EstablishmentRef, step: Step, done: int,
              total: int) -> UnitOutcome:
        message = (f"Interrompue à la demande après {done} phase(s) sur {total} ; "
                   "elle reprendra à ce point au prochain lancement.")
        with self.database.session() as session:
            unit = session.get(StepUnit, unit_id)
            assert unit is not None
            unit.status = UnitStatus.PENDING
            unit.error = message
            audit(session, "run", "cancelled", establishment_id=establishment.id,
                  step=step.value, details={"phases_done": done, "phases": total})
        return UnitOutcome(establishment.uai, step, "cancelled", error=message)

    def _fail(self, unit_id: int, establishment: EstablishmentRef, step: Step,
              error: str) -> UnitOutcome:
        with self.database.session() as session:
            unit = session.get(StepUnit, unit_id)
            assert unit is not None
            fail_unit(unit, error)
            audit(session, "run", "failed", establishment_id=establishment.id, step=step.value,
                  details={"error": error})
        self.observer.notify(UnitFailed(establishment.uai, step.value, error))
        return UnitOutcome(establishment.uai, step, "failed", error=error)

    def _differences(self, session: Session, establishment_id: int, year_id: int, step: Step,
                     counts: dict[str, int], started_at: dt.datetime | None) -> list[dict[str, Any]]:
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
        return [{"count": key, "dry_run": planned.get(key, 0), "real": counts.get(key, 0)}
                for key in sorted(set(planned) | set(counts))
                if planned.get(key, 0) != counts.get(key, 0)]


class _QueueObserver:
    """Forwards a worker's events to the parent process."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def notify(self, event: Any) -> None:
        self.queue.put(event)


def _run_unit_in_worker(url: str, storage_root: str, now: dt.datetime | None, step: Step,
                        establishment: EstablishmentRef, events: Any) -> UnitOutcome:
    """Run one unit in a worker process, with its own database connection.

    A worker keeps its database (engine, pooled connection, compiled statements) for the
    units that follow; it is closed when the pool ends the process.
    """
    from yearchange_tui.ent.database import open_database

    database = _worker_databases.get(url)
    if database is None:
        database = _worker_databases[url] = open_database(url, migrate=False)
    runner = ChangeoverRunner(database, Path(storage_root), _QueueObserver(events), now)
    return runner.run_unit(step, establishment)


_worker_databases: dict[str, Database] = {}


def year_units(session: Session, school_year_id: int
               ) -> tuple[dict[tuple[int, Step], StepUnit], set[tuple[int, Step]]]:
    """The units of a change-over by (establishment id, step), and the (establishment id,
    step) pairs that have a dry-run report."""
    units = session.scalars(select(StepUnit).where(StepUnit.school_year_id == school_year_id))
    by_key = {(unit.establishment_id, Step(unit.step)): unit for unit in units}
    dry_runs = {(row[0], Step(row[1])) for row in session.execute(select(
        DryRunReport.establishment_id, DryRunReport.step).where(
        DryRunReport.school_year_id == school_year_id).distinct())}
    return by_key, dry_runs


def unit_table(database: Database) -> list[dict[str, Any]]:
    """Every establishment with the state of each step of the current change-over."""
    with database.session() as session:
        year = current_school_year(session)
        establishments = session.execute(select(
            Establishment.id, Establishment.uai, Establishment.name, Establishment.kind)
            .order_by(Establishment.uai)).all()
        by_key, dry_runs = year_units(session, year.id)
        table = []
        for establishment_id, uai, name, kind in establishments:
            steps = {}
            for step in Step:
                unit = by_key.get((establishment_id, step))
                status = unit.status if unit is not None else UnitStatus.PENDING
                steps[step.value] = {
                    "status": UnitStatus(status).value,
                    "progress": [unit.progress_done, unit.progress_total] if unit else [0, 0],
                    "error": unit.error if unit else "",
                    "counts": json.loads(unit.counts) if unit and unit.counts else {},
                    "dry_run": (establishment_id, step) in dry_runs,
                }
            table.append({"uai": uai, "name": name, "kind": str(kind.value if hasattr(kind, "value") else kind),
                          "school_year": year.label, "steps": steps})
    return table
