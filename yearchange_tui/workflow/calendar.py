"""The change-over calendar: the seed's general calendar (§3.5) as a template, edits per
project, per kind of establishment and per establishment, maintenance windows, and the
AAF rhythm (§3.3).

:func:`template_dates` and :func:`template_windows` are pure; :func:`build_plan` reads the
database and gives every establishment's date and time for each milestone, with the
window it must run in. Runs on the caller's thread; never imports Textual.

Where dates are stored: edits of every milestone are rows of ``calendar_dates``, except the
access-block dates of one project or one establishment, which are the project's and the
establishment's own columns (``access_block_starts_on``/``_ends_on``, seed §6.4). Both
are read as :class:`DateEdit` and resolved by the same rule (the most specific wins), so
the plan and the access decision (:mod:`yearchange_tui.workflow.access_block`) see one
date. Access-block edits are checked against the seed's limits before they are written.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from yearchange_tui.ent.models import Establishment, Project, SchoolYear
from yearchange_tui.ent.school_year import school_year_bounds, school_year_label
from yearchange_tui.workflow.establishments import (
    UnknownEstablishmentError,
    establishment_by_uai,
    establishments_by_uai,
)
from yearchange_tui.workflow.localtime import (
    DEFAULT_TIMEZONE,  # noqa: F401 -- re-exported: the calendar's default zone
    TimezoneError,
    iso_local,
    operator_zone,
    zone_name,
)
from yearchange_tui.workflow.models import AuditEntry, CalendarDate, MaintenanceWindowRow, Step
from yearchange_tui.workflow.units import current_school_year, utcnow

ALL_KINDS = "*"
KINDS = ("college", "lycee", "other")
KIND_LABELS = {"college": "collèges", "lycee": "lycées", "other": "autres"}


class CalendarError(ValueError):
    """A bad calendar edit (unknown milestone, bad date, window upside down…); French."""


class Milestone(enum.StrEnum):
    """A dated event of the change-over; the step ones use the step's CLI name."""

    DRY_RUN = "dry-run"
    WARNING = "warning"
    SECOND_WARNING = "second-warning"
    CLOSURE = "closure"
    PURGE_TRASH = Step.PURGE_TRASH.value
    ARCHIVE = Step.ARCHIVE.value
    DELETE_OBSOLETE = Step.DELETE_OBSOLETE.value
    ACCESS_BLOCK_START = "access-block-start"
    INIT_DIRECTORY = Step.INIT_DIRECTORY.value
    INIT_SCHOOL_LIFE = Step.INIT_SCHOOL_LIFE.value
    ACCESS_BLOCK_END = "access-block-end"
    TEACHERS_START = "teachers-start"
    START_OF_TERM = "start-of-term"

    @property
    def label(self) -> str:
        """French name shown to operators."""
        return MILESTONE_LABELS[self]

    @property
    def step(self) -> Step | None:
        """The change-over step this milestone runs, if it is one."""
        try:
            return Step(self.value)
        except ValueError:
            return None

    @property
    def runs_units(self) -> bool:
        """True when the engine runs something for each establishment on this date."""
        return self in RUNNABLE_MILESTONES


def milestone_of(step: Step) -> Milestone | None:
    """The calendar milestone of a step, if the calendar plans it (a step added without a
    milestone runs on request only)."""
    try:
        return Milestone(step.value)
    except ValueError:
        return None


MILESTONE_LABELS = {
    Milestone.DRY_RUN: "Passage à blanc (étapes 1 à 3)",
    Milestone.WARNING: "Avertissement groupes libres",
    Milestone.SECOND_WARNING: "Second avertissement groupes libres",
    Milestone.CLOSURE: "Fin d'année scolaire (fermeture)",
    Milestone.PURGE_TRASH: "Étape 1 — Purge de la corbeille",
    Milestone.ARCHIVE: "Étape 2 — Archivage de fin d'année N",
    Milestone.DELETE_OBSOLETE: "Étape 3 — Suppression des données obsolètes N",
    Milestone.ACCESS_BLOCK_START: "Blocage des accès élèves et parents",
    Milestone.INIT_DIRECTORY: "Étape 4 — Initialisation de l'annuaire N+1",
    Milestone.INIT_SCHOOL_LIFE: "Étape 5 — Initialisation de la vie scolaire N+1",
    Milestone.ACCESS_BLOCK_END: "Fin du blocage des accès",
    Milestone.TEACHERS_START: "Rentrée des enseignants",
    Milestone.START_OF_TERM: "Rentrée des élèves",
}

RUNNABLE_MILESTONES = (Milestone.DRY_RUN, Milestone.WARNING, Milestone.SECOND_WARNING,
                       Milestone.PURGE_TRASH, Milestone.ARCHIVE, Milestone.DELETE_OBSOLETE,
                       Milestone.INIT_DIRECTORY, Milestone.INIT_SCHOOL_LIFE)

# Order in which milestones of the same date and time are run.
MILESTONE_ORDER = {milestone: index for index, milestone in enumerate(Milestone)}

