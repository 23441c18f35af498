"""The settings a project owns (seed §3.3, §6.3, §6.4, §6.5), read and changed in one place.

``yearchange project show|set`` and the console's project screen both go through
:func:`describe` and :func:`apply_changes`. The access block is delegated to its one
owner, :mod:`yearchange_tui.workflow.access_block` (dates, limits, message, profiles,
deactivation-notice suspension); the free-group notices' dates are calendar milestones
(:func:`yearchange_tui.workflow.calendar.set_date`), undated by default (seed §6.3:
« aucun message n'est transmis par défaut »). Runs on the caller's thread.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from yearchange_tui.ent.models import Establishment, Project
from yearchange_tui.workflow.access_block import (
    DEFAULT_MESSAGE,
    blocked_profiles,
    establishment_limits,
    message_template,
    parse_profiles,
    set_block_window,
    set_deactivation_notice_suspension,
    set_project_limits,
    set_project_message,
    window_in_plan,
)
from yearchange_tui.workflow.calendar import (
    Milestone,
    Target,
    build_plan,
    day_names,
    parse_days,
    project_rhythm,
    set_date,
)
from yearchange_tui.workflow.establishments import establishments_by_uai

PLACEHOLDER_HOSTS = ("example.fr", "exemple.fr", "example.com", "example.org")


class ProjectSettingsError(ValueError):
    """A project setting refused: French message and a stable code."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{message} [{code}]")


def find_project(session: Session, code: str | None) -> Project:
    """The project named ``code``, or the only one when ``code`` is None.

    Raises:
        ProjectSettingsError: ``PROJET-INCONNU`` or ``PROJET-A-PRECISER``.
    """
    projects = list(session.scalars(select(Project).order_by(Project.code)))
    if code:
        for project in projects:
            if project.code == code.strip():
                return project
        raise ProjectSettingsError("PROJET-INCONNU", f"Projet inconnu « {code} » (connus : "
                                   + (", ".join(p.code for p in projects) or "aucun") + ").")
    if len(projects) == 1:
        return projects[0]
    raise ProjectSettingsError(
        "PROJET-A-PRECISER", "Précisez le projet avec --project (connus : "
        + (", ".join(p.code for p in projects) or "aucun") + ").")


def lifetime_link_warning(template: str) -> str:
    """A French warning when the free-group « modifier la durée de vie » link template is
    empty, has no ``{group_id}`` or is the placeholder address; ``""`` when it looks real."""
    text = (template or "").strip()
    if not text:
        return ("Lien « modifier la durée de vie » vide : les avertissements aux gestionnaires "
                "de groupes libres n'auront pas de lien utilisable. [LIEN-DUREE-VIE-VIDE]")
    if any(host in text for host in PLACEHOLDER_HOSTS):
        return (f"Lien « modifier la durée de vie » d'exemple ({text}) : remplacez-le par "
                "l'adresse de l'ENT du projet. [LIEN-DUREE-VIE-EXEMPLE]")
    if "{group_id}" not in text:
        return (f"Lien « modifier la durée de vie » sans « {{group_id}} » ({text}) : chaque "
                "groupe recevrait le même lien. [LIEN-DUREE-VIE-SANS-GROUPE]")
    return ""


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def describe(session: Session, project: Project, school_year_start: int) -> dict[str, Any]:
    """Every setting of the project for the change-over of year N (JSON-ready)."""
    plan = build_plan(session, school_year_start, with_establishments=True)
    mine = [m for m in plan.milestones if m.project_id == project.id]
    first = next((m.establishment_id for m in mine), None)
    window = window_in_plan(plan, first) if first is not None else None
    project_dates = {m.milestone: m.on_date for m in mine
                     if m.milestone in (Milestone.WARNING, Milestone.SECOND_WARNING)}
    earliest, latest = establishment_limits(project, window, school_year_start)
    establishments = list(session.execute(
        select(Establishment.uai, Establishment.school_life_defaults,
               Establishment.access_block_starts_on, Establishment.access_block_ends_on,
               Establishment.access_block_message)
        .where(Establishment.project_id == project.id).order_by(Establishment.uai)))
    return {
        "project": project.code, "name": project.name, "ent_name": project.ent_name,
        "school_year": f"{school_year_start}-{school_year_start + 1}",
        "access_block": {
            "starts_on": _iso(project.access_block_starts_on),
            "ends_on": _iso(project.access_block_ends_on),
            "message": message_template(project),
            "message_is_default": not project.access_block_message,
            "profiles": sorted(blocked_profiles(project)),
            "establishments_may_amend": project.access_block_override_allowed,
            "establishment_earliest_start": _iso(earliest),
            "establishment_latest_end": _iso(latest),
        },
        "deactivation_notices_suspended_until": _iso(
            project.deactivation_notices_suspended_until),
        "free_groups": {
            "lifetime_url_template": project.group_lifetime_url_template,
            "lifetime_url_warning": lifetime_link_warning(project.group_lifetime_url_template),
            "warning_on": _iso(project_dates.get(Milestone.WARNING)),
            "second_warning_on": _iso(project_dates.get(Milestone.SECOND_WARNING)),
            "summary": project.free_group_summary,
        },
        "aaf": {"delta_days": project.aaf_delta_days,
                "complete_days": project.aaf_complete_days,
                "rhythm": [list(row) for row in project_rhythm(project)]},
        "establishments": [
            {"uai": uai, "school_life_defaults": bool(defaults),
             "access_block_starts_on": _iso(starts), "access_block_ends_on": _iso(ends),
             "access_block_message": message}
            for uai, defaults, starts, ends, message in establishments],
    }


SETTING_NAMES = ("block_start", "block_end", "message", "profiles", "may_amend",
                 "limit_start", "limit_end", "lifetime_url", "delta_days", "complete_days",
                 "warning", "second_warning", "summary", "suspension", "school_life_defaults")
