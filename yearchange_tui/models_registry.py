"""Import every module that declares tables, so ``Base.metadata`` is complete.

Used by the migration environment and by anything that compares the schema.
"""

from __future__ import annotations

from yearchange_tui.aaf import models as aaf_models
from yearchange_tui.ent import models as ent_models
from yearchange_tui.importing import models as importing_models
from yearchange_tui.scheduling import models as scheduling_models
from yearchange_tui.timetable import models as timetable_models
from yearchange_tui.workflow import models as workflow_models

MODEL_MODULES = (ent_models, workflow_models, importing_models, aaf_models, scheduling_models,
                 timetable_models)


def import_all_models() -> None:
    """Register every table of the project on the shared metadata."""
    # Importing the modules above registered their tables; nothing more to do.
    assert MODEL_MODULES