WINDOW_SCOPES = {"1-3": "étapes 1 à 3", "4": "étape 4"}
_SCOPE_OF = {Milestone.PURGE_TRASH: "1-3", Milestone.ARCHIVE: "1-3",
             Milestone.DELETE_OBSOLETE: "1-3", Milestone.INIT_DIRECTORY: "4"}

# Local time a milestone starts at when no time is set.
DEFAULT_TIMES = {Milestone.WARNING: dt.time(8, 0), Milestone.SECOND_WARNING: dt.time(8, 0)}
DEFAULT_TIME = dt.time(6, 0)
# A milestone outside any window may still start this long after its time.
WINDOWLESS_GRACE = dt.timedelta(hours=24)

STEP_ONE_TO_THREE = (Milestone.PURGE_TRASH, Milestone.ARCHIVE, Milestone.DELETE_OBSOLETE)

# Aliases accepted on the command line.
MILESTONE_ALIASES = {"0": Milestone.DRY_RUN, "1": Milestone.PURGE_TRASH,
                     "2": Milestone.ARCHIVE, "3": Milestone.DELETE_OBSOLETE,
                     "4": Milestone.INIT_DIRECTORY, "5": Milestone.INIT_SCHOOL_LIFE}


def parse_milestone(value: str) -> Milestone:
    """A milestone from its name or its step number.

    Raises:
        CalendarError: for an unknown name.
    """
    value = value.strip().lower()
    if value in MILESTONE_ALIASES:
        return MILESTONE_ALIASES[value]
    try:
        return Milestone(value)
    except ValueError as error:
        names = ", ".join(m.value for m in Milestone)
        raise CalendarError(f"jalon inconnu « {value} » (connus : {names}, ou 0 à 5)") from error


def scope_of(milestone: Milestone) -> str | None:
    """The maintenance-window scope a milestone runs in ("1-3", "4"), or None."""
    return _SCOPE_OF.get(milestone)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """An aware UTC datetime; naive values (SQLite) are taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


# -- the template -------------------------------------------------------------------------

def template_dates(school_year_start: int) -> dict[Milestone, dict[str, dt.date | None]]:
    """The seed's general calendar (§3.5) for the change-over of year N = ``school_year_start``.

    Returns, per milestone, the date per establishment kind (``"*"`` for every kind).
    Collèges close early July and lycées mid-July, so steps 1 to 3 fall on different days.
    Dates the project owns have none here (:data:`PROJECT_MILESTONES`): the free-group
    warnings (seed §6.3, « aucun message n'est transmis par défaut ») and the access block
    of step 4 (seed §6.4, « définies par projet »); the plan shows them
    :data:`NOT_PLANNED` until the project sets them.
    """
    summer = school_year_start + 1

    def day(month: int, number: int) -> dt.date:
        return dt.date(summer, month, number)

    steps_1_to_3 = {"college": day(7, 7), "lycee": day(7, 16), "other": day(7, 16)}
    return {
        Milestone.DRY_RUN: {ALL_KINDS: day(6, 29)},
        Milestone.WARNING: {ALL_KINDS: None},
        Milestone.SECOND_WARNING: {ALL_KINDS: None},
        Milestone.CLOSURE: {"college": day(7, 6), "lycee": day(7, 15), "other": day(7, 15)},
        Milestone.PURGE_TRASH: dict(steps_1_to_3),
        Milestone.ARCHIVE: dict(steps_1_to_3),
        Milestone.DELETE_OBSOLETE: dict(steps_1_to_3),
        Milestone.ACCESS_BLOCK_START: {ALL_KINDS: None},
        Milestone.INIT_DIRECTORY: {ALL_KINDS: day(8, 18)},
        Milestone.INIT_SCHOOL_LIFE: {ALL_KINDS: day(8, 28)},
        Milestone.ACCESS_BLOCK_END: {ALL_KINDS: None},
        Milestone.TEACHERS_START: {ALL_KINDS: day(9, 1)},
        Milestone.START_OF_TERM: {ALL_KINDS: day(9, 2)},
    }


PROJECT_MILESTONES = (Milestone.WARNING, Milestone.SECOND_WARNING,
                      Milestone.ACCESS_BLOCK_START, Milestone.ACCESS_BLOCK_END)
"""Milestones the template leaves undated: only the project (or an establishment it
allows) dates them."""

NOT_PLANNED = "non prévu (à définir par le projet)"
"""What the plan says of a project milestone nobody dated."""


@dataclass(frozen=True)
class Window:
    """A maintenance window of one scope."""

    scope: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    label: str
    source: str  # modèle, projet P, tous les projets
    id: int | None = None
    project_code: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (times ISO 8601 with the operator's offset)."""
        return {"id": self.id, "scope": self.scope, "label": self.label,
                "starts_at": iso_local(self.starts_at), "ends_at": iso_local(self.ends_at),
                "source": self.source, "project": self.project_code}


def template_windows(school_year_start: int, zone: ZoneInfo) -> list[Window]:
    """The template's maintenance windows: steps 1 to 3 from the collèges' date to the
    lycées' date, step 4 over four days from its date."""
    dates = template_dates(school_year_start)
    first = dates[Milestone.PURGE_TRASH]["college"]
    last = dates[Milestone.PURGE_TRASH]["lycee"]
    step4 = dates[Milestone.INIT_DIRECTORY][ALL_KINDS]
    assert first and last and step4

    def at(day: dt.date, hour: int) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour), tzinfo=zone).astimezone(dt.UTC)

    return [Window("1-3", at(first, 6), at(last, 22), WINDOW_SCOPES["1-3"], "modèle"),
            Window("4", at(step4, 6), at(step4 + dt.timedelta(days=3), 22),
                   WINDOW_SCOPES["4"], "modèle")]


