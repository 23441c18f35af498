"""Student → relative links: staged as students are read, applied set-based per dated delivery.

Every link a student cites goes to the staging table, even from a refused student (a
relative only refused students cite is refused, its reject naming them). After the
files of a dated delivery, the links of written students are applied in SQL, and a
relative cited but delivered nowhere is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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


@dataclass
class Citations:
    """Who cites a relative in this delivery.

    Attributes:
        written: the establishments of the written students citing it (None: a student
            with no establishment).
        refused: the refused students citing it (identifiers, in reading order).
        refused_establishment: the establishment of the first refused one, if known.
    """

    written: list[int | None] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    refused_establishment: int | None = None


def citations(run: ImportRun, jointures: Sequence[str]) -> dict[str, Citations]:
    """For each relative cited by a student of this delivery, who cites it (one query per chunk).

    A relative is created only when a written student cites it (the rule of
    :func:`~yearchange_tui.aaf.person_batches.write_people`): one cited only by refused
    students is refused like one cited by nobody, its reject naming those students.
    """
    found: dict[str, Citations] = {}
    rows = db.select_in(
        run.connection,
        f"SELECT DISTINCT relative_jointure, student_id IS NOT NULL, establishment_id, "
        f"student_jointure, line FROM {db.STAGING_LINKS} WHERE relative_jointure IN ({{in}}) "
        "ORDER BY line", list(jointures))
    for relative, written, establishment_id, student, _line in rows:
        entry = found.setdefault(relative, Citations())
        if written:
            if establishment_id not in entry.written:
                entry.written.append(establishment_id)
        elif student not in entry.refused:
            entry.refused.append(student)
            if entry.refused_establishment is None:
                entry.refused_establishment = establishment_id
    for entry in found.values():
        entry.written.sort(key=lambda value: (value is None, value or 0))
    return found


def orphan_detail(entry: Citations | None) -> str:
    """Why a relative no written student cites is refused, for its reject (French)."""
    if entry is None or not entry.refused:
        return ""
    shown = ", ".join(entry.refused[:5]) + (" …" if len(entry.refused) > 5 else "")
    if len(entry.refused) == 1:
        return f" (seul l'élève {shown} le cite, et il est refusé : voir son rejet)"
    return f" (seuls les élèves {shown} le citent, et ils sont refusés : voir leurs rejets)"


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
