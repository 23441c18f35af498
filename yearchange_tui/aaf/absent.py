"""People who leave: deleteRequests and people absent from a Complet are flagged, never deleted.

Every person record read is noted in the staging table (:func:`note_present`), so
that after a Complet the people of an establishment it covers who were not read are
flagged (``disappeared_at``), in SQL. A person who comes back is restored by the
write of their record.
"""

from __future__ import annotations

from yearchange_tui.aaf import directory as db
from yearchange_tui.aaf.contexts import establishment_context
from yearchange_tui.aaf.prepare import Prepared
from yearchange_tui.aaf.rejects import reject
from yearchange_tui.aaf.run import ImportRun, RecordRef, count, person_counts


def note_present(run: ImportRun, ref: RecordRef, *, accepted_add: bool = False) -> None:
    """Note a person record read (``accepted_add``: its addRequest was written)."""
    run.group.present_rows.append((ref.identifier, 1 if accepted_add else 0, ref.file, ref.line))


def apply_deletes(run: ImportRun, kind: str,
                  deletes: list[tuple[RecordRef, Prepared | None]]) -> None:
    """Flag the people of deleteRequests as gone (an unknown one is refused)."""
    existing = db.fetch_people(run.connection, [ref.identifier for ref, _ in deletes])
    flag: list[int] = []
    for ref, _raw in deletes:
        note_present(run, ref)
        current = existing.get(ref.identifier)
        if current is None:
            reject(run, "AAF-IDENTIFIANT-INCONNU", ref, deferred=True)
            count(run, kind, "refused")
            continue
        if run.scope is not None and current.establishment_id not in run.scope:
            count(run, kind, "skipped")
            continue
        flag.append(current.id)
        if current.establishment_id is not None:
            establishment_context(run, current.establishment_id).counts["flagged_absent"] += \
                1 if current.disappeared_at is None else 0
        person_counts(run, current.establishment_id)["deleted"] += 1
        count(run, kind, "imported")
    db.flag_disappeared(run.connection, flag, run.now)


def flag_absent(run: ImportRun) -> None:
    """Flag the people of each establishment the Complet covers that it did not list.

    A Complet with structures covers the establishments in scope it delivered; one
    without structures covers every establishment in scope it met.
    """
    covered = set(run.group.covered)
    if not run.group.has_structures:
        covered = {e for e, c in run.contexts.items() if c.in_scope}
    for establishment_id in sorted(covered):
        context = establishment_context(run, establishment_id)
        if context.in_scope:
            context.counts["flagged_absent"] += db.flag_absent(run.connection,
                                                               establishment_id, run.now)
