"""What the step-5 wizard reads and writes, through :mod:`yearchange_tui.timetable.school_life`.

The proposal (periods cut from the project calendar, opening and closing dates), the
missing-items check and the write all come from step 5's own functions; this module only
adds the alternations to show, the step-order guard, the audit entry and the read-only
refusal, so the wizard and ``yearchange school-life-init`` / ``run init-school-life``
cannot disagree.

Runs on worker threads of the console; nothing here touches a widget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select

from yearchange_tui.changeover.steps.init_school_life import run_init_school_life
from yearchange_tui.ent.models import Alternation, Establishment
from yearchange_tui.timetable.school_life import (
    STEP,
    SchoolLifeProposal,
    SchoolLifeStatus,
    apply_school_life,
    current_and_next_years,
    propose_school_life,
    school_life_check,
)
from yearchange_tui.workflow.audit import audit
from yearchange_tui.workflow.guards import GuardRefused, check_step_order
from yearchange_tui.workflow.units import current_school_year

READ_ONLY_REFUSAL = ("Mode consultation : la vie scolaire ne peut pas être enregistrée "
                     "(rien n'a été écrit).")


class SchoolLifeRefused(Exception):
    """The write was refused before anything was written (French message)."""


@dataclass(frozen=True)
class AlternationRow:
    """One week pattern of year N+1 (semaine A, semaine B…), from the timetable import."""

    name: str
    weeks: tuple[int, ...]


@dataclass(frozen=True)
class SchoolLifeState:
    """Everything the wizard shows for one establishment.

    Attributes:
        establishment_id: the establishment.
        proposal: step 5's proposal (what is already set wins over the calendar).
        alternations: the alternations of year N+1.
        status: the missing-items check and the step-5 unit state.
        next_year_exists: False before step 4 creates year N+1 (nothing can be written).
        guard_problem: the step-order refusal in French, or ``""``.
    """

    establishment_id: int
    proposal: SchoolLifeProposal
    alternations: tuple[AlternationRow, ...]
    status: SchoolLifeStatus
    next_year_exists: bool
    guard_problem: str = ""


@dataclass(frozen=True)
class SchoolLifeOutcome:
    """What a « Valider » did.

    Attributes:
        written: rows written by step 5 (``periodes``, ``dates_ouverture``).
        state: the establishment read again, with the check re-run.
        step_done: True when the step-5 unit is done after the write.
        step_message: why the unit is not done (blocking items), or ``""``.
        details: what was written, as audited.
    """

    written: dict[str, int]
    state: SchoolLifeState
    step_done: bool
    step_message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class SchoolLifeSource(Protocol):
    """Reads and writes one establishment's school-life frame for the wizard."""

    read_only: bool

    def load(self, uai: str) -> SchoolLifeState | None:
        """The proposal and the check, or None for an unknown UAI."""

    def apply(self, uai: str, proposal: SchoolLifeProposal, *,
              replace: bool) -> SchoolLifeOutcome:
        """Write ``proposal`` then run the check (see :class:`DatabaseSchoolLifeSource`)."""


class DatabaseSchoolLifeSource:
    """The wizard's source over the database.

    Args:
        database: the open database.
        read_only: refuse every write (support staff), whatever the screen offers.
    """

    def __init__(self, database: Any, *, read_only: bool = False) -> None:
        self.database = database
        self.read_only = read_only

    def _establishment_id(self, session: Any, uai: str) -> int | None:
        return session.scalar(select(Establishment.id).where(
            Establishment.uai == uai.strip().upper()))

    def load(self, uai: str) -> SchoolLifeState | None:
        """Read the proposal, the alternations, the guard and the check (a few queries)."""
        with self.database.session() as session:
            establishment_id = self._establishment_id(session, uai)
            if establishment_id is None:
                return None
            proposal = propose_school_life(session, establishment_id)
            year_n, year_next = current_and_next_years(session)
            guard_problem = ""
            try:
                check_step_order(session, establishment_id, year_n.id, STEP)
            except GuardRefused as refusal:
                guard_problem = refusal.message
            alternations: tuple[AlternationRow, ...] = ()
            if year_next is not None:
                alternations = tuple(
                    AlternationRow(name, tuple(int(week) for week in weeks.split(",")
                                               if week.strip().isdigit()))
                    for name, weeks in session.execute(
                        select(Alternation.name, Alternation.weeks).where(
                            Alternation.establishment_id == establishment_id,
                            Alternation.school_year_id == year_next.id)
                        .order_by(Alternation.name)))
        (status,) = school_life_check(self.database, [establishment_id])
        return SchoolLifeState(establishment_id, proposal, alternations, status,
                               year_next is not None, guard_problem)

    def apply(self, uai: str, proposal: SchoolLifeProposal, *,
              replace: bool) -> SchoolLifeOutcome:
        """Write the periods and dates, audit it, then run step 5's unit (guard and check).

        Args:
            uai: the establishment.
            proposal: the wizard's (possibly edited) proposal.
            replace: replace the periods and dates already set.

        Raises:
            PermissionError: in read-only mode (nothing written).
            SchoolLifeRefused: the step order refuses step 5 (refusal audited, nothing
                else written), or the establishment is unknown.
            SchoolLifeError: step 5 refuses the proposal (no year N+1, periods that do
                not fit); nothing written.
        """
        if self.read_only:
            raise PermissionError(READ_ONLY_REFUSAL)
        refusal_message = ""
        written: dict[str, int] = {}
        details: dict[str, Any] = {}
        with self.database.session() as session:
            establishment_id = self._establishment_id(session, uai)
            if establishment_id is None:
                raise SchoolLifeRefused(f"Établissement inconnu : {uai}.")
            year_n = current_school_year(session)
            try:
                overridden = check_step_order(session, establishment_id, year_n.id, STEP)
            except GuardRefused as refusal:
                refusal_message = refusal.message
                audit(session, "school-life", "refused", establishment_id=establishment_id,
                      step=STEP.value, details={"guard": refusal.code,
                                                "message": refusal.message, "via": "console"})
            else:
                written = apply_school_life(session, establishment_id, proposal,
                                            replace=replace)
                details = {
                    "via": "console", "replace": replace, "written": written,
                    "period_kind": proposal.period_kind.value,
                    "opens_on": proposal.opens_on.isoformat(),
                    "closes_on": proposal.closes_on.isoformat(),
                    "periods": [[p.name, p.starts_on.isoformat(), p.ends_on.isoformat()]
                                for p in proposal.periods]}
                audit(session, "school-life", "applied", establishment_id=establishment_id,
                      step=STEP.value, override=overridden, details=details)
        if refusal_message:
            raise SchoolLifeRefused(refusal_message)
        report = run_init_school_life(self.database, [establishment_id], apply_defaults=False)
        state = self.load(uai)
        assert state is not None
        key = state.proposal.uai
        done = key in report.done or key in report.already_done
        message = report.refused.get(key) or report.failed.get(key) or ""
        return SchoolLifeOutcome(written, state, done, message, details)
