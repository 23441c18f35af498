"""Tables of the AAF importer: imports with their files and header comments, rejects,
delivered structures, teacher–subject links and the class history used by the N-1 report.

They live on the project's shared metadata (one database, one migration chain).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yearchange_tui.ent.base import Base, fk


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


class AafStructure(Base):
    """A structure delivered by the AAF (EtabEducNat), establishment or not (rectorat…)."""

    __tablename__ = "aaf_structures"

    id: Mapped[int] = mapped_column(primary_key=True)
    jointure: Mapped[str] = mapped_column(String(32), unique=True)
    uai: Mapped[str] = mapped_column(String(20), default="")
    name: Mapped[str] = mapped_column(String(200), default="")
    type_label: Mapped[str] = mapped_column(String(100), default="")
    # The ENT establishment for schools; empty for administrative structures.
    establishment_id: Mapped[int | None] = fk("establishments.id", nullable=True,
                                              ondelete="SET NULL")
    last_import_id: Mapped[int | None] = fk("aaf_imports.id", nullable=True,
                                            ondelete="SET NULL")


class AafTeacherSubject(Base):
    """A teacher teaches a subject to a class or a group (AAF ENTAuxEns*Matieres)."""

    __tablename__ = "aaf_teacher_subjects"
    __table_args__ = (Index("ix_aaf_teacher_subjects_person_year", "person_id",
                            "school_year_id"),
                      Index("ix_aaf_teacher_subjects_establishment_year", "establishment_id",
                            "school_year_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = fk("people.id")
    establishment_id: Mapped[int] = fk("establishments.id")
    school_year_id: Mapped[int] = fk("school_years.id")
    class_id: Mapped[int | None] = fk("classes.id", nullable=True, index=True)
    group_id: Mapped[int | None] = fk("groups.id", nullable=True, index=True)
    subject_id: Mapped[int | None] = fk("subjects.id", nullable=True, ondelete="SET NULL")
    subject_code: Mapped[str] = mapped_column(String(16), default="")


class AafClassHistory(Base):
    """The class a student was in for a school year, kept after step 3 deletes classes.

    The N-1 classes report of step 4 compares the new classes with it.
    """

    __tablename__ = "aaf_class_history"
    __table_args__ = (UniqueConstraint("school_year_id", "person_id", "class_code"),
                      Index("ix_aaf_class_history_establishment_year", "establishment_id",
                            "school_year_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id")
    school_year_id: Mapped[int] = fk("school_years.id")
    person_id: Mapped[int] = fk("people.id")
    class_code: Mapped[str] = mapped_column(String(64))


AAF_MODELS: tuple[type[Base], ...] = (AafImport, AafImportFile, AafReject, AafStructure,
                                      AafTeacherSubject, AafClassHistory)
"""Every table of the AAF importer."""
