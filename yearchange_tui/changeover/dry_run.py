"""Step 0, the dry run: steps replayed with the recorder, nothing changed but the report.

Every phase runs with :class:`~yearchange_tui.changeover.effects.RecordingEffects` in a
transaction that is rolled back; the report (exact counts, lists, warnings) is stored
with one audit entry per establishment and step, and compared with the real run later.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy import func, insert, select

from yearchange_tui.changeover.effects import RecordingEffects, Tally
from yearchange_tui.changeover.outcomes import UnitOutcome
from yearchange_tui.changeover.steps import step_definition
from yearchange_tui.changeover.steps.base import RunOptions, StepDefinition, UnitBlocked
from yearchange_tui.ent.csvfile import write_csv_text
from yearchange_tui.ent.database import Database
from yearchange_tui.ent.models import Establishment, SchoolYear
from yearchange_tui.workflow.access_block import unblocked_establishments
from yearchange_tui.workflow.audit import audit
from yearchange_tui.workflow.establishments import EstablishmentRef
from yearchange_tui.workflow.events import UnitFinished, UnitProgressed, UnitStarted
from yearchange_tui.workflow.models import DryRunReport, Step
from yearchange_tui.workflow.units import current_school_year

if TYPE_CHECKING:
    from yearchange_tui.changeover.runner import ChangeoverRunner


def dry_run_units(runner: ChangeoverRunner, establishments: list[EstablishmentRef],
                  steps: tuple[Step, ...],
                  options: RunOptions | None = None,
                  effects: type[RecordingEffects] = RecordingEffects) -> list[UnitOutcome]:
    """Simulate ``steps`` for each establishment; store and return the reports.

    Every phase runs with the recorder (:class:`RecordingEffects`) in a transaction
    that is rolled back: nothing is changed in the ENT data, the storage or the
    messaging; only the dry-run reports and one audit entry per establishment and
    step are written (nothing at all on a read-only database connection). Archives are
    measured, not built (:class:`RecordingEffects`); ``effects`` is for the bench's
    reference, the former full build.
    """
    options = options or RunOptions()
    outcomes: list[UnitOutcome] = []
    with runner.database.session() as session:
        year, obsolete = runner.school_years(session)
        session.expunge(year)
        # Before step 4, a project without block dates blocks nobody (seed §6.4).
        unblocked = unblocked_establishments(session, year.start_year,
                                             [e.uai for e in establishments])
    for step in steps:
        definition = step_definition(step)
        if definition.prepare is not None:
            definition.prepare(runner.database, options)
    for establishment in establishments:
        for step in steps:
            outcome = _dry_run_unit(runner, step_definition(step), establishment, year,
                                    obsolete, options,
                                    unblocked.get(establishment.uai) if step is steps[-1]
                                    else None, effects)
            outcomes.append(outcome)
    return outcomes

def _dry_run_unit(runner: ChangeoverRunner, definition: StepDefinition, establishment: EstablishmentRef,
                  year: SchoolYear, obsolete: list[int],
                  options: RunOptions, extra_warning: str | None = None,
                  effects_class: type[RecordingEffects] = RecordingEffects) -> UnitOutcome:
    step = definition.key
    assert step is not None and definition.phases is not None
    runner.observer.notify(UnitStarted(establishment.uai, step.value, 0, dry_run=True))
    tally = Tally()
    effects = effects_class(runner.storage_root, tally, runner.database)
    with runner.database.engine.connect() as connection, effects.archive_members():
        transaction = connection.begin()
        try:
            ctx = runner.unit_context(connection, effects, establishment, year, obsolete, options)
            phases = definition.phases(ctx)
            for index, (name, run) in enumerate(phases, start=1):
                if name == definition.batch_phase and definition.batch is not None:
                    batch = runner.batch_context(effects, [establishment], year, options)
                    for key, value in definition.batch(batch)[establishment.id].items():
                        if isinstance(value, int) and not isinstance(value, bool):
                            tally.add(key, value)
                        else:
                            tally.detail(key, value)
                else:
                    try:
                        run(ctx)
                    except UnitBlocked as blocked:
                        # The real run would stop here, « bloqué »: the report says why.
                        ctx.warn(blocked.message, blocked.code.upper() or "BLOQUE")
                        for key, value in blocked.counts.items():
                            tally.detail(key, value)
                        break
                runner.observer.notify(UnitProgressed(
                    establishment.uai, step.value, index, len(phases), dry_run=True))
            if extra_warning:
                ctx.warn(extra_warning)
        finally:
            transaction.rollback()
    counts, lists = tally.as_dicts()
    outcome = UnitOutcome(establishment.uai, step, "dry-run", counts, lists, ctx.warnings,
                          warning_codes=list(ctx.warning_codes))
    warnings = tuple(zip(ctx.warning_codes, ctx.warnings, strict=True))
    finished = UnitFinished(establishment.uai, step.value, counts, dry_run=True,
                            warnings=warnings)
    if runner.database.read_only:  # a read-only connection: the report is shown, not stored
        runner.observer.notify(finished)
        return outcome
    with runner.database.session() as session:
        session.execute(insert(DryRunReport).values(
            establishment_id=establishment.id, school_year_id=year.id, step=step,
            created_at=runner.now(), counts=json.dumps(counts, ensure_ascii=False),
            lists=json.dumps(lists, ensure_ascii=False),
            warnings=json.dumps([{"code": code, "message": message}
                                 for code, message in warnings], ensure_ascii=False)))
        audit(session, "dry-run", "done", establishment_id=establishment.id,
              step=step.value, details={"counts": counts, "warnings": len(ctx.warnings)})
    runner.observer.notify(finished)
    return outcome


# -- the académie-wide report ---------------------------------------------------------------

REPORT_COLUMNS = ("UAI", "Établissement", "Étape", "Code", "Message", "Passage à blanc du")


@dataclass(frozen=True)
class DryRunWarning:
    """One warning of the newest dry run of one establishment and step."""

    uai: str
    name: str
    step: Step
    code: str
    message: str
    made_at: dt.datetime

    @property
    def step_text(self) -> str:
        """« 2 Archivage de fin d'année N »."""
        return f"{self.step.number} {self.step.label}"

    def matches(self, text: str) -> bool:
        """True when ``text`` (any case) is in the UAI, name, step, code or message."""
        wanted = text.casefold()
        where = f"{self.uai} {self.name} {self.step_text} {self.code} {self.message}"
        return wanted in where.casefold()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (snake_case keys, ISO 8601 time)."""
        return {"uai": self.uai, "establishment": self.name, "step": self.step.value,
                "step_number": self.step.number, "step_label": self.step.label,
                "code": self.code, "message": self.message,
                "dry_run_at": self.made_at.isoformat()}


def stored_warnings(text: str | None) -> list[tuple[str, str]]:
    """The (code, message) warnings of a stored report (older reports hold bare messages)."""
    try:
        items = json.loads(text) if text else []
    except ValueError:
        return []
    warnings = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            warnings.append((str(item.get("code") or "AVERTISSEMENT"), str(item.get("message"))))
        else:
            warnings.append(("AVERTISSEMENT", str(item)))
    return warnings


def dry_run_warnings(database: Database, *, uais: Sequence[str] = (),
                     codes: Sequence[str] = (), text: str = "") -> Iterator[DryRunWarning]:
    """Every warning of the newest dry run of each (establishment, step) of the current
    change-over, across the académie, by UAI then step; filtered by UAI, code and text.

    One query (the newest report per unit found by the database), streamed.

    Raises:
        NoCurrentYearError: no change-over yet (raised here, before any row is read).
    """
    with database.session() as session:
        year_id = current_school_year(session).id
    return _warnings(database, year_id, uais, codes, text)


def _warnings(database: Database, year_id: int, uais: Sequence[str], codes: Sequence[str],
              text: str) -> Iterator[DryRunWarning]:
    wanted_codes = {code.strip().upper() for code in codes if code.strip()}
    with database.session() as session:
        newest = (select(DryRunReport.establishment_id, DryRunReport.step,
                         func.max(DryRunReport.created_at).label("made_at"))
                  .where(DryRunReport.school_year_id == year_id)
                  .group_by(DryRunReport.establishment_id, DryRunReport.step).subquery())
        query = (select(Establishment.uai, Establishment.name, DryRunReport.step,
                        DryRunReport.created_at, DryRunReport.warnings)
                 .join(newest, (newest.c.establishment_id == DryRunReport.establishment_id)
                       & (newest.c.step == DryRunReport.step)
                       & (newest.c.made_at == DryRunReport.created_at))
                 .join(Establishment, Establishment.id == DryRunReport.establishment_id)
                 .where(DryRunReport.school_year_id == year_id,
                        DryRunReport.warnings != "[]")
                 .order_by(Establishment.uai, DryRunReport.step, DryRunReport.id))
        if uais:
            query = query.where(Establishment.uai.in_([uai.upper() for uai in uais]))
        rows = session.execute(query.execution_options(yield_per=500))
        # Streamed by establishment; its few steps are put in step order.
        for uai, group in groupby(rows, key=lambda row: row[0]):
            seen: set[Step] = set()
            for _uai, name, step_value, made_at, text_warnings in sorted(
                    group, key=lambda row: Step(row[2]).number):
                step = Step(step_value)
                if step in seen:  # two reports at the very same instant: the first
                    continue
                seen.add(step)
                if made_at.tzinfo is None:
                    made_at = made_at.replace(tzinfo=dt.UTC)
                for code, message in stored_warnings(text_warnings):
                    warning = DryRunWarning(uai, name, step, code, message, made_at)
                    if wanted_codes and code.upper() not in wanted_codes:
                        continue
                    if text and not warning.matches(text):
                        continue
                    yield warning


def write_warnings_csv(warnings: Iterable[DryRunWarning], stream: TextIO) -> int:
    """Write the report as CSV for a spreadsheet (UTF-8 with BOM, « ; », CRLF, formulas
    neutralised: :mod:`yearchange_tui.ent.csvfile`).

    Args:
        warnings: the rows.
        stream: a text stream opened with ``newline=""`` (the writer ends lines in CRLF).

    Returns:
        The number of warnings written.
    """
    return write_csv_text(stream, REPORT_COLUMNS, (
        (warning.uai, warning.name, warning.step_text, warning.code, warning.message,
         f"{warning.made_at:%Y-%m-%d %H:%M}") for warning in warnings))
