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
from yearchange_tui.changeover.dry_run import DryRunWarning, dry_run_warnings, stored_warnings
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
from yearchange_tui.workflow.calendar import as_utc
from yearchange_tui.workflow.establishments import UnknownEstablishmentError, establishment_by_uai
from yearchange_tui.workflow.models import ArchiveManifest, DryRunReport, Step, StepUnit
from yearchange_tui.workflow.units import (
    NoCurrentYearError,
    current_school_year,
    following_school_year,
)

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


# French labels of the counts a step records under a stable key (step 4's import
# summary, step 5's check); counts already recorded in French keep their label.
COUNT_LABELS = {
    "created": "personnes créées", "updated": "personnes mises à jour",
    "unchanged": "personnes inchangées", "restored": "personnes rétablies",
    "flagged_absent": "personnes signalées absentes", "refused": "enregistrements refusés",
    "classes_created": "classes créées", "groups_created": "groupes créés",
    "rubrics_created": "rubriques créées", "rejects": "rejets",
    "guard_override": "dérogation à la garde", "establishment_created": "établissement créé",
    "absent_from_delivery": "absent de la livraison", "written": "valeurs écrites",
    "existing": "déjà présent", "missing": "manquant", "periodes": "périodes",
    "dates_ouverture": "dates d'ouverture", "alternances": "alternances",
    "services": "services", "cours": "cours", "classes": "classes",
    "professeurs_principaux": "professeurs principaux",
    "imports_emploi_du_temps": "imports d'emploi du temps",
}
# Keys that name the unit rather than count anything (shown in the title already), and
# structured copies of what another key already says.
HIDDEN_COUNT_KEYS = frozenset({"uai", "name", "mode", "school_year", "missing_items"})


def count_label(key: str) -> str:
    """The French label of a count key (« classes_created » → « classes créées »)."""
    return COUNT_LABELS.get(key, key.replace("_", " "))


def _count_value(value: Any) -> int | str:
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return f"{value:g}".replace(".", ",")
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) or "aucun"
    return str(value)


def readable_counts(counts: dict[str, Any]) -> dict[str, int | str]:
    """A unit's counts as French labels and short values: nested summaries become one
    line per entry (« rejets · AAF-INE-PARTAGE »), booleans « oui »/« non », lists a
    comma-separated line; the keys that only name the unit are left out."""
    readable: dict[str, int | str] = {}
    for key, value in counts.items():
        if key in HIDDEN_COUNT_KEYS:
            continue
        label = count_label(key)
        if isinstance(value, dict):
            if not value:
                readable[label] = 0 if key in ("rejects", "written") else "aucun"
            for sub_key, sub_value in value.items():
                readable[f"{label} · {count_label(str(sub_key))}"] = _count_value(sub_value)
        else:
            readable[label] = _count_value(value)
    return readable


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
    # Dry runs of this step made after its real run started: kept as history, never
    # compared with the real counts (the comparison is with the last one before).
    later_dry_runs: int = 0
    later_dry_run_at: dt.datetime | None = None


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


def compared_dry_run(reports: list[Any], started_at: dt.datetime | None
                     ) -> tuple[Any | None, list[Any]]:
    """The dry run the real run of a step is compared with, and the later ones.

    The comparison is with the last dry run made before the real run started (the one
    the runner compared with); a dry run made after it is history, never a replacement.
    Before any real run, the newest dry run is the one shown.

    Args:
        reports: the step's dry-run reports (anything with ``created_at``), oldest first.
        started_at: when the real run of the step started, or None.
    """
    if started_at is None:
        return (reports[-1] if reports else None), []
    start = as_utc(started_at)
    before = [report for report in reports if as_utc(report.created_at) <= start]
    after = [report for report in reports if as_utc(report.created_at) > start]
    return (before[-1] if before else None), after


class DatabaseDetailSource:
    """Detail read from the engine's tables.

    Args:
        database: the open database.
        rejects: the rejects source (for the establishment's rejects).
    """

    def __init__(self, database: Any, rejects: RejectsSource) -> None:
        self.database = database
        self.rejects = rejects

    def dry_run_warnings(self) -> list[DryRunWarning]:
        """Every warning of the newest dry runs, across the académie (the report screen);
        none before the first change-over."""
        try:
            return list(dry_run_warnings(self.database))
        except NoCurrentYearError:
            return []

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
            history: dict[Step, list[DryRunReport]] = {}
            for report in session.scalars(select(DryRunReport).where(
                    DryRunReport.establishment_id == establishment.id,
                    DryRunReport.school_year_id == year.id).order_by(
                        DryRunReport.created_at, DryRunReport.id)):
                history.setdefault(report.step, []).append(report)
            steps = []
            tasks = latest_tasks(session, year.id, establishment.id)
            for step in Step:
                unit = units.get(step)
                report, later = compared_dry_run(history.get(step, []),
                                                 unit.started_at if unit else None)
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
                    warnings=tuple(message for _code, message in stored_warnings(
                        report.warnings if report else "")),
                    later_dry_runs=len(later),
                    later_dry_run_at=later[-1].created_at if later else None))
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
