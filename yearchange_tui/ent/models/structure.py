"""Projects, school years and establishments."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, validates

from yearchange_tui.ent.base import Base, enum_column, fk
from yearchange_tui.ent.models.enums import EstablishmentKind
from yearchange_tui.ent.uai import validate_uai


class Project(Base):
    """An ENT deployment (one académie or region) with its own calendar and settings."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    ent_name: Mapped[str] = mapped_column(String(100), default="ENT")
    academy_code: Mapped[str] = mapped_column(String(8), default="")
    # URL of the page where a manager changes a free group's lifetime; ``{group_id}`` is replaced.
    group_lifetime_url_template: Mapped[str] = mapped_column(
        String(500), default="https://ent.example.fr/groupes/{group_id}/duree-de-vie")
    # Newest timetable versions (EDT 2021, UDT 27) accepted once activated (seed §2.1).
    newest_timetable_versions_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    automatic_timetable_import: Mapped[bool] = mapped_column(Boolean, default=False)
    # Access block of step 4 (students and parents redirected to an explanation page).
    access_block_starts_on: Mapped[dt.date | None] = mapped_column(Date)
    access_block_ends_on: Mapped[dt.date | None] = mapped_column(Date)
    access_block_message: Mapped[str] = mapped_column(Text, default="")
    access_block_profiles: Mapped[str] = mapped_column(String(100), default="National_ELV,National_TUT")
    access_block_override_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    deactivation_notices_suspended_until: Mapped[dt.date | None] = mapped_column(Date)
    # Limits within which an establishment may amend its block dates (None: the project's
    # own start, and mid-September).
    access_block_earliest_start: Mapped[dt.date | None] = mapped_column(Date)
    access_block_latest_end: Mapped[dt.date | None] = mapped_column(Date)
    # Exchange days of the AAF rhythm (seed §3.3): French weekday names, comma-separated.
    aaf_delta_days: Mapped[str] = mapped_column(String(100), default="lundi,mardi,mercredi,jeudi")
    aaf_complete_days: Mapped[str] = mapped_column(String(100), default="samedi")
    # Step 3 sends the managers' summary of deleted free groups only when the project says so.
    free_group_summary: Mapped[bool] = mapped_column(Boolean, default=False)


class SchoolYear(Base):
    """A school year, ``2025-2026``; ``start_year`` is 2025."""

    __tablename__ = "school_years"

    id: Mapped[int] = mapped_column(primary_key=True)
    start_year: Mapped[int] = mapped_column(Integer, unique=True)
    label: Mapped[str] = mapped_column(String(9), unique=True)
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    is_current: Mapped[bool] = mapped_column(Boolean, default=False)


class Establishment(Base):
    """A collège or lycée (or another structure), identified by its UAI."""

    __tablename__ = "establishments"
    __table_args__ = (Index("ix_establishments_project_kind", "project_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = fk("projects.id")
    uai: Mapped[str] = mapped_column(String(8), unique=True)
    aaf_jointure: Mapped[str | None] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[EstablishmentKind] = mapped_column(enum_column(EstablishmentKind))
    town: Mapped[str] = mapped_column(String(100), default="")
    postal_code: Mapped[str] = mapped_column(String(10), default="")
    closing_date: Mapped[dt.date | None] = mapped_column(Date)
    # Establishment-level access block dates, within the project's limits when allowed.
    access_block_starts_on: Mapped[dt.date | None] = mapped_column(Date)
    access_block_ends_on: Mapped[dt.date | None] = mapped_column(Date)
    # Establishment-level block message (None: the project's), when the project allows it.
    access_block_message: Mapped[str | None] = mapped_column(Text)
    # The project chose « valeurs par défaut » for step 5: the engine writes default periods
    # and dates (otherwise the establishment does, and the engine only checks).
    school_life_defaults: Mapped[bool] = mapped_column(Boolean, default=False)

    @validates("uai")
    def _check_uai(self, _key: str, value: str) -> str:
        return validate_uai(value)


class Subject(Base):
    """A subject of the académie nomenclature (AAF MatiereEducNat)."""

    __tablename__ = "subjects"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    short_label: Mapped[str] = mapped_column(String(20), default="")


class Mef(Base):
    """A MEF (module élémentaire de formation) of the nomenclature (AAF MefEducNat)."""

    __tablename__ = "mefs"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    level_label: Mapped[str] = mapped_column(String(200), default="")

