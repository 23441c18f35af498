"""Establishments as one import sees them.

Which establishment a structure is (:func:`establishment_of`, :func:`resolve`), and
per establishment its :class:`~yearchange_tui.aaf.run.EstablishmentContext`: in
scope or not, whether the import updates the current school year or initialises
year N+1 (step 4), and its class and group caches.
"""

from __future__ import annotations

from sqlalchemy import select

from yearchange_tui.aaf import directory as db
from yearchange_tui.aaf.run import (
    MODE_IMPORT,
    MODE_INIT,
    STEP4_NEEDS_COMPLET,
    EstablishmentContext,
    ImportRun,
    StructureInfo,
)
from yearchange_tui.ent.models import Establishment, SchoolYear
from yearchange_tui.workflow.guards import check_aaf_import_allowed, unit_statuses
from yearchange_tui.workflow.models import Step, UnitStatus
from yearchange_tui.workflow.units import next_school_year

establishments_table = Establishment.__table__


def establishment_context(run: ImportRun, establishment_id: int) -> EstablishmentContext:
    """The establishment's context, made when the import first meets it.

    Raises:
        GuardRefused: the establishment is between its steps 1 and 3.
    """
    context = run.contexts.get(establishment_id)
    if context is not None:
        if context.refusal is not None and run.group.is_complet:
            _admit(run, context)  # a Complet later in the delivery covers it after all
        return context
    row = run.connection.execute(
        select(establishments_table.c.uai, establishments_table.c.name,
               establishments_table.c.project_id)
        .where(establishments_table.c.id == establishment_id)).one()
    in_scope = run.scope is None or establishment_id in run.scope
    context = EstablishmentContext(establishment_id, row.uai, row.name, row.project_id,
                                   in_scope)
    run.contexts[establishment_id] = context
    if not in_scope:
        return context
    _admit(run, context)
    return context


def _admit(run: ImportRun, context: EstablishmentContext) -> None:
    """Decide the establishment's mode and target year, or refuse its step 4.

    Step 4 is the import of the « complet d'initialisation » of year N+1 (seed §6.4):
    when the import would initialise year N+1 from a dated delivery that is not a
    Complet, the establishment is left out (nothing is written for it) and the
    refusal is recorded on its context.
    """
    mode, next_year = _mode(run, context)
    if mode == MODE_INIT and not run.group.is_complet:
        context.in_scope = False
        context.refusal = STEP4_NEEDS_COMPLET
        context.refusal_files = list(run.group.files)
        return
    target = next_school_year(run.session, run.year_n) if next_year else run.year_n
    context.in_scope = True
    context.refusal = None
    context.refusal_files = []
    context.mode = mode
    context.year_id = target.id
    context.year_label = target.label
    context.year_starts_on = target.starts_on
    previous = run.session.scalar(select(SchoolYear.id).where(
        SchoolYear.start_year == target.start_year - 1))
    context.previous_year_id = previous


def _mode(run: ImportRun, context: EstablishmentContext) -> tuple[str, bool]:
    """Update the current year; or initialise year N+1 (step 4, or once step 3 is done).

    Returns:
        The mode, and whether the target is year N+1 (rather than year N).
    """
    year_n = run.year_n
    if run.step4:
        return MODE_INIT, True
    context.overridden = check_aaf_import_allowed(run.session, [context.id], year_n.id)
    statuses = unit_statuses(run.session, context.id, year_n.id)
    if statuses[Step.INIT_DIRECTORY] is UnitStatus.DONE:
        return MODE_IMPORT, True
    if statuses[Step.DELETE_OBSOLETE] is UnitStatus.DONE:
        return MODE_INIT, True
    return MODE_IMPORT, False


def class_cache(run: ImportRun, context: EstablishmentContext) -> dict[str, int]:
    """The establishment's classes of its target year, by code."""
    if context.classes is None:
        context.classes = db.load_classes(run.connection, context.id, context.year_id)
    return context.classes


def group_cache(run: ImportRun, context: EstablishmentContext) -> dict[str, int]:
    """The establishment's groups of its target year, by code."""
    if context.groups is None:
        context.groups = db.load_groups(run.connection, context.id, context.year_id)
    return context.groups


def resolve(run: ImportRun, structure: str) -> tuple[StructureInfo | None, str | None]:
    """(info, None) for a usable structure, else (info or None, rule code)."""
    info = run.structures.get(structure)
    if info is None:
        return None, "AAF-STRUCTURE-INCONNUE"
    if info.refused is not None:
        return info, "AAF-STRUCTURE-REFUSEE"
    return info, None


def establishment_of(run: ImportRun, structure: str) -> int | None:
    """The establishment a structure is, if it is a usable one."""
    info = run.structures.get(structure)
    if info is None or info.refused is not None:
        return None
    return info.establishment_id


def structure_info(run: ImportRun, establishment_id: int) -> StructureInfo | None:
    """The establishment's structure, preferring one that lists classes or groups."""
    found: StructureInfo | None = None
    for info in run.structures.values():
        if info.establishment_id == establishment_id and info.refused is None:
            found = info
            if info.classes or info.groups:
                return info
    return found
