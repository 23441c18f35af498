"""Vie scolaire records of a school year (seed §6.2 and §6.3), all scoped to an establishment.

Every table carries ``establishment_id`` and ``school_year_id`` (indexed together) so that
step 3 deletes a year of an establishment with one statement per table; child rows
(grades, report-card lines, EPI members) hang off their parent and go with it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from yearchange_tui.ent.base import Base, enum_column, fk
from yearchange_tui.ent.models.enums import AttendanceKind, PeriodKind


class EstablishmentYearMixin:
    """Columns and index of a record that belongs to one establishment and school year."""

    establishment_id: Mapped[int] = fk("establishments.id")
    school_year_id: Mapped[int] = fk("school_years.id")

    @declared_attr.directive
    def __table_args__(cls) -> tuple:
        return (Index(f"ix_{cls.__tablename__}_establishment_year",  # type: ignore[attr-defined]
                      "establishment_id", "school_year_id"),)


class Period(EstablishmentYearMixin, Base):
    """A trimester or semester."""

    __tablename__ = "periods"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[PeriodKind] = mapped_column(enum_column(PeriodKind))
    position: Mapped[int] = mapped_column(SmallInteger)
    name: Mapped[str] = mapped_column(String(50))
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)


class OpeningDates(EstablishmentYearMixin, Base):
    """Opening and closing dates of the establishment for the school year."""

    __tablename__ = "opening_dates"

    id: Mapped[int] = mapped_column(primary_key=True)
    opens_on: Mapped[dt.date] = mapped_column(Date)
    closes_on: Mapped[dt.date] = mapped_column(Date)


class Alternation(EstablishmentYearMixin, Base):
    """A week pattern (semaine A, semaine B) with its ISO week numbers."""

    __tablename__ = "alternations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))
    weeks: Mapped[str] = mapped_column(Text, default="")  # comma-separated ISO week numbers


class TeachingService(EstablishmentYearMixin, Base):
    """A service d'enseignement: a teacher teaches a subject to a class or a group."""

    __tablename__ = "teaching_services"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = fk("subjects.id", ondelete="RESTRICT")
    teacher_id: Mapped[int | None] = fk("people.id", nullable=True, ondelete="SET NULL")
    class_id: Mapped[int | None] = fk("classes.id", nullable=True, ondelete="SET NULL", index=True)
    group_id: Mapped[int | None] = fk("groups.id", nullable=True, ondelete="SET NULL",
                                      index=True)
    weekly_hours: Mapped[float] = mapped_column(Float, default=0.0)
    import_report_id: Mapped[int | None] = fk("import_reports.id", nullable=True,
                                              ondelete="SET NULL", index=True)


class Course(EstablishmentYearMixin, Base):
    """A weekly course of a teaching service."""

    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(primary_key=True)
    teaching_service_id: Mapped[int] = fk("teaching_services.id", index=True)
    weekday: Mapped[int] = mapped_column(SmallInteger)  # 1 = Monday
    starts_at: Mapped[dt.time] = mapped_column(Time)
    ends_at: Mapped[dt.time] = mapped_column(Time)
    room: Mapped[str] = mapped_column(String(50), default="")
    alternation_id: Mapped[int | None] = fk("alternations.id", nullable=True, ondelete="SET NULL", index=True)
    import_report_id: Mapped[int | None] = fk("import_reports.id", nullable=True,
                                              ondelete="SET NULL", index=True)


class CourseReplacement(EstablishmentYearMixin, Base):
    """A replacement (or cancellation) of one occurrence of a course."""

    __tablename__ = "course_replacements"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = fk("courses.id", index=True)
    replaced_on: Mapped[dt.date] = mapped_column(Date)
    replacement_teacher_id: Mapped[int | None] = fk("people.id", nullable=True,
                                                    ondelete="SET NULL")
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)


class RollCall(EstablishmentYearMixin, Base):
    """A feuille d'appel: the roll call of one class at one time."""

    __tablename__ = "roll_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int | None] = fk("classes.id", nullable=True, ondelete="SET NULL", index=True)
    course_id: Mapped[int | None] = fk("courses.id", nullable=True, ondelete="SET NULL", index=True)
    teacher_id: Mapped[int | None] = fk("people.id", nullable=True, ondelete="SET NULL")
    taken_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class AttendanceEvent(EstablishmentYearMixin, Base):
    """An absence, a late arrival or an early departure of a student."""

    __tablename__ = "attendance_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = fk("people.id", index=True)
    roll_call_id: Mapped[int | None] = fk("roll_calls.id", nullable=True, ondelete="SET NULL", index=True)
    kind: Mapped[AttendanceKind] = mapped_column(enum_column(AttendanceKind))
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    justified: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(200), default="")


class Assessment(EstablishmentYearMixin, Base):
    """An evaluation (devoir) of a class in a subject."""

    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int | None] = fk("classes.id", nullable=True, ondelete="SET NULL", index=True)
    subject_id: Mapped[int | None] = fk("subjects.id", nullable=True, ondelete="SET NULL")
    teacher_id: Mapped[int | None] = fk("people.id", nullable=True, ondelete="SET NULL")
    period_id: Mapped[int | None] = fk("periods.id", nullable=True, ondelete="SET NULL", index=True)
    title: Mapped[str] = mapped_column(String(200))
    given_on: Mapped[dt.date] = mapped_column(Date)
    coefficient: Mapped[float] = mapped_column(Float, default=1.0)
    max_score: Mapped[float] = mapped_column(Float, default=20.0)


