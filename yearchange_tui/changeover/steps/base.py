"""What a change-over step is: its definition, the context its phases work on, its guards.

A step is a list of phases. A phase is one transaction: it reads the state it needs
first (ids into memory, bounded by one establishment), then describes its changes
through the unit's :class:`~yearchange_tui.changeover.effects.Effects`. The runner
commits the phase together with its checkpoint, so a resumed unit skips the phases
already committed. Files to delete are removed only after the commit that deleted
their rows. A phase never asks whether it is a dry run: the effects decide.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Connection, Table
from sqlalchemy.orm import Session

from yearchange_tui.changeover.effects import Effects
from yearchange_tui.ent.database import Database
from yearchange_tui.workflow.establishments import EstablishmentRef
from yearchange_tui.workflow.guards import check_step_order
from yearchange_tui.workflow.models import Step

CHUNK = 500


@dataclass
class RunOptions:
    """What a caller may tell the steps beyond the establishments.

    Attributes:
        aaf_source: step 4: the AAF delivery (folder, archive or files); None for the
            newest delivery imported with ``import-aaf``, if its files did not change.
        whole_delivery: step 4: import the whole delivery (``import-aaf``) rather than
            only the establishments of the units.
        apply_defaults: step 5: fill periods and opening dates from the project calendar
            where the establishment has set none (never overwrites).
        progress: receives one French line per AAF file read (step 4).
        import_result: set by step 4: what the AAF import did (its summary per
            establishment, rejects by code).
    """

    aaf_source: tuple[str, ...] | None = None
    whole_delivery: bool = False
    apply_defaults: bool = True
    progress: Callable[[str], None] | None = None
    import_result: Any = None


@dataclass
class UnitContext:
    """What a phase works on: one establishment, school year N, the effects and the clock."""

    connection: Connection
    effects: Effects
    establishment_id: int
    uai: str
    establishment_name: str
    project_id: int
    closing_date: dt.date | None
    year_id: int
    year_label: str
    year_start: int
    obsolete_year_ids: list[int]
    now: dt.datetime
    options: RunOptions = field(default_factory=RunOptions)
    warnings: list[str] = field(default_factory=list)
    files_to_remove: list[str] = field(default_factory=list)
    warning_codes: list[str] = field(default_factory=list)  # stable code of each warning

    def warn(self, message: str, code: str = "AVERTISSEMENT") -> None:
        """Add a warning the operator must see before the window, with its stable code
        (the académie-wide dry-run report filters on it)."""
        self.warnings.append(message)
        self.warning_codes.append(code)

    def remove_files_after_commit(self, relative_paths: Sequence[str], label: str) -> None:
        """Queue files whose rows this phase deletes; counted now, removed after commit."""
        self.effects.tally.add(label, len(relative_paths))
        self.files_to_remove.extend(relative_paths)


@dataclass
class BatchContext:
    """What a batched phase works on: several establishments at once (step 4's import)."""

    database: Database
    effects: Effects
    establishments: list[EstablishmentRef]
    year_id: int
    now: dt.datetime
    options: RunOptions


Phase = tuple[str, Callable[[UnitContext], None]]
"""A phase: its name (the checkpoint key) and what it does."""

BatchPhase = Callable[[BatchContext], dict[int, dict[str, Any]]]
"""A phase run once for every unit of a run: returns the counts of each establishment id."""


class UnitBlocked(Exception):
    """A phase found the unit cannot be done yet (French ``message``); the unit is
    left « bloqué » with ``counts`` and runs again later."""

    def __init__(self, code: str, message: str, counts: dict[str, Any]) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.counts = counts


@dataclass(frozen=True)
class GuardInput:
    """What a guard looks at before a unit starts."""

    session: Session
    storage_root: Path
    establishment: EstablishmentRef
    school_year_id: int
    step: Step


Guard = Callable[[GuardInput], frozenset[str]]
"""Checks a unit may start: raises ``GuardRefused`` or returns notes for the audit
(``override`` when an MOE override let it through, ``initial-load``…)."""

OVERRIDE = "override"


def step_order_guard(check: GuardInput) -> frozenset[str]:
    """The step's prerequisites are done (or an audited MOE override exists)."""
    overridden = check_step_order(check.session, check.establishment.id, check.school_year_id,
                                  check.step)
    return frozenset({OVERRIDE}) if overridden else frozenset()


@dataclass(frozen=True)
class StepDefinition:
    """One step of the change-over, as the runner, the engine and the CLI see it.

    Attributes:
        key: the unit key stored in the database; None for step 0, which has no unit.
        number: 0 to 5, as in the seed.
        label: French name shown to operators.
        prerequisites: steps that must be done first (:data:`STEP_PREREQUISITES`).
        guards: checks run before the unit starts, in order.
        phases: the phases of one unit, computed when it starts.
        dry_run: what the step's dry run records.
        count_labels: the main counts of the step, in the order reports show them.
        replays: step 0: the steps its dry run replays with the recorder.
        batch_phase: a phase run once for all the units of a run (its name in
            ``phases``), with :attr:`batch`.
        batch: what the batched phase does.
        prepare: completes the options in place before any unit starts (step 4: the
            delivery); raises the step's input errors when the request cannot be met.
        warm: work a unit's guards would do, done ahead outside any transaction (step 3
            hashes the next establishment's archives while the current one deletes);
            must change nothing and may be skipped.
        input_errors: errors that mean bad input rather than a failed run: the unit is
            recorded failed, then the error goes up to the caller (CLI exit status 2).
        confirm: the CLI asks the operator to type a confirmation (destructive steps).
        vigilance: the seed's points of vigilance the operator reads before the step runs
            (its confirmation, in the CLI and the console, and the dry-run report), in French.
    """

    key: Step | None
    number: int
    label: str
    prerequisites: tuple[Step, ...] = ()
    guards: tuple[Guard, ...] = (step_order_guard,)
    phases: Callable[[UnitContext], list[Phase]] | None = None
    dry_run: str = ""
    count_labels: tuple[str, ...] = ()
    replays: tuple[Step, ...] = ()
    batch_phase: str | None = None
    batch: BatchPhase | None = None
    prepare: Callable[[Database, RunOptions], None] | None = None
    warm: Callable[[Database, Path, EstablishmentRef], None] | None = None
    input_errors: tuple[type[Exception], ...] = ()
    confirm: bool = False
    vigilance: tuple[str, ...] = ()


def chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """``values`` in slices of :data:`CHUNK` (bounded ``IN`` lists)."""
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def delete_ids(ctx: UnitContext, table: Table, column: Column[Any], ids: Sequence[int],
               label: str) -> int:
    """Delete rows whose ``column`` is in ``ids`` (chunked), counting under ``label``."""
    total = 0
    for chunk in chunks(list(ids)):
        total += ctx.effects.delete(ctx.connection, table, column.in_(chunk), label)
    if not ids:
        ctx.effects.tally.add(label, 0)
    return total


def select_ids(ctx: UnitContext, statement: Any) -> list[int]:
    """The first column of ``statement``'s rows."""
    return [row[0] for row in ctx.connection.execute(statement)]
