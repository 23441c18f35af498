"""Import reports (AAF, CSV, timetable) and credentials files."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yearchange_tui.ent.base import Base, enum_column, fk
from yearchange_tui.ent.models.enums import ImportSource


class ImportReport(Base):
    """The bilan of one import for an establishment (deleted at step 3)."""

    __tablename__ = "import_reports"
    __table_args__ = (
        Index("ix_import_reports_establishment_year", "establishment_id", "school_year_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int | None] = fk("establishments.id", nullable=True)
    school_year_id: Mapped[int] = fk("school_years.id")
    source: Mapped[ImportSource] = mapped_column(enum_column(ImportSource))
    source_name: Mapped[str] = mapped_column(String(500))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    rejected_count: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[str] = mapped_column(Text, default="")


class CredentialsFile(Base):
    """A fichier d'identifiants: logins and first passwords handed to an establishment."""

    __tablename__ = "credentials_files"
    __table_args__ = (
        Index("ix_credentials_files_establishment_year", "establishment_id", "school_year_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id")
    school_year_id: Mapped[int] = fk("school_years.id")
    stored_file_id: Mapped[int] = fk("stored_files.id", ondelete="RESTRICT", index=True)
    profile: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