# -- the AAF rhythm (seed §3.3) -----------------------------------------------------------

AAF_RHYTHM = (
    ("lundi", "delta du lundi", "mardi matin"),
    ("mardi", "delta du mardi", "mercredi matin"),
    ("mercredi", "delta du mercredi", "jeudi matin"),
    ("jeudi", "delta du jeudi", "vendredi matin"),
    ("samedi", "complet du samedi", "lundi matin"),
)
"""(update in SIECLE/STS, file in the AAF, integrated in the ENT directory)."""


DAY_NAMES = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
DEFAULT_DELTA_DAYS = (0, 1, 2, 3)
DEFAULT_COMPLETE_DAYS = (5,)


def parse_days(text: str) -> tuple[int, ...]:
    """``lundi,mardi`` (French day names, or ``lun``, or 1–7) → weekday numbers (0 Monday).

    Raises:
        CalendarError: for an unknown day.
    """
    days: list[int] = []
    for item in (part.strip().lower().rstrip(".") for part in text.split(",")):
        if not item:
            continue
        if item.isdigit() and 1 <= int(item) <= 7:
            number = int(item) - 1
        else:
            matches = [i for i, name in enumerate(DAY_NAMES) if name.startswith(item)]
            if len(item) < 3 or len(matches) != 1:
                raise CalendarError(f"jour inconnu « {item} » (attendu : "
                                    f"{', '.join(DAY_NAMES)})")
            number = matches[0]
        if number not in days:
            days.append(number)
    return tuple(sorted(days))


def day_names(days: tuple[int, ...]) -> str:
    """Weekday numbers → ``lundi,mardi``."""
    return ",".join(DAY_NAMES[day] for day in days)


def _next_working_morning(day: dt.date) -> dt.date:
    """The next day the ENT integrates files: the day after, or Monday after a weekend."""
    following = day + dt.timedelta(days=1)
    while following.weekday() >= 5:
        following += dt.timedelta(days=1)
    return following


def aaf_rhythm(delta_days: tuple[int, ...] = DEFAULT_DELTA_DAYS,
               complete_days: tuple[int, ...] = DEFAULT_COMPLETE_DAYS
               ) -> tuple[tuple[str, str, str], ...]:
    """The AAF rhythm of a project's exchange days (seed §3.3): (update in SIECLE/STS, file
    in the AAF, integrated in the ENT directory); the template's is :data:`AAF_RHYTHM`."""
    rows = []
    for day in sorted(set(delta_days) | set(complete_days)):
        kind = "complet" if day in complete_days else "delta"
        integrated = _next_working_morning(dt.date(2024, 1, 1) + dt.timedelta(days=day))
        rows.append((DAY_NAMES[day], f"{kind} du {DAY_NAMES[day]}",
                     f"{DAY_NAMES[integrated.weekday()]} matin"))
    return tuple(rows)


def project_rhythm(project: Project) -> tuple[tuple[str, str, str], ...]:
    """A project's AAF rhythm from its exchange days (the template's when unreadable)."""
    try:
        return aaf_rhythm(parse_days(project.aaf_delta_days or ""),
                          parse_days(project.aaf_complete_days or ""))
    except CalendarError:
        return AAF_RHYTHM


def aaf_integration(updated_on: dt.date, delta_days: tuple[int, ...] = DEFAULT_DELTA_DAYS,
                    complete_days: tuple[int, ...] = DEFAULT_COMPLETE_DAYS
                    ) -> tuple[str, dt.date] | None:
    """The AAF file carrying an update made in SIECLE/STS on ``updated_on``, and the day it
    reaches the ENT directory (morning); None on a day with no exchange (by default Friday
    and Sunday)."""
    weekday = updated_on.weekday()
    if weekday in complete_days:
        return "complet", _next_working_morning(updated_on)
    if weekday in delta_days:
        return "delta", _next_working_morning(updated_on)
    return None


# -- the plan -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedMilestone:
    """One establishment's milestone: its date, start time and window."""

    establishment_id: int
    uai: str
    name: str
    kind: str
    project_id: int
    project_code: str
    milestone: Milestone
    on_date: dt.date | None
    due_at: dt.datetime | None  # UTC; None when not runnable or without date
    not_after: dt.datetime | None  # UTC end of its window (or of the grace period)
    window_label: str = ""
    source: str = "modèle"
    note: str = ""

    @property
    def schedulable(self) -> bool:
        """True when the engine can run it (a runnable milestone with a date and a window)."""
        return self.milestone.runs_units and self.due_at is not None and not self.note_blocks

    @property
    def note_blocks(self) -> bool:
        """True when the note says the milestone cannot be scheduled."""
        return self.note.startswith(NO_WINDOW)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"uai": self.uai, "milestone": self.milestone.value,
                "label": self.milestone.label,
                "date": self.on_date.isoformat() if self.on_date else None,
                "due_at": iso_local(self.due_at),
                "not_after": iso_local(self.not_after),
                "window": self.window_label, "source": self.source, "note": self.note}


