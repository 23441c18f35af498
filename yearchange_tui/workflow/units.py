"""Resumable units of work: one row per (establishment, school year N, step).

A unit records the phases it has committed in its checkpoint; a resumed run skips
them. Running a unit that is done is a no-op. The change-over runner
(:mod:`yearchange_tui.changeover.runner`) is the one lifecycle that uses these helpers.
"""

from __future__ import annotations

import enum
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yearchange_tui.ent.base import utcnow
from yearchange_tui.ent.models import SchoolYear
from yearchange_tui.ent.school_year import school_year_bounds, school_year_label
from yearchange_tui.workflow.models import Step, StepUnit, UnitStatus


class NoCurrentYearError(Exception):
    """The database has no current school year (French message)."""


def current_school_year(session: Session) -> SchoolYear:
    """School year N: the one marked current.

    Raises:
        NoCurrentYearError: when no school year is current.
    """
    year = session.scalar(select(SchoolYear).where(SchoolYear.is_current.is_(True)))
    if year is None:
        raise NoCurrentYearError("Aucune année scolaire courante dans la base.")
    return year


def following_school_year(session: Session, year: SchoolYear) -> SchoolYear | None:
    """The school year after ``year``, when it exists (step 4 creates N+1)."""
    return session.scalar(select(SchoolYear).where(SchoolYear.start_year == year.start_year + 1))


def next_school_year(session: Session, year: SchoolYear) -> SchoolYear:
    """School year N+1, created when missing."""
    following = following_school_year(session, year)
    if following is None:
        start = year.start_year + 1
        starts_on, ends_on = school_year_bounds(start)
        following = SchoolYear(start_year=start, label=school_year_label(start),
                               starts_on=starts_on, ends_on=ends_on, is_current=False)
        session.add(following)
        session.flush()
    return following


def get_unit(session: Session, establishment_id: int, school_year_id: int,
             step: Step, *, create: bool = True) -> StepUnit | None:
    """The unit row, created as pending when missing (and ``create``)."""
    unit = session.scalar(select(StepUnit).where(
        StepUnit.establishment_id == establishment_id,
        StepUnit.school_year_id == school_year_id, StepUnit.step == step))
    if unit is None and create:
        unit = StepUnit(establishment_id=establishment_id, school_year_id=school_year_id,
                        step=step, status=UnitStatus.PENDING, checkpoint="{}", counts="{}",
                        error="", attempts=0, progress_done=0, progress_total=0)
        session.add(unit)
        session.flush()
    return unit


def begin_unit(unit: StepUnit, total: int = 0) -> None:
    """Mark the unit running (a resumed unit keeps its checkpoint)."""
    unit.status = UnitStatus.RUNNING
    unit.attempts = (unit.attempts or 0) + 1
    unit.error = ""
    if unit.started_at is None:
        unit.started_at = utcnow()
    unit.progress_total = total


def checkpoint(unit: StepUnit) -> dict[str, Any]:
    """The unit's checkpoint: ``{"phases": {name: counts}}``."""
    return json.loads(unit.checkpoint or "{}")


def finish_unit(unit: StepUnit, counts: dict[str, Any]) -> None:
    """Mark the unit done with its counts."""
    unit.status = UnitStatus.DONE
    unit.finished_at = utcnow()
    unit.counts = json.dumps(counts, ensure_ascii=False, sort_keys=True)
    unit.progress_done = unit.progress_total


def merge_counts(total: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Numbers add up across phases; other values (summaries) are replaced."""
    merged = dict(total)
    for key, value in new.items():
        previous = merged.get(key)
        if isinstance(value, int) and isinstance(previous, int):
            merged[key] = previous + value
        else:
            merged[key] = value
    return dict(sorted(merged.items()))


def fail_unit(unit: StepUnit, error: str) -> None:
    """Mark the unit failed with a French error."""
    unit.status = UnitStatus.FAILED
    unit.error = error


class QueueState(enum.StrEnum):
    """Where a unit that is not running stands in the engine's queue (shown, not stored:
    the engine's tasks and the unit's attempts say it)."""

    QUEUED = "queued"  # en file: the engine will start it
    WAITING = "waiting"  # en attente d'une étape préalable (calendar units only)
    INTERRUPTED = "interrupted"  # interrompue (cancelled or stopped mid-way; resumes later)


QUEUE_STATE_LABELS = {
    QueueState.QUEUED: "en file",
    QueueState.WAITING: "en attente d'une étape",
    QueueState.INTERRUPTED: "interrompu",
}
"""The full French word of each queue state (grid, detail, ``yearchange status``)."""

QUEUE_STATE_SHORT = {
    QueueState.QUEUED: "en file",
    QueueState.WAITING: "prérequis",
    QueueState.INTERRUPTED: "interr.",
}
"""Words that fit a medium grid cell (glyph, space, at most 9 characters)."""

QUEUE_STATE_NARROW = {
    QueueState.QUEUED: "file",
    QueueState.WAITING: "prér.",
    QueueState.INTERRUPTED: "int.",
}
"""Words that fit a narrow (80-column) grid cell."""

QUEUE_STATE_GLYPHS = {
    QueueState.QUEUED: "≡",
    QueueState.WAITING: "⋯",
    QueueState.INTERRUPTED: "‖",
}
"""The non-colour signal of each queue state (distinct from every unit-status glyph)."""
