"""Tables of the AAF importer: imports with their files and header comments, rejects,
delivered structures, teacher–subject links and the class and group history used by the N-1
report.

They live on the project's shared metadata (one database, one migration chain).
"""

from __future__ import annotations

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yearchange_tui.ent.base import Base, fk


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


class AafGroupHistory(Base):
    """The AAF group a student was in for a school year, kept after step 3 deletes groups.

    The N-1 report of step 4 compares the new groups with it (seed §5: groups kept in
    the STS switch-over come back as last year's groups).
    """

    __tablename__ = "aaf_group_history"
    __table_args__ = (UniqueConstraint("school_year_id", "person_id", "group_code"),
                      Index("ix_aaf_group_history_establishment_year", "establishment_id",
                            "school_year_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id")
    school_year_id: Mapped[int] = fk("school_years.id")
    person_id: Mapped[int] = fk("people.id")
    group_code: Mapped[str] = mapped_column(String(64))
