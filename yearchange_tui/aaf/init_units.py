"""What an import that initialises year N+1 (step 4) does beyond the directory.

The step-4 unit itself (begin, checkpoint, finish, audit) is kept by the change-over
runner (:mod:`yearchange_tui.changeover.steps.init_directory`); the import reports its
progress file by file to those units and activates the newest timetable versions.
"""

from __future__ import annotations

from yearchange_tui.aaf.run import MODE_INIT, ImportRun
from yearchange_tui.ent.models import Project
from yearchange_tui.workflow.events import UnitProgressed
from yearchange_tui.workflow.models import Step


def notify_progress(run: ImportRun) -> None:
    """Report the bytes read so far to every unit the import initialises."""
    for context in run.contexts.values():
        if context.mode == MODE_INIT:
            run.observer.notify(UnitProgressed(context.uai, Step.INIT_DIRECTORY.value,
                                               run.bytes_done, run.bytes_total,
                                               dry_run=run.dry_run))


def enable_newest_timetable_versions(run: ImportRun) -> None:
    """The AAF initialisation import activates the newest timetable versions."""
    for context in run.contexts.values():
        if context.mode != MODE_INIT or not context.in_scope:
            continue
        project = run.session.get(Project, context.project_id)
        if project is not None and not project.newest_timetable_versions_enabled:
            project.newest_timetable_versions_enabled = True