class Grade(Base):
    """A student's grade in an assessment (score empty when absent or exempted)."""

    __tablename__ = "grades"
    __table_args__ = (UniqueConstraint("assessment_id", "student_id"),
                      Index("ix_grades_student", "student_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = fk("assessments.id")
    student_id: Mapped[int] = fk("people.id")
    score: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(8), default="")  # "", "Abs", "Disp"


class SkillAssessment(EstablishmentYearMixin, Base):
    """A skill level (maîtrise 1 to 4) reached by a student in a period."""

    __tablename__ = "skill_assessments"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = fk("people.id", index=True)
    period_id: Mapped[int | None] = fk("periods.id", nullable=True, ondelete="SET NULL", index=True)
    teacher_id: Mapped[int | None] = fk("people.id", nullable=True, ondelete="SET NULL")
    domain: Mapped[str] = mapped_column(String(20))
    skill: Mapped[str] = mapped_column(String(200))
    level: Mapped[int] = mapped_column(SmallInteger)


class ReportCardTemplate(EstablishmentYearMixin, Base):
    """A modèle de bulletin."""

    __tablename__ = "report_card_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    layout: Mapped[str] = mapped_column(Text, default="")


class ReportCard(EstablishmentYearMixin, Base):
    """A bulletin périodique of a student for a period."""

    __tablename__ = "report_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = fk("people.id", index=True)
    class_id: Mapped[int | None] = fk("classes.id", nullable=True, ondelete="SET NULL", index=True)
    period_id: Mapped[int | None] = fk("periods.id", nullable=True, ondelete="SET NULL", index=True)
    template_id: Mapped[int | None] = fk("report_card_templates.id", nullable=True,
                                         ondelete="SET NULL", index=True)
    general_average: Mapped[float | None] = mapped_column(Float)
    general_appraisal: Mapped[str] = mapped_column(Text, default="")


class ReportCardLine(Base):
    """One subject line of a report card."""

    __tablename__ = "report_card_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_card_id: Mapped[int] = fk("report_cards.id", index=True)
    subject_id: Mapped[int | None] = fk("subjects.id", nullable=True, ondelete="SET NULL")
    average: Mapped[float | None] = mapped_column(Float)
    appraisal: Mapped[str] = mapped_column(Text, default="")


class EndOfCycleReport(EstablishmentYearMixin, Base):
    """A bilan de fin de cycle: levels reached in the eight domains of the socle."""

    __tablename__ = "end_of_cycle_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = fk("people.id", index=True)
    cycle: Mapped[int] = mapped_column(SmallInteger)
    domain_levels: Mapped[str] = mapped_column(String(200))  # "D1.1=3;D1.2=4;…"
    appraisal: Mapped[str] = mapped_column(Text, default="")


class Sanction(EstablishmentYearMixin, Base):
    """A disciplinary sanction (archived as CSV sent to the heads of establishment)."""

    __tablename__ = "sanctions"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = fk("people.id", index=True)
    kind: Mapped[str] = mapped_column(String(100))
    decided_on: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_by_id: Mapped[int | None] = fk("people.id", nullable=True, ondelete="SET NULL")


class Punishment(EstablishmentYearMixin, Base):
    """A punition scolaire."""

    __tablename__ = "punishments"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = fk("people.id", index=True)
    kind: Mapped[str] = mapped_column(String(100))
    given_on: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text, default="")
    given_by_id: Mapped[int | None] = fk("people.id", nullable=True, ondelete="SET NULL")


class Epi(EstablishmentYearMixin, Base):
    """An enseignement pratique interdisciplinaire."""

    __tablename__ = "epis"

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int | None] = fk("classes.id", nullable=True, ondelete="SET NULL", index=True)
    title: Mapped[str] = mapped_column(String(200))
    theme: Mapped[str] = mapped_column(String(200))
    subjects: Mapped[str] = mapped_column(String(300), default="")


class EpiMember(Base):
    """A student or teacher taking part in an EPI."""

    __tablename__ = "epi_members"
    __table_args__ = (UniqueConstraint("epi_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    epi_id: Mapped[int] = fk("epis.id")
    person_id: Mapped[int] = fk("people.id", index=True)


class ClassCouncil(EstablishmentYearMixin, Base):
    """A conseil de classe of a period."""

    __tablename__ = "class_councils"

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int | None] = fk("classes.id", nullable=True, ondelete="SET NULL", index=True)
    period_id: Mapped[int | None] = fk("periods.id", nullable=True, ondelete="SET NULL", index=True)
    held_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    notes: Mapped[str] = mapped_column(Text, default="")


class HeadTeacher(EstablishmentYearMixin, Base):
    """A professeur principal of a class."""

    __tablename__ = "head_teachers"

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int] = fk("classes.id", index=True)
    teacher_id: Mapped[int] = fk("people.id", index=True)


class MailMerge(EstablishmentYearMixin, Base):
    """A publipostage (mail merge) prepared by the school office."""

    __tablename__ = "mail_merges"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(Text)
    recipient_count: Mapped[int] = mapped_column(Integer, default=0)
    author_id: Mapped[int | None] = fk("people.id", nullable=True, ondelete="SET NULL")
