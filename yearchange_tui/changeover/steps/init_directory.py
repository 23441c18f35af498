"""Step 4, « Initialisation de l'annuaire N+1 » (seed §6.4), as resumable units.

Guard: step 3 done — except an initial load into an establishment that has no people
yet. Two phases: « import » applies the AAF « complet d'initialisation » to the
establishments of the run in one transaction (run once for all the units of a run, so
the delivery is read once; :func:`~yearchange_tui.aaf.importer.import_delivery` with
``step4=True`` scoped to them), and each unit records its establishment's import
summary as its counts; then « rapport N-1 » reports the classes the import flagged as
likely year N-1 classes. A unit already done is left alone; a failed or killed import
leaves the database as it was, and running it again gives the same end state.

``import-aaf`` after step 3 is step 4 too: :func:`import_aaf_delivery` runs the
import of the whole delivery as the « import » phase of the step-4 units of the
establishments whose step 3 is done.

Runs on the caller's thread (CLI main thread or a scheduler thread).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from yearchange_tui.aaf.delivery import open_delivery
from yearchange_tui.aaf.importer import MODE_INIT, ImportResult, import_delivery
from yearchange_tui.aaf.init_units import step4_refusal
from yearchange_tui.aaf.parser import AafFileError
from yearchange_tui.changeover.notices import deactivation_line, send_deactivation_notices
from yearchange_tui.changeover.steps.base import (
    BatchContext,
    GuardInput,
    Phase,
    RunOptions,
    StepDefinition,
    UnitBlocked,
    UnitContext,
    step_order_guard,
)
from yearchange_tui.ent.database import Database
from yearchange_tui.ent.models import Establishment, Person
from yearchange_tui.importing.models import AafImport, AafImportFile, AafReject
from yearchange_tui.workflow.guards import GuardRefused, check_aaf_import_allowed
from yearchange_tui.workflow.models import STEP_PREREQUISITES, Step, StepUnit, UnitStatus
from yearchange_tui.workflow.units import NoCurrentYearError, current_school_year, get_unit

STEP = Step.INIT_DIRECTORY
INITIAL_LOAD = "initial-load"
IMPORT_PHASE = "import"
PREVIOUS_YEAR_CODE = "AAF-CLASSE-N-1-PROBABLE"
REFUSAL_KEY = "refus_etape_4"
"""Key of the « import » phase counts of a unit whose delivery was not its Complet."""


class DeliveryUnavailableError(Exception):
    """No AAF delivery to initialise from, or it changed since it was imported (French)."""


def latest_delivery(database: Database) -> tuple[list[str], dict[str, str]]:
    """The source paths of the newest AAF import and the checksums of its files.

    Raises:
        DeliveryUnavailableError: no AAF delivery was ever imported.
    """
    with database.session() as session:
        latest = session.scalar(select(AafImport).where(AafImport.mode != "timetable")
                                .order_by(AafImport.id.desc()).limit(1))
        if latest is None:
            raise DeliveryUnavailableError(
                "Aucune livraison AAF n'a encore été importée : indiquez le chemin de la "
                "livraison « complet d'initialisation ».")
        files = {row.name: row.sha256 for row in session.scalars(
            select(AafImportFile).where(AafImportFile.import_id == latest.id))}
        return [line for line in latest.source.splitlines() if line], files


def _check_unchanged(source: list[str], checksums: dict[str, str]) -> None:
    try:
        with open_delivery(source) as delivery:
            current = {f.name: f.sha256 for f in delivery.files}
    except AafFileError as error:
        raise DeliveryUnavailableError(
            f"La dernière livraison AAF importée n'est plus lisible : {error}") from error
    if current != checksums:
        raise DeliveryUnavailableError(
            "La livraison AAF a changé depuis son import (fichiers ajoutés, retirés ou "
            "modifiés) : indiquez explicitement le chemin de la livraison à utiliser.")


def resolve_delivery(database: Database, options: RunOptions) -> None:
    """Set the delivery to use when none was asked: the newest imported, if unchanged.

    Raises:
        DeliveryUnavailableError: no delivery was given and none usable was imported.
    """
    if options.aaf_source is not None:
        return
    paths, checksums = latest_delivery(database)
    _check_unchanged(paths, checksums)
    options.aaf_source = tuple(paths)


def directory_guard(check: GuardInput) -> frozenset[str]:
    """Step 3 done, unless the establishment has no people yet (an initial load).

    A unit whose last import was refused (not its Complet) starts again from the import:
    nothing was written for it, so the next delivery is imported for it.
    """
    unit = get_unit(check.session, check.establishment.id, check.school_year_id, STEP)
    if unit is not None and _import_refusal(check.session.connection(), check.establishment.id,
                                            check.school_year_id) is not None:
        unit.checkpoint = "{}"
    has_people = check.session.scalar(select(Person.id).where(
        Person.establishment_id == check.establishment.id).limit(1)) is not None
    if not has_people:
        return frozenset({INITIAL_LOAD})
    return step_order_guard(check)


def run_by_the_runner(ctx: UnitContext) -> None:
    """Stands for the batched « import » phase, which the runner runs for all units."""
    raise RuntimeError("la phase « import » est exécutée une fois pour toutes les unités")


def init_directory_phases(ctx: UnitContext) -> list[Phase]:
    """Step 4: the import (batched), then the report of likely year N-1 classes."""
    return [(IMPORT_PHASE, run_by_the_runner), ("rapport N-1", _previous_year_report)]


def _json_ready(summary: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(summary, default=str))


def import_for_units(batch: BatchContext) -> dict[int, dict[str, Any]]:
    """The « import » phase of every unit of a run: one import, one summary per unit."""
    assert batch.options.aaf_source is not None
    whole = batch.options.whole_delivery
    result = batch.effects.import_aaf(
        list(batch.options.aaf_source),
        scope=None if whole else {ref.id for ref in batch.establishments},
        initialise=not whole, now=batch.now, progress=batch.options.progress)
    batch.options.import_result = result
    summaries = {summary["uai"]: summary for summary in result.establishments
                 if summary["uai"]}
    refused = {refusal["uai"]: refusal for refusal in result.step4_refused}
    files = [row["name"] for row in result.files]
    counts: dict[int, dict[str, Any]] = {}
    for ref in batch.establishments:
        summary = summaries.get(ref.uai)
        refusal = refused.get(ref.uai)
        if summary is None and refusal is None:
            # Not in the delivery at all: a delivery that does not cover it is not its step 4.
            refusal = step4_refusal(ref.uai, ref.name, files, absent=True)
            result.step4_refused.append(refusal)
        if refusal is not None:
            counts[ref.id] = {"uai": ref.uai, REFUSAL_KEY: refusal}
        else:
            counts[ref.id] = _json_ready(summary or {})
    result.step4_refused.sort(key=lambda refusal: refusal["uai"])
    return counts


def _import_refusal(connection: Any, establishment_id: int, year_id: int) -> dict[str, Any] | None:
    """The step-4 refusal the unit's « import » phase recorded, if any."""
    text = connection.scalar(select(StepUnit.checkpoint).where(
        StepUnit.establishment_id == establishment_id, StepUnit.school_year_id == year_id,
        StepUnit.step == STEP))
    phase = json.loads(text or "{}").get("phases", {}).get(IMPORT_PHASE) or {}
    refusal = phase.get(REFUSAL_KEY)
    return refusal if isinstance(refusal, dict) else None


