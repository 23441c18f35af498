"""Rubrics with their rights, the establishment trash, stored files and documents."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yearchange_tui.ent.base import Base, enum_column, fk
from yearchange_tui.ent.models.enums import ArchiveRubric, RubricKind, RubricRole, TrashReason


class Rubric(Base):
    """A portal section with its own rights and documents."""

    __tablename__ = "rubrics"
    __table_args__ = (
        Index("ix_rubrics_establishment_year_kind", "establishment_id", "school_year_id", "kind"),
        Index("ix_rubrics_owner", "owner_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id")
    school_year_id: Mapped[int | None] = fk("school_years.id", nullable=True)
    kind: Mapped[RubricKind] = mapped_column(enum_column(RubricKind))
    name: Mapped[str] = mapped_column(String(200))
    class_id: Mapped[int | None] = fk("classes.id", nullable=True, ondelete="SET NULL",
                                      index=True)
    # The archive rubric this is (step 2 targets), for kind ARCHIVE.
    archive_kind: Mapped[ArchiveRubric | None] = mapped_column(enum_column(ArchiveRubric))
    # Owner of a porte-documents (kind DOCUMENT_FOLDER).
    owner_id: Mapped[int | None] = fk("people.id", nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class RubricRight(Base):
    """A role on a rubric held by a user or by a group (exactly one of the two)."""

    __tablename__ = "rubric_rights"
    __table_args__ = (
        CheckConstraint("(person_id IS NULL) <> (group_id IS NULL)", name="holder"),
        UniqueConstraint("rubric_id", "person_id", "group_id", "role"),
        Index("ix_rubric_rights_person", "person_id"),
        Index("ix_rubric_rights_group", "group_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rubric_id: Mapped[int] = fk("rubrics.id")
    person_id: Mapped[int | None] = fk("people.id", nullable=True)
    group_id: Mapped[int | None] = fk("groups.id", nullable=True)
    role: Mapped[RubricRole] = mapped_column(enum_column(RubricRole))


class TrashEntry(Base):
    """A rubric in the establishment trash: when, by whom, and the year it was archived in."""

    __tablename__ = "trash_entries"
    __table_args__ = (Index("ix_trash_entries_establishment_year_reason", "establishment_id",
                            "school_year_id", "reason"),
                      UniqueConstraint("rubric_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id")
    rubric_id: Mapped[int] = fk("rubrics.id")
    reason: Mapped[TrashReason] = mapped_column(enum_column(TrashReason))
    trashed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    trashed_by_id: Mapped[int | None] = fk("people.id", nullable=True, ondelete="SET NULL")
    # School year the trash entry belongs to: year of archiving (step 2) or of trashing.
    school_year_id: Mapped[int] = fk("school_years.id", index=True)


class StoredFile(Base):
    """A file under the storage root: relative path, size and SHA-256."""

    __tablename__ = "stored_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int | None] = fk("establishments.id", nullable=True, index=True)
    relative_path: Mapped[str] = mapped_column(String(500), unique=True)
    original_name: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Document(Base):
    """A document published in a rubric (or a porte-documents), backed by a stored file."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    rubric_id: Mapped[int] = fk("rubrics.id", index=True)
    stored_file_id: Mapped[int] = fk("stored_files.id", index=True, ondelete="RESTRICT")
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int | None] = fk("people.id", nullable=True, ondelete="SET NULL")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
