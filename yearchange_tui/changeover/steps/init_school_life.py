"""Step 5, « Initialisation de la vie scolaire N+1 » (seed §6.5), as a resumable unit.

Two phases: « valeurs par défaut » fills periods and opening dates from the project
calendar where the establishment has set none (never overwrites) — only where the project
chose « valeurs par défaut » for the establishment and never on a unit that stays
« bloqué » for something else (step 5 is the establishments' step) —, then « contrôle »
checks what is still missing (:func:`~yearchange_tui.timetable.school_life.missing_items`).
The unit is **done when nothing blocking is missing**, else left « bloqué » with the
list; running it again later re-checks. The domain (proposals, the check) lives in
:mod:`yearchange_tui.timetable.school_life`, which the console's wizard also uses.

Runs on the caller's thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from yearchange_tui.changeover.steps.base import (
    Phase,
    RunOptions,
    StepDefinition,
    UnitBlocked,
    UnitContext,
)
from yearchange_tui.ent.database import Database
from yearchange_tui.timetable.school_life import (
    MissingItem,
    current_and_next_years,
    defaults_refusal,
    existing_counts,
    missing_items,
)
from yearchange_tui.workflow.events import Observer
from yearchange_tui.workflow.models import STEP_PREREQUISITES, Step

STEP = Step.INIT_SCHOOL_LIFE
INCOMPLETE = "vie-scolaire-incomplete"


def init_school_life_phases(ctx: UnitContext) -> list[Phase]:
    """Step 5: the defaults, then the check."""
    return [("valeurs par défaut", _defaults), ("contrôle", _check)]


def _fill(ctx: UnitContext) -> dict[str, int]:
    """Default periods and dates, only where the project chose « valeurs par défaut » for
    the establishment and nothing else keeps the unit « bloqué »
    (:func:`~yearchange_tui.timetable.school_life.defaults_refusal`); never overwrites."""
    if not ctx.options.apply_defaults:
        return {}
    with Session(bind=ctx.connection) as session:
        refusal = defaults_refusal(session, ctx.establishment_id)
    if refusal:
        ctx.effects.tally.detail("valeurs par défaut", refusal)
        return {}
    return ctx.effects.fill_school_life_defaults(ctx.connection, ctx.establishment_id)


def _defaults(ctx: UnitContext) -> None:
    ctx.effects.tally.detail("written", _fill(ctx))


def missing_text(items: Sequence[MissingItem]) -> str:
    """The French reason a step-5 unit stays « bloqué »."""
    return "vie scolaire incomplète : " + " ; ".join(
        f"{item.label} ({item.detail})" for item in items if item.blocking)


def _check(ctx: UnitContext) -> None:
    # A unit left « bloqué » resumes here: what kept the defaults out may be resolved now
    # (not again when the first phase ran in this very run, e.g. a dry run).
    if "written" not in ctx.effects.tally.details:
        written = _fill(ctx)
        if any(written.values()):
            ctx.effects.tally.detail("written", written)
    with Session(bind=ctx.connection) as session:
        items = missing_items(session, ctx.establishment_id)
        _year_n, year_next = current_and_next_years(session)
        existing = existing_counts(session, ctx.establishment_id,
                                   year_next.id) if year_next else {}
    details = {"uai": ctx.uai, "existing": existing, "missing": [item.code for item in items],
               "missing_items": [item.to_dict() for item in items]}
    if any(item.blocking for item in items):
        raise UnitBlocked(INCOMPLETE, missing_text(items), details)
    for key, value in details.items():
        ctx.effects.tally.detail(key, value)


DEFINITION = StepDefinition(
    key=STEP, number=5, label=STEP.label, prerequisites=STEP_PREREQUISITES[STEP],
    phases=init_school_life_phases,
    dry_run="the defaults counted (periods and dates that would be written) and the check "
            "made; nothing written",
    count_labels=("periodes", "dates_ouverture"))


@dataclass
class InitSchoolLifeReport:
    """What a step-5 run did, per establishment (UAI)."""

    done: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # guard refusals and missing items
    failed: dict[str, str] = field(default_factory=dict)
    overridden: list[str] = field(default_factory=list)
    written: dict[str, dict[str, int]] = field(default_factory=dict)
    missing: dict[str, list[MissingItem]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every establishment is done."""
        return not self.refused and not self.failed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"step": STEP.value, "done": self.done, "already_done": self.already_done,
                "refused": self.refused, "failed": self.failed, "overridden": self.overridden,
                "written": self.written,
                "missing": {uai: [item.to_dict() for item in items]
                            for uai, items in self.missing.items()}}


def school_life_report(outcomes: Sequence[Any]) -> InitSchoolLifeReport:
    """The step-5 report of the runner's outcomes (``UnitOutcome``)."""
    report = InitSchoolLifeReport()
    for outcome in outcomes:
        uai = outcome.uai
        if "override" in outcome.notes:
            report.overridden.append(uai)
        if "written" in outcome.counts:
            report.written[uai] = dict(outcome.counts["written"])
        if "missing_items" in outcome.counts:
            report.missing[uai] = [MissingItem(**item)
                                   for item in outcome.counts["missing_items"]]
        if outcome.status == "done":
            report.done.append(uai)
        elif outcome.status == "already-done":
            report.already_done.append(uai)
        elif outcome.status == "refused":
            report.refused[uai] = outcome.error
        else:
            report.failed[uai] = outcome.error
    return report


def run_init_school_life(database: Database, establishment_ids: Sequence[int],
                         observer: Observer | None = None, *, apply_defaults: bool = True
                         ) -> InitSchoolLifeReport:
    """Run step 5 for these establishments through the runner's one lifecycle.

    Args:
        database: the open database.
        establishment_ids: the establishments.
        observer: receives the unit events.
        apply_defaults: fill periods and opening dates from the project calendar where
            the establishment has set none (never overwrites).

    Returns:
        The report; an establishment with blocking items missing is in ``refused``
        (its unit stays « bloqué » with the list) and ``ok`` is False.
    """
    # The runner sits above the step modules that it registers.
    from yearchange_tui.changeover.runner import ChangeoverRunner

    # Step 5 writes no file: the storage root is never used.
    runner = ChangeoverRunner(database, Path(), observer=observer)
    by_id = {ref.id: ref for ref in runner.establishments()}
    refs = [by_id[establishment_id] for establishment_id in establishment_ids
            if establishment_id in by_id]
    outcomes = runner.run_units(STEP, refs, options=RunOptions(apply_defaults=apply_defaults))
    report = school_life_report(outcomes)
    for establishment_id in establishment_ids:
        if establishment_id not in by_id:
            report.failed[str(establishment_id)] = "établissement inconnu"
    return report
