"""What the step-5 wizard reads and writes, through :mod:`yearchange_tui.timetable.school_life`,
and how it asks the engine to run step 5.

The proposal (periods cut from the project calendar, opening and closing dates), the
missing-items check and the write all come from step 5's own functions; this module only
adds the alternations to show, the step-order guard, the audit entry and the read-only
refusal, so the wizard and ``yearchange school-life-init`` / ``run init-school-life``
cannot disagree. The step-5 unit itself runs in the engine only: the wizard sends a
``run`` request and follows it (:func:`follow_step_request`).

Runs on worker threads of the console; nothing here touches a widget.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select

from yearchange_tui.ent.models import Alternation
from yearchange_tui.scheduling.api import EngineClient, EngineMode, RequestOutcome
from yearchange_tui.scheduling.models import RequestStatus, TaskStatus
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
from yearchange_tui.workflow.establishments import UnknownEstablishmentError, establishment_by_uai
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
class SchoolLifeWritten:
    """What « Valider » wrote (a data entry, audited) before asking the engine.

    Attributes:
        written: rows written by step 5 (``periodes``, ``dates_ouverture``).
        details: what was written, as audited.
    """

    written: dict[str, int]
    details: dict[str, Any] = field(default_factory=dict)


class EngineVerdict(enum.StrEnum):
    """The engine's answer to the wizard's step-5 request."""

    DONE = "done"  # the step-5 unit is done
    MISSING = "missing"  # the unit is blocked: blocking items are missing
    REFUSED = "refused"  # the engine (or a read-only client) refused the request
    FAILED = "failed"  # the request or the unit failed
    QUEUED = "queued"  # waiting in the database (no engine runs, or not finished yet)
    UNCHANGED = "unchanged"  # nothing queued: step 5 already done, or already queued


@dataclass(frozen=True)
class EngineAnswer:
    """Where the wizard's step-5 request ended up.

    Attributes:
        verdict: what the engine did with it.
        message: the engine's words (refusal, missing items, failure), or ``""``.
        request_id: the request's number (None when the client refused to send it).
        engine_runs: False when no engine held the lease (the request waits for one).
    """

    verdict: EngineVerdict
    message: str = ""
    request_id: int | None = None
    engine_runs: bool = True


@dataclass(frozen=True)
class SchoolLifeOutcome:
    """What a « Valider » did: the write, the engine's answer, the establishment re-read.

    Attributes:
        written: rows written by step 5 (``periodes``, ``dates_ouverture``).
        state: the establishment read again, with the check re-run.
        answer: the engine's answer to the step-5 request.
    """

    written: dict[str, int]
    state: SchoolLifeState
    answer: EngineAnswer


FOLLOW_TIMEOUT = 60.0
"""Seconds the wizard follows its request before saying it is still in the engine."""


def follow_step_request(client: EngineClient, request_id: int, *,
                        timeout: float = FOLLOW_TIMEOUT, poll: float = 0.5,
                        cancelled: Callable[[], bool] = lambda: False) -> EngineAnswer:
    """Follow a step-5 ``run`` request until the engine settled it (worker thread).

    Args:
        client: the engine client the request went through.
        request_id: the request.
        timeout: seconds to follow it before answering « queued ».
        poll: seconds between two reads.
        cancelled: stops following early (the wizard was closed).
    """
    deadline = time.monotonic() + timeout
    while True:
        if client.status().mode is EngineMode.NONE:
            return EngineAnswer(EngineVerdict.QUEUED, "", request_id, engine_runs=False)
        outcome = client.request_outcome(request_id)
        if outcome is not None and outcome.settled:
            return _answer(outcome)
        if outcome is not None and outcome.status is RequestStatus.FAILED:
            return EngineAnswer(EngineVerdict.FAILED, outcome.message, request_id)
        if cancelled() or time.monotonic() >= deadline:
            return EngineAnswer(EngineVerdict.QUEUED, outcome.message if outcome else "",
                                request_id)
        time.sleep(poll)


def _answer(outcome: RequestOutcome) -> EngineAnswer:
    """The verdict of a settled request (one establishment)."""
    if outcome.status is RequestStatus.REFUSED:
        return EngineAnswer(EngineVerdict.REFUSED, outcome.message, outcome.id)
    if outcome.status is RequestStatus.FAILED:
        return EngineAnswer(EngineVerdict.FAILED, outcome.message, outcome.id)
    if not outcome.tasks:
        return EngineAnswer(EngineVerdict.UNCHANGED, outcome.message, outcome.id)
    task = outcome.tasks[0]
    verdict = {TaskStatus.DONE: EngineVerdict.DONE,
               TaskStatus.BLOCKED: EngineVerdict.MISSING}.get(task.status, EngineVerdict.FAILED)
    return EngineAnswer(verdict, task.reason, outcome.id)


class SchoolLifeSource(Protocol):
    """Reads and writes one establishment's school-life frame for the wizard."""

    read_only: bool

    def load(self, uai: str) -> SchoolLifeState | None:
        """The proposal and the check, or None for an unknown UAI."""

    def apply(self, uai: str, proposal: SchoolLifeProposal, *,
              replace: bool) -> SchoolLifeWritten:
        """Write ``proposal`` (see :class:`DatabaseSchoolLifeSource`)."""


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
        try:
            return establishment_by_uai(session, uai).id
        except UnknownEstablishmentError:
            return None

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
              replace: bool) -> SchoolLifeWritten:
        """Write the periods and dates and audit it (step 5's unit runs in the engine).

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
        return SchoolLifeWritten(written, details)
