"""Tables of the timetable import: one row per import applied, and the projects' EDT keys.

Rejects are not here: they go to the AAF reject store (``aaf_rejects``, anchored on an
``aaf_imports`` row of mode ``timetable``), so that support staff browse AAF and
timetable rejects in one place. They live on the project's shared metadata (one
database, one migration chain).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yearchange_tui.ent.base import Base, fk


class TimetableImport(Base):
    """One timetable import applied to an establishment for school year N+1.

    Refused imports leave no row (nothing changed; the audit trail keeps them).
    """

    __tablename__ = "timetable_imports"
    __table_args__ = (
        Index("ix_timetable_imports_establishment_year", "establishment_id", "school_year_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id")
    # The year the timetable is for (N+1 during the change-over).
    school_year_id: Mapped[int] = fk("school_years.id", index=True)
    # The ENT import report (bilan) the created rows point to; deleted at step 3.
    import_report_id: Mapped[int | None] = fk("import_reports.id", nullable=True,
                                              ondelete="SET NULL", index=True)
    # The reject store's import row (aaf_imports, mode "timetable").
    reject_import_id: Mapped[int | None] = fk("aaf_imports.id", nullable=True,
                                              ondelete="SET NULL", index=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    mode: Mapped[str] = mapped_column(String(20))  # manuel, automatique
    format: Mapped[str] = mapped_column(String(20))  # edt-chiffre, edt, udt, sts
    source: Mapped[str] = mapped_column(Text, default="")
    file_names: Mapped[str] = mapped_column(Text, default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    version_label: Mapped[str] = mapped_column(String(50), default="")
    version_source: Mapped[str] = mapped_column(String(20), default="")  # fichier, déclarée
    policy_outcome: Mapped[str] = mapped_column(String(30), default="")
    operator: Mapped[str] = mapped_column(String(100), default="")
    # JSON: header fields of the export (container header, payload version, STS params…).
    header: Mapped[str] = mapped_column(Text, default="{}")
    # JSON: created and replaced counts, rejects by code.
    counts: Mapped[str] = mapped_column(Text, default="{}")
    # JSON list: ids of the alternations this import created (replaced by the next one).
    alternation_ids: Mapped[str] = mapped_column(Text, default="[]")


class TimetablePartnerKey(Base):
    """Where a project's Index Education partner private key is (never the key itself)."""

    __tablename__ = "timetable_partner_keys"
    __table_args__ = (UniqueConstraint("project_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = fk("projects.id")
    partner_name: Mapped[str] = mapped_column(String(100))
    key_path: Mapped[str] = mapped_column(Text)
    configured_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    configured_by: Mapped[str] = mapped_column(String(100), default="")


class TimetableDeclaration(Base):
    """The timetable software and version an establishment uses (seed §2.2.3 policy).

    Recorded from the establishment's first manual import, or set by the
    ``timetable-version set`` command; every import is judged against it when the file
    does not carry its version, and automatic imports refuse an establishment without one.
    """

    __tablename__ = "timetable_declarations"
    __table_args__ = (UniqueConstraint("establishment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id")
    product: Mapped[str] = mapped_column(String(10))  # EDT, UDT
    version: Mapped[int] = mapped_column(Integer)  # EDT year (2020) or UDT version (26)
    source: Mapped[str] = mapped_column(String(40))  # premier import manuel, commande, fichier
    declared_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    declared_by: Mapped[str] = mapped_column(String(100), default="")


TIMETABLE_MODELS: tuple[type[Base], ...] = (TimetableImport, TimetablePartnerKey,
                                            TimetableDeclaration)
"""Every table of the timetable import."""
