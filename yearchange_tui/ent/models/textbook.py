"""The cahier de textes (class textbook) and the classeur pédagogique (binder) activities."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Date, DateTime, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yearchange_tui.ent.base import Base, fk


class TextbookSession(Base):
    """A séance of the cahier de textes: what was done in one lesson."""

    __tablename__ = "textbook_sessions"
    __table_args__ = (
        Index("ix_textbook_sessions_establishment_year", "establishment_id", "school_year_id"),
        Index("ix_textbook_sessions_class", "class_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id")
    school_year_id: Mapped[int] = fk("school_years.id")
    class_id: Mapped[int | None] = fk("classes.id", nullable=True, ondelete="SET NULL")
    group_id: Mapped[int | None] = fk("groups.id", nullable=True, ondelete="SET NULL", index=True)
    subject_id: Mapped[int | None] = fk("subjects.id", nullable=True, ondelete="SET NULL")
    teacher_id: Mapped[int | None] = fk("people.id", nullable=True, ondelete="SET NULL")
    held_on: Mapped[dt.date] = mapped_column(Date)
    title: Mapped[str] = mapped_column(String(255))
    content: Mapped[str] = mapped_column(Text, default="")


class Homework(Base):
    """A travail à faire: homework set for a class, with its due date."""

    __tablename__ = "homeworks"
    __table_args__ = (
        Index("ix_homeworks_establishment_year", "establishment_id", "school_year_id"),
        Index("ix_homeworks_class", "class_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id")
    school_year_id: Mapped[int] = fk("school_years.id")
    session_id: Mapped[int | None] = fk("textbook_sessions.id", nullable=True, ondelete="SET NULL")
    class_id: Mapped[int | None] = fk("classes.id", nullable=True, ondelete="SET NULL")
    subject_id: Mapped[int | None] = fk("subjects.id", nullable=True, ondelete="SET NULL")
    teacher_id: Mapped[int | None] = fk("people.id", nullable=True, ondelete="SET NULL")
    given_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(Text)


class TextbookAttachment(Base):
    """A file attached to a session or to a homework."""

    __tablename__ = "textbook_attachments"
    __table_args__ = (
        CheckConstraint("(session_id IS NULL) <> (homework_id IS NULL)", name="owner"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int | None] = fk("textbook_sessions.id", nullable=True, index=True)
    homework_id: Mapped[int | None] = fk("homeworks.id", nullable=True, index=True)
    stored_file_id: Mapped[int] = fk("stored_files.id", index=True, ondelete="RESTRICT")


class BinderActivity(Base):
    """An activity of the classeur pédagogique, distributed to students."""

    __tablename__ = "binder_activities"
    __table_args__ = (
        Index("ix_binder_activities_establishment_year", "establishment_id", "school_year_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id")
    school_year_id: Mapped[int] = fk("school_years.id")
    teacher_id: Mapped[int | None] = fk("people.id", nullable=True, ondelete="SET NULL")
    subject_id: Mapped[int | None] = fk("subjects.id", nullable=True, ondelete="SET NULL")
    title: Mapped[str] = mapped_column(String(255))
    instructions: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ActivityDistribution(Base):
    """An activity distributed to one student (from a class, for the class archive)."""

    __tablename__ = "activity_distributions"
    __table_args__ = (UniqueConstraint("activity_id", "student_id"),
                      Index("ix_activity_distributions_student", "student_id"),
                      Index("ix_activity_distributions_class", "class_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = fk("binder_activities.id")
    student_id: Mapped[int] = fk("people.id")
    class_id: Mapped[int | None] = fk("classes.id", nullable=True, ondelete="SET NULL")
    distributed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    due_on: Mapped[dt.date | None] = mapped_column(Date)


class ActivityAttachment(Base):
    """A file attached to a binder activity."""

    __tablename__ = "activity_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = fk("binder_activities.id", index=True)
    stored_file_id: Mapped[int] = fk("stored_files.id", index=True, ondelete="RESTRICT")
    title: Mapped[str] = mapped_column(String(255), default="")
