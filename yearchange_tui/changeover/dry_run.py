"""Step 0, the dry run: steps replayed with the recorder, nothing changed but the report.

Every phase runs with :class:`~yearchange_tui.changeover.effects.RecordingEffects` in a
transaction that is rolled back; the report (exact counts, lists, warnings) is stored
with one audit entry per establishment and step, and compared with the real run later.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sqlalchemy import insert

from yearchange_tui.changeover.effects import RecordingEffects, Tally
from yearchange_tui.changeover.outcomes import UnitOutcome
from yearchange_tui.changeover.steps import step_definition
from yearchange_tui.changeover.steps.base import RunOptions, StepDefinition, UnitBlocked
from yearchange_tui.ent.models import SchoolYear
from yearchange_tui.workflow.access_block import unblocked_establishments
from yearchange_tui.workflow.audit import audit
from yearchange_tui.workflow.establishments import EstablishmentRef
from yearchange_tui.workflow.events import UnitFinished, UnitProgressed, UnitStarted
from yearchange_tui.workflow.models import DryRunReport, Step

if TYPE_CHECKING:
    from yearchange_tui.changeover.runner import ChangeoverRunner


def dry_run_units(runner: ChangeoverRunner, establishments: list[EstablishmentRef],
                  steps: tuple[Step, ...],
                  options: RunOptions | None = None) -> list[UnitOutcome]:
    """Simulate ``steps`` for each establishment; store and return the reports.

    Every phase runs with the recorder (:class:`RecordingEffects`) in a transaction
    that is rolled back: nothing is changed in the ENT data, the storage or the
    messaging; only the dry-run reports and one audit entry per establishment and
    step are written (nothing at all on a read-only database connection).
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
                                    else None)
            outcomes.append(outcome)
    return outcomes

def _dry_run_unit(runner: ChangeoverRunner, definition: StepDefinition, establishment: EstablishmentRef,
                  year: SchoolYear, obsolete: list[int],
                  options: RunOptions, extra_warning: str | None = None) -> UnitOutcome:
    step = definition.key
    assert step is not None and definition.phases is not None
    runner.observer.notify(UnitStarted(establishment.uai, step.value, 0, dry_run=True))
    tally = Tally()
    effects = RecordingEffects(runner.storage_root, tally, runner.database)
    with runner.database.engine.connect() as connection:
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
                        ctx.warn(blocked.message)
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
    outcome = UnitOutcome(establishment.uai, step, "dry-run", counts, lists, ctx.warnings)
    if runner.database.read_only:  # a read-only connection: the report is shown, not stored
        runner.observer.notify(UnitFinished(establishment.uai, step.value, counts,
                                          dry_run=True))
        return outcome
    with runner.database.session() as session:
        session.execute(insert(DryRunReport).values(
            establishment_id=establishment.id, school_year_id=year.id, step=step,
            created_at=runner.now(), counts=json.dumps(counts, ensure_ascii=False),
            lists=json.dumps(lists, ensure_ascii=False),
            warnings=json.dumps(ctx.warnings, ensure_ascii=False)))
        audit(session, "dry-run", "done", establishment_id=establishment.id,
              step=step.value, details={"counts": counts, "warnings": len(ctx.warnings)})
    runner.observer.notify(UnitFinished(establishment.uai, step.value, counts, dry_run=True))
    return outcome
