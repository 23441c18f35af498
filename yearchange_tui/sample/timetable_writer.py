"""The N+1 timetable exports of the sample académie (``DIR/timetables/``).

At step 5 of the change-over every establishment sends the ENT its timetable for
school year N+1. This module renders those files from the sample roster
(:mod:`yearchange_tui.sample.roster`), in the real formats described in
``docs/background/timetable-and-peers.md`` §1, so that the console's timetable
import can be exercised on files that look like the real ones:

* **STS-web** ``sts_emp_<UAI>_<year>.xml`` for every establishment: root
  ``STS_EDT`` (the STS-web → timetable software direction), ISO-8859-15, no
  version field. ``PARAMETRES`` (``UAJ@CODE``, ``ANNEE_SCOLAIRE@ANNEE``),
  ``NOMENCLATURES`` (civilities, course modes, subjects, MEFs) and ``DONNEES``
  (``INDIVIDUS``, then ``STRUCTURE/DIVISIONS`` and ``STRUCTURE/GROUPES`` with
  their ``SERVICES/SERVICE/ENSEIGNANTS/ENSEIGNANT``). Like the real file it
  carries services but no courses (courses only travel in the ``EDT_STS``
  return file, which is not written here).
* **UnDeuxTemps (UDT)** for collèges: ``<UAI>_<yyyyMMddHHmmss>_UDT.zip`` (the
  WebDAV drop name; the UAI is only in the file name) holding ``UDCal_NN.xml``
  files and ``semaines.xml``, with the element and attribute names entcore's
  ``UDTHandler`` reads. The theoretical timetable is ``UDCal_11.xml`` (fiches-T,
  one per day and half-sequence) plus ``UDCal_12.xml`` (one ``ligfiche`` per
  half-sequence of a course and per division; both courses of an A/B pair sit
  on the same fiche there). Week A/B alternation cannot be said in the
  theoretical week, so, like the real exports listed in laclasse's notes
  (``UDCal_12_01`` … ``UDCal_12_52``), the ZIP also holds one
  ``UDCal_12_WW.xml`` per teaching ISO week ``WW`` with that week's lines, and
  ``semaines.xml`` lists every teaching week as a period start so that a reader
  following entcore applies each weekly file. Option groups spanning classes
  are one ``gpe`` per member division (``code_sts`` = the STS group code) tied
  by a ``rgpmt`` regrouping; class courses carry ``rgpmt="0"``.
* **Index Education EDT** for lycées: the *clear* ``ExportEmploiDuTemps``
  payload (namespace ``http://www.index-education.com/exportemploidutemps``,
  ``Version="1.1"``, the only version documented by a public sample and the
  XSD), named ``Edt_To_<partner>_<UAI>_Enclair.xml`` after the public sample.
  Every resource of a ``Cours`` carries its ``Semaines`` mask (bit *n* = week
  *n* counted from ``DatePremierJourSemaine1``; bit 0 unused) and, as in the
  public sample, a ``Domaine : [1..7,10..16…]`` comment; the comment is written
  without surrounding whitespace so that the payload validates against
  ``ExportEmploiDuTemps.xsd`` (the public sample does not, because of that
  whitespace). The only schema error left is the planted one below.

  The encrypted container (``EXPORT_INDEX_EDUCATION``: ``VERSION``,
  ``LOGICIEL``, ``CLES``, ``CONTENU``, ``VERIFICATION``, ``DATEHEURE``, ``UAI``…)
  is **not** written: its ``CONTENU`` must be the AES ciphertext of the payload
  and ``CLES`` the AES key wrapped with the partner's RSA public key. A
  container with a clear ``CONTENU`` would not be faithful, so only the clear
  payload is produced. The payload has no product-year field: "EDT 2020" would
  only appear in the container's ``LOGICIEL``.

What the three files share (they are rendered from one plan per establishment):
the weekly courses are generated from ``services_next`` (one one-hour course per
weekly hour, two-hour blocks for the alternations), placed on a 5-day grid
(Wednesday afternoon and Saturday morning only when a teacher is overbooked)
without double-booking a class, a teacher or a room; a few three-hour services
become two weekly hours plus a two-hour block every other week, paired in week
A / week B with another service of the same class. The stale class of the
roster's ``anomalies['teacher_in_old_class']`` is kept (division, ``Classe``,
``div`` and its course) because it is a known reject of the later import; no
other course names a class outside ``classes_next``. Students whose N+1 class is
not in ``classes_next`` (leavers, ``student_in_old_class``) are left out, and a
student without a birth date gets no ``DateNaissance`` (the XSD requires it: a
known reject too).

Dates are derived from ``academy.year`` only: N+1 starts on 1 September of
``year + 1`` (or the Monday after a week-end), holidays are approximated
(Toussaint, Noël, winter and spring, two weeks each) and summer starts on the
first Saturday of July. The export timestamp (ZIP name and entry dates) is
25 August of ``year + 1`` at 10:00. Files are streamed with an escaping text
writer, one establishment at a time, so the same roster always gives
byte-identical files.

Inferences (no public sample exists, see the research note): the root element
names of the ``UDCal_NN.xml`` files, the ``ligfiche`` code layout (three-digit
fiche number followed by a three-digit line number, which is what entcore's
merge of consecutive half-sequences relies on), ``duree_seq`` in minutes,
``hre_deb``/``hre_fin`` as ``08h00``, the UDT file encoding (UTF-8), every
teaching week listed in ``semaines.xml`` (real files may list only the
publication periods), no ``UDCal_23_WW.xml`` (no co-teaching), the content of
``ENSEIGNANT`` in ``STS_EDT`` (``HEURES_AGENT`` as in ``EDT_STS``), the STS
discipline codes and grades of staff, and the EDT file name partner part.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import random
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from yearchange_tui.sample.roster import (
    COLLEGE,
    SUBJECT_BY_CODE,
    SUBJECTS,
    SampleAcademy,
    SampleClass,
    SampleEstablishment,
    SampleOptionGroup,
    SamplePersonnel,
    SampleService,
    SampleStudent,
    SampleSubject,
)

__all__ = ["write_timetables"]

# --------------------------------------------------------------------------------------
# Format constants
# --------------------------------------------------------------------------------------

EDT_NAMESPACE = "http://www.index-education.com/exportemploidutemps"
EDT_SCHEMA_LOCATION = (f"{EDT_NAMESPACE} "
                       "http://telechargement.index-education.com/export/ExportEmploiDuTemps.xsd")
XSI_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance"
EDT_PAYLOAD_VERSION = "1.1"

STS_ENCODING = "ISO-8859-15"
EDT_ENCODING = "UTF-8"
UDT_ENCODING = "UTF-8"

# The one-hour grid: start of each hour in minutes after midnight. Indexes 0-3 are the
# morning, 4-7 the afternoon; a two-hour block never crosses the lunch break.
_HOUR_STARTS: tuple[int, ...] = (480, 540, 600, 660, 810, 870, 930, 990)
_HOURS_PER_HALF_DAY = 4
_DAY_START_MINUTES = 480  # 08:00, place / half-sequence 0
_PLACE_MINUTES = 30  # EDT place and UDT half-sequence
_PLACES_PER_DAY = 20  # 08:00 → 18:00
_PRIMARY_SLOTS: tuple[tuple[int, int], ...] = tuple(
    (day, hour) for day in (1, 2, 3, 4, 5) for hour in range(len(_HOUR_STARTS))
    if not (day == 3 and hour >= _HOURS_PER_HALF_DAY))
_EXTENDED_SLOTS: tuple[tuple[int, int], ...] = (
    tuple((3, hour) for hour in range(_HOURS_PER_HALF_DAY, len(_HOUR_STARTS)))
    + tuple((6, hour) for hour in range(_HOURS_PER_HALF_DAY)))

_EVERY_WEEK = "H"  # STS alternation code of a weekly course
_WEEK_A = "A"
_WEEK_B = "B"
_PARITIES = (_WEEK_A, _WEEK_B)

# Room pools by subject short code (others go to general classrooms).
_ROOM_POOLS: dict[str, str] = {
    "EPS": "GYM", "SVT": "LABO", "PHCHI": "LABO", "SPPC": "LABO", "TECHN": "TECH",
    "SNT": "TECH", "A-PLA": "ARTS", "EDMUS": "MUSI",
}

# STS-web discipline (poste) of a teacher by subject code: (code, short label). [I]
_STS_DISCIPLINES: dict[str, tuple[str, str]] = {
    "020700": ("L0202", "LET MODERN"), "061300": ("L1300", "MATHS"),
    "040600": ("L1000", "HIST. GEO."), "030201": ("L0422", "ANGLAIS"),
    "030602": ("L0426", "ESPAGNOL"), "030102": ("L0421", "ALLEMAND"),
    "062900": ("L1600", "SVT"), "063300": ("L1500", "PHY.CHIMIE"),
    "070800": ("L1400", "TECHNOLOGI"), "080100": ("L1800", "ARTS PLAST"),
    "081000": ("L1700", "EDUC MUSIC"), "100100": ("L1900", "EPS"),
    "020100": ("L0201", "LET CLASS."), "041000": ("L1100", "SES"),
    "042900": ("L0100", "PHILO"), "064000": ("L1300", "MATHS"),
    "061310": ("L1300", "MATHS"), "063310": ("L1500", "PHY.CHIMIE"),
    "040610": ("L1000", "HIST. GEO."),
}
_STS_GRADES: dict[str, str] = {
    "ENS": "CERT. CL N", "DIR": "PERDIR CL N", "EDU": "CPE CL N", "DOC": "CERT. CL N",
    "AED": "AED", "ADF": "ADJAENES", "ORI": "PSYEN CL N",
}

_IDPN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# --------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------


def write_timetables(academy: SampleAcademy, out_dir: Path) -> list[Path]:
    """Write the N+1 timetable exports of every establishment of ``academy``.

    For each establishment, in roster order: the STS-web ``sts_emp_<UAI>_<year>.xml``,
    then the UDT ZIP (collège) or the clear EDT payload (lycée). Each file is first
    written next to its final name and then renamed, so a reader never sees half a file.

    Args:
        academy: the sample académie roster (its N+1 data is rendered).
        out_dir: the folder to write into (``DIR/timetables/``); created if missing.

    Returns:
        The paths written, in the order above.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    calendar = _SchoolCalendar.for_start_year(academy.year + 1)
    exported_at = dt.datetime(academy.year + 1, 8, 25, 10, 0, 0)
    written: list[Path] = []
    for establishment in academy.establishments:
        plan = _plan_establishment(academy, establishment)
        written.append(_write_sts(academy, plan, calendar, out_dir))
        if establishment.kind == COLLEGE:
            written.append(_write_udt(plan, calendar, exported_at, out_dir))
        else:
            written.append(_write_edt(academy, plan, calendar, out_dir))
    return written


