"""Step 4, "Initialisation de l'annuaire N+1", as resumable units of work.

:func:`run_init_directory` is what ``yearchange run init-directory`` calls: for
each establishment it checks the step-order guard (step 3 done; an initial load
into an establishment with no people yet is allowed), marks the unit running,
then applies the AAF "complet d'initialisation" to the establishments allowed in
one transaction (:func:`yearchange_tui.aaf.importer.import_delivery` with
``step4=True``). A unit already done is left alone (running it again is a
no-op); a failed or killed run leaves the database as it was, and running it
again gives the same end state.

Runs on the caller's thread (CLI main thread or a scheduler thread); events go
to the observer.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from yearchange_tui.aaf.delivery import open_delivery
from yearchange_tui.aaf.importer import ImportResult, import_delivery
from yearchange_tui.aaf.parser import AafFileError
from yearchange_tui.ent.database import Database
from yearchange_tui.ent.models import Establishment, Person
from yearchange_tui.importing.models import AafImport, AafImportFile
from yearchange_tui.workflow.audit import audit
from yearchange_tui.workflow.events import NullObserver, Observer, UnitFailed, UnitFinished
from yearchange_tui.workflow.guards import GuardRefused, check_step_order
from yearchange_tui.workflow.models import Step, UnitStatus
from yearchange_tui.workflow.units import (
    begin_unit,
    current_school_year,
    fail_unit,
    finish_unit,
    get_unit,
)

STEP = Step.INIT_DIRECTORY


class DeliveryUnavailableError(Exception):
    """No AAF delivery to initialise from, or it changed since it was imported (French)."""


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


def run_init_directory(database: Database, establishment_ids: Sequence[int],
                       observer: Observer | None = None, *,
                       source: Sequence[Path | str] | None = None, dry_run: bool = False,
                       now: dt.datetime | None = None) -> InitDirectoryReport:
    """Run step 4 for these establishments.

    Args:
        database: the open database.
        establishment_ids: the establishments to initialise.
        observer: receives ``UnitStarted``/``UnitProgressed``/``UnitFinished``/``UnitFailed``.
        source: the AAF delivery (folder, archive or files); by default the newest
            delivery imported with ``import-aaf``, if its files did not change.
        dry_run: run everything and roll back: nothing changes, the report says
            what the real run would do.
        now: the time recorded (tests).

    Returns:
        The report; ``ok`` is False when an establishment was refused or failed.

    Raises:
        DeliveryUnavailableError: no usable delivery.
        AafFileError: the delivery is refused whole (nothing changed).
    """
    observer = observer or NullObserver()
    report = InitDirectoryReport()
    if source is None:
        paths, checksums = latest_delivery(database)
        _check_unchanged(paths, checksums)
    else:
        paths = [str(path) for path in source]
    report.source = [str(path) for path in paths]
    allowed: set[int] = set()
    with database.session() as session:
        year = current_school_year(session)
        for establishment_id in establishment_ids:
            establishment = session.get(Establishment, establishment_id)
            if establishment is None:
                report.refused[str(establishment_id)] = "établissement inconnu"
                continue
            uai = establishment.uai
            unit = get_unit(session, establishment_id, year.id, STEP, create=not dry_run)
            if unit is not None and unit.status is UnitStatus.DONE:
                report.already_done.append(uai)
                continue
            has_people = session.scalar(select(Person.id).where(
                Person.establishment_id == establishment_id).limit(1)) is not None
            try:
                if has_people:
                    if check_step_order(session, establishment_id, year.id, STEP):
                        report.overridden.append(uai)
                else:
                    report.initial_loads.append(uai)
            except GuardRefused as refusal:
                report.refused[uai] = refusal.message
                observer.notify(UnitFailed(uai, STEP.value, refusal.message, refused=True,
                                           dry_run=dry_run))
                if not dry_run:
                    audit(session, "run", "refused", establishment_id=establishment_id,
                          step=STEP.value, details={"guard": refusal.code,
                                                    "message": refusal.message})
                continue
            allowed.add(establishment_id)
            if not dry_run and unit is not None:
                begin_unit(unit)
    if not allowed:
        return report
    try:
        result = import_delivery(database, paths, scope=allowed, step4=True, dry_run=dry_run,
                                 observer=observer, now=now)
    except BaseException as error:
        message = str(error)
        if not dry_run:
            with database.session() as session:
                year = current_school_year(session)
                for establishment_id in allowed:
                    unit = get_unit(session, establishment_id, year.id, STEP)
                    assert unit is not None
                    fail_unit(unit, message)
                    audit(session, "run", "failed", establishment_id=establishment_id,
                          step=STEP.value, details={"error": message})
        raise
    report.result = result
    uais = {summary["uai"]: summary for summary in result.establishments if summary["uai"]}
    with database.session() as session:
        for establishment_id in sorted(allowed):
            establishment = session.get(Establishment, establishment_id)
            assert establishment is not None
            summary = uais.get(establishment.uai)
            report.done.append(establishment.uai)
            if summary is None:
                # In scope but absent from the delivery: initialised with nothing.
                observer.notify(UnitFinished(establishment.uai, STEP.value, {}, dry_run=dry_run))
                if not dry_run:
                    unit = get_unit(session, establishment_id, current_school_year(session).id,
                                    STEP)
                    assert unit is not None
                    finish_unit(unit, {"uai": establishment.uai, "absent_from_delivery": True})
            if not dry_run:
                audit(session, "run", "done", establishment_id=establishment_id,
                      step=STEP.value, override=establishment.uai in report.overridden,
                      details=json.loads(json.dumps(summary or {}, default=str)))
    return report
