"""The step-4 units of the establishments an import initialises (year N+1).

An establishment whose import initialises year N+1 has its ``init-directory``
unit begun when the import first meets it, its progress reported after each file,
and the unit finished with the establishment's summary at the end of the import.
"""

from __future__ import annotations

from yearchange_tui.aaf.run import MODE_INIT, EstablishmentContext, ImportRun
from yearchange_tui.aaf.summaries import summary_of
from yearchange_tui.ent.models import Project
from yearchange_tui.workflow.events import UnitProgressed, UnitStarted
from yearchange_tui.workflow.models import Step, StepUnit, UnitStatus
from yearchange_tui.workflow.units import begin_unit, finish_unit, get_unit


def begin_init_unit(run: ImportRun, context: EstablishmentContext) -> None:
    """Begin (or take over) the establishment's ``init-directory`` unit."""
    unit = get_unit(run.session, context.id, run.year_n.id, Step.INIT_DIRECTORY)
    assert unit is not None
    if unit.status is not UnitStatus.RUNNING:
        begin_unit(unit, run.bytes_total)
    else:
        unit.progress_total = run.bytes_total
    run.session.flush()
    context.unit_id = unit.id
    run.observer.notify(UnitStarted(context.uai, Step.INIT_DIRECTORY.value,
                                    run.bytes_total, dry_run=run.dry_run))


def notify_progress(run: ImportRun) -> None:
    """Report the bytes read so far to every unit the import initialises."""
    for context in run.contexts.values():
        if context.mode == MODE_INIT:
            run.observer.notify(UnitProgressed(context.uai, Step.INIT_DIRECTORY.value,
                                               run.bytes_done, run.bytes_total,
                                               dry_run=run.dry_run))


def finish_units(run: ImportRun) -> None:
    """Finish each ``init-directory`` unit with its summary; activate the newest timetables."""
    for context in run.contexts.values():
        if context.mode != MODE_INIT or context.unit_id is None:
            continue
        unit = run.session.get(StepUnit, context.unit_id)
        assert unit is not None
        counts = summary_of(run, context)
        finish_unit(unit, counts)
        project = run.session.get(Project, context.project_id)
        if project is not None and not project.newest_timetable_versions_enabled:
            project.newest_timetable_versions_enabled = True
