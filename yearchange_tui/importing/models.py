"""The shared import store: every import applied (AAF delivery or timetable export), its
files with their header comments, and its rejects.

Both importers write here (``mode`` tells them apart); the support screens read here.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yearchange_tui.ent.base import Base, fk
from yearchange_tui.ent.folding import reject_search_default


class AafImport(Base):
    """One AAF delivery applied (or being applied) to the directory."""

    __tablename__ = "aaf_imports"
    __table_args__ = (Index("ix_aaf_imports_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # What the operator gave: a folder, an archive or files (absolute paths, one per line).
    source: Mapped[str] = mapped_column(Text)
    source_kind: Mapped[str] = mapped_column(String(20))  # dossier, tgz, zip, fichiers
    # "Complet", "Delta" or "Complet+Delta"; the newest delivery date of the files.
    delivery_type: Mapped[str] = mapped_column(String(20), default="")
    delivery_date: Mapped[dt.date | None] = mapped_column(Date)
    # "step-4" when the import initialised establishments (step 4), else "import".
    mode: Mapped[str] = mapped_column(String(20), default="import")
    operator: Mapped[str] = mapped_column(String(100), default="")
    record_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    warning_count: Mapped[int] = mapped_column(Integer, default=0)
    info_count: Mapped[int] = mapped_column(Integer, default=0)
    # JSON: header comments (versionAF, versionSDET, codeAcademieExport, degre,
    # dateGenerationExport) common to the files, or per file when they differ.
    header: Mapped[str] = mapped_column(Text, default="{}")
    # JSON: per-establishment summary (created, updated, flagged, restored, rejects by code).
    summary: Mapped[str] = mapped_column(Text, default="{}")
    # JSON: unknown attribute name -> occurrences.
    unknown_attributes: Mapped[str] = mapped_column(Text, default="{}")


class AafImportFile(Base):
    """One file of an import, with its header comments and checksum."""

    __tablename__ = "aaf_import_files"
    __table_args__ = (Index("ix_aaf_import_files_import", "import_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = fk("aaf_imports.id")
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(500))
    # Absolute path read (inside a temporary folder for archives).
    path: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(20))
    delivery_type: Mapped[str] = mapped_column(String(10), default="")
    delivery_date: Mapped[dt.date | None] = mapped_column(Date)
    chunk: Mapped[int] = mapped_column(Integer, default=0)
    declared_encoding: Mapped[str] = mapped_column(String(40), default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    record_count: Mapped[int] = mapped_column(Integer, default=0)
    version_af: Mapped[str] = mapped_column(String(50), default="")
    version_sdet: Mapped[str] = mapped_column(String(200), default="")
    academy_code: Mapped[str] = mapped_column(String(10), default="")
    degree: Mapped[str] = mapped_column(String(10), default="")
    generated_on: Mapped[str] = mapped_column(String(20), default="")
    comments: Mapped[str] = mapped_column(Text, default="")


class AafReject(Base):
    """A record (or value) the import refused or kept with a warning, explained in French."""

    __tablename__ = "aaf_rejects"
    __table_args__ = (
        Index("ix_aaf_rejects_import_uai", "import_id", "uai"),
        Index("ix_aaf_rejects_import_code", "import_id", "code"),
        Index("ix_aaf_rejects_establishment", "establishment_id"),
        Index("ix_aaf_rejects_record_id", "record_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = fk("aaf_imports.id")
    file_name: Mapped[str] = mapped_column(String(500), default="")
    line: Mapped[int | None] = mapped_column(Integer)
    record_id: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(20), default="")
    request: Mapped[str] = mapped_column(String(20), default="")
    establishment_id: Mapped[int | None] = fk("establishments.id", nullable=True,
                                              ondelete="SET NULL")
    uai: Mapped[str] = mapped_column(String(8), default="")
    code: Mapped[str] = mapped_column(String(50))
    severity: Mapped[str] = mapped_column(String(20))
    attribute: Mapped[str] = mapped_column(String(100), default="")
    raw_value: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text, default="")
    raw_xml: Mapped[str] = mapped_column(Text, default="")
    # Folded code, record id, attribute, value and message (ent/folding.py), for the search.
    search_folded: Mapped[str] = mapped_column(Text, default=reject_search_default,
                                               server_default="")
