"""Each establishment's timetable software and version: the declaration the policy uses.

The seed's version policy (§2.2.3) applies to every import, and most exports (UDT ZIP,
clear EDT payload, STS-web) do not say their version. The declaration says it once per
establishment: recorded from its first successful manual import (from ``--version`` or
the version read in the file), updated when an export reads another version, or set by
``yearchange timetable-version set``. :func:`~yearchange_tui.timetable.policy.choose_declaration`
decides how an import uses it.

The project's automatic mode (seed §2.2.3: « En fonction de l'activation du module K+
Import emplois du temps automatisé de votre projet, il est ensuite possible d'utiliser le
mode automatique ») is shown with each declaration and set here too
(:func:`set_automatic_import`, ``timetable-version set --import-automatique``), audited.

Runs on the caller's thread (CLI, engine import child).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yearchange_tui.ent.base import utcnow
from yearchange_tui.ent.database import Database
from yearchange_tui.ent.models import Establishment, Project
from yearchange_tui.timetable.models import TimetableDeclaration
from yearchange_tui.timetable.policy import (
    EDT,
    SOURCE_ESTABLISHMENT,
    UDT,
    TimetableVersion,
    VersionError,
    evaluate,
    parse_declared_version,
)
from yearchange_tui.workflow.audit import audit, operator_identity
from yearchange_tui.workflow.establishments import establishment_by_uai
from yearchange_tui.workflow.project_settings import find_project

SOURCE_FIRST_IMPORT = "premier import manuel"
SOURCE_COMMAND = "commande"
SOURCE_FILE = "fichier"
SOFTWARE = {"edt": EDT, "udt": UDT}
"""``--logiciel`` values → product."""


@dataclass(frozen=True)
class Declaration:
    """One establishment's declaration, as shown by ``timetable-version show``."""

    uai: str
    name: str
    version: TimetableVersion | None
    source: str = ""
    declared_at: dt.datetime | None = None
    declared_by: str = ""
    project: str = ""
    automatic_import: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"uai": self.uai, "name": self.name,
                "logiciel": self.version.product if self.version else None,
                "version": self.version.number if self.version else None,
                "label": self.version.label if self.version else None,
                "source": self.source,
                "declared_at": self.declared_at.isoformat() if self.declared_at else None,
                "declared_by": self.declared_by, "project": self.project,
                "automatic_import": self.automatic_import}


def declaration_row(session: Session, establishment_id: int) -> TimetableDeclaration | None:
    """The establishment's declaration row, if any: read once per import or command and
    handed on (:func:`declaration_version`, :func:`record_declaration`)."""
    return session.scalar(select(TimetableDeclaration).where(
        TimetableDeclaration.establishment_id == establishment_id))


def declaration_version(row: TimetableDeclaration | None) -> TimetableVersion | None:
    """The declared software and version of a declaration row (None without one)."""
    if row is None:
        return None
    return TimetableVersion(row.product, row.version, SOURCE_ESTABLISHMENT)


def declaration_of(session: Session, establishment_id: int) -> TimetableVersion | None:
    """The establishment's declared software and version, if any."""
    return declaration_version(declaration_row(session, establishment_id))


def record_declaration(session: Session, establishment_id: int, version: TimetableVersion,
                       source: str, now: dt.datetime | None = None, *,
                       row: TimetableDeclaration | None) -> TimetableDeclaration:
    """Record (or change) the establishment's declaration, given its current ``row`` as
    :func:`declaration_row` read it (None: none yet); returns the row as it now is."""
    if row is not None and (row.product, row.version) == (version.product, version.number):
        return row
    if row is None:
        row = TimetableDeclaration(establishment_id=establishment_id)
        session.add(row)
    row.product = version.product
    row.version = version.number
    row.source = source
    row.declared_at = now or utcnow()
    row.declared_by = operator_identity()["os_user"]
    session.flush()
    return row