"""Keys :func:`apply_changes` accepts (a key absent: unchanged; None: removed/default)."""

DATE_SETTINGS = frozenset({"block_start", "block_end", "limit_start", "limit_end", "warning",
                           "second_warning", "suspension"})
"""Keys whose value is a date (sent as ``AAAA-MM-JJ`` in an engine request)."""


def apply_changes(session: Session, project: Project, school_year_start: int,
                  changes: dict[str, Any], *, uais: list[str] | None = None,
                  actor: str = "") -> list[str]:
    """Apply the settings in ``changes`` to ``project``; French lines of what changed.

    Every check runs through the owner of the fact (the access block's rules, the
    calendar's); the caller's transaction is left to roll back on an error.

    Args:
        session: an open session (the caller commits).
        project: the project.
        school_year_start: year N of the change-over.
        changes: keys of :data:`SETTING_NAMES`.
        uais: the establishments ``school_life_defaults`` applies to (all of the
            project's when None).
        actor: who asks.

    Raises:
        AccessBlockError, CalendarError, ProjectSettingsError: a value refused.
    """
    unknown = set(changes) - set(SETTING_NAMES)
    assert not unknown, unknown
    lines: list[str] = []
    target = Target(project_id=project.id)
    if "block_start" in changes or "block_end" in changes:
        starts = changes.get("block_start", project.access_block_starts_on)
        ends = changes.get("block_end", project.access_block_ends_on)
        set_block_window(session, school_year_start, target, starts, ends, actor=actor)
        lines.append("blocage des accès : " + (
            f"du {starts:%d/%m/%Y} au {ends:%d/%m/%Y}" if starts and ends else
            "dates retirées (aucun blocage)" if not starts and not ends else
            f"début {starts:%d/%m/%Y}" if starts else f"fin {ends:%d/%m/%Y}"))
    if "message" in changes:
        set_project_message(session, project.id, changes["message"])
        lines.append("message de blocage : " + ("celui du projet" if changes["message"]
                                                 else "l'exemple du cahier des charges"))
    if "profiles" in changes:
        project.access_block_profiles = parse_profiles(changes["profiles"] or "")
        lines.append(f"profils bloqués : {project.access_block_profiles or 'aucun'}")
    if "may_amend" in changes:
        project.access_block_override_allowed = bool(changes["may_amend"])
        lines.append("les établissements " + ("peuvent" if changes["may_amend"] else
                                               "ne peuvent pas") + " modifier le blocage")
    if "limit_start" in changes or "limit_end" in changes:
        earliest = changes.get("limit_start", project.access_block_earliest_start)
        latest = changes.get("limit_end", project.access_block_latest_end)
        set_project_limits(session, project.id, school_year_start, earliest, latest)
        lines.append("limites des établissements : début au plus tôt "
                     + (f"{earliest:%d/%m/%Y}" if earliest else "celui du projet")
                     + ", fin au plus tard "
                     + (f"{latest:%d/%m/%Y}" if latest else "mi-septembre"))
    if "lifetime_url" in changes:
        project.group_lifetime_url_template = (changes["lifetime_url"] or "").strip()
        lines.append(f"lien « modifier la durée de vie » : "
                     f"{project.group_lifetime_url_template or '(vide)'}")
    for key, column, label in (("delta_days", "aaf_delta_days", "jours des deltas AAF"),
                               ("complete_days", "aaf_complete_days",
                                "jours des complets AAF")):
        if key in changes:
            setattr(project, column, day_names(parse_days(changes[key] or "")))
            lines.append(f"{label} : {getattr(project, column) or 'aucun'}")
    for key, milestone in (("warning", Milestone.WARNING),
                           ("second_warning", Milestone.SECOND_WARNING)):
        if key in changes:
            set_date(session, school_year_start, milestone, changes[key], target=target,
                     actor=actor)
            day = changes[key]
            lines.append(f"{milestone.label} : "
                         + (f"le {day:%d/%m/%Y}" if day else "non prévu"))
    if "summary" in changes:
        project.free_group_summary = bool(changes["summary"])
        lines.append("bilan des groupes libres supprimés : "
                     + ("envoyé" if changes["summary"] else "non envoyé"))
    if "suspension" in changes:
        set_deactivation_notice_suspension(session, project.id, changes["suspension"])
        day = changes["suspension"]
        lines.append("notifications de désactivation : "
                     + (f"suspendues jusqu'au {day:%d/%m/%Y}" if day else "non suspendues"))
    if "school_life_defaults" in changes:
        ids = _establishment_ids(session, project, uais)
        session.execute(update(Establishment).where(Establishment.id.in_(ids)).values(
            school_life_defaults=bool(changes["school_life_defaults"])))
        lines.append(("étape 5 « valeurs par défaut » pour " if changes["school_life_defaults"]
                      else "étape 5 saisie par l'établissement pour ")
                     + f"{len(ids)} établissement(s)")
    session.flush()
    return lines


def _establishment_ids(session: Session, project: Project, uais: list[str] | None
                       ) -> list[int]:
    if not uais:
        return list(session.scalars(select(Establishment.id).where(
            Establishment.project_id == project.id)))
    found = establishments_by_uai(session, uais)
    others = [ref.uai for ref in found.values() if ref.project_id != project.id]
    if others:
        raise ProjectSettingsError(
            "ETABLISSEMENT-AUTRE-PROJET",
            f"{', '.join(others)} : établissement(s) d'un autre projet que {project.code}.")
    return [ref.id for ref in found.values()]


__all__ = ["DEFAULT_MESSAGE", "ProjectSettingsError", "apply_changes", "describe",
           "find_project", "lifetime_link_warning"]
