"""The end of an import: what needs the whole delivery read.

Rejects collected while reading (classes of teachers only, unknown attributes),
class rubrics, likely classes of the previous year, the deferred rejects with their
excerpts, the files read, one import report per establishment, the step-4 units,
and the import's own record with its totals and summary.
"""

from __future__ import annotations

import json
from collections import Counter

from sqlalchemy import insert

from yearchange_tui.aaf import directory as db
from yearchange_tui.aaf.classes_n1 import (
    likely_previous_year_classes,
    likely_previous_year_groups,
)
from yearchange_tui.aaf.init_units import enable_newest_timetable_versions
from yearchange_tui.aaf.rejects import reject, reject_collected, write_deferred, write_rejects
from yearchange_tui.aaf.rubrics import create_class_rubrics
from yearchange_tui.aaf.rules import RULES, Severity
from yearchange_tui.aaf.run import (
    MODE_IMPORT,
    MODE_INIT,
    EstablishmentContext,
    ImportRun,
    RecordRef,
)
from yearchange_tui.aaf.summaries import establishment_summaries, header, unknown_summary
from yearchange_tui.ent.base import utcnow
from yearchange_tui.ent.models import ImportReport, ImportSource
from yearchange_tui.importing.models import AafImportFile


def finish(run: ImportRun) -> None:
    """Do what needs the whole delivery read, then record the import's totals."""
    reject_collected(run)
    updated = [context for context in run.contexts.values()
               if context.in_scope and context.year_id]
    create_class_rubrics(run, updated)
    for context in updated:
        _reject_previous_year_classes(run, context)
    write_rejects(run)
    write_deferred(run)
    db.drop_staging(run.connection)
    if run.file_rows:
        run.connection.execute(insert(AafImportFile.__table__), run.file_rows)
    for context in updated:
        _import_report(run, context)
    enable_newest_timetable_versions(run)
    _record_totals(run)


def _reject_previous_year_classes(run: ImportRun, context: EstablishmentContext) -> None:
    """Keep the class history, and warn about classes that look like last year's."""
    db.snapshot_class_history(run.connection, context.id, context.year_id)
    for finding in likely_previous_year_classes(run.connection, context.id,
                                                context.year_id,
                                                context.previous_year_id):
        ref = RecordRef("", 0, finding.code, "", "")
        reject(run, "AAF-CLASSE-N-1-PROBABLE", ref, deferred=True,
               establishment_id=context.id, attribute="ENTEleveClasses",
               value=finding.code, detail=finding.reason)
        run.deferred[-1][1]["raw_xml"] = ""
    for finding in likely_previous_year_groups(run.connection, context.id, context.year_id,
                                               context.previous_year_id):
        ref = RecordRef("", 0, finding.code, "", "")
        reject(run, "AAF-GROUPE-N-1-PROBABLE", ref, deferred=True, establishment_id=context.id,
               attribute="ENTEleveGroupes", value=finding.code, detail=finding.reason)
        run.deferred[-1][1]["raw_xml"] = ""


def _import_report(run: ImportRun, context: EstablishmentContext) -> None:
    """The establishment's import report (the portal's « rapports d'import »)."""
    counts = context.counts
    rejected = sum(n for code, n in run.reject_counts.get(context.id, Counter()).items()
                   if RULES[code].severity is Severity.ERROR)
    what = "initialisation" if context.mode == MODE_INIT else "mise à jour"
    delivery = run.delivery
    summary = (f"Import AAF {delivery.delivery_type or ''} — {what} "
               f"{context.year_label} : {counts['created']} créé(s), "
               f"{counts['updated']} mis à jour, "
               f"{counts['flagged_absent']} absent(s) signalé(s), {rejected} rejet(s).")
    run.connection.execute(insert(ImportReport.__table__).values(
        establishment_id=context.id, school_year_id=context.year_id,
        source=ImportSource.AAF, source_name=(delivery.source[0] if delivery.source
                                              else "")[:500],
        started_at=run.now, finished_at=utcnow(), created_count=counts["created"],
        updated_count=counts["updated"], rejected_count=rejected, summary=summary))


def _record_totals(run: ImportRun) -> None:
    """Close the import's own record: mode, counts by severity, header and summary."""
    import_row = run.import_row
    import_row.finished_at = utcnow()
    import_row.mode = MODE_INIT if any(c.mode == MODE_INIT for c in run.contexts.values()
                                       if c.in_scope) else MODE_IMPORT
    counts: Counter[str] = Counter()
    for code_counts in run.reject_counts.values():
        for code, occurrences in code_counts.items():
            counts[RULES[code].severity.value] += occurrences
    import_row.record_count = run.records["total"]
    import_row.error_count = counts[Severity.ERROR.value]
    import_row.warning_count = counts[Severity.WARNING.value]
    import_row.info_count = counts[Severity.INFO.value]
    import_row.header = json.dumps(header(run), ensure_ascii=False, sort_keys=True)
    import_row.summary = json.dumps(
        {"establishments": establishment_summaries(run),
         "records": dict(run.records)}, ensure_ascii=False, sort_keys=True, default=str)
    import_row.unknown_attributes = json.dumps(unknown_summary(run),
                                               ensure_ascii=False, sort_keys=True)
    run.session.flush()
