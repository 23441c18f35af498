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
- the MOE sets the dates per project (or kind, or every project); the template has none,
  so a project without dates blocks nobody (:func:`block_warnings`,
  :func:`unblocked_establishments` say so in ``plan`` and ``dry-run``); an establishment's
  own dates and message need the project's permission (« sous réserve de l'autorisation
  de la MOA ») and stay within the project's limits (:func:`establishment_limits`: its
  earliest start and latest end, else its own start and mid-September), and only during
  the pré-rentrée (:func:`check_pre_rentree`: from the calendar's « Rentrée des
  enseignants » to the eve of its « Rentrée des élèves »).

The project's other block settings are set here too: the message (:data:`DEFAULT_MESSAGE`
is the seed's example, used while the project sets none), the profiles, the limits, and
the suspension of deactivation notices; ``yearchange project set`` and ``access-block
set`` (and the console, through engine requests) call these functions.

Every writer (``plan set``/``plan unset``, engine ``set-date`` requests, the console, and
:func:`set_establishment_block`) goes through :func:`set_block_date` or
:func:`unset_block_date`; a refused edit writes nothing.

:func:`access_decision` answers "is this user blocked on this day, and with which
message". Runs on the caller's thread.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from yearchange_tui.ent.base import utcnow
from yearchange_tui.ent.models import (
    Establishment,
    Person,
    PersonKind,
    PersonProfile,
    Profile,
    Project,
)
from yearchange_tui.french import long_date
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
from yearchange_tui.workflow.localtime import operator_zone
from yearchange_tui.workflow.units import current_school_year

LATEST_END = (9, 15)
"""(month, day): a block, or a suspension of deactivation notices, ends mid-September at most."""

PRE_RENTREE_RULE = ("Cahier des charges §6.4 : « Lors de la pré-rentrée, sous réserve de "
                    "l'autorisation de la MOA, les établissements pourront amender le "
                    "paramétrage projet » ; le projet fixe la pré-rentrée au calendrier "
                    "(Rentrée des enseignants, Rentrée des élèves).")
"""The rule every pré-rentrée refusal states."""

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
    checked: set[int] = set()  # an establishment's start and end: one permission check
    for edit in edits:
        if not edit.remove and edit.on_date is None:
            raise AccessBlockError(
                "BLOCAGE-SANS-DATE",
                f"{edit.milestone.label} : une date est nécessaire (« plan unset » rétablit "
                "la date du niveau supérieur ; un projet sans blocage ne bloque aucun profil).")
        establishment_id = edit.target.establishment_id
        if not edit.remove and establishment_id is not None and establishment_id not in checked:
            checked.add(establishment_id)
            _check_permission(session, establishment_id, school_year_start)
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
            _check_project_limits(session, uai, establishment_id, window,
                                  window_in_plan(project_plan, establishment_id))
        step4 = plan.get(establishment_id, Milestone.INIT_DIRECTORY)
        if step4 is not None and step4.on_date is not None and window.starts_on < step4.on_date:
            raise AccessBlockError(
                "BLOCAGE-AVANT-ETAPE-4",
                f"{uai} : le blocage des accès commencerait le {window.starts_on:%d/%m/%Y}, "
                f"avant l'initialisation de l'annuaire (étape 4, le {step4.on_date:%d/%m/%Y}).")


def establishment_limits(project: Project, project_window: AccessWindow | None,
                         school_year_start: int) -> tuple[dt.date | None, dt.date]:
    """The earliest start and the latest end an establishment of ``project`` may give its
    block (seed §6.4, « dans les limites définies au niveau projet »).

    The project's own limits when it set them, else its block's start and mid-September.
    """
    earliest = project.access_block_earliest_start
    if earliest is None or earliest.year != school_year_start + 1:
        earliest = project_window.starts_on if project_window is not None else None
    limit = latest_end(school_year_start)
    latest = project.access_block_latest_end
    if latest is None or latest.year != school_year_start + 1 or latest > limit:
        latest = limit
    return earliest, latest


