"""Guards of the change-over order (seed §4.1, product.md rules), with audited MOE overrides.

- Steps run in order per establishment: 1 and 2 before 3, 3 before 4, 4 before 5.
- AAF imports are frozen from step 1 until step 3 is done.
- CSV and timetable imports are refused from step 2 until step 4 is done.
- Steps 1 to 3 asked by an operator (``yearchange run``, an engine ``run`` request) are
  refused before the establishment's closure or outside its maintenance window, as the
  calendar decides (:func:`~yearchange_tui.workflow.calendar.steps_one_to_three_problem`),
  unless the request carries ``--hors-fenetre`` with a reason: a one-shot override, audited
  per establishment like the standing ones.

A refusal raises :class:`GuardRefused` with a stable code and a French message and
changes nothing; an active :class:`GuardOverride` lets the action through, and the
caller records it in the audit trail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from yearchange_tui.ent.base import utcnow
from yearchange_tui.ent.models import Establishment
from yearchange_tui.workflow.audit import audit, operator_identity
from yearchange_tui.workflow.calendar import build_plan, steps_one_to_three_problem
from yearchange_tui.workflow.establishments import EstablishmentRef
from yearchange_tui.workflow.models import (
    STEP_PREREQUISITES,
    GuardOverride,
    Step,
    StepUnit,
    UnitStatus,
)

GUARD_STEP_ORDER = "ordre-des-etapes"
GUARD_AAF_FREEZE = "gel-aaf"
GUARD_IMPORT_FREEZE = "gel-imports"
GUARDS = (GUARD_STEP_ORDER, GUARD_AAF_FREEZE, GUARD_IMPORT_FREEZE)
GUARD_RUN_WINDOW = "hors-fenetre"
"""One-shot: given per run (``--hors-fenetre --reason``), never stored as a standing override."""

WINDOW_STEPS = (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE)
"""The steps an operator may not start before closure or outside their window."""

WINDOW_REMEDY = ("Pour passer outre (tracé dans l'audit) : --hors-fenetre --reason MOTIF "
                 "(yearchange run, ou engine-request run / retry) ; dans la console, une "
                 "seconde confirmation et un motif.")
"""The way out of a window refusal, the same wherever it is refused (CLI, engine, console)."""

_STARTED = (UnitStatus.RUNNING, UnitStatus.DONE, UnitStatus.FAILED)


class GuardRefused(Exception):
    """An action refused by a guard: stable ``code`` and French ``message``."""

    def __init__(self, code: str, message: str, establishment_uai: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.establishment_uai = establishment_uai


def unit_statuses(session: Session, establishment_id: int,
                  school_year_id: int) -> dict[Step, UnitStatus]:
    """Status of every step of one establishment's change-over (missing units are pending)."""
    rows = session.execute(
        select(StepUnit.step, StepUnit.status).where(
            StepUnit.establishment_id == establishment_id,
            StepUnit.school_year_id == school_year_id)).all()
    statuses = {step: UnitStatus.PENDING for step in Step}
    statuses.update({Step(step): UnitStatus(status) for step, status in rows})
    return statuses


def has_override(session: Session, guard: str, establishment_id: int | None) -> bool:
    """True when an active override of ``guard`` covers the establishment."""
    condition = GuardOverride.establishment_id.is_(None)
    if establishment_id is not None:
        condition = or_(condition, GuardOverride.establishment_id == establishment_id)
    return session.scalar(select(GuardOverride.id).where(
        GuardOverride.guard == guard, GuardOverride.revoked.is_(False), condition).limit(1)) is not None


def grant_override(session: Session, guard: str, reason: str,
                   establishment_id: int | None = None) -> None:
    """Record an MOE override of ``guard`` (audited)."""
    if guard not in GUARDS:
        raise ValueError(f"garde inconnue « {guard} » (connues : {', '.join(GUARDS)})")
    if not reason.strip():
        raise ValueError("une dérogation doit être motivée")
    session.add(GuardOverride(establishment_id=establishment_id, guard=guard, reason=reason,
                              granted_by=operator_identity()["os_user"],
                              granted_at=utcnow()))
    audit(session, "override", "granted", establishment_id=establishment_id,
          override=True, details={"guard": guard, "reason": reason})


