"""Access blocking of step 4 (seed §6.4): students and parents see an explanation page.

The project sets the dates of activation and deactivation (inclusive), the
message and the profiles concerned (students and parents by default). Where the
project allows it, an establishment may shorten or lengthen its own block, within
the project limits: it cannot start before the project's activation date (the
directory is not initialised before) nor end after :data:`LATEST_END` (mid-
September). Account-deactivation notices to students and parents can be
suspended until a date, mid-September at most.

:func:`access_decision` answers "is this user blocked at this time, and with which
message". Runs on the caller's thread; reads only, except the two setters.
"""

from __future__ import annotations

import datetime as dt
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

LATEST_END = (9, 15)
"""(month, day): a block, or a suspension of deactivation notices, ends mid-September at most."""

_KIND_PROFILES = {PersonKind.STUDENT: Profile.STUDENT, PersonKind.RELATIVE: Profile.RELATIVE,
                  PersonKind.TEACHER: Profile.TEACHER, PersonKind.STAFF: Profile.NON_TEACHING}


class AccessBlockError(ValueError):
    """A block setting outside the project's rules (French message)."""


@dataclass(frozen=True)
class AccessWindow:
    """The block period that applies to an establishment, and where it comes from."""

    starts_on: dt.date
    ends_on: dt.date
    source: str  # "projet" or "établissement"

    def covers(self, day: dt.date) -> bool:
        """True when ``day`` is inside the period (both ends included)."""
        return self.starts_on <= day <= self.ends_on


@dataclass(frozen=True)
class AccessDecision:
    """The answer for one user at one time."""

    blocked: bool
    message: str = ""
    window: AccessWindow | None = None
    reason: str = ""


def latest_end(project: Project) -> dt.date | None:
    """The latest date a block of this project may end (mid-September of its year)."""
    if project.access_block_starts_on is None:
        return None
    year = project.access_block_starts_on.year
    return dt.date(year, *LATEST_END)


def blocked_profiles(project: Project) -> set[str]:
    """Profiles the project blocks (``National_ELV``, ``National_TUT``…)."""
    return {item.strip() for item in (project.access_block_profiles or "").split(",")
            if item.strip()}


def effective_window(project: Project,
                     establishment: Establishment | None) -> AccessWindow | None:
    """The block period of an establishment.

    Its own dates when the project allows them and they keep within the project
    limits, else the project's.
    """
    if project.access_block_starts_on is None or project.access_block_ends_on is None:
        return None
    window = AccessWindow(project.access_block_starts_on, project.access_block_ends_on, "projet")
    if establishment is None or not project.access_block_override_allowed:
        return window
    starts = establishment.access_block_starts_on or window.starts_on
    ends = establishment.access_block_ends_on or window.ends_on
    if establishment.access_block_starts_on is None and establishment.access_block_ends_on is None:
        return window
    limit = latest_end(project)
    if starts < window.starts_on or ends < starts or (limit is not None and ends > limit):
        return window  # out of the project limits: the project's dates apply
    return AccessWindow(starts, ends, "établissement")


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
    period of their establishment.

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
    window = effective_window(project, establishment)
    if window is None:
        return AccessDecision(False, reason="aucun blocage paramétré pour le projet")
    if not window.covers(_as_date(at)):
        return AccessDecision(False, window=window, reason="hors de la période de blocage")
    return AccessDecision(True, render_message(project, window), window,
                          f"blocage {window.source} du {window.starts_on:%d/%m/%Y} au "
                          f"{window.ends_on:%d/%m/%Y}")


def set_establishment_block(session: Session, establishment_id: int, starts_on: dt.date | None,
                            ends_on: dt.date | None) -> AccessWindow | None:
    """Set (or clear, with two None) an establishment's own block dates.

    Raises:
        AccessBlockError: the project does not allow it, or the dates leave its limits.
    """
    establishment = session.get(Establishment, establishment_id)
    if establishment is None:
        raise AccessBlockError(f"Établissement inconnu (id {establishment_id}).")
    project = session.get(Project, establishment.project_id)
    assert project is not None
    if starts_on is None and ends_on is None:
        establishment.access_block_starts_on = establishment.access_block_ends_on = None
        return effective_window(project, establishment)
    if not project.access_block_override_allowed:
        raise AccessBlockError(
            f"{establishment.uai} : le projet {project.code} n'autorise pas les établissements à "
            "modifier les dates de blocage des accès (autorisation de la MOA nécessaire).")
    if project.access_block_starts_on is None or project.access_block_ends_on is None:
        raise AccessBlockError(f"Le projet {project.code} n'a pas de période de blocage.")
    starts = starts_on or project.access_block_starts_on
    ends = ends_on or project.access_block_ends_on
    limit = latest_end(project)
    if starts < project.access_block_starts_on:
        raise AccessBlockError(
            f"{establishment.uai} : le blocage ne peut pas commencer avant le "
            f"{project.access_block_starts_on:%d/%m/%Y} (date du projet).")
    if ends < starts:
        raise AccessBlockError(f"{establishment.uai} : la fin du blocage précède son début.")
    if limit is not None and ends > limit:
        raise AccessBlockError(
            f"{establishment.uai} : le blocage ne peut pas durer au-delà du {limit:%d/%m/%Y} "
            "(limite du projet).")
    establishment.access_block_starts_on = starts_on
    establishment.access_block_ends_on = ends_on
    return effective_window(project, establishment)


def set_deactivation_notice_suspension(session: Session, project_id: int,
                                       until: dt.date | None) -> None:
    """Suspend account-deactivation notices to students and parents until ``until``.

    Raises:
        AccessBlockError: ``until`` after mid-September.
    """
    project = session.get(Project, project_id)
    if project is None:
        raise AccessBlockError(f"Projet inconnu (id {project_id}).")
    if until is not None and (until.month, until.day) > LATEST_END:
        raise AccessBlockError(
            f"La suspension des notifications de désactivation ne peut pas aller au-delà de la "
            f"mi-septembre ({LATEST_END[1]:02d}/{LATEST_END[0]:02d}) ; reçu {until:%d/%m/%Y}.")
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
