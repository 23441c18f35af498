"""What the establishment detail screen shows, read from the database.

Per-step history (dry-run counts beside real counts), archives with their checksums,
rejects, likely year N-1 classes after step 4, and the access block.

Runs on a worker thread of the console; nothing here touches a widget.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select

from yearchange_tui.aaf.classes_n1 import likely_previous_year_classes
from yearchange_tui.ent.models import Establishment, Project
from yearchange_tui.french import plural
from yearchange_tui.scheduling.client import latest_tasks, unit_state
from yearchange_tui.tui.rejects_source import (
    SEVERITY_ORDER,
    RejectQuery,
    RejectRow,
    RejectsSource,
)
from yearchange_tui.workflow.access_block import effective_window
from yearchange_tui.workflow.establishments import UnknownEstablishmentError, establishment_by_uai
from yearchange_tui.workflow.models import ArchiveManifest, DryRunReport, Step, StepUnit
from yearchange_tui.workflow.units import current_school_year, following_school_year

# « dates de/du … » for each level a planned date comes from (workflow.calendar.SOURCES).
DATES_FROM = {"établissement": "dates de l'établissement",
              "projet et type": "dates du projet pour ce type d'établissement",
              "type": "dates du type d'établissement",
              "projet": "dates du projet",
              "tous les projets": "dates communes à tous les projets",
              "modèle": "dates du modèle"}


def dates_from(source: str) -> str:
    """French phrase naming where a window's dates come from (« dates de l'établissement »).

    Args:
        source: a level of ``yearchange_tui.workflow.calendar.SOURCES``, possibly
            followed by a precision in parentheses (« modèle (lendemain de la fermeture) »).
    """
    level, _, precision = source.partition(" (")
    phrase = DATES_FROM.get(level, f"dates : {level}")
    return f"{phrase} ({precision}" if precision else phrase


@dataclass(frozen=True)
class StepHistory:
    """One step of one establishment: state, times, counts of the dry run and the real run."""

    key: str
    label: str
    status: str
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    attempts: int = 0
    error: str = ""
    real_counts: dict[str, int] = field(default_factory=dict)
    dry_run_counts: dict[str, int] = field(default_factory=dict)
    dry_run_at: dt.datetime | None = None
    warnings: tuple[str, ...] = ()
    queue: str = ""  # a QueueState value when the unit waits in the engine's queue


@dataclass(frozen=True)
class ArchiveInfo:
    """One archive written by step 2."""

    key: str
    kind: str
    path: str
    size: int
    sha256: str
    entries: int


@dataclass(frozen=True)
class EstablishmentDetail:
    """Everything the detail screen shows about one establishment."""

    uai: str
    name: str
    kind: str
    project: str
    closing_date: dt.date | None = None
    steps: tuple[StepHistory, ...] = ()
    archives: tuple[ArchiveInfo, ...] = ()
    reject_counts: dict[str, int] = field(default_factory=dict)
    rejects: tuple[RejectRow, ...] = ()
    previous_year_classes: tuple[str, ...] = ()
    access_block: str = ""
    notes: tuple[str, ...] = ()


class DetailSource(Protocol):
    """Reads the detail of one establishment."""

    def detail(self, uai: str) -> EstablishmentDetail | None:
        """The detail, or None for an unknown UAI."""


def _json(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


class DatabaseDetailSource:
    """Detail read from the engine's tables.

    Args:
        database: the open database.
        rejects: the rejects source (for the establishment's rejects).
    """

    def __init__(self, database: Any, rejects: RejectsSource) -> None:
        self.database = database
        self.rejects = rejects

    def detail(self, uai: str) -> EstablishmentDetail | None:
        """Read one establishment's detail (a few small queries)."""

        notes: list[str] = []
        with self.database.session() as session:
            try:
                establishment = session.get(Establishment,
                                            establishment_by_uai(session, uai).id)
            except UnknownEstablishmentError:
                return None
            assert establishment is not None
            project = session.get(Project, establishment.project_id)
            year = current_school_year(session)
            units = {unit.step: unit for unit in session.scalars(select(StepUnit).where(
                StepUnit.establishment_id == establishment.id,
                StepUnit.school_year_id == year.id))}
            reports: dict[Step, DryRunReport] = {}
            for report in session.scalars(select(DryRunReport).where(
                    DryRunReport.establishment_id == establishment.id,
                    DryRunReport.school_year_id == year.id).order_by(DryRunReport.created_at)):
                reports[report.step] = report
            steps = []
            tasks = latest_tasks(session, year.id, establishment.id)
            for step in Step:
                unit = units.get(step)
                report = reports.get(step)
                status, queue, error = unit_state(unit, tasks.get((establishment.id, step.value)))
                steps.append(StepHistory(
                    key=step.value, label=f"{step.number} {step.label}",
                    status=status.value, queue=queue.value if queue is not None else "",
                    started_at=unit.started_at if unit else None,
                    finished_at=unit.finished_at if unit else None,
                    attempts=unit.attempts if unit else 0,
                    error=error,
                    real_counts=_json(unit.counts if unit else "", {}),
                    dry_run_counts=_json(report.counts if report else "", {}),
                    dry_run_at=report.created_at if report else None,
                    warnings=tuple(_json(report.warnings if report else "", []))))
            archives = tuple(ArchiveInfo(m.archive_key, m.kind, m.relative_path, m.size,
                                         m.sha256, m.entry_count)
                             for m in session.scalars(select(ArchiveManifest).where(
                                 ArchiveManifest.establishment_id == establishment.id,
                                 ArchiveManifest.school_year_id == year.id)
                                 .order_by(ArchiveManifest.archive_key)))
            access = "Aucun blocage prévu par le projet."
            previous: tuple[str, ...] = ()
            window = effective_window(session, establishment, year.start_year) if project else None
            if window is not None:
                access = (f"Du {window.starts_on:%d/%m/%Y} au {window.ends_on:%d/%m/%Y} "
                          f"({dates_from(window.source)}).")
            following = following_school_year(session, year)
            if following is not None:
                findings = likely_previous_year_classes(
                    session.connection(), establishment.id, following.id, year.id)
                previous = tuple(f"{item.code} ({plural(item.students, 'élève')}) : {item.reason}"
                                 for item in findings)
            detail_kind = getattr(establishment.kind, "value", str(establishment.kind))
            name, closing = establishment.name, establishment.closing_date
            project_code = project.code if project else ""
        page = self.rejects.query(RejectQuery(uai=uai, limit=20))
        counts = {severity: page.by_severity[severity] for severity in SEVERITY_ORDER
                  if page.by_severity.get(severity)}
        if not self.rejects.available:
            notes.append(self.rejects.note)
        return EstablishmentDetail(uai=uai, name=name, kind=detail_kind, project=project_code,
                                   closing_date=closing, steps=tuple(steps), archives=archives,
                                   reject_counts=counts, rejects=tuple(page.rows),
                                   previous_year_classes=previous, access_block=access,
                                   notes=tuple(notes))
