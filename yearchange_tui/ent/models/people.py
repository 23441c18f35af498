"""People of the directory: students, relatives, teachers and other staff."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, Index, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from yearchange_tui.ent.base import Base, enum_column, fk
from yearchange_tui.ent.folding import PERSON_FOLD_MAX, person_search_default, person_search_text
from yearchange_tui.ent.models.enums import MessageArchivePolicy, PersonKind, Profile


class Person(Base):
    """A user of the ENT. Students carry an INE; AAF people carry their jointure id."""

    __tablename__ = "people"
    __table_args__ = (Index("ix_people_establishment_kind", "establishment_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Attachment establishment (ENTPersonStructRattach); relatives follow their children.
    establishment_id: Mapped[int | None] = fk("establishments.id", nullable=True,
                                              ondelete="SET NULL")
    kind: Mapped[PersonKind] = mapped_column(enum_column(PersonKind))
    aaf_jointure: Mapped[str | None] = mapped_column(String(32), unique=True)
    ine: Mapped[str | None] = mapped_column(String(16), unique=True)
    login: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(8), default="")
    last_name: Mapped[str] = mapped_column(String(100))
    first_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    email: Mapped[str] = mapped_column(String(200), default="")
    message_archive_policy: Mapped[MessageArchivePolicy] = mapped_column(
        enum_column(MessageArchivePolicy), default=MessageArchivePolicy.SCHOOL_YEAR)
    # Set when a complete AAF delivery no longer carries the person (flagged, not deleted).
    disappeared_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Folded names and INE (ent/folding.py), written with the row, for the support search.
    search_folded: Mapped[str] = mapped_column(String(PERSON_FOLD_MAX),
                                               default=person_search_default,
                                               server_default="", index=True)


@event.listens_for(Person, "before_update")
def _refold_person(_mapper: Any, _connection: Any, person: Person) -> None:
    """An ORM update of names or INE refolds the search column (bulk writers set it)."""
    person.search_folded = person_search_text(person.last_name, person.first_name, person.ine)


class PersonProfile(Base):
    """A profile a person holds in an establishment (a teacher may serve two)."""

    __tablename__ = "person_profiles"
    __table_args__ = (UniqueConstraint("person_id", "establishment_id", "profile"),
                      Index("ix_person_profiles_establishment", "establishment_id", "profile"))

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = fk("people.id")
    establishment_id: Mapped[int] = fk("establishments.id")
    profile: Mapped[Profile] = mapped_column(enum_column(Profile))
    function_code: Mapped[str] = mapped_column(String(16), default="")


class StudentRelative(Base):
    """The link between a student and a relative (AAF ENTElevePersRelEleve)."""

    __tablename__ = "student_relatives"
    __table_args__ = (UniqueConstraint("student_id", "relative_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = fk("people.id")
    relative_id: Mapped[int] = fk("people.id", index=True)
    link_code: Mapped[str] = mapped_column(String(4), default="")
    legal_responsibility: Mapped[int] = mapped_column(default=0)
    financial: Mapped[bool] = mapped_column(Boolean, default=False)
    contact: Mapped[bool] = mapped_column(Boolean, default=False)