NO_WINDOW = "aucune fenêtre de maintenance"


@dataclass
class Plan:
    """The whole calendar of one change-over, per establishment."""

    school_year_start: int
    school_year_label: str
    timezone_name: str
    milestones: list[PlannedMilestone] = field(default_factory=list)
    windows: dict[str, list[Window]] = field(default_factory=dict)  # project code → windows
    # project code → its AAF rhythm (seed §3.3: the project's exchange days)
    rhythms: dict[str, tuple[tuple[str, str, str], ...]] = field(default_factory=dict)
    _index: dict[tuple[int, Milestone], PlannedMilestone] = field(
        default_factory=dict, repr=False, compare=False)

    def for_establishment(self, uai: str) -> dict[Milestone, PlannedMilestone]:
        """The milestones of one establishment."""
        return {m.milestone: m for m in self.milestones if m.uai == uai}

    def get(self, establishment_id: int, milestone: Milestone) -> PlannedMilestone | None:
        """One establishment's milestone."""
        if len(self._index) != len(self.milestones):
            self._index = {(m.establishment_id, m.milestone): m for m in self.milestones}
        return self._index.get((establishment_id, milestone))

    def batches(self) -> dict[tuple[Milestone, dt.datetime, dt.datetime | None],
                              list[PlannedMilestone]]:
        """Schedulable milestones grouped by (milestone, start, end): one scheduler job each."""
        grouped: dict[tuple[Milestone, dt.datetime, dt.datetime | None],
                      list[PlannedMilestone]] = defaultdict(list)
        for planned in self.milestones:
            if planned.schedulable:
                assert planned.due_at is not None
                grouped[(planned.milestone, planned.due_at, planned.not_after)].append(planned)
        return dict(grouped)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        by_uai: dict[str, dict[str, Any]] = {}
        for planned in self.milestones:
            entry = by_uai.setdefault(planned.uai, {
                "uai": planned.uai, "name": planned.name, "kind": planned.kind,
                "project": planned.project_code, "milestones": []})
            entry["milestones"].append(planned.as_dict())
        return {"school_year": self.school_year_label, "timezone": self.timezone_name,
                "windows": {code: [w.as_dict() for w in windows]
                            for code, windows in self.windows.items()},
                "establishments": list(by_uai.values()),
                "aaf_rhythm": [{"update": update, "aaf": aaf, "integrated": integrated}
                               for update, aaf, integrated in AAF_RHYTHM],
                "aaf_rhythms": {code: [{"update": update, "aaf": aaf, "integrated": integrated}
                                       for update, aaf, integrated in rhythm]
                                for code, rhythm in self.rhythms.items()}}


NOTICE_ACTIONS = {Milestone.WARNING: "warning", Milestone.SECOND_WARNING: "second-warning"}
"""The free-group warnings and the audit action that records each one sent (they have no
step unit)."""


def notices_sent(session: Session, school_year_start: int,
                 establishment_ids: Collection[int] | None = None
                 ) -> set[tuple[int, Milestone]]:
    """(establishment id, milestone) of the free-group warnings already sent for the
    change-over of year N (audited « done » since 1 January of its summer): what the engine
    takes as settled, and what the grid shows as done (of ``establishment_ids`` only, when
    given)."""
    since = dt.datetime(school_year_start + 1, 1, 1, tzinfo=dt.UTC)
    by_action = {action: milestone for milestone, action in NOTICE_ACTIONS.items()}
    query = select(AuditEntry.establishment_id, AuditEntry.action).where(
        AuditEntry.action.in_(list(by_action)), AuditEntry.outcome == "done",
        AuditEntry.at >= since)
    if establishment_ids is not None:
        query = query.where(AuditEntry.establishment_id.in_(establishment_ids))
    return {(establishment_id, by_action[action])
            for establishment_id, action in session.execute(query)
            if establishment_id is not None}


def _school_year(session: Session, school_year_start: int | None) -> SchoolYear:
    if school_year_start is None:
        return current_school_year(session)
    year = session.scalar(select(SchoolYear).where(SchoolYear.start_year == school_year_start))
    if year is None:
        starts_on, ends_on = school_year_bounds(school_year_start)
        return SchoolYear(start_year=school_year_start,
                          label=school_year_label(school_year_start),
                          starts_on=starts_on, ends_on=ends_on, is_current=False)
    return year


