"""Engine state tables: per-(establishment, step) units, dry-run reports, archive
manifests, guard overrides and the audit trail.

They live on the same metadata as the ENT model (one database, one migration chain).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from aenum import extend_enum
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from yearchange_tui.ent.base import Base, enum_column, fk


class Step(enum.StrEnum):
    """The steps of the change-over, by their CLI names.

    Steps 1 to 5 are the seed's; a step module may declare one more with
    :func:`declare_step` (it is numbered after the last one).
    """

    PURGE_TRASH = "purge-trash"
    ARCHIVE = "archive"
    DELETE_OBSOLETE = "delete-obsolete"
    INIT_DIRECTORY = "init-directory"
    INIT_SCHOOL_LIFE = "init-school-life"

    @property
    def number(self) -> int:
        """Step number as in the seed (1 to 5; declared steps follow)."""
        return list(Step).index(self) + 1

    @property
    def label(self) -> str:
        """French name shown to operators."""
        return STEP_LABELS[self]


STEP_LABELS = {
    Step.PURGE_TRASH: "Purge de la corbeille",
    Step.ARCHIVE: "Archivage de fin d'année N",
    Step.DELETE_OBSOLETE: "Suppression des données obsolètes N",
    Step.INIT_DIRECTORY: "Initialisation de l'annuaire N+1",
    Step.INIT_SCHOOL_LIFE: "Initialisation de la vie scolaire N+1",
}

# A step may start only when these steps are done for the same establishment.
STEP_PREREQUISITES: dict[Step, tuple[Step, ...]] = {
    Step.PURGE_TRASH: (),
    Step.ARCHIVE: (),
    Step.DELETE_OBSOLETE: (Step.PURGE_TRASH, Step.ARCHIVE),
    Step.INIT_DIRECTORY: (Step.DELETE_OBSOLETE,),
    Step.INIT_SCHOOL_LIFE: (Step.INIT_DIRECTORY,),
}


def declare_step(name: str, key: str, *, label: str,
                 prerequisites: tuple[Step, ...] = ()) -> Step:
    """Add a step to :class:`Step`: how a step module under ``changeover/steps/`` that is
    not one of the seed's declares its key (no migration: step keys are stored as strings).

    Args:
        name: the member name (``"COUNT_PEOPLE"``).
        key: the CLI name stored in the database (``"count-people"``).
        label: the French name shown to operators.
        prerequisites: steps that must be done first for the same establishment.

    Returns:
        The new step (the existing one when the module is imported again).
    """
    if key in Step._value2member_map_:
        return Step(key)
    extend_enum(Step, name, key)
    step = Step(key)
    STEP_LABELS[step] = label
    STEP_PREREQUISITES[step] = prerequisites
    return step


class StepKey(TypeDecorator[Step]):
    """A step stored as its CLI name (VARCHAR, no CHECK constraint), read back as a Step."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else Step(value).value

    def process_result_value(self, value: Any, dialect: Any) -> Step | None:
        return None if value is None else Step(value)


class UnitStatus(enum.StrEnum):
    """State of one (establishment, step) unit of work."""

    PENDING = "pending"  # planifié / en attente
    RUNNING = "running"  # en cours
    DONE = "done"  # terminé
    FAILED = "failed"  # échec
    BLOCKED = "blocked"  # bloqué (a prerequisite or guard refused it)
    MISSED = "missed"  # manqué (its window passed)
    SKIPPED = "skipped"  # ignoré


UNIT_STATUS_LABELS = {
    UnitStatus.PENDING: "planifié",
    UnitStatus.RUNNING: "en cours",
    UnitStatus.DONE: "terminé",
    UnitStatus.FAILED: "échec",
    UnitStatus.BLOCKED: "bloqué",
    UnitStatus.MISSED: "manqué",
    UnitStatus.SKIPPED: "ignoré",
}


UNIT_STATUS_GLYPHS = {
    UnitStatus.PENDING: "○",
    UnitStatus.RUNNING: "◐",
    UnitStatus.DONE: "✓",
    UnitStatus.FAILED: "✗",
    UnitStatus.BLOCKED: "⊘",
    UnitStatus.MISSED: "!",
    UnitStatus.SKIPPED: "–",
}