def _check_project_limits(session: Session, uai: str, establishment_id: int,
                          window: AccessWindow, project_window: AccessWindow | None) -> None:
    establishment = session.get(Establishment, establishment_id)
    project = session.get(Project, establishment.project_id) if establishment else None
    if project is None:
        return
    earliest, latest = establishment_limits(project, project_window,
                                            changeover_year(window.ends_on))
    if earliest is not None and window.starts_on < earliest:
        raise AccessBlockError(
            "BLOCAGE-AVANT-PROJET",
            f"{uai} : le blocage ne peut pas commencer avant le {earliest:%d/%m/%Y} "
            f"(limite du projet {project.code}).")
    if window.ends_on > latest:
        raise AccessBlockError(
            "BLOCAGE-APRES-LIMITE-PROJET",
            f"{uai} : le blocage ne peut pas finir après le {latest:%d/%m/%Y} (limite du "
            f"projet {project.code}) ; il finirait le {window.ends_on:%d/%m/%Y}.")


def _check_permission(session: Session, establishment_id: int,
                      school_year_start: int | None = None) -> None:
    """An establishment's own block edit (dates or message): the project must allow it,
    and only during the pré-rentrée (:func:`check_pre_rentree`)."""
    establishment = session.get(Establishment, establishment_id)
    project = session.get(Project, establishment.project_id) if establishment else None
    if establishment is not None and project is not None and not (
            project.access_block_override_allowed):
        raise AccessBlockError(
            "BLOCAGE-NON-AUTORISE",
            f"{establishment.uai} : le projet {project.code} n'autorise pas les établissements "
            "à modifier le blocage des accès, dates ou message (autorisation de la MOA "
            "nécessaire).")
    if establishment is not None:
        check_pre_rentree(session, establishment, school_year_start)


def pre_rentree(session: Session, establishment: Establishment,
                school_year_start: int) -> tuple[dt.date, dt.date] | None:
    """The pré-rentrée of an establishment for the change-over of year N: from its
    « Rentrée des enseignants » to the eve of its « Rentrée des élèves » (both calendar
    milestones, the plan's dates: template, project, kind, establishment), both included.
    None when the plan has no teachers' date."""
    plan = build_plan(session, school_year_start, uais=[establishment.uai])
    teachers = plan.get(establishment.id, Milestone.TEACHERS_START)
    students = plan.get(establishment.id, Milestone.START_OF_TERM)
    if teachers is None or teachers.on_date is None:
        return None
    last = teachers.on_date
    if students is not None and students.on_date is not None:
        last = max(last, students.on_date - dt.timedelta(days=1))
    return teachers.on_date, last


def check_pre_rentree(session: Session, establishment: Establishment,
                      school_year_start: int | None = None,
                      today: dt.date | None = None) -> None:
    """Refuse an establishment's own block edit outside its pré-rentrée (seed §6.4:
    « Lors de la pré-rentrée, […] les établissements pourront amender le paramétrage
    projet »). ``today`` is the operator's date (default: the package clock).

    Raises:
        AccessBlockError: ``BLOCAGE-HORS-PRE-RENTREE``, naming the period.
    """
    if today is None:
        today = utcnow().astimezone(operator_zone()).date()
    year = school_year_start if school_year_start is not None else changeover_year(today)
    period = pre_rentree(session, establishment, year)
    if period is None:
        raise AccessBlockError(
            "BLOCAGE-HORS-PRE-RENTREE",
            f"{establishment.uai} : pas de date de pré-rentrée (« Rentrée des enseignants ») "
            f"au calendrier du changement d'année {year}-{year + 1} ; un établissement ne "
            "modifie son blocage que pendant la pré-rentrée (yearchange plan set "
            "teachers-start).", rule=PRE_RENTREE_RULE)
    first, last = period
    if not first <= today <= last:
        span = (f"le {first:%d/%m/%Y}" if first == last
                else f"du {first:%d/%m/%Y} au {last:%d/%m/%Y}")
        raise AccessBlockError(
            "BLOCAGE-HORS-PRE-RENTREE",
            f"{establishment.uai} : un établissement ne modifie son blocage des accès (dates "
            f"ou message) que pendant la pré-rentrée, {span} ; nous sommes le "
            f"{today:%d/%m/%Y}.", rule=PRE_RENTREE_RULE)


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


def set_block_window(session: Session, school_year_start: int, target: Target,
                     starts_on: dt.date | None, ends_on: dt.date | None, *,
                     actor: str = "") -> None:
    """Set both block dates of ``target`` (a project, a kind, an establishment) together,
    once the rules accept the window they make (None removes that level's own date).

    Raises:
        AccessBlockError: the window breaks the rules (nothing is written).
    """
    edits = tuple(PendingEdit(milestone, target, day, remove=day is None)
                  for milestone, day in ((Milestone.ACCESS_BLOCK_START, starts_on),
                                         (Milestone.ACCESS_BLOCK_END, ends_on)))
    check_block_edits(session, school_year_start, edits)
    for edit in edits:
        _write(session, school_year_start, edit.milestone, edit.on_date, target, actor)