@dataclass(frozen=True)
class DateEdit:
    """One edited date of a milestone for a target (a row of the calendar, or a project's
    or an establishment's own access-block date)."""

    on_date: dt.date | None
    at_time: dt.time | None = None
    project_id: int | None = None
    establishment_kind: str | None = None
    establishment_id: int | None = None
    order: int = 0  # among equally specific edits, the higher wins

    @classmethod
    def of_row(cls, row: CalendarDate) -> DateEdit:
        """The edit a ``calendar_dates`` row holds."""
        return cls(row.on_date, row.at_time, row.project_id, row.establishment_kind,
                   row.establishment_id, row.id)

    @property
    def specificity(self) -> int:
        """5 establishment, 4 project and kind, 3 kind, 2 project, 1 every project."""
        if self.establishment_id is not None:
            return 5
        if self.project_id is not None and self.establishment_kind is not None:
            return 4
        if self.establishment_kind is not None:
            return 3
        if self.project_id is not None:
            return 2
        return 1

    @property
    def source(self) -> str:
        """French name of the level the edit was made at."""
        return SOURCES[self.specificity]

    def targets(self, target: Target) -> bool:
        """True when the edit was made for exactly ``target``."""
        return (self.project_id, self.establishment_kind, self.establishment_id) == (
            target.project_id, target.establishment_kind, target.establishment_id)

    def applies_to(self, establishment_id: int, project_id: int, kind: str) -> bool:
        """True when the edit concerns this establishment."""
        return (self.establishment_id in (None, establishment_id)
                and self.project_id in (None, project_id)
                and self.establishment_kind in (None, kind))


SOURCES = {5: "établissement", 4: "projet et type", 3: "type", 2: "projet",
           1: "tous les projets", 0: "modèle"}
"""Where a planned date comes from, by specificity (0: the template)."""

ACCESS_BLOCK_MILESTONES = (Milestone.ACCESS_BLOCK_START, Milestone.ACCESS_BLOCK_END)


def changeover_year(day: dt.date) -> int:
    """Year N of the change-over whose calendar holds ``day``.

    The change-over of N runs from the dry run (end of June) to the end of the access
    block (mid-September), all in calendar year N+1 (:func:`template_dates`).
    """
    return day.year - 1


@dataclass(frozen=True)
class PendingEdit:
    """An edit not written yet: :func:`build_plan` shows the plan as it would be with it."""

    milestone: Milestone
    target: Target
    on_date: dt.date | None = None
    remove: bool = False


def _own_block_edits(projects: dict[int, Project], establishments: list[Establishment],
                     school_year_start: int) -> dict[Milestone, list[DateEdit]]:
    """The access-block dates projects and establishments hold in their own columns.

    A date applies to the change-over whose summer it falls in. An establishment's own
    dates count only while its project allows establishments to change them (seed §6.4,
    authorisation of the MOA).
    """
    summer = school_year_start + 1
    edits: dict[Milestone, list[DateEdit]] = defaultdict(list)

    def add(milestone: Milestone, on_date: dt.date | None, **where: Any) -> None:
        if on_date is not None and on_date.year == summer:
            edits[milestone].append(DateEdit(on_date, **where))

    for project in projects.values():
        add(Milestone.ACCESS_BLOCK_START, project.access_block_starts_on, project_id=project.id)
        add(Milestone.ACCESS_BLOCK_END, project.access_block_ends_on, project_id=project.id)
    for establishment in establishments:
        project = projects.get(establishment.project_id)
        if project is None or not project.access_block_override_allowed:
            continue
        add(Milestone.ACCESS_BLOCK_START, establishment.access_block_starts_on,
            establishment_id=establishment.id)
        add(Milestone.ACCESS_BLOCK_END, establishment.access_block_ends_on,
            establishment_id=establishment.id)
    return edits


def stores_in_own_columns(milestone: Milestone, target: Target) -> bool:
    """True when an edit of ``milestone`` for ``target`` lives in a project's or an
    establishment's own access-block column rather than in ``calendar_dates``."""
    return milestone in ACCESS_BLOCK_MILESTONES and (
        target.establishment_id is not None
        or (target.project_id is not None and target.establishment_kind is None))


def project_windows(session: Session, school_year_start: int, zone: ZoneInfo
                    ) -> dict[int | None, dict[str, list[Window]]]:
    """Windows per project id (None: every project) and scope, as stored."""
    codes = dict(session.execute(select(Project.id, Project.code)).all())
    stored: dict[int | None, dict[str, list[Window]]] = defaultdict(lambda: defaultdict(list))
    rows = session.scalars(select(MaintenanceWindowRow).where(
        MaintenanceWindowRow.school_year_start == school_year_start)
        .order_by(MaintenanceWindowRow.starts_at, MaintenanceWindowRow.id))
    for row in rows:
        source = f"projet {codes.get(row.project_id, '?')}" if row.project_id else "tous les projets"
        starts_at, ends_at = as_utc(row.starts_at), as_utc(row.ends_at)
        assert starts_at is not None and ends_at is not None
        stored[row.project_id][row.scope].append(Window(
            row.scope, starts_at, ends_at, row.label or WINDOW_SCOPES.get(row.scope, row.scope),
            source, row.id, codes.get(row.project_id, "") if row.project_id else ""))
    return stored


def windows_for(stored: dict[int | None, dict[str, list[Window]]], project_id: int,
                scope: str, template: list[Window]) -> list[Window]:
    """The windows a project's units of ``scope`` run in: its own, else every project's,
    else the template's."""
    for key in (project_id, None):
        found = stored.get(key, {}).get(scope)
        if found:
            return sorted(found, key=lambda w: w.starts_at)
    return [w for w in template if w.scope == scope]


