"""Classes, groups and their members."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yearchange_tui.ent.base import Base, enum_column, fk
from yearchange_tui.ent.models.enums import ClassRole, GroupKind, GroupLifetime


class SchoolClass(Base):
    """A class of an establishment for one school year (created only from its students)."""

    __tablename__ = "classes"
    __table_args__ = (UniqueConstraint("establishment_id", "school_year_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id")
    school_year_id: Mapped[int] = fk("school_years.id", index=True)
    code: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
    mef_code: Mapped[str] = mapped_column(String(16), default="")


class ClassMembership(Base):
    """A student or teacher of a class."""

    __tablename__ = "class_memberships"
    __table_args__ = (UniqueConstraint("class_id", "person_id", "role"),
                      Index("ix_class_memberships_person", "person_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int] = fk("classes.id")
    person_id: Mapped[int] = fk("people.id")
    role: Mapped[ClassRole] = mapped_column(enum_column(ClassRole))
    entered_on: Mapped[dt.date | None] = mapped_column(Date)


class Group(Base):
    """A group: the admins group, a timetable option group, a free group or an AAF group.

    A free group is "attached to a teaching service" when a teaching service names it;
    the option-group deletion of step 3 never touches it, its lifetime decides.
    """

    __tablename__ = "groups"
    __table_args__ = (Index("ix_groups_establishment_year_kind", "establishment_id",
                            "school_year_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id")
    # Year of creation for year-scoped groups (option groups, AAF groups); free groups keep it too.
    school_year_id: Mapped[int | None] = fk("school_years.id", nullable=True, index=True)
    kind: Mapped[GroupKind] = mapped_column(enum_column(GroupKind))
    code: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(200))
    lifetime: Mapped[GroupLifetime] = mapped_column(enum_column(GroupLifetime),
                                                    default=GroupLifetime.UNLIMITED)
    # Import report that created it (timetable option groups); re-imports replace only these.
    import_report_id: Mapped[int | None] = fk("import_reports.id", nullable=True,
                                              ondelete="SET NULL", index=True)


class GroupMembership(Base):
    """A member of a group."""

    __tablename__ = "group_memberships"
    __table_args__ = (UniqueConstraint("group_id", "person_id"),
                      Index("ix_group_memberships_person", "person_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = fk("groups.id")
    person_id: Mapped[int] = fk("people.id")


class GroupManager(Base):
    """A manager (gestionnaire) of a free group: receives the step-3 notices."""

    __tablename__ = "group_managers"
    __table_args__ = (UniqueConstraint("group_id", "person_id"),
                      Index("ix_group_managers_person", "person_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = fk("groups.id")
    person_id: Mapped[int] = fk("people.id")
