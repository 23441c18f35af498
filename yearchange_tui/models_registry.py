"""Import every module that declares tables, so ``Base.metadata`` is complete.

Used by the migration environment and by anything that compares the schema.
"""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "yearchange_tui.ent.models",
    "yearchange_tui.changeover.models",
    "yearchange_tui.aaf.models",
    "yearchange_tui.scheduling.models",
    "yearchange_tui.timetable.models",
)


def import_all_models() -> None:
    """Register every table of the project on the shared metadata."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
