"""The step registry: steps 0 to 5 of the change-over, in order, one module per step.

The runner, the engine and the CLI iterate over :data:`STEPS` (or :data:`UNIT_STEPS`,
the steps that are units of work) and find a step with :func:`step_definition`; none
names a step module. Step 0, the dry run, has no module of its own: it replays steps
1 to 3 with the recorder (:attr:`StepDefinition.replays`).
"""

from __future__ import annotations

from yearchange_tui.changeover.steps import (
    archive,
    delete_obsolete,
    init_directory,
    init_school_life,
    purge_trash,
)
from yearchange_tui.changeover.steps.base import (
    Phase,
    RunOptions,
    StepDefinition,
    UnitBlocked,
    UnitContext,
)
from yearchange_tui.workflow.models import Step

DRY_RUN = StepDefinition(
    key=None, number=0, label="Passage à blanc", prerequisites=(), guards=(),
    dry_run="steps 1 to 3 replayed with the recorder for every establishment: exact counts, "
            "lists and warnings, stored as dry-run reports; nothing else changes",
    replays=(Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE))

UNIT_STEPS: tuple[StepDefinition, ...] = (
    purge_trash.DEFINITION,
    archive.DEFINITION,
    delete_obsolete.DEFINITION,
    init_directory.DEFINITION,
    init_school_life.DEFINITION,
)
"""Steps 1 to 5: the steps that run as units of work."""

STEPS: tuple[StepDefinition, ...] = (DRY_RUN, *UNIT_STEPS)
"""Every step, 0 to 5, in order."""

_BY_KEY = {definition.key: definition for definition in UNIT_STEPS}


def step_definition(step: Step) -> StepDefinition:
    """The definition of ``step`` (1 to 5).

    Raises:
        KeyError: for a step with no definition.
    """
    return _BY_KEY[step]


__all__ = ["DRY_RUN", "STEPS", "UNIT_STEPS", "Phase", "RunOptions", "StepDefinition",
           "UnitBlocked", "UnitContext", "step_definition"]