def build_plan(session: Session, school_year_start: int | None = None,
               timezone_name: str | None = None, uais: list[str] | None = None, *,
               with_establishments: bool = True,
               pending: tuple[PendingEdit, ...] = ()) -> Plan:
    """Every establishment's milestones for the change-over of year N.

    Args:
        session: an open session.
        school_year_start: year N (default: the current school year).
        timezone_name: the zone local dates and times are in (default: the operator's).
        uais: only these establishments (all when None).
        with_establishments: False for the windows alone.
        pending: edits not written yet, to see the plan as they would make it.

    Raises:
        CalendarError: for an unknown time zone or establishment.
        NoCurrentYearError: when no year is given and none is current.
    """
    timezone_name = timezone_name or zone_name()
    try:
        zone = operator_zone(timezone_name)
    except TimezoneError as error:
        raise CalendarError(str(error)) from error
    year = _school_year(session, school_year_start)
    start = year.start_year
    template = template_dates(start)
    template_window_list = template_windows(start, zone)
    stored_windows = project_windows(session, start, zone)

    projects = {row.id: row for row in session.scalars(select(Project))}
    query = select(Establishment).order_by(Establishment.uai)
    if uais:
        try:
            wanted = establishments_by_uai(session, uais)
        except UnknownEstablishmentError as error:
            raise CalendarError(str(error)) from error
        query = query.where(Establishment.id.in_([ref.id for ref in wanted.values()]))
    establishments = list(session.scalars(query)) if with_establishments else []

    edits = _own_block_edits(projects, establishments, start)
    for row in session.scalars(select(CalendarDate).where(
            CalendarDate.school_year_start == start)):
        edit = DateEdit.of_row(row)
        milestone = Milestone(row.milestone) if row.milestone in _MILESTONE_VALUES else None
        if milestone is None or stores_in_own_columns(milestone, _target_of(edit)):
            continue  # unknown milestone, or a level whose date lives in its own column
        edits[milestone].append(edit)
    for edit in pending:
        kept = [e for e in edits[edit.milestone] if not e.targets(edit.target)]
        if not edit.remove:
            kept.append(DateEdit(edit.on_date, None, edit.target.project_id,
                                 edit.target.establishment_kind, edit.target.establishment_id,
                                 order=1 + max((e.order for e in kept), default=0)))
        edits[edit.milestone] = kept

    plan = Plan(start, f"{start}-{start + 1}", timezone_name)
    for project in projects.values():
        plan.rhythms[project.code] = project_rhythm(project)
        plan.windows[project.code] = [w for scope in WINDOW_SCOPES
                                      for w in windows_for(stored_windows, project.id, scope,
                                                           template_window_list)]
    for establishment in establishments:
        kind = str(getattr(establishment.kind, "value", establishment.kind))
        project = projects.get(establishment.project_id)
        project_code = project.code if project else ""
        for milestone in Milestone:
            plan.milestones.append(_plan_one(
                establishment, kind, project_code, milestone, template[milestone],
                edits.get(milestone, []), stored_windows, template_window_list, zone))
    return plan


_MILESTONE_VALUES = {m.value for m in Milestone}


def _target_of(edit: DateEdit) -> Target:
    return Target(edit.project_id if edit.establishment_id is None else None,
                  edit.establishment_kind if edit.establishment_id is None else None,
                  edit.establishment_id)


def _plan_one(establishment: Establishment, kind: str, project_code: str, milestone: Milestone,
              template: dict[str, dt.date | None], edits: list[DateEdit],
              stored_windows: dict[int | None, dict[str, list[Window]]],
              template_window_list: list[Window], zone: ZoneInfo) -> PlannedMilestone:
    matching = [edit for edit in edits
                if edit.applies_to(establishment.id, establishment.project_id, kind)]
    note = ""
    at_time: dt.time | None = None
    if matching:
        best = max(matching, key=lambda edit: (edit.specificity, edit.order))
        on_date, at_time, source = best.on_date, best.at_time, best.source
    else:
        on_date = template.get(kind, template.get(ALL_KINDS))
        source = "modèle"
        if milestone is Milestone.CLOSURE and establishment.closing_date:
            on_date, source = establishment.closing_date, "établissement"
        if (milestone in STEP_ONE_TO_THREE and establishment.closing_date and on_date
                and on_date <= establishment.closing_date):
            on_date = establishment.closing_date + dt.timedelta(days=1)
            source = "modèle (lendemain de la fermeture)"
    if on_date is None and milestone in PROJECT_MILESTONES:
        note = NOT_PLANNED
    if (milestone in STEP_ONE_TO_THREE and on_date and establishment.closing_date
            and on_date <= establishment.closing_date):
        note = f"avant la fermeture de l'établissement ({establishment.closing_date:%d/%m/%Y})"
    due_at: dt.datetime | None = None
    not_after: dt.datetime | None = None
    window_label = ""
    if on_date is not None and milestone.runs_units:
        local_time = at_time or DEFAULT_TIMES.get(milestone, DEFAULT_TIME)
        due_at = dt.datetime.combine(on_date, local_time, tzinfo=zone).astimezone(dt.UTC)
        scope = scope_of(milestone)
        if scope is None:
            not_after = due_at + WINDOWLESS_GRACE
        else:
            windows = windows_for(stored_windows, establishment.project_id, scope,
                                  template_window_list)
            window = next((w for w in windows if w.ends_at > due_at), None)
            if window is None:
                note = (f"{NO_WINDOW} « {WINDOW_SCOPES[scope]} » après le "
                        f"{on_date:%d/%m/%Y} : ajoutez-en une (yearchange plan window add)")
            else:
                due_at = max(due_at, window.starts_at)
                not_after = window.ends_at
                window_label = window.label
    return PlannedMilestone(establishment.id, establishment.uai, establishment.name, kind,
                            establishment.project_id, project_code, milestone, on_date, due_at,
                            not_after, window_label, source, note)