def _uai(session: Session, establishment_id: int) -> str:
    return session.scalar(select(Establishment.uai).where(Establishment.id == establishment_id)) or "?"


def check_step_order(session: Session, establishment_id: int, school_year_id: int,
                     step: Step) -> bool:
    """Refuse ``step`` while its prerequisites are not done.

    Returns:
        True when an override let it through (the caller audits the run as overridden).

    Raises:
        GuardRefused: code ``ordre-des-etapes``.
    """
    statuses = unit_statuses(session, establishment_id, school_year_id)
    missing = [p for p in STEP_PREREQUISITES[step] if statuses[p] is not UnitStatus.DONE]
    if not missing:
        return False
    if has_override(session, GUARD_STEP_ORDER, establishment_id):
        return True
    uai = _uai(session, establishment_id)
    names = ", ".join(f"étape {p.number} ({p.label})" for p in missing)
    raise GuardRefused(GUARD_STEP_ORDER,
                       f"{uai} : l'étape {step.number} ({step.label}) ne peut pas commencer "
                       f"avant la fin de : {names}.", uai)


def step_order_missing(session: Session, refs: Sequence[EstablishmentRef],
                       school_year_id: int, step: Step) -> dict[Step, list[str]]:
    """:func:`check_step_order` for many establishments at once (set-based): for each
    prerequisite of ``step`` not done, the UAIs of ``refs`` that lack it; an MOE override of
    the step order (for one establishment or for all) lifts it."""
    prerequisites = STEP_PREREQUISITES[step]
    if not prerequisites:
        return {}
    overrides = set(session.scalars(select(GuardOverride.establishment_id).where(
        GuardOverride.guard == GUARD_STEP_ORDER, GuardOverride.revoked.is_(False))))
    if None in overrides:
        return {}
    done = {(row[0], row[1]) for row in session.execute(select(
        StepUnit.establishment_id, StepUnit.step).where(
        StepUnit.establishment_id.in_([ref.id for ref in refs]),
        StepUnit.school_year_id == school_year_id,
        StepUnit.step.in_(list(prerequisites)), StepUnit.status == UnitStatus.DONE))}
    missing = {prerequisite: [ref.uai for ref in refs if ref.id not in overrides
                              and (ref.id, prerequisite) not in done]
               for prerequisite in prerequisites}
    return {prerequisite: uais for prerequisite, uais in missing.items() if uais}


def _frozen(session: Session, establishment_ids: Iterable[int], school_year_id: int,
            starts: tuple[Step, ...], end: Step, guard: str, what: str) -> bool:
    overridden = False
    start = starts[0]
    for establishment_id in establishment_ids:
        statuses = unit_statuses(session, establishment_id, school_year_id)
        started = any(statuses[step] in _STARTED for step in starts)
        if started and statuses[end] is not UnitStatus.DONE:
            if has_override(session, guard, establishment_id):
                overridden = True
                continue
            uai = _uai(session, establishment_id)
            raise GuardRefused(
                guard,
                f"{uai} : {what} refusé pendant le changement d'année, de l'étape "
                f"{start.number} ({start.label}) jusqu'à la fin de l'étape {end.number} "
                f"({end.label}).", uai)
    return overridden


def check_aaf_import_allowed(session: Session, establishment_ids: Iterable[int],
                             school_year_id: int) -> bool:
    """Refuse an AAF import touching an establishment between its steps 1 and 3.

    Returns:
        True when an override let it through.

    Raises:
        GuardRefused: code ``gel-aaf``.
    """
    return _frozen(session, establishment_ids, school_year_id,
                   (Step.PURGE_TRASH, Step.ARCHIVE), Step.DELETE_OBSOLETE, GUARD_AAF_FREEZE,
                   "import AAF")


