"""Address book entries and trombinoscope photos."""

from __future__ import annotations

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yearchange_tui.ent.base import Base, fk


class AddressBookEntry(Base):
    """An entry of a user's carnet d'adresses (deleted at step 3)."""

    __tablename__ = "address_book_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id", index=True)
    owner_id: Mapped[int] = fk("people.id", index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(30), default="")


class Photo(Base):
    """A trombinoscope photo of a person (students' photos are deleted at step 3)."""

    __tablename__ = "photos"
    __table_args__ = (UniqueConstraint("person_id", "school_year_id"),
                      Index("ix_photos_establishment_year", "establishment_id", "school_year_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id")
    school_year_id: Mapped[int] = fk("school_years.id")
    person_id: Mapped[int] = fk("people.id")
    stored_file_id: Mapped[int] = fk("stored_files.id", index=True, ondelete="RESTRICT")
