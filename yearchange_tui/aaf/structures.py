"""Structures (EtabEducNat records): establishments, their classes and groups, by batch.

A structure that is a school becomes (or updates) an establishment; an administrative
structure (a rectorat) is only remembered. A structure with an invalid UAI is refused,
and so is every person attached to it. A modifyRequest keeps what it does not carry.
"""

from __future__ import annotations

import unicodedata
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, insert, select, update

from yearchange_tui.aaf import directory as db
from yearchange_tui.aaf.contexts import establishment_context
from yearchange_tui.aaf.delivery import KIND_ETAB
from yearchange_tui.aaf.models import AafStructure
from yearchange_tui.aaf.prepare import Prepared
from yearchange_tui.aaf.records import Issue, StructureRow
from yearchange_tui.aaf.rejects import record_issues, reject
from yearchange_tui.aaf.run import ImportRun, RecordRef, StructureInfo, count
from yearchange_tui.ent.models import Establishment, EstablishmentKind, Project
from yearchange_tui.ent.uai import InvalidUAIError, validate_uai

establishments_table = Establishment.__table__
structures_table = AafStructure.__table__


class _Known(NamedTuple):
    """What the database holds for the structures of one batch."""

    by_jointure: dict[str, Any]
    by_uai: dict[str, Any]
    structures: set[str]


def load_structures(connection: Connection) -> dict[str, StructureInfo]:
    """The structures known before the import: establishments first, then the others."""
    structures: dict[str, StructureInfo] = {}
    for row in connection.execute(
            select(establishments_table.c.id, establishments_table.c.uai,
                   establishments_table.c.name, establishments_table.c.aaf_jointure)
            .where(establishments_table.c.aaf_jointure.is_not(None))):
        structures[row.aaf_jointure] = StructureInfo(row.aaf_jointure, row.uai, row.name, row.id)
    for row in connection.execute(select(structures_table)):
        if row.jointure not in structures:
            structures[row.jointure] = StructureInfo(
                row.jointure, row.uai, row.name, row.establishment_id,
                is_school=row.establishment_id is not None)
    return structures


def apply_structure(run: ImportRun, raw: Prepared, ref: RecordRef) -> None:
    """Check one structure record and add it to its batch (a deleteRequest changes nothing)."""
    kind, jointure = ref.kind, ref.identifier
    if raw.request == "delete":
        count(run, kind, "imported")
        return
    run.group.batch_ids[kind].add(jointure)
    issues: list[Issue] = raw.issues
    row: StructureRow = raw.row
    existing = run.structures.get(jointure)
    if raw.request == "modify" and existing is not None:
        _keep_what_is_not_modified(row, existing)
    try:
        validate_uai(row.uai)
    except InvalidUAIError as error:
        detail = str(error).split(" : ", 1)[-1].rstrip(".")
        record_issues(run, issues, ref, raw, None, row.name)
        reject(run, "AAF-UAI-INVALIDE", ref, raw=raw, attribute="ENTStructureUAI",
               value=row.uai, name=row.name, detail=detail)
        run.structures[jointure] = StructureInfo(jointure, row.uai, row.name, None,
                                                 refused=f"UAI « {row.uai} » invalide")
        count(run, kind, "refused")
        return
    record_issues(run, issues, ref, raw, None, row.name)
    info = StructureInfo(jointure, row.uai, row.name, existing.establishment_id
                         if existing else None, None, row.classes, row.groups,
                         row.is_school)
    run.structures[jointure] = info
    run.group.batches[kind].append((row, ref))


def _keep_what_is_not_modified(row: StructureRow, existing: StructureInfo) -> None:
    """A modifyRequest carries only what changes: keep the rest."""
    present = row.present
    if not row.uai:
        row.uai = existing.uai
    if "ENTStructureNomCourant" not in present:
        row.name = existing.name
    if "ENTStructureClasses" not in present:
        row.classes = existing.classes
    if "ENTStructureGroupes" not in present:
        row.groups = existing.groups
    if "ENTStructureTypeStruct" not in present:
        row.is_school = existing.is_school


def write_structures(run: ImportRun, batch: list[tuple[StructureRow, RecordRef]]) -> None:
    """Create or update the establishments and structures of one batch, set-based."""
    known = _known(run.connection, batch)
    updates: list[dict[str, Any]] = []
    structure_inserts: list[dict[str, Any]] = []
    structure_updates: list[dict[str, Any]] = []
    for row, _ref in batch:
        info = run.structures[row.jointure]
        establishment_id = _establishment(run, row, known, updates) if row.is_school else None
        info.establishment_id = establishment_id
        if row.jointure in known.structures:
            structure_updates.append({"b_jointure": row.jointure, "b_uai": row.uai,
                                      "b_name": row.name, "b_type": row.type_label,
                                      "b_establishment": establishment_id})
        else:
            structure_inserts.append({"jointure": row.jointure, "uai": row.uai,
                                      "name": row.name, "type_label": row.type_label,
                                      "establishment_id": establishment_id,
                                      "last_import_id": run.import_id})
        _count_structure(run, establishment_id)
    _write_rows(run, updates, structure_inserts, structure_updates)


