"""Declarative base of the ENT model: naming convention and shared column helpers."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable

from sqlalchemy import DateTime, Enum, ForeignKey, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every table of the project (ENT model and engine state)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def enum_column(enum_type: type[enum.Enum], **kwargs: object) -> Enum:
    """A portable enum column: VARCHAR with a CHECK constraint, values stored as strings."""
    return Enum(
        enum_type,
        native_enum=False,
        create_constraint=True,
        length=max(32, *(len(str(member.value)) for member in enum_type)),
        values_callable=lambda members: [member.value for member in members],
        name=enum_type.__name__.lower(),
        validate_strings=True,
        **kwargs,  # type: ignore[arg-type]
    )


def id_column() -> Mapped[int]:
    """Integer surrogate primary key."""
    return mapped_column(Integer, primary_key=True)


def fk(target: str, *, nullable: bool = False, index: bool = False,
       ondelete: str | None = "CASCADE") -> Mapped:  # type: ignore[type-arg]
    """A foreign key column to ``target`` (``table.column``)."""
    return mapped_column(ForeignKey(target, ondelete=ondelete), nullable=nullable, index=index)


def utc_datetime() -> DateTime:
    """A timezone-aware timestamp type."""
    return DateTime(timezone=True)


def system_clock() -> dt.datetime:
    """The machine's current time in UTC (aware)."""
    return dt.datetime.now(dt.UTC)


clock: Callable[[], dt.datetime] = system_clock
"""Where :func:`utcnow` reads the time; a test pins it with
``monkeypatch.setattr(yearchange_tui.ent.base, "clock", lambda: moment)``."""


def utcnow() -> dt.datetime:
    """Current UTC time (aware): the one clock of the package.

    Every timestamp the package writes (units, audit, imports, calendar edits) and every
    "today" it decides on comes from here, so pinning :data:`clock` pins them all.
    """
    return clock()