def check_timetable_or_csv_import_allowed(session: Session, establishment_id: int,
                                          school_year_id: int, what: str = "import") -> bool:
    """Refuse a CSV or timetable import between the establishment's steps 2 and 4.

    Returns:
        True when an override let it through.

    Raises:
        GuardRefused: code ``gel-imports``.
    """
    return _frozen(session, [establishment_id], school_year_id, (Step.ARCHIVE,),
                   Step.INIT_DIRECTORY, GUARD_IMPORT_FREEZE, what)


@dataclass(frozen=True)
class WindowProblem:
    """One establishment a step 1 to 3 should not run for now, and why (French)."""

    establishment_id: int
    uai: str
    problem: str

    @property
    def line(self) -> str:
        """``0750654D : avant la fermeture de l'établissement (04/07/2027)``."""
        return f"{self.uai} : {self.problem}"


def run_window_problems(session: Session, establishments: Sequence[EstablishmentRef],
                        step: Step, now: dt.datetime,
                        timezone_name: str | None = None) -> list[WindowProblem]:
    """The establishments ``step`` should not run for at ``now`` (empty for steps 4 and 5),
    their windows read in ``timezone_name`` (default: the configured operator zone, as
    :func:`~yearchange_tui.workflow.calendar.build_plan` reads it)."""
    if step not in WINDOW_STEPS or not establishments:
        return []
    plan = build_plan(session, None, timezone_name, [ref.uai for ref in establishments])
    problems = []
    for ref in establishments:
        problem = steps_one_to_three_problem(plan, ref.id, now)
        if problem:
            problems.append(WindowProblem(ref.id, ref.uai, problem))
    return problems


def window_refusal_message(step: Step, problems: Sequence[WindowProblem],
                           remedy: str = WINDOW_REMEDY) -> str:
    """The French refusal of a step asked outside the window or before closure."""
    lines = [(f"Étape {step.number} ({step.label}) refusée pour {len(problems)} "
             "établissement(s) hors fenêtre ou avant la fermeture :")]
    lines += [f"  {problem.line}" for problem in problems]
    if remedy:
        lines.append(remedy)
    return "\n".join(lines)


def record_window_refusal(session: Session, step: Step,
                          problems: Sequence[WindowProblem]) -> None:
    """Audit the refusal of ``step`` for each establishment out of its window."""
    for problem in problems:
        audit(session, "run", "refused", establishment_id=problem.establishment_id,
              step=step.value, details={"code": GUARD_RUN_WINDOW, "reason": problem.problem})


def check_run_window(session: Session, establishments: Sequence[EstablishmentRef], step: Step,
                     now: dt.datetime, *, reason: str | None = None,
                     timezone_name: str | None = None) -> list[WindowProblem]:
    """Refuse ``step`` for establishments before closure or outside their window, unless
    the operator gives ``reason`` (``--hors-fenetre``): then each is audited as an
    override in the session's transaction.

    Returns:
        The establishments let through by the override (empty when none was needed).

    Raises:
        GuardRefused: code ``hors-fenetre``, no reason given (or an empty one).
    """
    problems = run_window_problems(session, establishments, step, now, timezone_name)
    if not problems:
        return []
    if reason is None:
        raise GuardRefused(GUARD_RUN_WINDOW, window_refusal_message(step, problems))
    grant_window_override(session, step, problems, reason)
    return problems


def grant_window_override(session: Session, step: Step, problems: Sequence[WindowProblem],
                          reason: str) -> None:
    """Audit the ``--hors-fenetre`` override of ``problems`` (found by
    :func:`run_window_problems`) in the session's transaction.

    Raises:
        GuardRefused: code ``hors-fenetre``, for an empty reason.
    """
    if not reason.strip():
        raise GuardRefused(GUARD_RUN_WINDOW, "un passage hors fenêtre doit être motivé")
    for problem in problems:
        audit(session, "override", "granted", establishment_id=problem.establishment_id,
              step=step.value, override=True,
              details={"guard": GUARD_RUN_WINDOW, "reason": reason, "problem": problem.problem})
