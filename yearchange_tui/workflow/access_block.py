"""Access blocking of step 4 (seed §6.4): the one owner of the block window.

During the directory initialisation, students and parents are redirected to an
explanation page until the start of term. The window is two milestones of the
change-over calendar (``access-block-start``, ``access-block-end``): the template's
dates, edited for every project, a kind of establishment, a project, or one
establishment, the most specific edit winning (:func:`~yearchange_tui.workflow.calendar.build_plan`).
:func:`effective_window` reads the window from that plan, so ``plan``, ``access-block``,
the console and the redirect page all see the same dates.

The rules of an edit (:func:`check_block_edit`), taken from the seed:

- the block starts no earlier than the directory initialisation (step 4) of the
  establishment, since it covers « la période d'initialisation de l'annuaire »;
- it ends by mid-September (:data:`LATEST_END`): « jusqu'à la date officielle de rentrée
  des classes », and at most mid-September like the other suspension of §6.4;
- it does not end before it starts;
- the MOE sets the dates per project (or kind, or every project); an establishment's
  own dates need the project's permission (« sous réserve de l'autorisation de la MOA »)
  and stay within the project's limits: not before the project's start.

Every writer (``plan set``/``plan unset``, engine ``set-date`` requests, the console, and
:func:`set_establishment_block`) goes through :func:`set_block_date` or
:func:`unset_block_date`; a refused edit writes nothing.

:func:`access_decision` answers "is this user blocked on this day, and with which
message". Runs on the caller's thread.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from yearchange_tui.ent.models import (
    Establishment,
    Person,
    PersonKind,
    PersonProfile,
    Profile,
    Project,
)
from yearchange_tui.workflow.calendar import (
    SOURCES,
    CalendarError,
    Milestone,
    PendingEdit,
    Plan,
    Target,
    build_plan,
    changeover_year,
    remove_stored_date,
    store_date,
    stores_in_own_columns,
)
from yearchange_tui.workflow.units import current_school_year

LATEST_END = (9, 15)
"""(month, day): a block, or a suspension of deactivation notices, ends mid-September at most."""

RULE = ("Règle du blocage des accès (cahier des charges §6.4) : il commence au plus tôt à "
        "l'initialisation de l'annuaire (étape 4) et se termine au plus tard à la "
        "mi-septembre ; un établissement ne modifie ses dates qu'avec l'autorisation du "
        "projet (MOA), sans commencer avant la date du projet.")
"""The rule, in French, as every refusal states it."""

_KIND_PROFILES = {PersonKind.STUDENT: Profile.STUDENT, PersonKind.RELATIVE: Profile.RELATIVE,
                  PersonKind.TEACHER: Profile.TEACHER, PersonKind.STAFF: Profile.NON_TEACHING}
_RANK = {label: rank for rank, label in SOURCES.items()}


class AccessBlockError(CalendarError):
    """A block date the rules refuse: French message with the rule, and a stable code."""

    def __init__(self, code: str, message: str, rule: str = RULE) -> None:
        self.code = code
        self.reason = message
        super().__init__(" ".join(part for part in (message, rule, f"[{code}]") if part))


@dataclass(frozen=True)
class AccessWindow:
    """The block period that applies to an establishment, and where it comes from."""

    starts_on: dt.date
    ends_on: dt.date
    source: str  # the most specific level of its two dates: modèle, projet, établissement…

    def covers(self, day: dt.date) -> bool:
        """True when ``day`` is inside the period (both ends included)."""
        return self.starts_on <= day <= self.ends_on

    def phase(self, day: dt.date) -> BlockPhase:
        """Where ``day`` (the operator's date) stands: before, inside or after the block."""
        if day < self.starts_on:
            return BlockPhase.PLANNED
        if day <= self.ends_on:
            return BlockPhase.ACTIVE
        return BlockPhase.LIFTED

    def describe(self, day: dt.date) -> str:
        """French: « prévu du 18/08/2027 au 01/09/2027 », « en cours jusqu'au 01/09/2027 »,
        « levé depuis le 02/09/2027 »."""
        phase = self.phase(day)
        if phase is BlockPhase.PLANNED:
            return f"prévu du {self.starts_on:%d/%m/%Y} au {self.ends_on:%d/%m/%Y}"
        if phase is BlockPhase.ACTIVE:
            return f"en cours jusqu'au {self.ends_on:%d/%m/%Y} inclus"
        return f"levé depuis le {self.ends_on + dt.timedelta(days=1):%d/%m/%Y}"


class BlockPhase(enum.StrEnum):
    """Where a day stands against an establishment's block window."""

    PLANNED = "planned"
    ACTIVE = "active"
    LIFTED = "lifted"

    @property
    def label(self) -> str:
        """The French word shown to operators."""
        return BLOCK_PHASE_LABELS[self]


BLOCK_PHASE_LABELS = {BlockPhase.PLANNED: "prévu", BlockPhase.ACTIVE: "en cours",
                      BlockPhase.LIFTED: "levé"}


@dataclass(frozen=True)
class AccessDecision:
    """The answer for one user at one time."""

    blocked: bool
    message: str = ""
    window: AccessWindow | None = None
    reason: str = ""


def latest_end(school_year_start: int) -> dt.date:
    """The latest day a block of the change-over of year N may end (mid-September)."""
    return dt.date(school_year_start + 1, *LATEST_END)


def blocked_profiles(project: Project) -> set[str]:
    """Profiles the project blocks (``National_ELV``, ``National_TUT``…)."""
    return {item.strip() for item in (project.access_block_profiles or "").split(",")
            if item.strip()}


# -- the window ---------------------------------------------------------------------------

def window_in_plan(plan: Plan, establishment_id: int) -> AccessWindow | None:
    """An establishment's block window as ``plan`` shows it; None without both dates."""
    start = plan.get(establishment_id, Milestone.ACCESS_BLOCK_START)
    end = plan.get(establishment_id, Milestone.ACCESS_BLOCK_END)
    if start is None or end is None or start.on_date is None or end.on_date is None:
        return None
    source = max((start.source, end.source), key=lambda label: _RANK.get(label, 0))
    return AccessWindow(start.on_date, end.on_date, source)


def effective_window(session: Session, establishment: Establishment,
                     school_year_start: int) -> AccessWindow | None:
    """The block window of an establishment for the change-over of year N.

    The dates ``plan`` shows for ``access-block-start`` and ``access-block-end``
    (template, then edits for every project, a project, a kind, the establishment: the
    most specific wins).
    """
    plan = build_plan(session, school_year_start, uais=[establishment.uai])
    return window_in_plan(plan, establishment.id)


# -- the rules ----------------------------------------------------------------------------

def _affected_uais(session: Session, target: Target) -> list[str]:
    query = select(Establishment.uai)
    if target.establishment_id is not None:
        query = query.where(Establishment.id == target.establishment_id)
    else:
        if target.project_id is not None:
            query = query.where(Establishment.project_id == target.project_id)
        if target.establishment_kind is not None:
            query = query.where(Establishment.kind == target.establishment_kind)
    return list(session.scalars(query.order_by(Establishment.uai)))


def check_block_edit(session: Session, school_year_start: int, milestone: Milestone,
                     on_date: dt.date | None, *, target: Target, remove: bool = False) -> None:
    """Refuse an access-block edit that leaves the seed's limits, before it is written.

    Args:
        session: an open session (read only here).
        school_year_start: year N of the change-over.
        milestone: ``access-block-start`` or ``access-block-end``.
        on_date: the new date (ignored when ``remove``).
        target: who the edit is for.
        remove: True to check the removal of the edit (``plan unset``).

    Raises:
        AccessBlockError: the rule broken, in French, with a stable code.
    """
    check_block_edits(session, school_year_start,
                      (PendingEdit(milestone, target, on_date, remove),))


def check_block_edits(session: Session, school_year_start: int,
                      edits: tuple[PendingEdit, ...]) -> None:
    """Refuse access-block edits (made together) that leave the seed's limits.

    Every establishment the edits reach is checked with the window they would give it.

    Raises:
        AccessBlockError: the rule broken, in French, with a stable code.
    """
    for edit in edits:
        if not edit.remove and edit.on_date is None:
            raise AccessBlockError(
                "BLOCAGE-SANS-DATE",
                f"{edit.milestone.label} : une date est nécessaire (« plan unset » rétablit "
                "la date du niveau supérieur ; un projet sans blocage ne bloque aucun profil).")
        if not edit.remove and edit.target.establishment_id is not None:
            _check_permission(session, edit.target.establishment_id)
    uais = sorted({uai for edit in edits for uai in _affected_uais(session, edit.target)})
    if not uais:
        return
    plan = build_plan(session, school_year_start, uais=uais, pending=edits)
    own = [edit.target for edit in edits
           if edit.target.establishment_id is not None and not edit.remove]
    # The project's limits: the window without the establishment's own dates.
    project_plan = build_plan(session, school_year_start, uais=uais, pending=tuple(
        PendingEdit(m, target, remove=True) for target in own
        for m in (Milestone.ACCESS_BLOCK_START, Milestone.ACCESS_BLOCK_END))) if own else None
    limit = latest_end(school_year_start)
    for uai, establishment_id in _establishment_ids(plan).items():
        window = window_in_plan(plan, establishment_id)
        if window is None:
            continue
        if window.ends_on > limit:
            raise AccessBlockError(
                "BLOCAGE-APRES-MI-SEPTEMBRE",
                f"{uai} : le blocage des accès ne peut pas durer au-delà du {limit:%d/%m/%Y} "
                f"(mi-septembre) ; il finirait le {window.ends_on:%d/%m/%Y}.")
        if window.ends_on < window.starts_on:
            raise AccessBlockError(
                "BLOCAGE-FIN-AVANT-DEBUT",
                f"{uai} : le blocage des accès finirait le {window.ends_on:%d/%m/%Y}, avant "
                f"de commencer le {window.starts_on:%d/%m/%Y}.")
        if project_plan is not None and any(t.establishment_id == establishment_id
                                            for t in own):
            project_window = window_in_plan(project_plan, establishment_id)
            if project_window is not None and window.starts_on < project_window.starts_on:
                raise AccessBlockError(
                    "BLOCAGE-AVANT-PROJET",
                    f"{uai} : le blocage ne peut pas commencer avant le "
                    f"{project_window.starts_on:%d/%m/%Y} (date du projet).")
        step4 = plan.get(establishment_id, Milestone.INIT_DIRECTORY)
        if step4 is not None and step4.on_date is not None and window.starts_on < step4.on_date:
            raise AccessBlockError(
                "BLOCAGE-AVANT-ETAPE-4",
                f"{uai} : le blocage des accès commencerait le {window.starts_on:%d/%m/%Y}, "
                f"avant l'initialisation de l'annuaire (étape 4, le {step4.on_date:%d/%m/%Y}).")


def _check_permission(session: Session, establishment_id: int) -> None:
    establishment = session.get(Establishment, establishment_id)
    project = session.get(Project, establishment.project_id) if establishment else None
    if establishment is not None and project is not None and not (
            project.access_block_override_allowed):
        raise AccessBlockError(
            "BLOCAGE-NON-AUTORISE",
            f"{establishment.uai} : le projet {project.code} n'autorise pas les établissements "
            "à modifier les dates de blocage des accès (autorisation de la MOA nécessaire).")


def _establishment_ids(plan: Plan) -> dict[str, int]:
    return {m.uai: m.establishment_id for m in plan.milestones}


# -- the writers --------------------------------------------------------------------------

def set_block_date(session: Session, school_year_start: int, milestone: Milestone,
                   on_date: dt.date | None, *, target: Target, actor: str = "") -> None:
    """Set an access-block date for ``target`` once :func:`check_block_edit` accepts it.

    A project's or an establishment's date is its own column; the other levels are
    calendar rows.

    Raises:
        AccessBlockError: the edit breaks the rules (nothing is written).
    """
    check_block_edit(session, school_year_start, milestone, on_date, target=target)
    _write(session, school_year_start, milestone, on_date, target, actor)


def unset_block_date(session: Session, school_year_start: int, milestone: Milestone, *,
                     target: Target) -> int:
    """Remove ``target``'s own access-block date so the level above applies again.

    Returns:
        The number of edits removed (0 or 1).

    Raises:
        AccessBlockError: the window left would break the rules (nothing is written).
    """
    check_block_edit(session, school_year_start, milestone, None, target=target, remove=True)
    return _write(session, school_year_start, milestone, None, target, "")


def _write(session: Session, school_year_start: int, milestone: Milestone,
           on_date: dt.date | None, target: Target, actor: str) -> int:
    """Store (or clear, with None) one access-block date; the number of values changed."""
    if not stores_in_own_columns(milestone, target):
        if on_date is None:
            return remove_stored_date(session, school_year_start, milestone, target=target)
        store_date(session, school_year_start, milestone, on_date, target=target, actor=actor)
        return 1
    # The plan reads this level from the column only: no calendar row may shadow it.
    remove_stored_date(session, school_year_start, milestone, target=target)
    owner: Establishment | Project | None = (
        session.get(Establishment, target.establishment_id)
        if target.establishment_id is not None else session.get(Project, target.project_id))
    if owner is None:
        raise CalendarError("cible du calendrier introuvable")
    column = ("access_block_starts_on" if milestone is Milestone.ACCESS_BLOCK_START
              else "access_block_ends_on")
    before = getattr(owner, column)
    if on_date is None and (before is None or before.year != school_year_start + 1):
        return 0  # nothing of this change-over to remove
    setattr(owner, column, on_date)
    session.flush()
    return 1


def set_establishment_block(session: Session, establishment_id: int, starts_on: dt.date | None,
                            ends_on: dt.date | None, *, school_year_start: int | None = None,
                            actor: str = "") -> AccessWindow | None:
    """Set an establishment's own block dates (None keeps the level above), or clear both
    with two None.

    Args:
        session: an open session.
        establishment_id: the establishment.
        starts_on: its first blocked day, or None for the project's.
        ends_on: its last blocked day, or None for the project's.
        school_year_start: year N (default: the change-over the dates fall in, else the
            current school year).
        actor: who asks (recorded on calendar rows).

    Returns:
        The establishment's window afterwards.

    Raises:
        AccessBlockError: the project does not allow it, or the dates leave its limits.
    """
    establishment = session.get(Establishment, establishment_id)
    if establishment is None:
        raise AccessBlockError("ETABLISSEMENT-INCONNU",
                               f"Établissement inconnu (id {establishment_id}).", rule="")
    year = school_year_start
    if year is None:
        known = starts_on or ends_on
        if known is not None:
            year = changeover_year(known)
        else:
            year = current_school_year(session).start_year
    target = Target(establishment_id=establishment_id)
    edits = tuple(PendingEdit(milestone, target, day, remove=day is None)
                  for milestone, day in ((Milestone.ACCESS_BLOCK_START, starts_on),
                                         (Milestone.ACCESS_BLOCK_END, ends_on)))
    check_block_edits(session, year, edits)
    for edit in edits:
        _write(session, year, edit.milestone, edit.on_date, target, actor)
    return effective_window(session, establishment, year)


# -- the decision -------------------------------------------------------------------------

def render_message(project: Project, window: AccessWindow) -> str:
    """The project's message, with ``{debut}``, ``{fin}`` and ``{ent}`` filled in."""
    message = project.access_block_message or (
        "Votre espace {ent} est indisponible du {debut} au {fin} inclus, pour permettre le "
        "paramétrage des services et des comptes de la nouvelle année scolaire.")
    values = {"debut": f"{window.starts_on:%d/%m/%Y}", "fin": f"{window.ends_on:%d/%m/%Y}",
              "ent": project.ent_name}
    for key, value in values.items():
        message = message.replace("{" + key + "}", value)
    return message


def _as_date(at: dt.datetime | dt.date) -> dt.date:
    return at.date() if isinstance(at, dt.datetime) else at


def access_decision(session: Session, person_id: int, at: dt.datetime | dt.date) -> AccessDecision:
    """Is this user blocked at this time, and with which message?

    A user is blocked when every profile they hold is one the project blocks (a
    teacher who is also a parent keeps access) and ``at`` falls in the block
    window of their establishment (:func:`effective_window`, for the change-over whose
    summer holds ``at``).

    Args:
        session: a session.
        person_id: the user.
        at: the moment asked about (its date is used).
    """
    person = session.get(Person, person_id)
    if person is None:
        return AccessDecision(False, reason="utilisateur inconnu")
    establishment = (session.get(Establishment, person.establishment_id)
                     if person.establishment_id is not None else None)
    if establishment is None:
        return AccessDecision(False, reason="aucun établissement de rattachement")
    project = session.get(Project, establishment.project_id)
    if project is None:
        return AccessDecision(False, reason="aucun projet")
    held = {str(profile) for profile in session.scalars(
        select(PersonProfile.profile).where(PersonProfile.person_id == person_id))}
    if not held:
        held = {str(_KIND_PROFILES[PersonKind(person.kind)])}
    blocked = blocked_profiles(project)
    if not held <= blocked:
        return AccessDecision(False, reason="profil non concerné par le blocage")
    day = _as_date(at)
    window = effective_window(session, establishment, changeover_year(day))
    if window is None:
        return AccessDecision(False, reason="aucun blocage paramétré pour le projet")
    if not window.covers(day):
        return AccessDecision(False, window=window, reason="hors de la période de blocage")
    return AccessDecision(True, render_message(project, window), window,
                          f"blocage {window.source} du {window.starts_on:%d/%m/%Y} au "
                          f"{window.ends_on:%d/%m/%Y}")


# -- deactivation notices -----------------------------------------------------------------

def set_deactivation_notice_suspension(session: Session, project_id: int,
                                       until: dt.date | None) -> None:
    """Suspend account-deactivation notices to students and parents until ``until``.

    Raises:
        AccessBlockError: ``until`` after mid-September.
    """
    project = session.get(Project, project_id)
    if project is None:
        raise AccessBlockError("PROJET-INCONNU", f"Projet inconnu (id {project_id}).", rule="")
    if until is not None and (until.month, until.day) > LATEST_END:
        raise AccessBlockError(
            "SUSPENSION-APRES-MI-SEPTEMBRE",
            f"La suspension des notifications de désactivation ne peut pas aller au-delà de la "
            f"mi-septembre ({LATEST_END[1]:02d}/{LATEST_END[0]:02d}) ; reçu {until:%d/%m/%Y}.",
            rule="")
    project.deactivation_notices_suspended_until = until


def deactivation_notices_suspended(session: Session, project_id: int,
                                   at: dt.datetime | dt.date) -> bool:
    """True when deactivation notices of the project are suspended on that day."""
    project = session.get(Project, project_id)
    if project is None or project.deactivation_notices_suspended_until is None:
        return False
    until = project.deactivation_notices_suspended_until
    limit = dt.date(until.year, *LATEST_END)
    return _as_date(at) <= min(until, limit)