def _previous_year_report(ctx: UnitContext) -> None:
    """Report the classes the initialisation import flagged as likely year N-1 classes.

    Raises:
        UnitBlocked: the import was not this establishment's « complet d'initialisation »
            (nothing was written for it): the unit is left « bloqué », its step 4 to do.
    """
    refusal = _import_refusal(ctx.connection, ctx.establishment_id, ctx.year_id)
    result = ctx.options.import_result
    if refusal is None and result is not None:  # a dry run keeps no checkpoint
        refusal = next((r for r in result.step4_refused if r["uai"] == ctx.uai), None)
    if refusal is not None:
        raise UnitBlocked(refusal["code"], f"{refusal['message']} {refusal['action']}",
                          {"uai": ctx.uai, REFUSAL_KEY: refusal})
    latest = ctx.connection.scalar(select(func.max(AafImport.id)).where(
        AafImport.mode == MODE_INIT))
    rows = ctx.connection.execute(select(AafReject.record_id, AafReject.message).where(
        AafReject.import_id == latest, AafReject.establishment_id == ctx.establishment_id,
        AafReject.code == PREVIOUS_YEAR_CODE).order_by(AafReject.record_id)).all() \
        if latest is not None else []
    ctx.effects.tally.add("classes N-1 probables", len(rows))
    ctx.effects.record("classes N-1 probables", [row[0] for row in rows])
    for code, message in rows:
        ctx.warn(f"Classe {code} : {message}", PREVIOUS_YEAR_CODE)


DEFINITION = StepDefinition(
    key=STEP, number=4, label=STEP.label, prerequisites=STEP_PREREQUISITES[STEP],
    guards=(directory_guard,), phases=init_directory_phases,
    dry_run="the AAF import run whole then rolled back: its summary per establishment "
            "(people created, updated, flagged; classes created; rejects by code)",
    count_labels=("created", "updated", "unchanged", "flagged_absent", "restored",
                  "classes_created"),
    batch_phase=IMPORT_PHASE, batch=import_for_units, prepare=resolve_delivery,
    input_errors=(DeliveryUnavailableError, AafFileError, GuardRefused))