class StepUnit(Base):
    """Progress of one step for one establishment in one change-over (year N to N+1)."""

    __tablename__ = "step_units"
    __table_args__ = (UniqueConstraint("establishment_id", "school_year_id", "step"),
                      Index("ix_step_units_step_status", "step", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id")
    # Year N, the year being closed by this change-over.
    school_year_id: Mapped[int] = fk("school_years.id")
    step: Mapped[Step] = mapped_column(StepKey())
    status: Mapped[UnitStatus] = mapped_column(enum_column(UnitStatus),
                                               default=UnitStatus.PENDING)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    # JSON: the phases already committed, so a resumed run skips them.
    checkpoint: Mapped[str] = mapped_column(Text, default="{}")
    # JSON: what the real run did (counts per kind).
    counts: Mapped[str] = mapped_column(Text, default="{}")
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class UnitClaim(Base):
    """Who runs a unit right now: the claim a process takes before it runs the unit.

    One row per running unit (deleted when the unit stops); see
    :mod:`yearchange_tui.workflow.claims`.
    """

    __tablename__ = "unit_claims"

    unit_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("step_units.id", ondelete="CASCADE"), primary_key=True)
    token: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    claimed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class DryRunReport(Base):
    """What a dry run found for one establishment and step: counts, lists, warnings (JSON)."""

    __tablename__ = "dry_run_reports"
    __table_args__ = (Index("ix_dry_run_reports_unit", "establishment_id", "school_year_id",
                            "step", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id")
    school_year_id: Mapped[int] = fk("school_years.id")
    step: Mapped[Step] = mapped_column(StepKey())
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    counts: Mapped[str] = mapped_column(Text, default="{}")
    lists: Mapped[str] = mapped_column(Text, default="{}")
    warnings: Mapped[str] = mapped_column(Text, default="[]")


class ArchiveManifest(Base):
    """One archive written by step 2, with its checksum (verified before step 3)."""

    __tablename__ = "archive_manifests"
    __table_args__ = (UniqueConstraint("establishment_id", "school_year_id", "archive_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int] = fk("establishments.id")
    school_year_id: Mapped[int] = fk("school_years.id")
    # Stable key of the archive within the unit, e.g. "cahier-de-textes:6A" (step 2).
    archive_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(50))
    relative_path: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    entry_count: Mapped[int] = mapped_column(Integer, default=0)
    stored_file_id: Mapped[int | None] = fk("stored_files.id", nullable=True,
                                            ondelete="SET NULL", index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class GuardOverride(Base):
    """An MOE override of a guard for one establishment (or all when establishment is empty)."""

    __tablename__ = "guard_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    establishment_id: Mapped[int | None] = fk("establishments.id", nullable=True)
    guard: Mapped[str] = mapped_column(String(50))
    reason: Mapped[str] = mapped_column(Text)
    granted_by: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditEntry(Base):
    """Who did what, when, from where, with which outcome and counts."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_at", "at"),
                      Index("ix_audit_entries_establishment", "establishment_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    os_user: Mapped[str] = mapped_column(String(100))
    ssh_client: Mapped[str] = mapped_column(String(100), default="")
    host: Mapped[str] = mapped_column(String(200), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    action: Mapped[str] = mapped_column(String(50))
    establishment_id: Mapped[int | None] = fk("establishments.id", nullable=True,
                                              ondelete="SET NULL")
    step: Mapped[str] = mapped_column(String(30), default="")
    outcome: Mapped[str] = mapped_column(String(30))
    override: Mapped[bool] = mapped_column(Boolean, default=False)
    details: Mapped[str] = mapped_column(Text, default="{}")


class CalendarDate(Base):
    """An edited date of the change-over calendar (the template fills in the rest).

    The most specific row wins: establishment, then project and kind, then kind, then
    project, then every project. ``on_date`` None removes the milestone (no date).
    """

    __tablename__ = "calendar_dates"
    __table_args__ = (Index("ix_calendar_dates_year_milestone", "school_year_start",
                            "milestone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Year N of the change-over (2025 for 2025-2026 → 2026-2027).
    school_year_start: Mapped[int] = mapped_column(Integer)
    milestone: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[int | None] = fk("projects.id", nullable=True, index=True)
    # college, lycee or other; None for every kind.
    establishment_kind: Mapped[str | None] = mapped_column(String(16))
    establishment_id: Mapped[int | None] = fk("establishments.id", nullable=True, index=True)
    on_date: Mapped[dt.date | None] = mapped_column(Date)
    # Local time of day (the calendar's time zone); None for the milestone's default time.
    at_time: Mapped[dt.time | None] = mapped_column(Time)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(200), default="")


class MaintenanceWindowRow(Base):
    """A planned service interruption: units of its scope run only inside it."""

    __tablename__ = "maintenance_windows"
    __table_args__ = (Index("ix_maintenance_windows_year_scope", "school_year_start", "scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_year_start: Mapped[int] = mapped_column(Integer)
    project_id: Mapped[int | None] = fk("projects.id", nullable=True, index=True)
    # "1-3" (steps 1 to 3) or "4" (step 4).
    scope: Mapped[str] = mapped_column(String(8))
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200), default="")
