"""Notices to managers of free groups limited to the school year (seed §6.3), and the
account-deactivation notices (seed §6.4).

Texts are the seed's, word for word (its first subject uses a typographic apostrophe,
its second a straight one). One message per manager lists all their year-limited free
groups of the establishment, attached to a teaching service or not (step 3 deletes
them all); timetable option groups are deleted anyway and never listed.

A person the AAF no longer delivers is deactivated (``disappeared_at``, never deleted):
:func:`send_deactivation_notices` tells them, once per deactivation. The project may
suspend the notices to students and parents until mid-September at most (seed §6.4:
« suspendre la notification de désactivation des comptes aux élèves et parents durant
une période définie »); while suspended they wait, and are sent after the suspension to
those still deactivated (an account restored meanwhile gets none). Every AAF import and
``yearchange notify deactivation`` run it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, and_, exists, select

from yearchange_tui.changeover.effects import RealEffects, Tally
from yearchange_tui.changeover.outcomes import UnitOutcome
from yearchange_tui.ent.models import (
    Establishment,
    Group,
    GroupKind,
    GroupLifetime,
    GroupManager,
    Message,
    MessageCopy,
    Person,
    PersonKind,
    Project,
)
from yearchange_tui.french import long_date
from yearchange_tui.workflow.access_block import deactivation_notices_suspended
from yearchange_tui.workflow.audit import audit
from yearchange_tui.workflow.establishments import EstablishmentRef
from yearchange_tui.workflow.localtime import operator_zone
from yearchange_tui.workflow.models import Step
from yearchange_tui.workflow.project_settings import lifetime_link_warning

if TYPE_CHECKING:
    from yearchange_tui.changeover.runner import ChangeoverRunner

WARNING_SUBJECT = "[Changement d’année] Suppression des groupes libres limités à l’année scolaire"
SUMMARY_SUBJECT = ("[Changement d'année] Bilan des suppressions de groupes libres limités à "
                   "l'année scolaire")

def warning_body(deletion_date: dt.date, groups: list[tuple[str, str]]) -> str:
    """Body of the first and second warnings; ``groups`` is (name, lifetime URL)."""
    when = long_date(deletion_date)
    lines = "\n".join(f"- {name} ([modifier la durée de vie]({url}))" for name, url in groups)
    return (
        "Bonjour,\n\n"
        "Dans le cadre de la procédure de changement d'année, les groupes libres à durée de vie "
        f"limitée à l'année scolaire seront supprimés le {when}.\n\n"
        "Vous trouverez ci-après la liste des groupes dont vous êtes le ou l'un des "
        "gestionnaires et qui seront supprimés :\n\n"
        f"{lines}\n\n"
        "Si vous créez de nouveaux groupes libres à durée de vie limitée à l'année scolaire "
        f"avant le {when}, ils seront également supprimés.\n\n"
        "Cordialement"
    )


def summary_body(deletion_date: dt.date, group_names: list[str]) -> str:
    """Body of the summary sent after step 3."""
    lines = "\n".join(f"- {name}" for name in group_names)
    return (
        "Bonjour,\n\n"
        "Dans le cadre de la procédure de changement d'année, les groupes libres à durée de vie "
        f"limitée à l'année scolaire ont été supprimés le {long_date(deletion_date)}.\n\n"
        "Vous trouverez ci-après la liste des groupes supprimés dont vous étiez le ou l'un des "
        "gestionnaires :\n\n"
        f"{lines}\n\n"
        "Cordialement"
    )


def deletable_free_groups_condition(establishment_id: int):  # type: ignore[no-untyped-def]
    """Year-limited free groups of the establishment that step 3 deletes.

    Every one of them, attached to a teaching service or not (seed §6.3: the exception
    for teaching services concerns the option-group deletion only; the warnings let the
    managers change the lifetime before step 3).
    """
    return and_(
        Group.establishment_id == establishment_id,
        Group.kind == GroupKind.FREE,
        Group.lifetime == GroupLifetime.SCHOOL_YEAR,
    )


@dataclass(frozen=True)
class ManagerGroups:
    """The deletable groups one manager manages."""

    manager_id: int
    groups: tuple[tuple[int, str], ...]  # (group id, name), by name


def groups_by_manager(connection: Connection, establishment_id: int) -> list[ManagerGroups]:
    """Each manager of deletable free groups with all their groups, in a stable order."""
    rows = connection.execute(
        select(GroupManager.person_id, Group.id, Group.name)
        .join(Group, Group.id == GroupManager.group_id)
        .where(deletable_free_groups_condition(establishment_id))
        .order_by(GroupManager.person_id, Group.name, Group.id)).all()
    grouped: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for manager_id, group_id, name in rows:
        grouped[manager_id].append((group_id, name))
    return [ManagerGroups(manager_id, tuple(groups)) for manager_id, groups in grouped.items()]


def summary_enabled(connection: Connection, establishment_id: int) -> bool:
    """True when the establishment's project sends the managers' summary after step 3
    (seed §6.3: no message is sent by default; the project decides)."""
    return bool(connection.scalar(
        select(Project.free_group_summary).join(Establishment,
                                                Establishment.project_id == Project.id)
        .where(Establishment.id == establishment_id)))


def lifetime_url(connection: Connection, project_id: int, group_id: int) -> str:
    """The "modifier la durée de vie" link of a group, from the project's URL template."""
    template = connection.scalar(select(Project.group_lifetime_url_template)
                                 .where(Project.id == project_id)) or ""
    return template.replace("{group_id}", str(group_id))