def parse_software_version(software: str, text: str) -> TimetableVersion:
    """``--logiciel udt --version 27`` → UDT 27 (French :class:`VersionError` if not)."""
    product = SOFTWARE.get((software or "").strip().lower())
    if product is None:
        raise VersionError(f"logiciel « {software} » inconnu : attendu « edt » ou « udt »")
    version = parse_declared_version(text, product)
    return TimetableVersion(version.product, version.number, SOURCE_ESTABLISHMENT)


def set_declaration(database: Database, uai: str, software: str, text: str
                    ) -> tuple[Declaration, str]:
    """``timetable-version set``: record the establishment's declaration, audited.

    Returns:
        The declaration and the policy's French verdict on it today.

    Raises:
        VersionError: the software or the version cannot be read.
        UnknownEstablishmentError: no establishment has this UAI.
    """
    version = parse_software_version(software, text)
    with database.session() as session:
        ref = establishment_by_uai(session, uai)
        establishment = session.get(Establishment, ref.id)
        assert establishment is not None
        row = declaration_row(session, ref.id)
        previous = declaration_version(row)
        row = record_declaration(session, ref.id, version, SOURCE_COMMAND, row=row)
        audit(session, "timetable-version", "done", establishment_id=ref.id,
              details={"product": version.product, "version": version.number,
                       "previous": previous.label if previous else None})
        project = session.get(Project, establishment.project_id)
        verdict = evaluate(version.product, None, version,
                           newest_enabled=bool(project and
                                               project.newest_timetable_versions_enabled))
        return (Declaration(ref.uai, ref.name, version, row.source, row.declared_at,
                            row.declared_by, project.code if project else "",
                            bool(project and project.automatic_timetable_import)),
                verdict.label)


def declarations(session: Session, uais: list[str] | None = None) -> list[Declaration]:
    """Every establishment (or those asked) with its declaration, by UAI."""
    query = (select(Establishment, TimetableDeclaration, Project.code,
                    Project.automatic_timetable_import)
             .outerjoin(TimetableDeclaration,
                        TimetableDeclaration.establishment_id == Establishment.id)
             .join(Project, Project.id == Establishment.project_id)
             .order_by(Establishment.uai))
    if uais:
        query = query.where(Establishment.uai.in_([uai.upper() for uai in uais]))
    found = []
    for establishment, row, code, automatic in session.execute(query):
        version = (TimetableVersion(row.product, row.version, SOURCE_ESTABLISHMENT)
                   if row is not None else None)
        found.append(Declaration(establishment.uai, establishment.name, version,
                                 row.source if row else "", row.declared_at if row else None,
                                 row.declared_by if row else "", code, bool(automatic)))
    return found


def set_automatic_import(database: Database, enabled: bool, *, project_code: str | None = None,
                         uai: str | None = None) -> tuple[str, bool]:
    """Record whether the project has the K+ module « Import emplois du temps automatisé »
    (seed §2.2.3): automatic imports (``watch-timetables``, the engine's drop folder) are
    refused for its establishments without it. Audited.

    Args:
        database: the database.
        enabled: the module is active.
        project_code: the project (default: the project of ``uai``, else the only one).
        uai: an establishment of the project.

    Returns:
        The project's code and whether the setting changed (False: it already was so).

    Raises:
        ProjectSettingsError: unknown or ambiguous project.
        UnknownEstablishmentError: no establishment has this UAI.
    """
    with database.session() as session:
        if uai and not project_code:
            ref = establishment_by_uai(session, uai)
            project = session.get(Project, ref.project_id)
            assert project is not None
        else:
            project = find_project(session, project_code)
        before = bool(project.automatic_timetable_import)
        project.automatic_timetable_import = bool(enabled)
        audit(session, "timetable-automatic-import", "done", details={
            "project": project.code, "enabled": bool(enabled), "before": before})
        return project.code, before != bool(enabled)