def _known(connection: Connection, batch: list[tuple[StructureRow, RecordRef]]) -> _Known:
    """The establishments and structures the database holds for the batch's structures."""
    jointures = [row.jointure for row, _ in batch]
    uais = [row.uai for row, _ in batch]
    by_jointure: dict[str, Any] = {}
    by_uai: dict[str, Any] = {}
    columns = [establishments_table.c.id, establishments_table.c.uai,
               establishments_table.c.aaf_jointure, establishments_table.c.name,
               establishments_table.c.town, establishments_table.c.postal_code]
    for part in db.chunks(jointures):
        for row in connection.execute(select(*columns).where(
                establishments_table.c.aaf_jointure.in_(part))):
            by_jointure[row.aaf_jointure] = row
    for part in db.chunks(uais):
        for row in connection.execute(select(*columns).where(
                establishments_table.c.uai.in_(part))):
            by_uai[row.uai] = row
    structures = {jointure for part in db.chunks(jointures)
                  for jointure in connection.execute(
                      select(structures_table.c.jointure).where(
                          structures_table.c.jointure.in_(part))).scalars()}
    return _Known(by_jointure, by_uai, structures)


def _establishment(run: ImportRun, row: StructureRow, known: _Known,
                   updates: list[dict[str, Any]]) -> int | None:
    """The school's establishment: found by jointure or UAI (updated), or created.

    An establishment is created only by an import over the whole delivery (no scope).
    """
    existing = known.by_jointure.get(row.jointure) or known.by_uai.get(row.uai)
    if existing is None and run.scope is None:
        establishment_id = _create_establishment(run, row)
        known.by_uai[row.uai] = known.by_jointure[row.jointure] = None
        establishment_context(run, establishment_id).counts["establishment_created"] = 1
        return establishment_id
    if existing is None:
        return None
    # Out of scope, or its step 4 refused (not its Complet): nothing written for it.
    in_scope = establishment_context(run, int(existing.id)).in_scope
    same_name = _fold(existing.name) == _fold(row.name)
    name = existing.name if same_name else row.name
    changed = (existing.aaf_jointure != row.jointure or not same_name
               or (row.town and existing.town != row.town)
               or (row.postal_code and existing.postal_code != row.postal_code))
    if in_scope and changed:
        updates.append({"b_id": existing.id, "b_jointure": row.jointure,
                        "b_name": name, "b_town": row.town or existing.town,
                        "b_postal": row.postal_code or existing.postal_code})
    return int(existing.id)


def _create_establishment(run: ImportRun, row: StructureRow) -> int:
    """Create the establishment of a school no establishment matches; its kind from its type."""
    label = row.type_label.upper()
    kind = (EstablishmentKind.COLLEGE if "COLLEGE" in label
            else EstablishmentKind.LYCEE if "LYCEE" in label
            else EstablishmentKind.OTHER)
    result = run.connection.execute(insert(establishments_table).values(
        project_id=project_for(run, row), uai=row.uai, aaf_jointure=row.jointure,
        name=row.name, kind=kind, town=row.town, postal_code=row.postal_code,
        closing_date=None, access_block_starts_on=None,
        access_block_ends_on=None))
    return int(result.inserted_primary_key[0])


def _count_structure(run: ImportRun, establishment_id: int | None) -> None:
    """Count the structure; a school of a Complet in scope is covered (absent people rule)."""
    if establishment_id is None:
        count(run, KIND_ETAB, "imported")
        return
    context = establishment_context(run, establishment_id)
    if run.group.is_complet and context.in_scope:
        run.group.covered.add(establishment_id)
    count(run, KIND_ETAB, "skipped" if not context.in_scope else "imported")


def _write_rows(run: ImportRun, updates: list[dict[str, Any]],
                structure_inserts: list[dict[str, Any]],
                structure_updates: list[dict[str, Any]]) -> None:
    """Write the batch's structure rows and establishment updates."""
    connection = run.connection
    if structure_updates:
        connection.execute(
            update(structures_table)
            .where(structures_table.c.jointure == bindparam("b_jointure"))
            .values(uai=bindparam("b_uai"), name=bindparam("b_name"),
                    type_label=bindparam("b_type"),
                    establishment_id=bindparam("b_establishment"),
                    last_import_id=run.import_id), structure_updates)
    if structure_inserts:
        connection.execute(insert(structures_table), structure_inserts)
    if updates:
        connection.execute(
            update(establishments_table).where(establishments_table.c.id == bindparam("b_id"))
            .values(aaf_jointure=bindparam("b_jointure"), name=bindparam("b_name"),
                    town=bindparam("b_town"), postal_code=bindparam("b_postal")), updates)


def project_for(run: ImportRun, row: StructureRow) -> int:
    """The project a new establishment joins: the only one, the académie's, or a new one."""
    if run.projects is None:
        run.projects = list(run.connection.execute(
            select(Project.id, Project.code, Project.academy_code).order_by(Project.id)))
    if len(run.projects) == 1:
        return int(run.projects[0].id)
    wanted = row.academy_code.lstrip("0")
    for project in run.projects:
        if wanted and (project.academy_code or "").lstrip("0") == wanted:
            return int(project.id)
    if run.projects:
        return int(run.projects[0].id)
    code = f"AAF-{row.academy_code or 'ACADEMIE'}"
    academy = row.academy_name.title() or row.academy_code or "inconnue"
    result = run.connection.execute(insert(Project.__table__).values(
        code=code, name=f"ENT de l'académie {academy}", ent_name="ENT",
        academy_code=row.academy_code[:8],
        group_lifetime_url_template="https://ent.example.fr/groupes/{group_id}/duree-de-vie",
        newest_timetable_versions_enabled=False, automatic_timetable_import=False,
        access_block_message="", access_block_profiles="National_ELV,National_TUT",
        access_block_override_allowed=False))
    run.projects = None
    return int(result.inserted_primary_key[0])


def _fold(text: str) -> str:
    """Compare names without case or accents (``Collège`` = ``COLLEGE``)."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()