# -- edits --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """Which establishments a calendar edit applies to."""

    project_id: int | None = None
    establishment_kind: str | None = None
    establishment_id: int | None = None

    def __post_init__(self) -> None:
        if self.establishment_id is not None and self.establishment_kind is not None:
            raise CalendarError("précisez un établissement ou un type d'établissement, pas les deux")
        if self.establishment_kind is not None and self.establishment_kind not in KINDS:
            raise CalendarError(f"type d'établissement inconnu « {self.establishment_kind} » "
                                f"(connus : {', '.join(KINDS)})")


def resolve_target(session: Session, *, uai: str | None = None, kind: str | None = None,
                   project: str | None = None) -> Target:
    """A :class:`Target` from operator input (UAI, kind, project code).

    Raises:
        CalendarError: for an unknown establishment or project.
    """
    project_id = None
    if project:
        project_id = session.scalar(select(Project.id).where(Project.code == project.strip()))
        if project_id is None:
            raise CalendarError(f"projet inconnu « {project} »")
    establishment_id = None
    if uai:
        try:
            establishment_id = establishment_by_uai(session, uai).id
        except UnknownEstablishmentError as error:
            raise CalendarError(str(error)) from error
        project_id = None
    return Target(project_id, kind.strip().lower() if kind else None, establishment_id)


def set_date(session: Session, school_year_start: int, milestone: Milestone,
             on_date: dt.date | None, at_time: dt.time | None = None, *,
             target: Target = Target(), actor: str = "") -> None:
    """Set (or, with ``on_date`` None, remove) a milestone's date for ``target``.

    Access-block dates go through :func:`yearchange_tui.workflow.access_block.set_block_date`
    (the seed's limits and the project's permission).

    Raises:
        CalendarError: an access-block date the rules refuse (nothing is written).
    """
    if milestone in ACCESS_BLOCK_MILESTONES:
        # access_block builds on this module's plan: a top-level import would be a cycle.
        from yearchange_tui.workflow.access_block import set_block_date

        set_block_date(session, school_year_start, milestone, on_date, target=target,
                       actor=actor)
        return
    store_date(session, school_year_start, milestone, on_date, at_time, target=target,
               actor=actor)


def store_date(session: Session, school_year_start: int, milestone: Milestone,
               on_date: dt.date | None, at_time: dt.time | None = None, *,
               target: Target = Target(), actor: str = "") -> None:
    """Write a ``calendar_dates`` row as given, with no rule checked (use :func:`set_date`)."""
    row = session.scalar(select(CalendarDate).where(
        CalendarDate.school_year_start == school_year_start,
        CalendarDate.milestone == milestone.value,
        _is(CalendarDate.project_id, target.project_id),
        _is(CalendarDate.establishment_kind, target.establishment_kind),
        _is(CalendarDate.establishment_id, target.establishment_id)))
    if row is None:
        row = CalendarDate(school_year_start=school_year_start, milestone=milestone.value,
                           project_id=target.project_id,
                           establishment_kind=target.establishment_kind,
                           establishment_id=target.establishment_id)
        session.add(row)
    row.on_date = on_date
    row.at_time = at_time
    row.updated_at = utcnow()
    row.updated_by = actor
    session.flush()


def unset_date(session: Session, school_year_start: int, milestone: Milestone, *,
               target: Target = Target()) -> int:
    """Remove an edit so the less specific one (or the template) applies again.

    Returns:
        The number of edits removed (0 or 1).

    Raises:
        CalendarError: an access-block date the rules refuse once the edit is gone.
    """
    if milestone in ACCESS_BLOCK_MILESTONES:
        # access_block builds on this module's plan: a top-level import would be a cycle.
        from yearchange_tui.workflow.access_block import unset_block_date

        return unset_block_date(session, school_year_start, milestone, target=target)
    return remove_stored_date(session, school_year_start, milestone, target=target)


def remove_stored_date(session: Session, school_year_start: int, milestone: Milestone, *,
                       target: Target = Target()) -> int:
    """Delete a ``calendar_dates`` row, with no rule checked (use :func:`unset_date`)."""
    result = session.execute(delete(CalendarDate).where(
        CalendarDate.school_year_start == school_year_start,
        CalendarDate.milestone == milestone.value,
        _is(CalendarDate.project_id, target.project_id),
        _is(CalendarDate.establishment_kind, target.establishment_kind),
        _is(CalendarDate.establishment_id, target.establishment_id)))
    return int(result.rowcount or 0)