def own_block_dates(session: Session, establishment_id: int, school_year_start: int
                    ) -> tuple[dt.date | None, dt.date | None]:
    """An establishment's own block dates for the change-over of year N (None: the
    project's applies)."""
    establishment = session.get(Establishment, establishment_id)
    if establishment is None:
        return None, None
    summer = school_year_start + 1

    def mine(day: dt.date | None) -> dt.date | None:
        return day if day is not None and day.year == summer else None

    return mine(establishment.access_block_starts_on), mine(establishment.access_block_ends_on)


def set_project_limits(session: Session, project_id: int, school_year_start: int,
                       earliest_start: dt.date | None, latest_end_on: dt.date | None) -> None:
    """Set the limits within which the project's establishments may amend their block.

    Raises:
        AccessBlockError: a limit after mid-September, or the earliest after the latest.
    """
    project = session.get(Project, project_id)
    if project is None:
        raise AccessBlockError("PROJET-INCONNU", f"Projet inconnu (id {project_id}).", rule="")
    limit = latest_end(school_year_start)
    for day in (earliest_start, latest_end_on):
        if day is not None and day > limit:
            raise AccessBlockError(
                "BLOCAGE-APRES-MI-SEPTEMBRE",
                f"Limite des établissements : le {day:%d/%m/%Y} est après le "
                f"{limit:%d/%m/%Y} (mi-septembre).")
    if earliest_start and latest_end_on and latest_end_on < earliest_start:
        raise AccessBlockError(
            "BLOCAGE-FIN-AVANT-DEBUT",
            f"Limites des établissements : la fin au plus tard ({latest_end_on:%d/%m/%Y}) "
            f"précède le début au plus tôt ({earliest_start:%d/%m/%Y}).")
    project.access_block_earliest_start = earliest_start
    project.access_block_latest_end = latest_end_on
    session.flush()


def set_project_message(session: Session, project_id: int, message: str | None) -> None:
    """Set the project's block message (None or "": the seed's example again).

    Raises:
        AccessBlockError: the message is refused (:func:`check_message`).
    """
    if message:
        check_message(message)
    project = session.get(Project, project_id)
    if project is None:
        raise AccessBlockError("PROJET-INCONNU", f"Projet inconnu (id {project_id}).", rule="")
    project.access_block_message = message or ""
    session.flush()


def parse_profiles(text: str) -> str:
    """``National_ELV,National_TUT`` (or ``eleves,parents``) checked and normalised.

    Raises:
        AccessBlockError: ``BLOCAGE-PROFIL-INCONNU``.
    """
    words = {"eleves": Profile.STUDENT.value, "élèves": Profile.STUDENT.value,
             "parents": Profile.RELATIVE.value}
    known = {profile.value for profile in Profile}
    found: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        value = words.get(item.lower(), item)
        if value not in known:
            raise AccessBlockError(
                "BLOCAGE-PROFIL-INCONNU",
                f"Profil inconnu « {item} » (connus : élèves, parents, "
                + ", ".join(sorted(known)) + ").", rule="")
        if value not in found:
            found.append(value)
    return ",".join(found)


NO_BLOCK = ("Aucune date de blocage des accès élèves et parents pour l'étape 4 : les dates "
            "sont celles du projet {project} (cahier des charges §6.4) et il n'en a pas fixé ; "
            "personne ne sera redirigé. Fixez-les : yearchange project set --project {project} "
            "--blocage-debut AAAA-MM-JJ --blocage-fin AAAA-MM-JJ. [BLOCAGE-NON-PARAMETRE]")
"""The dry run's warning for an establishment without a block window."""


def unblocked_establishments(session: Session, school_year_start: int,
                             uais: list[str] | None = None) -> dict[str, str]:
    """UAI → the warning (:data:`NO_BLOCK`) of each establishment with no block window."""
    plan = build_plan(session, school_year_start, uais=uais)
    return {planned.uai: NO_BLOCK.format(project=planned.project_code)
            for planned in plan.milestones
            if planned.milestone is Milestone.ACCESS_BLOCK_START
            and window_in_plan(plan, planned.establishment_id) is None}


