"""What a timetable export says, whatever its format: the readers' common output.

The EDT, UDT and STS-web readers fill one :class:`TimetableData`; the importer
matches it against the directory. Keys (``key`` fields) are the file's own
identifiers (EDT ``Ident``, UDT ``code``, STS ``CODE``/``ID``); the values that are
matched against the directory are named for what they are (class code, BCN code,
names and birth date, STS id).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Place:
    """Where a record is in the export: file, line and XML excerpt (for rejects)."""

    file: str
    line: int | None = None
    raw_xml: str = ""


@dataclass
class TtSubject:
    """A subject of the export."""

    key: str
    code: str  # EDT local code, UDT short code, STS BCN code
    label: str = ""
    bcn: str = ""  # national code when the export gives it (STS, UDT code_gep1)


@dataclass
class TtTeacher:
    """A teacher of the export."""

    key: str
    last_name: str = ""
    first_name: str = ""
    birth_date: dt.date | None = None
    directory_ids: tuple[str, ...] = ()  # STS id, UDT epj: compared with AAF jointures
    place: Place | None = None

    @property
    def display(self) -> str:
        """« NOM Prénom » or the key."""
        name = f"{self.last_name} {self.first_name}".strip()
        return name or f"n° {self.key}"


@dataclass
class TtClass:
    """A class (division) of the export."""

    key: str
    code: str
    label: str = ""


@dataclass
class TtGroup:
    """A group of the export (EDT Groupe, UDT gpe/rgpmt, STS GROUPE)."""

    key: str
    code: str
    label: str = ""
    class_keys: list[str] = field(default_factory=list)
    place: Place | None = None


@dataclass
class TtStudent:
    """A student of the export, with the groups the export puts them in."""

    key: str
    last_name: str = ""
    first_name: str = ""
    birth_date: dt.date | None = None
    ine: str = ""
    group_keys: set[str] = field(default_factory=set)
    place: Place | None = None

    @property
    def display(self) -> str:
        """« NOM Prénom »."""
        return f"{self.last_name} {self.first_name}".strip() or f"n° {self.key}"


@dataclass
class TtCourse:
    """One weekly course: a subject, teachers, an audience, a slot and its weeks.

    ``weeks`` holds ISO week numbers; None means every week of the year.
    ``alternation_code`` is the STS alternation (``H`` is every week).
    """

    subject_key: str
    teacher_keys: list[str]
    class_keys: list[str]
    group_keys: list[str]
    weekday: int  # 1 = Monday
    starts_at: dt.time
    ends_at: dt.time
    room: str = ""
    weeks: frozenset[int] | None = None
    alternation_code: str = ""
    place: Place = field(default_factory=lambda: Place(""))

    @property
    def label(self) -> str:
        """« le cours du lundi 08:00-09:00 » (French, for rejects)."""
        return (f"le cours du {WEEKDAYS.get(self.weekday, '?')} "
                f"{self.starts_at:%H:%M}-{self.ends_at:%H:%M}")


@dataclass
class TtService:
    """A teaching service given without courses (STS-web ``SERVICE``)."""

    subject_key: str
    teacher_key: str | None
    class_key: str | None
    group_key: str | None
    weekly_hours: float = 0.0
    place: Place = field(default_factory=lambda: Place(""))


@dataclass
class TtAlternation:
    """A week pattern named by the export (STS ``ALTERNANCE``)."""

    code: str
    label: str
    weeks: frozenset[int]


@dataclass
class Problem:
    """A record-level problem found while reading (reference to an undefined id…)."""

    code: str
    place: Place
    record: str
    record_id: str = ""
    kind: str = ""
    attribute: str = ""
    value: str = ""
    detail: str = ""
    what: str = "le cours n'est pas importé"


@dataclass
class TimetableData:
    """Everything one export says, in format-neutral terms."""

    format: str  # edt, udt, sts
    uai: str = ""
    school_year_start: int | None = None
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    subjects: dict[str, TtSubject] = field(default_factory=dict)
    teachers: dict[str, TtTeacher] = field(default_factory=dict)
    classes: dict[str, TtClass] = field(default_factory=dict)
    groups: dict[str, TtGroup] = field(default_factory=dict)
    students: dict[str, TtStudent] = field(default_factory=dict)
    courses: list[TtCourse] = field(default_factory=list)
    services: list[TtService] = field(default_factory=list)
    alternations: dict[str, TtAlternation] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    carries_students: bool = False

    def counts(self) -> dict[str, int]:
        """How many of each kind of record the export holds."""
        return {"matieres": len(self.subjects), "enseignants": len(self.teachers),
                "classes": len(self.classes), "groupes": len(self.groups),
                "eleves": len(self.students), "cours": len(self.courses),
                "services": len(self.services)}


WEEKDAYS = {1: "lundi", 2: "mardi", 3: "mercredi", 4: "jeudi", 5: "vendredi", 6: "samedi",
            7: "dimanche"}


def iso_week(day: dt.date) -> int:
    """ISO week number of a date."""
    return day.isocalendar()[1]


def parse_iso_date(value: str) -> dt.date | None:
    """``2026-09-01`` (or ``2026-09-01T…``) → date; None when empty or invalid."""
    value = (value or "").strip()[:10]
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def parse_french_date(value: str) -> dt.date | None:
    """``01/09/2026`` → date; None when empty or invalid."""
    value = (value or "").strip()
    try:
        return dt.datetime.strptime(value, "%d/%m/%Y").date() if value else None
    except ValueError:
        return None


def parse_clock(value: str) -> dt.time | None:
    """``08:00:00``, ``08:00``, ``08h00`` or ``0800`` → time; None when invalid."""
    value = (value or "").strip().lower().replace("h", ":")
    try:
        if ":" in value:
            parts = value.split(":")
            return dt.time(int(parts[0]), int(parts[1] or 0))
        if value.isdigit() and len(value) in (3, 4):
            return dt.time(int(value[:-2]), int(value[-2:]))
    except (ValueError, IndexError):
        return None
    return None


def add_minutes(moment: dt.time, minutes: int) -> dt.time | None:
    """``moment + minutes``; None past midnight."""
    total = moment.hour * 60 + moment.minute + minutes
    if total < 0 or total >= 24 * 60:
        return None
    return dt.time(total // 60, total % 60)
