"""The step registry: steps 0 to 5 of the change-over, in order, one module per step.

Each module of this package but ``base`` is one step and defines ``DEFINITION``; they are
found on import, so adding a step is adding a module. The runner, the engine and the CLI
iterate over :data:`STEPS` (or :data:`UNIT_STEPS`, the steps that are units of work) and
find a step with :func:`step_definition`; none names a step module. Step 0, the dry run,
has no module of its own: it replays steps 1 to 3 with the recorder
(:attr:`StepDefinition.replays`).
"""

from __future__ import annotations

import importlib
import pkgutil

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

# Helper modules of this package; every other module is one step and defines DEFINITION.
HELPER_MODULES = frozenset({"base"})


def _discover() -> tuple[StepDefinition, ...]:
    """Every step module of this package, in step order (adding a step adds a module)."""
    definitions: list[StepDefinition] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name in HELPER_MODULES:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        definition = module.DEFINITION
        if definition.key is None or definition.number != definition.key.number:
            raise RuntimeError(f"{module.__name__}: DEFINITION.number must be its step's "
                               f"number ({definition.key and definition.key.number})")
        definitions.append(definition)
    definitions.sort(key=lambda definition: definition.number)
    if [definition.number for definition in definitions] != list(range(1, len(definitions) + 1)):
        raise RuntimeError(f"step modules must number 1 to {len(definitions)}: "
                           f"{[definition.number for definition in definitions]}")
    return tuple(definitions)


UNIT_STEPS: tuple[StepDefinition, ...] = _discover()
"""Steps 1 to 5 (and any declared after them): the steps that run as units of work."""

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