def block_warnings(plan: Plan) -> list[str]:
    """French warnings for the projects whose establishments have no block window: the
    dates are the project's (seed §6.4) and the template has none, so nobody would be
    blocked during step 4. One line per project, before step 4 is done."""
    missing: dict[str, list[str]] = {}
    for planned in plan.milestones:
        if (planned.milestone is Milestone.ACCESS_BLOCK_START
                and window_in_plan(plan, planned.establishment_id) is None):
            missing.setdefault(planned.project_code, []).append(planned.uai)
    return [f"Projet {code} : aucune date de blocage des accès élèves et parents pour "
            f"{len(uais)} établissement(s) ({', '.join(uais[:5])}"
            f"{'…' if len(uais) > 5 else ''}) — personne ne sera redirigé pendant "
            f"l'étape 4. Fixez-les : yearchange project set --project {code} "
            "--blocage-debut AAAA-MM-JJ --blocage-fin AAAA-MM-JJ. [BLOCAGE-NON-PARAMETRE]"
            for code, uais in sorted(missing.items())]


# -- the decision -------------------------------------------------------------------------

DEFAULT_MESSAGE = (
    "Madame, monsieur, bonjour,\n\n"
    "Votre espace {ent} sera indisponible du {debut_texte} au {fin_texte} inclus, pour "
    "permettre le paramétrage des services et des comptes utilisateurs pour l'année "
    "{annee}.\n\n"
    "Cordialement,\n\n"
    "L'Equipe ENT.")
"""The seed's example of the redirect page (§6.4), used while the project sets none.

Placeholders: ``{ent}`` (the ENT's name), ``{debut}``/``{fin}`` (JJ/MM/AAAA),
``{debut_texte}``/``{fin_texte}`` (« 18 août », « 1er septembre 2027 »: the start's year
is given only when it differs from the end's), ``{annee}`` (the school year N+1).
"""

PLACEHOLDERS = ("ent", "debut", "fin", "debut_texte", "fin_texte", "annee")

def message_template(project: Project, establishment: Establishment | None = None) -> str:
    """The block message before its placeholders are filled: the establishment's own
    (when its project allows establishments to amend the block), else the project's, else
    the seed's example (:data:`DEFAULT_MESSAGE`)."""
    if (establishment is not None and establishment.access_block_message
            and project.access_block_override_allowed):
        return establishment.access_block_message
    return project.access_block_message or DEFAULT_MESSAGE


def render_message(project: Project, window: AccessWindow,
                   establishment: Establishment | None = None) -> str:
    """The message shown to a blocked user, its placeholders filled in."""
    message = message_template(project, establishment)
    year = changeover_year(window.ends_on) + 1
    values = {"debut_texte": long_date(
                  window.starts_on, first="1er",
                  with_year=window.starts_on.year != window.ends_on.year),
              "fin_texte": long_date(window.ends_on, first="1er"),
              "debut": f"{window.starts_on:%d/%m/%Y}", "fin": f"{window.ends_on:%d/%m/%Y}",
              "annee": f"{year}-{year + 1}", "ent": project.ent_name}
    for key, value in values.items():
        message = message.replace("{" + key + "}", value)
    return message


def check_message(message: str) -> None:
    """Refuse a block message with an unknown ``{placeholder}`` or no text.

    Raises:
        AccessBlockError: ``BLOCAGE-MESSAGE-VIDE`` or ``BLOCAGE-MESSAGE-VARIABLE``.
    """
    if not message.strip():
        raise AccessBlockError("BLOCAGE-MESSAGE-VIDE",
                               "Le message de blocage est vide.", rule="")
    for name in re.findall(r"\{([^{}]*)\}", message):
        if name not in PLACEHOLDERS:
            raise AccessBlockError(
                "BLOCAGE-MESSAGE-VARIABLE",
                f"Variable inconnue « {{{name}}} » dans le message de blocage (connues : "
                + ", ".join("{" + p + "}" for p in PLACEHOLDERS) + ").", rule="")


def set_establishment_message(session: Session, establishment_id: int,
                              message: str | None, *,
                              school_year_start: int | None = None) -> None:
    """Set (or, with None or "", clear) an establishment's own block message.

    Raises:
        AccessBlockError: the project does not allow establishments to amend the block,
            it is not the pré-rentrée, or the message is refused (:func:`check_message`).
    """
    if message:
        check_message(message)
    _check_permission(session, establishment_id, school_year_start)
    establishment = session.get(Establishment, establishment_id)
    assert establishment is not None
    establishment.access_block_message = message or None
    session.flush()


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
    return AccessDecision(True, render_message(project, window, establishment), window,
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
