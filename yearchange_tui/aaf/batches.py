"""Batches of records: when one must be written first, and what writing one does.

Records of one kind wait in their batch (:class:`~yearchange_tui.aaf.run.FileGroup`)
and are written together, set-based. A batch is written with what the database held
before it, so requests on one identifier apply in file order
(:func:`must_flush_first`).
"""

from __future__ import annotations

from yearchange_tui.aaf import directory as db
from yearchange_tui.aaf.absent import apply_deletes
from yearchange_tui.aaf.delivery import KIND_ETAB, KIND_MATIERE, KIND_MEF
from yearchange_tui.aaf.nomenclature import write_nomenclature
from yearchange_tui.aaf.person_batches import write_people
from yearchange_tui.aaf.run import FileGroup, ImportRun, RecordRef
from yearchange_tui.aaf.structures import write_structures


def must_flush_first(group: FileGroup, ref: RecordRef) -> bool:
    """Whether the record's batch must be written before the record joins it.

    Requests on one identifier apply in file order (a Delta may add, then modify,
    then delete): an identifier already waiting in the batch sends the batch to the
    database first, so the second request finds the first one written (an update,
    never a second insert). A person's add or modify after a waiting deleteRequest
    does too. Subjects and MEF are keyed by code and need neither.
    """
    kind, request = ref.kind, ref.request
    if kind == KIND_ETAB:
        return request != "delete" and ref.identifier in group.batch_ids[kind]
    if kind in (KIND_MATIERE, KIND_MEF):
        return False
    return ref.identifier in group.batch_ids[kind] or bool(
        group.deletes[kind] and request != "delete")


def flush(run: ImportRun, kind: str) -> None:
    """Write the kind's batch and deleteRequests, then stage the people and links read."""
    group = run.group
    pending = group.batches[kind]
    batch = pending[:]
    pending.clear()  # the same list object: the reading loop keeps its reference
    group.batch_ids[kind] = set()
    deletes = group.deletes.get(kind) or []
    group.deletes[kind] = []
    if batch:
        if kind == KIND_ETAB:
            write_structures(run, batch)
        elif kind in (KIND_MATIERE, KIND_MEF):
            write_nomenclature(run, kind, batch)
        else:
            write_people(run, kind, batch)
    if deletes:
        apply_deletes(run, kind, deletes)
    if group.present_rows:
        db.stage_seen(run.connection, group.present_rows)
        group.present_rows = []
    if group.link_rows:
        db.stage_links(run.connection, group.link_rows)
        group.link_rows = []