# --------------------------------------------------------------------------------------
# Streaming XML text writer
# --------------------------------------------------------------------------------------


def _clean(text: str) -> str:
    return _INVALID_XML_CHARS.sub("", text)


def _escape_text(text: str) -> str:
    return _clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attribute(text: str) -> str:
    return (_escape_text(text).replace('"', "&quot;").replace("\n", "&#10;")
            .replace("\r", "&#13;").replace("\t", "&#9;"))


Attributes = Mapping[str, str] | Iterable[tuple[str, str]]


class _XmlWriter:
    """An indenting XML writer that streams escaped text to a binary stream.

    Characters the encoding cannot carry are written as character references.
    Output is buffered and flushed in 64 KiB chunks.
    """

    _FLUSH_AT = 1 << 16

    def __init__(self, stream: BinaryIO, encoding: str, indent: str) -> None:
        self._stream = stream
        self._encoding = encoding
        self._indent = indent
        self._stack: list[str] = []
        self._parts: list[str] = [f'<?xml version="1.0" encoding="{encoding}"?>']
        self._size = 0

    def _emit(self, text: str) -> None:
        self._parts.append(text)
        self._size += len(text)
        if self._size >= self._FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Encode and write the buffered text."""
        if self._parts:
            self._stream.write("".join(self._parts).encode(self._encoding, "xmlcharrefreplace"))
            self._parts.clear()
            self._size = 0

    def _newline(self) -> None:
        self._emit("\n" + self._indent * len(self._stack))

    @staticmethod
    def _tag(name: str, attributes: Attributes | None) -> str:
        if not attributes:
            return name
        items = attributes.items() if isinstance(attributes, Mapping) else attributes
        return name + "".join(f' {key}="{_escape_attribute(value)}"' for key, value in items)

    @contextmanager
    def element(self, name: str, attributes: Attributes | None = None) -> Iterator[None]:
        """Open ``name``, let the caller write its children, then close it."""
        self._newline()
        self._emit(f"<{self._tag(name, attributes)}>")
        self._stack.append(name)
        yield
        self._stack.pop()
        self._newline()
        self._emit(f"</{name}>")

    def leaf(self, name: str, text: str | None = None,
             attributes: Attributes | None = None) -> None:
        """Write an element without children: empty (``<x/>``) or with text."""
        self._newline()
        if text is None or text == "":
            self._emit(f"<{self._tag(name, attributes)}/>")
        else:
            self._emit(f"<{self._tag(name, attributes)}>{_escape_text(text)}</{name}>")

    def commented_leaf(self, name: str, comment: str,
                       attributes: Attributes | None = None) -> None:
        """Write an element whose only content is a comment, on one line.

        No whitespace goes around the comment, so an element of empty content type
        stays valid against its schema.
        """
        self._newline()
        self._emit(f"<{self._tag(name, attributes)}><!--{_clean(comment).replace('--', '- -')}"
                   f"--></{name}>")

    def close(self) -> None:
        """End the document with a newline and flush."""
        self._emit("\n")
        self.flush()


@contextmanager
def _atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Open ``path.part`` for writing and rename it to ``path`` on success."""
    partial = path.with_name(path.name + ".part")
    try:
        with open(partial, "wb") as stream:
            yield stream
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()


