"""Student → relative links: staged as students are read, applied set-based per dated delivery.

Every link a student cites goes to the staging table, even from a refused student
(its relatives are then not orphans: the student's reject says why). After the
files of a dated delivery, the links of written students are applied in SQL, and a
relative cited but delivered nowhere is reported.
"""

from __future__ import annotations

from collections.abc import Sequence

from yearchange_tui.aaf import directory as db
from yearchange_tui.aaf.delivery import KIND_ELEVE
from yearchange_tui.aaf.records import RelativeLink
from yearchange_tui.aaf.rejects import reject
from yearchange_tui.aaf.run import ImportRun, PendingPerson, RecordRef


def stage_refused_links(run: ImportRun, ref: RecordRef, links: Sequence[RelativeLink],
                        establishment_id: int | None) -> None:
    """Stage the links of a student who is not written."""
    for link in links:
        run.group.link_rows.append((None, ref.identifier, link.relative, link.link_code,
                                    link.legal, int(link.financial), int(link.contact),
                                    establishment_id, ref.file, ref.line))


def stage_student_links(run: ImportRun, accepted: list[PendingPerson],
                        ids: dict[str, int]) -> None:
    """Stage the links of written students; each list read replaces the one read before."""
    link_rows = run.group.link_rows
    replaced: list[int] = []
    for pending in accepted:
        if pending.row.relatives is None:
            continue
        student_id = ids[pending.row.jointure]
        replaced.append(student_id)
        ref = pending.ref
        link_rows.append((student_id, ref.identifier, None, None, None, None, None,
                          pending.establishment_id, ref.file, ref.line))
        for link in pending.row.relatives:
            link_rows.append((student_id, ref.identifier, link.relative,
                              link.link_code, link.legal, int(link.financial),
                              int(link.contact), pending.establishment_id,
                              ref.file, ref.line))
    db.stage_links(run.connection, link_rows, replaced)
    run.group.link_rows = []


def relative_establishment(run: ImportRun, jointure: str) -> int | None:
    """The establishment of a student citing this relative, if one was read."""
    found = db.referencing_establishments(run.connection, [jointure]).get(jointure) or []
    return next((e for e in found if e is not None), None)


def apply_links(run: ImportRun) -> None:
    """Link students and relatives from the staging table, set-based; warn on unknown ones."""
    db.apply_staged_links(run.connection)
    for file, line, student, relative, establishment_id, last, first in \
            db.unknown_relatives(run.connection):
        ref = RecordRef(file or "", line or 0, student, KIND_ELEVE, "")
        reject(run, "AAF-RESPONSABLE-INCONNU", ref, deferred=True,
               establishment_id=establishment_id, attribute="ENTElevePersRelEleve",
               value=relative, name=f"{last or ''} {first or ''}".strip())