@dataclass
class InitDirectoryReport:
    """What a step-4 run did, per establishment."""

    done: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    overridden: list[str] = field(default_factory=list)
    initial_loads: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    result: ImportResult | None = None
    counts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing failed or was refused."""
        return not self.refused and not self.failed

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {"step": STEP.value, "done": self.done, "already_done": self.already_done,
                "refused": self.refused, "failed": self.failed, "overridden": self.overridden,
                "initial_loads": self.initial_loads, "source": self.source,
                "import": self.result.to_dict() if self.result else None}


def directory_report(outcomes: Sequence[Any], options: RunOptions) -> InitDirectoryReport:
    """The step-4 report of the runner's outcomes (``UnitOutcome``) and options."""
    report = InitDirectoryReport(source=list(options.aaf_source or ()),
                                 result=options.import_result)
    for outcome in outcomes:
        uai = outcome.uai
        if "override" in outcome.notes:
            report.overridden.append(uai)
        if INITIAL_LOAD in outcome.notes:
            report.initial_loads.append(uai)
        if outcome.status in ("done", "dry-run"):
            report.done.append(uai)
            report.counts[uai] = outcome.counts
        elif outcome.status == "already-done":
            report.already_done.append(uai)
        elif outcome.status == "refused":
            report.refused[uai] = outcome.error
        else:
            report.failed[uai] = outcome.error
    return report


def establishments_due_for_step_4(session: Session) -> list[int]:
    """Establishments whose step 3 is done and step 4 is not: an import makes it step 4
    (none before the first import, which creates the current school year)."""
    try:
        year = current_school_year(session)
    except NoCurrentYearError:
        return []
    step_4 = aliased(StepUnit)
    step_4_done = exists().where(
        step_4.establishment_id == StepUnit.establishment_id,
        step_4.school_year_id == year.id, step_4.step == STEP,
        step_4.status == UnitStatus.DONE)
    return list(session.scalars(select(StepUnit.establishment_id).where(
        StepUnit.school_year_id == year.id, StepUnit.step == Step.DELETE_OBSOLETE,
        StepUnit.status == UnitStatus.DONE, ~step_4_done).order_by(StepUnit.establishment_id)))


def import_aaf_delivery(runner: Any, paths: Sequence[Path | str], *, dry_run: bool = False,
                        progress: Callable[[str], None] | None = None,
                        reimport: bool = False) -> ImportResult:
    """``yearchange import-aaf``: apply a whole delivery; for the establishments whose
    step 3 is done, the import is the « import » phase of their step-4 unit.

    Args:
        runner: the change-over runner (``ChangeoverRunner``).
        paths: the delivery (folder, archive or files).
        dry_run: do everything, report, then roll back (no unit is touched).
        progress: receives one French line per file read.
        reimport: import it even if the same delivery was already imported.

    Raises:
        AafFileError: the delivery is refused whole (nothing imported).
        GuardRefused: an establishment is between its steps 1 and 3 (nothing changed).
        AlreadyImportedError: the same delivery was already imported (nothing changed;
            an import that is step 4 for an establishment is never refused for that).
    """
    sources = [str(path) for path in paths]
    due: list[int] = []
    if not dry_run:
        with runner.database.session() as session:
            due = establishments_due_for_step_4(session)
            if due:
                # Refused before any unit starts, so a frozen establishment changes nothing.
                check_aaf_import_allowed(session, list(session.scalars(select(Establishment.id))),
                                         current_school_year(session).id)
    if not due:
        result = import_delivery(runner.database, sources, dry_run=dry_run,
                                 observer=runner.observer, progress=progress,
                                 now=runner.fixed_now, reimport=reimport)
    else:
        refs = [ref for ref in runner.establishments() if ref.id in set(due)]
        options = RunOptions(aaf_source=tuple(sources), whole_delivery=True,
                             progress=progress)
        outcomes = runner.run_units(STEP, refs, options=options)
        if options.import_result is None:
            errors = "; ".join(f"{o.uai} : {o.error}" for o in outcomes if o.error)
            raise RuntimeError(f"L'import AAF (étape 4) n'a pas abouti : {errors}")
        result = options.import_result
    if not dry_run:
        # People the delivery deactivated are told (seed §6.4), unless suspended.
        touched = {summary["uai"] for summary in result.establishments if summary["uai"]}
        result.deactivation_notices = [
            deactivation_line(outcome) for outcome in send_deactivation_notices(
                runner, [ref for ref in runner.establishments() if ref.uai in touched])
            if outcome.sent or outcome.suspended]
    return result