def send_warnings(runner: ChangeoverRunner, establishments: list[EstablishmentRef], deletion_date: dt.date,
                  second: bool = False) -> list[UnitOutcome]:
    """Warn managers of year-limited free groups that step 3 will delete them.

    One message per manager listing all their groups, each with its lifetime link.
    """
    runner.refuse_read_only("l'envoi des avertissements")
    action = "second-warning" if second else "warning"
    outcomes = []
    for establishment in establishments:
        tally = Tally()
        with runner.database.engine.begin() as connection:
            effects = RealEffects(runner.storage_root, tally)
            for entry in groups_by_manager(connection, establishment.id):
                links = [(name, lifetime_url(connection, establishment.project_id, group_id))
                         for group_id, name in entry.groups]
                effects.send_message(
                    connection, establishment_id=establishment.id,
                    recipient_ids=[entry.manager_id], subject=WARNING_SUBJECT,
                    body=warning_body(deletion_date, links), sent_at=runner.now(),
                    label="avertissements envoyés")
                effects.tally.add("groupes signalés", len(entry.groups))
        counts, _ = tally.as_dicts()
        with runner.database.session() as session:
            project = session.get(Project, establishment.project_id)
            link = lifetime_link_warning(project.group_lifetime_url_template if project else "")
            audit(session, action, "done", establishment_id=establishment.id,
                  details={"counts": counts, "deletion_date": deletion_date.isoformat(),
                           **({"link_warning": link} if link else {})})
        outcomes.append(UnitOutcome(establishment.uai, Step.DELETE_OBSOLETE, "done", counts,
                                    warnings=[link] if link and counts.get(
                                        "avertissements envoyés") else []))
    return outcomes


DEACTIVATION_SUBJECT = "[Changement d'année] Désactivation de votre compte"
SUSPENDED_KINDS = (PersonKind.STUDENT, PersonKind.RELATIVE)
"""The profiles whose deactivation notices a project may suspend (seed §6.4)."""


def deactivation_body(ent_name: str, since: dt.date) -> str:
    """Body of the deactivation notice."""
    return (
        "Bonjour,\n\n"
        f"Votre compte {ent_name} n'est plus transmis par l'annuaire académique depuis le "
        f"{long_date(since)} : il a été désactivé.\n\n"
        "S'il s'agit d'une erreur, adressez-vous à votre établissement.\n\n"
        "Cordialement")


@dataclass(frozen=True)
class DeactivationOutcome:
    """What :func:`send_deactivation_notices` did for one establishment."""

    uai: str
    sent: int
    suspended: int
    suspended_until: dt.date | None


def pending_deactivations(connection: Connection, establishment_id: int
                          ) -> list[tuple[int, PersonKind, dt.datetime]]:
    """Deactivated people of the establishment not yet told of this deactivation:
    (person id, kind, deactivated at), one set-based query."""
    told = exists().where(
        MessageCopy.owner_id == Person.id, MessageCopy.message_id == Message.id,
        Message.subject == DEACTIVATION_SUBJECT, Message.sent_at >= Person.disappeared_at)
    return [(row[0], PersonKind(row[1]), row[2]) for row in connection.execute(
        select(Person.id, Person.kind, Person.disappeared_at).where(
            Person.establishment_id == establishment_id, Person.disappeared_at.is_not(None),
            ~told).order_by(Person.id))]


def send_deactivation_notices(runner: ChangeoverRunner,
                              establishments: list[EstablishmentRef]
                              ) -> list[DeactivationOutcome]:
    """Tell each deactivated person of ``establishments`` once, unless their project
    suspends the notices to students and parents today (they then wait). Audited per
    establishment that had any."""
    now = runner.now()
    today = now.astimezone(operator_zone()).date()
    outcomes = []
    for establishment in establishments:
        with runner.database.session() as session:
            suspended = deactivation_notices_suspended(session, establishment.project_id,
                                                       today)
            project = session.get(Project, establishment.project_id)
            until = project.deactivation_notices_suspended_until if project else None
            ent_name = project.ent_name if project else ""
        tally = Tally()
        with runner.database.engine.begin() as connection:
            pending = pending_deactivations(connection, establishment.id)
            waiting = [p for p in pending if suspended and p[1] in SUSPENDED_KINDS]
            by_day: dict[dt.date, list[int]] = defaultdict(list)
            for person_id, kind, since in pending:
                if not (suspended and kind in SUSPENDED_KINDS):
                    by_day[since.astimezone(operator_zone()).date()
                           if since.tzinfo else since.date()].append(person_id)
            effects = RealEffects(runner.storage_root, tally)
            for day, people in sorted(by_day.items()):
                effects.send_message(connection, establishment_id=establishment.id,
                                     recipient_ids=people, subject=DEACTIVATION_SUBJECT,
                                     body=deactivation_body(ent_name, day), sent_at=now,
                                     label="notifications de désactivation")
        sent = sum(len(people) for people in by_day.values())
        outcome = DeactivationOutcome(establishment.uai, sent, len(waiting),
                                      until if suspended else None)
        if sent or waiting:
            with runner.database.session() as session:
                audit(session, "deactivation-notices", "done",
                      establishment_id=establishment.id,
                      details={"sent": sent, "suspended": len(waiting),
                               "suspended_until": until.isoformat()
                               if suspended and until else None})
        outcomes.append(outcome)
    return outcomes


def deactivation_line(outcome: DeactivationOutcome) -> str:
    """French: « 0693422V : 3 notification(s) de désactivation envoyée(s), 12 suspendue(s)
    jusqu'au 15/09/2027 »."""
    text = f"{outcome.uai} : {outcome.sent} notification(s) de désactivation envoyée(s)"
    if outcome.suspended:
        text += (f", {outcome.suspended} suspendue(s) (élèves et parents) jusqu'au "
                 f"{outcome.suspended_until:%d/%m/%Y}" if outcome.suspended_until else "")
    return text
