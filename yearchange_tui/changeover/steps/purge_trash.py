"""Step 1, « Purge de la corbeille » (seed §6.1): empty the establishment trash.

Deletes the class rubrics archived in year N-1 and the rubrics put in the trash during
year N, with their documents, files and rights; items trashed in the last days are
flagged in the dry run, since they will be gone with no recovery.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, not_, select

from yearchange_tui.changeover.steps.base import (
    Phase,
    StepDefinition,
    UnitContext,
    chunks,
    delete_ids,
    select_ids,
)
from yearchange_tui.ent.models import (
    Document,
    Rubric,
    RubricRight,
    StoredFile,
    TrashEntry,
    TrashReason,
)
from yearchange_tui.workflow.models import STEP_PREREQUISITES, Step

RECENT_TRASH_DAYS = 7


def purge_trash_phases(ctx: UnitContext) -> list[Phase]:
    """Step 1: one phase."""
    return [("corbeille", _purge_trash)]


def _purge_trash(ctx: UnitContext) -> None:
    """Delete the class rubrics archived in N-1 and the rubrics trashed during year N.

    The year-N archives of step 2 (if step 2 ran first) are kept: they stay one full year.
    """
    c = ctx.connection
    targets = c.execute(
        select(TrashEntry.rubric_id, Rubric.name, TrashEntry.trashed_at, TrashEntry.reason)
        .join(Rubric, Rubric.id == TrashEntry.rubric_id)
        .where(TrashEntry.establishment_id == ctx.establishment_id,
               not_(and_(TrashEntry.reason == TrashReason.YEAR_ARCHIVE,
                         TrashEntry.school_year_id == ctx.year_id)))
        .order_by(Rubric.name, TrashEntry.rubric_id)).all()
    rubric_ids = [row[0] for row in targets]
    ctx.effects.record("rubriques supprimées définitivement", [row[1] for row in targets])
    reference = ctx.now
    if ctx.closing_date is not None:
        closing = dt.datetime.combine(ctx.closing_date, dt.time(23, 59), tzinfo=dt.UTC)
        reference = max(reference, closing)
    for rubric_id, name, trashed_at, reason in targets:
        if trashed_at.tzinfo is None:
            trashed_at = trashed_at.replace(tzinfo=dt.UTC)
        if reason == TrashReason.USER and reference - trashed_at <= dt.timedelta(
                days=RECENT_TRASH_DAYS):
            ctx.warn(f"« {name} » mise à la corbeille le {trashed_at:%d/%m/%Y} : elle sera "
                     "supprimée sans possibilité de récupération.", "CORBEILLE-SUPPRESSION-RECENTE")
    documents = c.execute(select(Document.id, Document.stored_file_id)
                          .where(Document.rubric_id.in_(select(TrashEntry.rubric_id).where(
                              TrashEntry.rubric_id.in_(rubric_ids))))).all() if rubric_ids else []
    file_ids = sorted({row[1] for row in documents})
    kept = set(select_ids(ctx, select(Document.stored_file_id).where(
        Document.stored_file_id.in_(file_ids), Document.rubric_id.not_in(rubric_ids)))) \
        if file_ids else set()
    file_ids = [file_id for file_id in file_ids if file_id not in kept]
    paths = [row[0] for chunk in chunks(file_ids) for row in c.execute(
        select(StoredFile.relative_path).where(StoredFile.id.in_(chunk)))]
    delete_ids(ctx, Document.__table__, Document.__table__.c.rubric_id, rubric_ids,
                "documents supprimés")
    delete_ids(ctx, StoredFile.__table__, StoredFile.__table__.c.id, file_ids,
                "fichiers supprimés (base)")
    delete_ids(ctx, RubricRight.__table__, RubricRight.__table__.c.rubric_id, rubric_ids,
                "droits supprimés")
    delete_ids(ctx, TrashEntry.__table__, TrashEntry.__table__.c.rubric_id, rubric_ids,
                "entrées de corbeille supprimées")
    delete_ids(ctx, Rubric.__table__, Rubric.__table__.c.id, rubric_ids,
                "rubriques supprimées")
    ctx.remove_files_after_commit(paths, "fichiers supprimés (disque)")


DEFINITION = StepDefinition(
    key=Step.PURGE_TRASH, number=1, label=Step.PURGE_TRASH.label,
    prerequisites=STEP_PREREQUISITES[Step.PURGE_TRASH], phases=purge_trash_phases,
    dry_run="the same phase through the recorder: rubrics, documents, files and rights "
            "counted and listed, recent trash flagged; nothing deleted",
    count_labels=("rubriques supprimées", "documents supprimés", "fichiers supprimés (disque)"),
    confirm=True)