def _is(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


def add_window(session: Session, school_year_start: int, scope: str,
               starts_at: dt.datetime, ends_at: dt.datetime, *, project_id: int | None = None,
               label: str = "", actor: str = "") -> int:
    """Add a maintenance window (aware datetimes). A project's own windows replace the
    template's for their scope.

    Raises:
        CalendarError: for an unknown scope or an end not after the start.
    """
    if scope not in WINDOW_SCOPES:
        raise CalendarError(f"portée de fenêtre inconnue « {scope} » "
                            f"(connues : {', '.join(WINDOW_SCOPES)})")
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise CalendarError("les heures d'une fenêtre doivent avoir un fuseau")
    if ends_at <= starts_at:
        raise CalendarError("la fin de la fenêtre doit suivre son début")
    row = MaintenanceWindowRow(school_year_start=school_year_start, project_id=project_id,
                               scope=scope, starts_at=starts_at.astimezone(dt.UTC),
                               ends_at=ends_at.astimezone(dt.UTC),
                               label=label or WINDOW_SCOPES[scope], created_at=utcnow(),
                               created_by=actor)
    session.add(row)
    session.flush()
    return row.id


def remove_window(session: Session, window_id: int) -> bool:
    """Remove one window by id; False when there was none."""
    result = session.execute(delete(MaintenanceWindowRow).where(
        MaintenanceWindowRow.id == window_id))
    return bool(result.rowcount)


DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d/%m/%y")
"""What an operator may type for a date, in the console and on the command line."""


def parse_day(value: str) -> dt.date:
    """``JJ/MM/AAAA`` (or ``AAAA-MM-JJ``, or ``JJ/MM/AA``) to a date: the one date parser of
    the console and the command line.

    Raises:
        CalendarError: for a bad or impossible date (French message).
    """
    text = value.strip()
    for pattern in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise CalendarError(f"date invalide « {text} » (attendu JJ/MM/AAAA ou AAAA-MM-JJ)")


def parse_date(value: str) -> dt.date | None:
    """A date as :func:`parse_day` reads it, or ``none``/``aucune`` for no date.

    Raises:
        CalendarError: for a bad date.
    """
    if value.strip().lower() in ("none", "aucune", "aucun", "-"):
        return None
    return parse_day(value)


def parse_time(value: str | None) -> dt.time | None:
    """``HH:MM`` (or ``HH:MM:SS``), local time.

    Raises:
        CalendarError: for a bad time.
    """
    if value is None:
        return None
    try:
        return dt.time.fromisoformat(value.strip())
    except ValueError as error:
        raise CalendarError(f"heure invalide « {value} » (attendu HH:MM)") from error


def parse_local_datetime(value: str, zone: ZoneInfo) -> dt.datetime:
    """``AAAA-MM-JJTHH:MM`` (or with a space) in the calendar's zone, unless it has one.

    Raises:
        CalendarError: for a bad value.
    """
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise CalendarError(f"date et heure invalides « {value} » "
                            "(attendu AAAA-MM-JJTHH:MM)") from error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed


# -- may steps 1 to 3 run now? -------------------------------------------------------------

def steps_one_to_three_problem(plan: Plan, establishment_id: int, now: dt.datetime) -> str:
    """Why steps 1 to 3 should not run now for one establishment ('' when they may).

    The plan decides, as it does for its « avant la fermeture » note: before the end of the
    establishment's closure day (its ``closure`` milestone), or before its project's
    « étapes 1 à 3 » maintenance window opens or between two of them. After the last
    window has closed the steps may run (catching up a missed unit).

    Args:
        plan: the plan holding the establishment (:func:`build_plan`).
        establishment_id: the establishment.
        now: the moment of the run (aware).
    """
    zone = operator_zone(plan.timezone_name)
    problems: list[str] = []
    closure = plan.get(establishment_id, Milestone.CLOSURE)
    if (closure is not None and closure.on_date is not None
            and now.astimezone(zone).date() <= closure.on_date):
        problems.append(f"avant la fermeture de l'établissement ({closure.on_date:%d/%m/%Y})")
    planned = plan.get(establishment_id, Milestone.PURGE_TRASH)
    windows = [window for window in plan.windows.get(planned.project_code if planned else "", [])
               if window.scope == "1-3"]
    if (windows and not any(w.starts_at <= now < w.ends_at for w in windows)
            and now < max(w.ends_at for w in windows)):
        upcoming = min((w for w in windows if w.ends_at > now), key=lambda w: w.starts_at)
        problems.append(
            f"hors de la fenêtre de maintenance « {WINDOW_SCOPES['1-3']} » (prochaine : du "
            f"{upcoming.starts_at.astimezone(zone):%d/%m/%Y %H:%M} au "
            f"{upcoming.ends_at.astimezone(zone):%d/%m/%Y %H:%M})")
    return " et ".join(problems)