# --------------------------------------------------------------------------------------
# School calendar of year N+1
# --------------------------------------------------------------------------------------


def _monday_on_or_after(day: dt.date) -> dt.date:
    return day + dt.timedelta(days=(7 - day.weekday()) % 7)


@dataclass(frozen=True)
class _Holiday:
    label: str
    first_monday: dt.date
    weeks: int = 2

    @property
    def start(self) -> dt.date:
        """First day off (the Saturday before)."""
        return self.first_monday - dt.timedelta(days=2)

    @property
    def end(self) -> dt.date:
        """Last day off (a Sunday)."""
        return self.first_monday + dt.timedelta(days=7 * self.weeks - 1)

    @property
    def mondays(self) -> tuple[dt.date, ...]:
        """Mondays of the weeks off."""
        return tuple(self.first_monday + dt.timedelta(weeks=k) for k in range(self.weeks))


@dataclass(frozen=True)
class _SchoolCalendar:
    """Dates of school year N+1 shared by the three formats."""

    start_year: int
    first_day: dt.date  # rentrée
    summer_start: dt.date  # first day of the summer holidays (a Saturday)
    year_end: dt.date  # 31 August
    mondays: tuple[dt.date, ...]  # every week from the rentrée week to the last week
    holidays: tuple[_Holiday, ...]
    teaching: tuple[dt.date, ...]  # Mondays of the weeks with classes

    @classmethod
    def for_start_year(cls, year: int) -> _SchoolCalendar:
        """Build the calendar of the school year starting in September ``year``."""
        first_day = dt.date(year, 9, 1)
        if first_day.weekday() >= 5:
            first_day = _monday_on_or_after(first_day)
        july = dt.date(year + 1, 7, 1)
        summer_start = july + dt.timedelta(days=(5 - july.weekday()) % 7)
        week1 = first_day - dt.timedelta(days=first_day.weekday())
        last_monday = summer_start - dt.timedelta(days=5)
        mondays = tuple(week1 + dt.timedelta(weeks=k)
                        for k in range((last_monday - week1).days // 7 + 1))
        holidays = (
            _Holiday("Vacances de la Toussaint", _monday_on_or_after(dt.date(year, 10, 17))),
            _Holiday("Vacances de Noël", _monday_on_or_after(dt.date(year, 12, 19))),
            _Holiday("Vacances d'hiver", _monday_on_or_after(dt.date(year + 1, 2, 14))),
            _Holiday("Vacances de printemps", _monday_on_or_after(dt.date(year + 1, 4, 10))),
        )
        off = {monday for holiday in holidays for monday in holiday.mondays}
        teaching = tuple(monday for monday in mondays if monday not in off)
        return cls(year, first_day, summer_start, dt.date(year + 1, 8, 31), mondays, holidays,
                   teaching)

    @property
    def week1(self) -> dt.date:
        """Monday of the rentrée week (EDT ``DatePremierJourSemaine1``)."""
        return self.mondays[0]

    def teaching_weeks(self, weeks: str) -> tuple[dt.date, ...]:
        """Mondays of the teaching weeks of a course held every week, week A or week B."""
        if weeks == _WEEK_A:
            return self.teaching[0::2]
        if weeks == _WEEK_B:
            return self.teaching[1::2]
        return self.teaching

    def parity(self, monday: dt.date) -> str:
        """Return ``A`` or ``B`` for a teaching week."""
        return _PARITIES[self.teaching.index(monday) % 2]

    def edt_mask(self, weeks: str) -> int:
        """EDT ``Semaines`` mask: bit n = week n counted from week 1 (bit 0 unused)."""
        mask = 0
        for monday in self.teaching_weeks(weeks):
            mask |= 1 << ((monday - self.week1).days // 7 + 1)
        return mask

    def edt_domain(self, weeks: str) -> str:
        """The week numbers of a mask as EDT comments show them: ``[1..7,10..16]``."""
        numbers = [(monday - self.week1).days // 7 + 1 for monday in self.teaching_weeks(weeks)]
        ranges: list[str] = []
        start = previous = numbers[0]
        for number in numbers[1:] + [-1]:
            if number != previous + 1:
                ranges.append(str(start) if start == previous else f"{start}..{previous}")
                start = number
            previous = number
        return "[" + ",".join(ranges) + "]"

    def udt_mask(self) -> int:
        """UDT week mask of a student's membership: bit i = ISO week i + 1."""
        mask = 0
        for monday in self.mondays:
            mask |= 1 << (monday.isocalendar()[1] - 1)
        return mask


# --------------------------------------------------------------------------------------
# The plan of one establishment: who, where, when
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Course:
    """One weekly course of a service."""

    service: SampleService
    day: int  # 1 = Monday
    hour: int  # index into _HOUR_STARTS
    length: int  # hours
    weeks: str  # H (every week), A or B
    room: str

    @property
    def start_minutes(self) -> int:
        """Start time in minutes after midnight."""
        return _HOUR_STARTS[self.hour]

    @property
    def first_place(self) -> int:
        """0-based EDT place (and UDT half-sequence - 1) of the start."""
        return (self.start_minutes - _DAY_START_MINUTES) // _PLACE_MINUTES

    @property
    def places(self) -> int:
        """Number of 30-minute places (or UDT half-sequences) covered."""
        return self.length * 60 // _PLACE_MINUTES


@dataclass
class _Plan:
    """Everything the writers render for one establishment."""

    establishment: SampleEstablishment
    classes: list[SampleClass]  # classes_next, then the stale class of the anomaly
    stale_class_codes: tuple[str, ...]
    groups: list[SampleOptionGroup]
    services: list[SampleService]
    teachers: list[SamplePersonnel]
    subjects: list[SampleSubject]
    students: list[SampleStudent]
    courses: list[_Course]
    rooms: list[str]
    conflicts: int = 0  # courses that had to double-book a teacher (0 on sample rosters)

    @property
    def days(self) -> tuple[int, ...]:
        """Working days (Monday … Friday, plus Saturday when a course needs it)."""
        used = {course.day for course in self.courses}
        return tuple(sorted(used | {1, 2, 3, 4, 5}))

    def class_students(self, class_code: str) -> list[SampleStudent]:
        """Students of a class, in plan order."""
        return [s for s in self.students if s.class_code_next == class_code]

    def group_students(self, group_code: str) -> list[SampleStudent]:
        """Students of an option group, in plan order."""
        return [s for s in self.students if group_code in s.option_group_codes_next]


def _stale_class(establishment: SampleEstablishment) -> tuple[str, str] | None:
    """Return (teacher jointure, class code) of ``anomalies['teacher_in_old_class']``."""
    value = establishment.anomalies.get("teacher_in_old_class")
    if not value or "$" not in value:
        return None
    teacher, class_code = value.split("$", 1)
    return teacher, class_code


def _plan_establishment(academy: SampleAcademy, establishment: SampleEstablishment) -> _Plan:
    """Select what the exports show and place the courses of one establishment."""
    next_codes = {c.code for c in establishment.classes_next}
    classes = list(establishment.classes_next)
    stale = _stale_class(establishment)
    stale_codes: tuple[str, ...] = ()
    if stale is not None and stale[1] not in next_codes:
        old = {c.code: c for c in establishment.classes_n}
        fallback_level = (establishment.classes_n or establishment.classes_next)[-1].level
        stale_class = old.get(stale[1]) or SampleClass(stale[1], stale[1], fallback_level)
        classes.append(stale_class)
        stale_codes = (stale[1],)
    groups = list(establishment.option_groups_next)
    group_codes = {g.code for g in groups}
    teachers = establishment.teachers
    teacher_ids = {t.jointure for t in teachers}
    services: list[SampleService] = []
    for service in establishment.services_next:
        if (service.teacher_jointure not in teacher_ids
                or service.subject_code not in SUBJECT_BY_CODE):
            continue
        if service.group_code is not None:
            if service.group_code in group_codes:
                services.append(service)
        elif service.class_code in next_codes or (
                stale is not None and (service.teacher_jointure, service.class_code) == stale):
            services.append(service)
    used_subjects = {s.subject_code for s in services}
    subjects = [subject for subject in SUBJECTS if subject.code in used_subjects]
    students = sorted(
        (s for s in establishment.students if s.class_code_next in next_codes),
        key=lambda s: (s.last_name, s.first_name, s.jointure))
    plan = _Plan(establishment, classes, stale_codes, groups, services, teachers, subjects,
                 students, [], [])
    rng = random.Random(f"yearchange-timetable:{academy.seed}:{establishment.index}")
    _Scheduler(plan, rng).run()
    return plan


@dataclass(frozen=True)
class _Unit:
    """Courses placed together on one slot: one weekly course, or an A/B pair."""

    parts: tuple[tuple[int, str], ...]  # (service index, weeks)
    length: int


class _Scheduler:
    """Greedy placement of the weekly courses without double-booking.

    Option-group courses go first (they block every member class), then the A/B
    pairs, then the class courses of the busiest teachers. Each course tries the
    shuffled free slots on a day the service does not use yet, then any day, then
    Wednesday afternoon and Saturday morning; only when all fail is a teacher
    double-booked (counted in ``plan.conflicts``).
    """

    def __init__(self, plan: _Plan, rng: random.Random) -> None:
        self.plan = plan
        self.rng = rng
        self.busy: set[tuple[str, str, int, int, str]] = set()
        self.days_used: dict[int, set[int]] = {}
        self.groups = {g.code: g for g in plan.groups}

    def audience(self, service: SampleService) -> tuple[str, ...]:
        """Class codes a service's students come from."""
        if service.group_code is not None:
            return self.groups[service.group_code].class_codes
        return (service.class_code,) if service.class_code else ()

    def _resources(self, part: tuple[int, str], with_teacher: bool
                   ) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
        service = self.plan.services[part[0]]
        resources = [("class", code) for code in self.audience(service)]
        if with_teacher:
            resources.append(("teacher", service.teacher_jointure))
        parities = _PARITIES if part[1] == _EVERY_WEEK else (part[1],)
        return resources, parities

    def _free(self, unit: _Unit, day: int, hour: int, with_teacher: bool) -> bool:
        for part in unit.parts:
            resources, parities = self._resources(part, with_teacher)
            for kind, ident in resources:
                for offset in range(unit.length):
                    for parity in parities:
                        if (kind, ident, day, hour + offset, parity) in self.busy:
                            return False
        return True

    def _occupy(self, resources: list[tuple[str, str]], parities: tuple[str, ...], day: int,
                hour: int, length: int) -> None:
        for kind, ident in resources:
            for offset in range(length):
                for parity in parities:
                    self.busy.add((kind, ident, day, hour + offset, parity))

    def _room(self, service: SampleService, parities: tuple[str, ...], day: int, hour: int,
              length: int) -> str:
        short = SUBJECT_BY_CODE[service.subject_code].short
        pool = _ROOM_POOLS.get(short, "S")
        number = 1
        while True:
            name = f"{pool}{number}" if pool != "S" else f"S{100 + number}"
            if all(("room", name, day, hour + offset, parity) not in self.busy
                   for offset in range(length) for parity in parities):
                self._occupy([("room", name)], parities, day, hour, length)
                return name
            number += 1

    @staticmethod
    def _fits(hour: int, length: int) -> bool:
        last = hour + length - 1
        same_half_day = hour // _HOURS_PER_HALF_DAY == last // _HOURS_PER_HALF_DAY
        return last < len(_HOUR_STARTS) and same_half_day

    def _units(self) -> list[_Unit]:
        plan = self.plan
        services = plan.services
        load: dict[str, int] = {}
        for service in services:
            teacher = service.teacher_jointure
            load[teacher] = load.get(teacher, 0) + service.weekly_hours
        stale = set(plan.stale_class_codes)
        # A/B pairs: in every fourth class, the first two three-hour services of different
        # teachers keep two weekly hours and share a two-hour block, week A / week B.
        paired: set[int] = set()
        pairs: list[_Unit] = []
        for position, school_class in enumerate(plan.classes):
            if position % 4 or school_class.code in stale:
                continue
            candidates = [i for i, s in enumerate(services)
                          if s.class_code == school_class.code and s.weekly_hours == 3]
            for first in candidates:
                second = next((i for i in candidates if i != first and
                               services[i].teacher_jointure != services[first].teacher_jointure),
                              None)
                if second is not None:
                    paired.update((first, second))
                    pairs.append(_Unit(((first, _WEEK_A), (second, _WEEK_B)), 2))
                    break
        group_units = [_Unit(((i, _EVERY_WEEK),), 1) for i, s in enumerate(services)
                       if s.group_code is not None for _ in range(s.weekly_hours)]
        class_units: list[tuple[int, int, int, _Unit]] = []
        for i, service in enumerate(services):
            if service.group_code is not None:
                continue
            hours = service.weekly_hours - 1 if i in paired else service.weekly_hours
            for k in range(hours):
                class_units.append((-load[service.teacher_jointure], i, k,
                                    _Unit(((i, _EVERY_WEEK),), 1)))
        class_units.sort(key=lambda item: item[:3])
        return group_units + pairs + [item[3] for item in class_units]

    def _place(self, unit: _Unit) -> tuple[int, int]:
        primary = [slot for slot in _PRIMARY_SLOTS if self._fits(slot[1], unit.length)]
        extended = [slot for slot in _EXTENDED_SLOTS if self._fits(slot[1], unit.length)]
        self.rng.shuffle(primary)
        self.rng.shuffle(extended)
        used = set().union(*(self.days_used.get(i, set()) for i, _ in unit.parts))
        fresh = [slot for slot in primary if slot[0] not in used]
        for candidates in (fresh, primary, extended):
            for day, hour in candidates:
                if self._free(unit, day, hour, with_teacher=True):
                    return day, hour
        self.plan.conflicts += 1
        for day, hour in primary + extended:
            if self._free(unit, day, hour, with_teacher=False):
                return day, hour
        return primary[0]

    def run(self) -> None:
        """Place every course and fill ``plan.courses`` and ``plan.rooms``."""
        plan = self.plan
        placed: list[tuple[int, int, int, str, _Course]] = []
        for unit in self._units():
            day, hour = self._place(unit)
            for index, weeks in unit.parts:
                service = plan.services[index]
                resources, parities = self._resources((index, weeks), with_teacher=True)
                self._occupy(resources, parities, day, hour, unit.length)
                room = self._room(service, parities, day, hour, unit.length)
                self.days_used.setdefault(index, set()).add(day)
                placed.append((day, hour, index, weeks,
                               _Course(service, day, hour, unit.length, weeks, room)))
        placed.sort(key=lambda item: item[:4])
        courses = [item[4] for item in placed]
        plan.courses = courses
        plan.rooms = sorted({c.room for c in courses}, key=_room_sort_key)


def _room_sort_key(name: str) -> tuple[str, int]:
    match = re.fullmatch(r"([A-Z]+)(\d+)", name)
    return (match.group(1), int(match.group(2))) if match else (name, 0)


# --------------------------------------------------------------------------------------
# Small helpers shared by the writers
# --------------------------------------------------------------------------------------


def _upper_ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()


def _idpn(*parts: str) -> str:
    """A stable 16-character PRONOTE-like identifier derived from ``parts``."""
    digest = hashlib.sha256(":".join(parts).encode("utf-8")).digest()
    return "".join(_IDPN_ALPHABET[byte % len(_IDPN_ALPHABET)] for byte in digest[:16])


def _hours(value: float) -> str:
    return f"{value:.2f}"


def _hhmm(minutes: int, separator: str = "") -> str:
    return f"{minutes // 60:02d}{separator}{minutes % 60:02d}"


def _fr_date(day: dt.date | None) -> str:
    return day.strftime("%d/%m/%Y") if day else ""


def _denomination(establishment: SampleEstablishment) -> str:
    name = establishment.name
    for prefix in ("Collège ", "Lycée "):
        name = name.removeprefix(prefix)
    return _upper_ascii(name)


# --------------------------------------------------------------------------------------
# STS-web sts_emp (STS_EDT)
# --------------------------------------------------------------------------------------


def _write_sts(academy: SampleAcademy, plan: _Plan, calendar: _SchoolCalendar,
               out_dir: Path) -> Path:
    """Write ``sts_emp_<UAI>_<year>.xml`` (root ``STS_EDT``)."""
    establishment = plan.establishment
    path = out_dir / f"sts_emp_{establishment.uai}_{calendar.start_year}.xml"
    college = establishment.kind == COLLEGE
    with _atomic_file(path) as stream:
        xml = _XmlWriter(stream, STS_ENCODING, "    ")
        with xml.element("STS_EDT"):
            with xml.element("PARAMETRES"):
                with xml.element("UAJ", {"CODE": establishment.uai}):
                    with xml.element("ACADEMIE"):
                        xml.leaf("CODE", academy.academy_code.zfill(3))
                        xml.leaf("LIBELLE", academy.academy_name)
                    xml.leaf("SIGLE", "CLG" if college else "LYC")
                    xml.leaf("DENOM_PRINC",
                             "COLLEGE" if college else "LYCEE GENERAL ET TECHNOLOGIQUE")
                    xml.leaf("DENOM_COMPL", _denomination(establishment))
                    xml.leaf("CODE_NATURE", "340" if college else "300")
                    xml.leaf("CODE_CATEGORIE", "CLG" if college else "LYC")
                    xml.leaf("COMMUNE", _upper_ascii(establishment.town))
                    xml.leaf("CODE_POSTAL", establishment.postal_code)
                    xml.leaf("STATUT", "public")
                with xml.element("ANNEE_SCOLAIRE", {"ANNEE": str(calendar.start_year)}):
                    xml.leaf("DATE_DEBUT", dt.date(calendar.start_year, 9, 1).isoformat())
                    xml.leaf("DATE_FIN", calendar.year_end.isoformat())
            _write_sts_nomenclatures(xml, plan)
            with xml.element("DONNEES"):
                _write_sts_individuals(xml, plan)
                with xml.element("STRUCTURE"):
                    _write_sts_divisions(xml, plan)
                    _write_sts_groups(xml, plan)
                xml.leaf("SUPPLEANTS")
        xml.close()
    return path


def _write_sts_nomenclatures(xml: _XmlWriter, plan: _Plan) -> None:
    with xml.element("NOMENCLATURES"):
        with xml.element("CIVILITES"):
            for code, short, long in (("1", "M.", "M."), ("2", "MME", "Mme")):
                with xml.element("CIVILITE", {"CODE": code}):
                    xml.leaf("LIBELLE_COURT", short)
                    xml.leaf("LIBELLE_LONG", long)
        with xml.element("MODS_COURS"), xml.element("MOD_COURS", {"CODE": "CG"}):
            xml.leaf("LIBELLE_COURT", "COURS GEN")
            xml.leaf("LIBELLE_LONG", "COURS GENERAL")
            xml.leaf("CO_ENS", "false")
        with xml.element("MATIERES"):
            for subject in plan.subjects:
                with xml.element("MATIERE", {"CODE": subject.code}):
                    xml.leaf("CODE_GESTION", subject.short)
                    xml.leaf("LIBELLE_COURT", subject.label[:20])
                    xml.leaf("LIBELLE_LONG", subject.label)
                    xml.leaf("LIBELLE_EDITION", subject.label.capitalize())
        with xml.element("MEFS"):
            seen: set[str] = set()
            for school_class in plan.classes:
                level = school_class.level
                if level.mef_code in seen:
                    continue
                seen.add(level.mef_code)
                with xml.element("MEF", {"CODE": level.mef_code}):
                    xml.leaf("FORMATION", level.label)
                    xml.leaf("SPECIALITE")
                    xml.leaf("LIBELLE_LONG", level.label)
                    xml.leaf("LIBELLE_EDITION", level.label.capitalize())


def _write_sts_individuals(xml: _XmlWriter, plan: _Plan) -> None:
    with xml.element("INDIVIDUS"):
        for person in plan.establishment.personnel:
            female = person.title != "M."
            with xml.element("INDIVIDU", {"ID": person.jointure, "TYPE": "epp"}):
                xml.leaf("SEXE", "2" if female else "1")
                xml.leaf("CIVILITE", "2" if female else "1")
                xml.leaf("NOM_USAGE", _upper_ascii(person.last_name))
                xml.leaf("NOM_PATRONYMIQUE", _upper_ascii(person.last_name))
                xml.leaf("PRENOM", person.first_name)
                xml.leaf("DATE_NAISSANCE", person.birth_date.isoformat())
                xml.leaf("GRADE", _STS_GRADES.get(person.function_code, ""))
                xml.leaf("FONCTION", person.function_code)
                if person.is_teacher and person.discipline_code:
                    code, label = _STS_DISCIPLINES.get(person.discipline_code, ("L0000", "AUTRE"))
                    with xml.element("DISCIPLINES"):
                        with xml.element("DISCIPLINE", {"CODE": code}):
                            xml.leaf("LIBELLE_COURT", label)
                            xml.leaf("NB_HEURES", _hours(18))


def _write_sts_services(xml: _XmlWriter, services: list[SampleService]) -> None:
    if not services:
        xml.leaf("SERVICES")
        return
    with xml.element("SERVICES"):
        for service in services:
            hours = _hours(service.weekly_hours)
            with xml.element("SERVICE", {"CODE_MATIERE": service.subject_code,
                                         "CODE_MOD_COURS": "CG"}):
                xml.leaf("HEURES_STRUCTURE", hours)
                xml.leaf("CO_ENS", "false")
                with xml.element("ENSEIGNANTS"):
                    with xml.element("ENSEIGNANT", {"TYPE": "epp", "ID": service.teacher_jointure}):
                        xml.leaf("HEURES_AGENT", hours)


def _write_sts_divisions(xml: _XmlWriter, plan: _Plan) -> None:
    with xml.element("DIVISIONS"):
        for school_class in plan.classes:
            count = str(len(plan.class_students(school_class.code)))
            with xml.element("DIVISION", {"CODE": school_class.code}):
                xml.leaf("LIBELLE_LONG", school_class.label)
                xml.leaf("EFFECTIF_PREVU", count)
                xml.leaf("EFFECTIF_CALCULE", count)
                with xml.element("MEFS_APPARTENANCE"):
                    with xml.element("MEF_APPARTENANCE", {"CODE": school_class.level.mef_code}):
                        xml.leaf("EFFECTIF_PREVU", count)
                        xml.leaf("EFFECTIF_CALCULE", count)
                _write_sts_services(xml, [s for s in plan.services
                                          if s.class_code == school_class.code])


def _write_sts_groups(xml: _XmlWriter, plan: _Plan) -> None:
    if not plan.groups:
        xml.leaf("GROUPES")
        return
    levels = {c.code: c.level for c in plan.classes}
    with xml.element("GROUPES"):
        for group in plan.groups:
            members = plan.group_students(group.code)
            with xml.element("GROUPE", {"CODE": group.code}):
                xml.leaf("LIBELLE_LONG", group.label)
                xml.leaf("EFFECTIF_PREVU", str(len(members)))
                xml.leaf("EFFECTIF_CALCULE", str(len(members)))
                with xml.element("DIVISIONS_APPARTENANCE"):
                    for class_code in group.class_codes:
                        count = str(sum(1 for s in members if s.class_code_next == class_code))
                        with xml.element("DIVISION_APPARTENANCE", {"CODE": class_code}):
                            xml.leaf("EFFECTIF_PREVU", count)
                            xml.leaf("EFFECTIF_CALCULE", count)
                mefs = []
                for class_code in group.class_codes:
                    mef = levels[class_code].mef_code if class_code in levels else None
                    if mef and mef not in mefs:
                        mefs.append(mef)
                with xml.element("MEFS_APPARTENANCE"):
                    for mef in mefs:
                        with xml.element("MEF_APPARTENANCE", {"CODE": mef}):
                            xml.leaf("EFFECTIF_PREVU", str(len(members)))
                            xml.leaf("EFFECTIF_CALCULE", str(len(members)))
                _write_sts_services(xml, [s for s in plan.services if s.group_code == group.code])


# --------------------------------------------------------------------------------------
# Index Education EDT clear payload (ExportEmploiDuTemps)
# --------------------------------------------------------------------------------------


def _partner_name(academy: SampleAcademy) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", academy.project_code) or "ENT"


def _write_edt(academy: SampleAcademy, plan: _Plan, calendar: _SchoolCalendar,
               out_dir: Path) -> Path:
    """Write the clear ``ExportEmploiDuTemps`` payload of a lycée."""
    establishment = plan.establishment
    uai = establishment.uai
    path = out_dir / f"Edt_To_{_partner_name(academy)}_{uai}_Enclair.xml"
    subject_ids = {s.code: str(SUBJECTS.index(s) + 1) for s in plan.subjects}
    teacher_ids = {t.jointure: str(i + 1) for i, t in enumerate(plan.teachers)}
    class_ids = {c.code: str(i + 1) for i, c in enumerate(plan.classes)}
    group_ids = {g.code: str(i + 1) for i, g in enumerate(plan.groups)}
    room_ids = {room: str(i + 1) for i, room in enumerate(plan.rooms)}
    # One PartieDeClasse per (option group, member class): the students of that class
    # who follow the option, as EDT models groups.
    part_ids: dict[tuple[str, str], str] = {}
    for group in plan.groups:
        for class_code in group.class_codes:
            part_ids[(group.code, class_code)] = str(len(part_ids) + 1)
    first_day = calendar.first_day.isoformat()
    year_end = calendar.year_end.isoformat()
    masks = {weeks: (str(calendar.edt_mask(weeks)), f"Domaine : {calendar.edt_domain(weeks)}")
             for weeks in (_EVERY_WEEK, _WEEK_A, _WEEK_B)}

    with _atomic_file(path) as stream:
        xml = _XmlWriter(stream, EDT_ENCODING, "  ")
        root_attributes = (("xmlns", EDT_NAMESPACE), ("xmlns:xsi", XSI_NAMESPACE),
                           ("xsi:schemaLocation", EDT_SCHEMA_LOCATION),
                           ("Version", EDT_PAYLOAD_VERSION), ("UAI", uai))
        with xml.element("ExportEmploiDuTemps", root_attributes):
            xml.leaf("AnneeScolaire", attributes={
                "DateDebut": first_day, "DateFin": year_end,
                "DatePremierJourSemaine1": calendar.week1.isoformat()})
            with xml.element("GrilleHoraire", {"NombrePlacesParJour": str(_PLACES_PER_DAY),
                                               "DureePlace": str(_PLACE_MINUTES)}):
                with xml.element("JoursOuvres"):
                    for day in plan.days:
                        xml.leaf("Jour", str(day))
                with xml.element("PlacesParJour"):
                    for place in range(_PLACES_PER_DAY):
                        start = _DAY_START_MINUTES + place * _PLACE_MINUTES
                        xml.leaf("Place", attributes={
                            "Numero": str(place),
                            "LibelleHeureDebut": _hhmm(start, ":") + ":00",
                            "LibelleHeureFin": _hhmm(start + _PLACE_MINUTES, ":") + ":00"})
            with xml.element("Matieres"):
                for subject in plan.subjects:
                    xml.leaf("Matiere", attributes={"Ident": subject_ids[subject.code],
                                                    "Code": subject.short,
                                                    "Libelle": subject.label})
            with xml.element("Professeurs"):
                for teacher in plan.teachers:
                    xml.leaf("Professeur", attributes={
                        "Ident": teacher_ids[teacher.jointure],
                        "Nom": _upper_ascii(teacher.last_name), "Prenom": teacher.first_name,
                        "DateNaissance": teacher.birth_date.isoformat(),
                        "IDSTS": teacher.jointure, "IDPN": _idpn(uai, "P", teacher.jointure)})
            with xml.element("Classes"):
                for school_class in plan.classes:
                    parts = [part_ids[key] for key in part_ids if key[1] == school_class.code]
                    attributes = {"Ident": class_ids[school_class.code], "Nom": school_class.code}
                    if not parts:
                        xml.leaf("Classe", attributes=attributes)
                        continue
                    with xml.element("Classe", attributes):
                        for part in parts:
                            xml.leaf("PartieDeClasse", attributes={"Ident": part})
            with xml.element("Groupes"):
                for group in plan.groups:
                    with xml.element("Groupe", {"Ident": group_ids[group.code], "Nom": group.code}):
                        # Only the part of each class that follows the option: a Classe
                        # reference would put the whole class in the group.
                        for class_code in group.class_codes:
                            xml.leaf("PartieDeClasse",
                                     attributes={"Ident": part_ids[(group.code, class_code)]})
            with xml.element("Salles"):
                for room in plan.rooms:
                    xml.leaf("Salle", attributes={"Ident": room_ids[room], "Nom": room})
            with xml.element("Eleves"):
                for number, student in enumerate(plan.students, start=1):
                    attributes = [("Ident", str(number)), ("Nom", _upper_ascii(student.last_name)),
                                  ("Prenom", student.first_name)]
                    if student.birth_date is not None:
                        attributes.append(("DateNaissance", student.birth_date.isoformat()))
                    attributes += [("Sexe", "Masculin" if student.title == "M." else "Feminin"),
                                   ("NumeroNational", student.ine),
                                   ("IDSconet", student.sconet_id),
                                   ("IDPN", _idpn(uai, "E", student.jointure))]
                    with xml.element("Eleve", attributes):
                        class_code = student.class_code_next or ""
                        xml.leaf("Classe", attributes={"Ident": class_ids[class_code],
                                                       "DateEntree": first_day,
                                                       "DateSortie": year_end})
                        for group_code in student.option_group_codes_next:
                            part = part_ids.get((group_code, class_code))
                            if part is not None:
                                xml.leaf("PartieDeClasse", attributes={
                                    "Ident": part, "DateEntree": first_day,
                                    "DateSortie": year_end})
            with xml.element("Cours"):
                for course in plan.courses:
                    service = course.service
                    mask, domain = masks[course.weeks]
                    with xml.element("Cours", {"Jour": str(course.day),
                                               "NumeroPlaceDebut": str(course.first_place),
                                               "NombrePlaces": str(course.places)}):
                        xml.leaf("Matiere", attributes={"Ident": subject_ids[service.subject_code]})
                        references = [("Professeur", teacher_ids[service.teacher_jointure])]
                        if service.group_code is not None:
                            references.append(("Groupe", group_ids[service.group_code]))
                        else:
                            references.append(("Classe", class_ids[service.class_code or ""]))
                        references.append(("Salle", room_ids[course.room]))
                        for name, ident in references:
                            xml.commented_leaf(name, domain, {"Ident": ident, "Semaines": mask})
        xml.close()
    return path


# --------------------------------------------------------------------------------------
# UnDeuxTemps ZIP of UDCal_NN.xml
# --------------------------------------------------------------------------------------


@dataclass
class _UdtCodes:
    """UDT internal codes of one export."""

    teachers: dict[str, str]
    students: dict[str, str]
    regroupings: dict[str, str]  # option group code -> rgpmt code (0 = none)
    group_ids: dict[tuple[str, str], str]  # (group code, division) -> gpe id


def _fiche_code(day: int, half_sequence: int) -> str:
    """Fiche-T code of (day, 1-based half-sequence): consecutive within a day."""
    return f"{(day - 1) * _PLACES_PER_DAY + half_sequence:03d}"


def _write_udt(plan: _Plan, calendar: _SchoolCalendar, exported_at: dt.datetime,
               out_dir: Path) -> Path:
    """Write the UDT ZIP of a collège."""
    establishment = plan.establishment
    path = out_dir / f"{establishment.uai}_{exported_at:%Y%m%d%H%M%S}_UDT.zip"
    codes = _UdtCodes(
        teachers={t.jointure: str(i + 1) for i, t in enumerate(plan.teachers)},
        students={s.jointure: str(i + 1) for i, s in enumerate(plan.students)},
        regroupings={g.code: str(i + 1) for i, g in enumerate(plan.groups)},
        group_ids={})
    for group in plan.groups:
        for class_code in group.class_codes:
            codes.group_ids[(group.code, class_code)] = str(len(codes.group_ids) + 1)

    entries: list[tuple[str, Callable[[_XmlWriter], None] | bytes]] = [
        ("UDCal_00.xml", lambda xml: _udt_parameters(xml, calendar)),
        ("UDCal_03.xml", lambda xml: _udt_rooms(xml, plan)),
        ("UDCal_04.xml", lambda xml: _udt_teachers(xml, plan, codes)),
        ("UDCal_05.xml", lambda xml: _udt_subjects(xml, plan)),
        ("UDCal_07.xml", lambda xml: _udt_half_sequences(xml, plan)),
        ("UDCal_08.xml", lambda xml: _udt_divisions(xml, plan)),
        ("UDCal_10.xml", lambda xml: _udt_students(xml, plan, codes)),
        ("UDCal_11.xml", lambda xml: _udt_fiches(xml, plan)),
        ("UDCal_12.xml", lambda xml: _udt_lines(xml, plan, codes, plan.courses)),
    ]
    # Week A files are all alike, and so are week B files: render each parity once.
    week_files: dict[str, bytes] = {}
    for parity in _PARITIES:
        buffer = io.BytesIO()
        xml = _XmlWriter(buffer, UDT_ENCODING, "  ")
        _udt_lines(xml, plan, codes,
                   [c for c in plan.courses if c.weeks in (_EVERY_WEEK, parity)])
        xml.close()
        week_files[parity] = buffer.getvalue()
    for monday in calendar.teaching:
        entries.append((f"UDCal_12_{monday.isocalendar()[1]:02d}.xml",
                        week_files[calendar.parity(monday)]))
    entries += [
        ("UDCal_13.xml", lambda xml: _udt_regroupings(xml, plan, codes)),
        ("UDCal_19.xml", lambda xml: _udt_groups(xml, plan, codes)),
        ("UDCal_21.xml", lambda xml: _udt_memberships(xml, plan, codes, calendar)),
        ("UDCal_23.xml", lambda xml: xml.leaf("coenseignements")),
        ("UDCal_24.xml", lambda xml: _udt_calendar(xml, calendar)),
        ("semaines.xml", lambda xml: _udt_weeks(xml, calendar)),
    ]
    entries.sort(key=lambda entry: entry[0])
    with _atomic_file(path) as stream:
        with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED,
                             compresslevel=6) as archive:
            for name, render in entries:
                info = zipfile.ZipInfo(name, date_time=exported_at.timetuple()[:6])
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 0
                info.external_attr = 0
                with archive.open(info, "w") as member:
                    if isinstance(render, bytes):
                        member.write(render)
                        continue
                    xml = _XmlWriter(member, UDT_ENCODING, "  ")
                    render(xml)
                    xml.close()
    return path


def _udt_parameters(xml: _XmlWriter, calendar: _SchoolCalendar) -> None:
    with xml.element("parametres"):
        xml.leaf("init", attributes={"premiere_semaine_ISO": str(calendar.week1.isocalendar()[1]),
                                     "duree_seq": "60"})


def _udt_calendar(xml: _XmlWriter, calendar: _SchoolCalendar) -> None:
    with xml.element("calendrier"):
        xml.leaf("annee", str(calendar.start_year))
        xml.leaf("debut_eleve", _fr_date(calendar.first_day))
        xml.leaf("fin_eleve", _fr_date(calendar.summer_start))
        for holiday in calendar.holidays:
            xml.leaf("fermeture", attributes={"debut": _fr_date(holiday.start),
                                              "fin": _fr_date(holiday.end),
                                              "libelle": holiday.label})


def _udt_weeks(xml: _XmlWriter, calendar: _SchoolCalendar) -> None:
    with xml.element("semaines"):
        for monday in calendar.teaching:
            xml.leaf("semaine", attributes={"num": str(monday.isocalendar()[1])})


def _udt_rooms(xml: _XmlWriter, plan: _Plan) -> None:
    with xml.element("salles"):
        for room in plan.rooms:
            xml.leaf("salle", attributes={"code": room, "nom": room})


def _udt_teachers(xml: _XmlWriter, plan: _Plan, codes: _UdtCodes) -> None:
    with xml.element("profs"):
        for teacher in plan.teachers:
            subject = SUBJECT_BY_CODE.get(teacher.discipline_code)
            xml.leaf("prof", attributes={
                "code": codes.teachers[teacher.jointure], "nom": _upper_ascii(teacher.last_name),
                "prenom": teacher.first_name, "date_naissance": _fr_date(teacher.birth_date),
                "civilite": teacher.title, "mail": teacher.email, "epj": teacher.jointure,
                "code_matppl": subject.short if subject else ""})


def _udt_subjects(xml: _XmlWriter, plan: _Plan) -> None:
    with xml.element("matieres"):
        for subject in plan.subjects:
            xml.leaf("mat", attributes={"code": subject.short, "libelle": subject.label,
                                        "code_gep1": subject.code})


def _udt_half_sequences(xml: _XmlWriter, plan: _Plan) -> None:
    with xml.element("demi_sequences"):
        for day in plan.days:
            for half_sequence in range(1, _PLACES_PER_DAY + 1):
                start = _DAY_START_MINUTES + (half_sequence - 1) * _PLACE_MINUTES
                xml.leaf("demi_seq", attributes={
                    "code": str(half_sequence), "code_jour": str(day), "code_site": "1",
                    "hre_deb": _hhmm(start, "h"), "hre_fin": _hhmm(start + _PLACE_MINUTES, "h")})


def _udt_divisions(xml: _XmlWriter, plan: _Plan) -> None:
    with xml.element("divisions"):
        for school_class in plan.classes:
            xml.leaf("div", attributes={"code": school_class.code, "code_gep": school_class.code,
                                        "libelle": school_class.label})


def _udt_students(xml: _XmlWriter, plan: _Plan, codes: _UdtCodes) -> None:
    with xml.element("eleves"):
        for student in plan.students:
            xml.leaf("eleve", attributes={
                "code": codes.students[student.jointure], "nom": _upper_ascii(student.last_name),
                "prenom": student.first_name, "naissance": _fr_date(student.birth_date)})


def _udt_fiches(xml: _XmlWriter, plan: _Plan) -> None:
    with xml.element("fiches"):
        for day in plan.days:
            for half_sequence in range(1, _PLACES_PER_DAY + 1):
                xml.leaf("fiche", attributes={"code": _fiche_code(day, half_sequence),
                                              "jour": str(day), "demi_seq": str(half_sequence),
                                              "site": "1"})


def _udt_lines(xml: _XmlWriter, plan: _Plan, codes: _UdtCodes, courses: list[_Course]) -> None:
    """Write ``ligfiche`` lines: one per half-sequence of a course and per division."""
    by_fiche: dict[str, list[tuple[_Course, str]]] = {}
    groups = {g.code: g for g in plan.groups}
    for course in courses:
        service = course.service
        divisions = (groups[service.group_code].class_codes if service.group_code is not None
                     else (service.class_code or "",))
        for offset in range(course.places):
            fiche = _fiche_code(course.day, course.first_place + 1 + offset)
            by_fiche.setdefault(fiche, []).extend((course, division) for division in divisions)
    with xml.element("lignes_fiches"):
        for fiche in sorted(by_fiche):
            for line, (course, division) in enumerate(by_fiche[fiche], start=1):
                service = course.service
                group = service.group_code or ""
                xml.leaf("ligfiche", attributes={
                    "code": f"{fiche}{line:03d}", "fic": fiche, "div": division,
                    "mat": SUBJECT_BY_CODE[service.subject_code].short,
                    "prof": codes.teachers[service.teacher_jointure], "salle": course.room,
                    "gpe": group, "rgpmt": codes.regroupings.get(group, "0"),
                    "idgpe": codes.group_ids.get((group, division), "")})


def _udt_regroupings(xml: _XmlWriter, plan: _Plan, codes: _UdtCodes) -> None:
    with xml.element("regroupements"):
        for group in plan.groups:
            for class_code in group.class_codes:
                xml.leaf("rgpmt", attributes={
                    "code": codes.regroupings[group.code], "nom": group.code,
                    "code_div": class_code, "code_gpe": group.code,
                    "id": codes.regroupings[group.code]})


def _udt_groups(xml: _XmlWriter, plan: _Plan, codes: _UdtCodes) -> None:
    with xml.element("groupes"):
        for group in plan.groups:
            for class_code in group.class_codes:
                xml.leaf("gpe", attributes={
                    "code": group.code, "code_div": class_code, "code_sts": group.code,
                    "id": codes.group_ids[(group.code, class_code)]})


def _udt_memberships(xml: _XmlWriter, plan: _Plan, codes: _UdtCodes,
                     calendar: _SchoolCalendar) -> None:
    weeks = str(calendar.udt_mask())
    group_codes = {g.code for g in plan.groups}
    with xml.element("appartenances"):
        for student in plan.students:
            code = codes.students[student.jointure]
            division = student.class_code_next or ""
            xml.leaf("ele_gpe", attributes={"ele": code, "gpe": "", "code_div": division,
                                            "semaines": weeks})
            for group_code in student.option_group_codes_next:
                if group_code in group_codes:
                    xml.leaf("ele_gpe", attributes={"ele": code, "gpe": group_code,
                                                    "code_div": division, "semaines": weeks})
