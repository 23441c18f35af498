"""UnDeuxTemps (UDT) ENT export: a ZIP (or a folder) of ``UDCal_NN.xml`` files.

The UAI is not inside the export: it comes from the file name
(``<UAI>_<yyyyMMddHHmmss>_UDT.zip``, any ``[0-9]{7}[A-Z]``). Files read, with the
element and attribute names entcore's ``UDTHandler`` reads (research note §1.3):
``UDCal_24`` (school calendar: ``annee``, ``debut_eleve``, ``fin_eleve``,
``fermeture``), ``semaines.xml``, ``UDCal_03`` rooms, ``UDCal_04`` teachers
(``epj`` is the directory id), ``UDCal_05`` subjects (``code_gep1`` is the BCN
code), ``UDCal_07`` half-sequences, ``UDCal_08`` divisions, ``UDCal_10`` students,
``UDCal_13`` regroupings, ``UDCal_19`` groups, ``UDCal_21`` memberships,
``UDCal_11`` fiches-T and ``UDCal_12`` lines (the theoretical week), then the
weekly ``UDCal_12_WW.xml`` files.

Consecutive half-sequences of the same line (division or group, subject, teacher,
room, day) make one course. A course's weeks are the ISO weeks whose weekly file
holds it, plus the teaching weeks without a weekly file when the theoretical week
holds it; teaching weeks are the calendar's weeks minus the closures.

Archives are checked before reading: no path outside the archive, no link, no
encrypted entry, and the caps of :mod:`~yearchange_tui.importing.limits` (entries, size
per entry and in all, counted while inflating; configurable). Nothing is extracted to
disk. Runs on the caller's thread.
"""

from __future__ import annotations

import datetime as dt
import re
import stat
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lxml import etree

from yearchange_tui.ent.school_year import school_year_opening_on
from yearchange_tui.importing.limits import MIB, cap_text
from yearchange_tui.importing.limits import current as input_limits
from yearchange_tui.timetable.data import (
    Place,
    TimetableData,
    TtClass,
    TtCourse,
    TtGroup,
    TtStudent,
    TtSubject,
    TtTeacher,
    parse_clock,
    parse_french_date,
)
from yearchange_tui.timetable.xmlsafe import TimetableFileError, excerpt, iter_xml, local_name

UAI_IN_NAME = re.compile(r"(?<![0-9])([0-9]{7}[A-Z])(?![A-Za-z0-9])")
_ENTRY = re.compile(r"^(udcal_\d{2}(?:_\d{2})?|semaines)\.xml$", re.IGNORECASE)
_WEEKLY = re.compile(r"^udcal_12_(\d{2})\.xml$", re.IGNORECASE)
REQUIRED = ("udcal_04.xml", "udcal_05.xml", "udcal_07.xml", "udcal_08.xml", "udcal_11.xml",
            "udcal_12.xml")


def uai_from_name(name: str) -> str:
    """The UAI written in a file name, or ``""``."""
    match = UAI_IN_NAME.search(name.upper())
    return match.group(1) if match else ""


@dataclass
class UdtSource:
    """The UDCal files of one export, by lower-case name: ``{name: (label, bytes)}``."""

    label: str
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Entry names, sorted."""
        return sorted(self.files)


def _check_entry_name(name: str, archive: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or ":" in name or ".." in path.parts:
        raise TimetableFileError("EDT-ARCHIVE-INVALIDE", archive, value=archive,
                                 detail=f"chemin hors de l'archive « {name} »")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str,
                 budget: list[int]) -> bytes:
    chunks: list[bytes] = []
    size = 0
    with archive.open(info) as stream:
        while True:
            chunk = stream.read(1 << 16)
            if not chunk:
                break
            size += len(chunk)
            budget[0] -= len(chunk)
            if size > input_limits().udt_entry_mib * MIB:
                raise TimetableFileError(
                    "EDT-ARCHIVE-INVALIDE", label, value=label,
                    detail=f"« {info.filename} » une fois décompressé dépasse la "
                           f"{cap_text('udt_entry_mib')} : archive piégée")
            if budget[0] < 0:
                raise TimetableFileError(
                    "EDT-ARCHIVE-INVALIDE", label, value=label,
                    detail=f"contenu décompressé au-delà de la {cap_text('udt_archive_mib')} : "
                           "archive piégée")
            chunks.append(chunk)
    return b"".join(chunks)


def open_zip(path: Path) -> UdtSource:
    """Read the UDCal entries of a ZIP, refusing dangerous archives.

    Raises:
        TimetableFileError: ``EDT-ARCHIVE-INVALIDE`` or ``EDT-FICHIERS-MANQUANTS``.
    """
    label = path.name
    source = UdtSource(label)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise TimetableFileError("EDT-ARCHIVE-INVALIDE", label, value=label,
                                 detail=f"ZIP illisible ({error})") from error
    limits = input_limits()
    budget = [limits.udt_archive_mib * MIB]
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.udt_archive_entries:
            raise TimetableFileError("EDT-ARCHIVE-INVALIDE", label, value=label,
                                     detail=f"{len(infos)} entrées, au-delà de la "
                                            f"{cap_text('udt_archive_entries')}")
        for info in infos:
            _check_entry_name(info.filename, label)
            if info.flag_bits & 0x1:
                raise TimetableFileError("EDT-ARCHIVE-INVALIDE", label, value=label,
                                         detail=f"entrée chiffrée « {info.filename} »")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise TimetableFileError("EDT-ARCHIVE-INVALIDE", label, value=label,
                                         detail=f"lien symbolique « {info.filename} »")
        for info in infos:
            if info.is_dir():
                continue
            name = PurePosixPath(info.filename.replace("\\", "/")).name
            if not _ENTRY.match(name):
                continue
            if name.lower() in source.files:
                raise TimetableFileError("EDT-ARCHIVE-INVALIDE", label, value=label,
                                         detail=f"« {name} » présent deux fois")
            try:
                data = _read_member(archive, info, label, budget)
            except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as error:
                raise TimetableFileError("EDT-ARCHIVE-INVALIDE", label, value=label,
                                         detail=f"« {info.filename} » illisible ({error})"
                                         ) from error
            source.files[name.lower()] = (f"{label}:{name}", data)
    _check_complete(source)
    return source


def open_folder(path: Path) -> UdtSource:
    """Read the UDCal files of an extracted export (a folder).

    Raises:
        TimetableFileError: ``EDT-FICHIERS-MANQUANTS`` or unreadable files.
    """
    source = UdtSource(path.name)
    for file in sorted(path.iterdir()):
        if not file.is_file() or file.is_symlink() or not _ENTRY.match(file.name):
            continue
        if file.stat().st_size > input_limits().udt_entry_mib * MIB:
            raise TimetableFileError("EDT-ARCHIVE-INVALIDE", file.name, value=file.name,
                                     detail=f"fichier au-delà de la {cap_text('udt_entry_mib')}")
        source.files[file.name.lower()] = (file.name, file.read_bytes())
    _check_complete(source)
    return source


def _check_complete(source: UdtSource) -> None:
    missing = [name for name in REQUIRED if name not in source.files]
    if missing:
        shown = ", ".join(name.replace("udcal", "UDCal") for name in missing)
        raise TimetableFileError("EDT-FICHIERS-MANQUANTS", source.label, value="UnDeuxTemps",
                                 detail=f"fichier(s) absent(s) : {shown}")


def is_udt_folder(path: Path) -> bool:
    """True when a folder holds UDCal files."""
    return any(_ENTRY.match(p.name) and p.name.lower().startswith("udcal")
               for p in path.iterdir() if p.is_file())


def _elements(source: UdtSource, name: str, tag: str) -> Iterator[tuple[str, etree._Element]]:
    """Yield ``(label, element)`` for every ``tag`` element of one file (cleared after)."""
    entry = source.files.get(name)
    if entry is None:
        return
    label, data = entry
    for _event, element in iter_xml(data, label, events=("end",)):
        if local_name(element.tag) == tag:
            yield label, element
            element.clear()


def _text_elements(source: UdtSource, name: str) -> dict[str, str]:
    entry = source.files.get(name)
    found: dict[str, str] = {}
    if entry is None:
        return found
    label, data = entry
    for _event, element in iter_xml(data, label, events=("end",)):
        if len(element) == 0 and element.text and element.text.strip():
            found.setdefault(local_name(element.tag), element.text.strip())
    return found


@dataclass(frozen=True)
class _LineKey:
    audience: str  # "div" or "gpe"
    code: str
    subject: str
    teacher: str
    room: str
    day: int


@dataclass
class _Slots:
    half_sequences: dict[tuple[str, str], tuple[str, str]]
    by_code: dict[str, tuple[str, str]]
    fiches: dict[str, tuple[int, int]]


class _UdtReader:
    def __init__(self, source: UdtSource) -> None:
        self.source = source
        self.data = TimetableData("udt", carries_students=True)
        self.group_codes: dict[tuple[str, str], str] = {}  # (gpe code, division) → group code
        self.group_ids: dict[str, str] = {}  # gpe id → group code
        self.regroupings: dict[str, str] = {}  # rgpmt code → group code
        self.divisions: dict[str, str] = {}  # div code → class key

    def run(self) -> TimetableData:
        data = self.data
        calendar = _text_elements(self.source, "udcal_24.xml")
        data.first_day = parse_french_date(calendar.get("debut_eleve", ""))
        data.last_day = parse_french_date(calendar.get("fin_eleve", ""))
        year = calendar.get("annee", "")
        if year.isdigit():
            data.school_year_start = int(year)
        elif data.first_day is not None:
            data.school_year_start = school_year_opening_on(data.first_day)
        closures: list[tuple[dt.date, dt.date]] = []
        for _label, element in _elements(self.source, "udcal_24.xml", "fermeture"):
            start = parse_french_date(element.get("debut") or "")
            end = parse_french_date(element.get("fin") or "")
            if start and end:
                closures.append((start, end))
        self.teaching_weeks = self._teaching_weeks(closures)
        self._nomenclatures()
        self._groups()
        slots = self._slots()
        theoretical, theoretical_places = self._lines("udcal_12.xml", slots)
        weekly: dict[int, set[tuple[_LineKey, dt.time, dt.time]]] = {}
        places = dict(theoretical_places)
        for name in self.source.names:
            match = _WEEKLY.match(name)
            if match:
                found, found_places = self._lines(name, slots)
                weekly[int(match.group(1))] = set(found)
                for key, place in found_places.items():
                    places.setdefault(key, place)
        self._courses(set(theoretical), weekly, places)
        self._students()
        return data

    def _teaching_weeks(self, closures: list[tuple[dt.date, dt.date]]) -> set[int]:
        first, last = self.data.first_day, self.data.last_day
        if first is None or last is None or last < first:
            return set()
        weeks = set()
        monday = first - dt.timedelta(days=first.weekday())
        while monday <= last:
            friday = monday + dt.timedelta(days=4)
            closed = any(start <= monday and friday <= end for start, end in closures)
            if not closed:
                weeks.add(monday.isocalendar()[1])
            monday += dt.timedelta(weeks=1)
        return weeks

    def _nomenclatures(self) -> None:
        data = self.data
        for label, element in _elements(self.source, "udcal_05.xml", "mat"):
            code = (element.get("code") or "").strip()
            data.subjects[code] = TtSubject(code, code,
                                            (element.get("libelle") or "").strip(),
                                            (element.get("code_gep1") or "").strip())
            del label
        for label, element in _elements(self.source, "udcal_04.xml", "prof"):
            get = element.get
            code = (get("code") or "").strip()
            epj = (get("epj") or "").strip()
            data.teachers[code] = TtTeacher(
                code, (get("nom") or "").strip(), (get("prenom") or "").strip(),
                parse_french_date(get("date_naissance") or ""), (epj,) if epj else (),
                Place(label, element.sourceline, excerpt(element)))
        for _label, element in _elements(self.source, "udcal_08.xml", "div"):
            get = element.get
            code = (get("code") or "").strip()
            data.classes[code] = TtClass(code, (get("code_gep") or "").strip() or code,
                                         (get("libelle") or "").strip())
            self.divisions[code] = code
        self.rooms: dict[str, str] = {}
        for _label, element in _elements(self.source, "udcal_03.xml", "salle"):
            get = element.get
            self.rooms[(get("code") or "").strip()] = (get("nom") or get("code") or "").strip()

    def _group(self, code: str, label: str = "", place: Place | None = None) -> TtGroup:
        group = self.data.groups.get(code)
        if group is None:
            group = TtGroup(code, code, label or code, place=place)
            self.data.groups[code] = group
        return group

    def _groups(self) -> None:
        for label, element in _elements(self.source, "udcal_19.xml", "gpe"):
            get = element.get
            code = (get("code") or "").strip()
            sts = (get("code_sts") or "").strip()
            division = (get("code_div") or "").strip()
            if not code or not sts:
                continue  # groups without an STS code are not pedagogical groups (entcore)
            group = self._group(sts, place=Place(label, element.sourceline, excerpt(element)))
            if division and division not in group.class_keys:
                group.class_keys.append(division)
            self.group_codes[(code, division)] = sts
            identifier = (get("id") or "").strip()
            if identifier:
                self.group_ids[identifier] = sts
        for label, element in _elements(self.source, "udcal_13.xml", "rgpmt"):
            get = element.get
            code = (get("code") or "").strip()
            name = (get("code_gpe") or get("nom") or "").strip()
            division = (get("code_div") or "").strip()
            if not code or not name:
                continue
            group_code = next((c for (g, _d), c in self.group_codes.items() if g == name), name)
            group = self._group(group_code, (get("nom") or "").strip(),
                                Place(label, element.sourceline, excerpt(element)))
            if division and division not in group.class_keys:
                group.class_keys.append(division)
            self.regroupings[code] = group_code

    def _slots(self) -> _Slots:
        half: dict[tuple[str, str], tuple[str, str]] = {}
        by_code: dict[str, tuple[str, str]] = {}
        for _label, element in _elements(self.source, "udcal_07.xml", "demi_seq"):
            get = element.get
            times = ((get("hre_deb") or "").strip(), (get("hre_fin") or "").strip())
            code = (get("code") or "").strip()
            half[(code, (get("code_jour") or "").strip())] = times
            by_code.setdefault(code, times)
        fiches: dict[str, tuple[int, int]] = {}
        for _label, element in _elements(self.source, "udcal_11.xml", "fiche"):
            get = element.get
            try:
                fiches[(get("code") or "").strip()] = (int(get("jour") or ""),
                                                       int(get("demi_seq") or ""))
            except ValueError:
                continue
        return _Slots(half, by_code, fiches)

    def _audience(self, read: Callable[[str], str | None]) -> tuple[str, str]:
        group = (read("gpe") or "").strip()
        division = (read("div") or "").strip()
        regrouping = (read("rgpmt") or "").strip()
        if group:
            identifier = (read("idgpe") or "").strip()
            code = (self.group_ids.get(identifier) or self.group_codes.get((group, division))
                    or group)
            self._group(code)
            return "gpe", code
        if regrouping and regrouping != "0" and regrouping in self.regroupings:
            return "gpe", self.regroupings[regrouping]
        return "div", division

    def _lines(self, name: str, slots: _Slots
               ) -> tuple[list[tuple[_LineKey, dt.time, dt.time]],
                          dict[tuple[_LineKey, dt.time, dt.time], Place]]:
        """Courses of one lines file: consecutive half-sequences merged."""
        runs: dict[_LineKey, set[int]] = defaultdict(set)
        first_place: dict[_LineKey, Place] = {}
        for label, element in _elements(self.source, name, "ligfiche"):
            get = element.get
            fiche = slots.fiches.get((get("fic") or "").strip())
            if fiche is None:
                continue
            kind, code = self._audience(get)
            key = _LineKey(kind, code, (get("mat") or "").strip(), (get("prof") or "").strip(),
                           (get("salle") or "").strip(), fiche[0])
            runs[key].add(fiche[1])
            if key not in first_place:
                first_place[key] = Place(label, element.sourceline, excerpt(element))
        courses: list[tuple[_LineKey, dt.time, dt.time]] = []
        places: dict[tuple[_LineKey, dt.time, dt.time], Place] = {}
        for key, numbers in runs.items():
            ordered = sorted(numbers)
            start = previous = ordered[0]
            for number in ordered[1:] + [-1]:
                if number == previous + 1:
                    previous = number
                    continue
                begin = slots.half_sequences.get((str(start), str(key.day))) or \
                    slots.by_code.get(str(start))
                end = slots.half_sequences.get((str(previous), str(key.day))) or \
                    slots.by_code.get(str(previous))
                starts_at = parse_clock(begin[0]) if begin else None
                ends_at = parse_clock(end[1]) if end else None
                if starts_at is not None and ends_at is not None and ends_at > starts_at:
                    item = (key, starts_at, ends_at)
                    courses.append(item)
                    places[item] = first_place[key]
                start = previous = number
        return courses, places

    def _courses(self, theoretical: set[tuple[_LineKey, dt.time, dt.time]],
                 weekly: dict[int, set[tuple[_LineKey, dt.time, dt.time]]],
                 places: dict[tuple[_LineKey, dt.time, dt.time], Place]) -> None:
        covered = set(weekly)
        other_weeks = self.teaching_weeks - covered
        every = set(theoretical).union(*weekly.values()) if weekly else set(theoretical)
        for item in sorted(every, key=lambda i: (i[0].day, i[1], i[0].code, i[0].subject,
                                                 i[0].teacher, i[0].room)):
            key, starts_at, ends_at = item
            if weekly or self.teaching_weeks:
                weeks = {week for week, found in weekly.items() if item in found}
                if item in theoretical:
                    weeks |= other_weeks
                if not weeks:
                    continue
                week_set: frozenset[int] | None = frozenset(weeks)
            else:
                week_set = None
            room = self.rooms.get(key.room, key.room)
            self.data.courses.append(TtCourse(
                key.subject, [key.teacher] if key.teacher else [],
                [key.code] if key.audience == "div" and key.code else [],
                [key.code] if key.audience == "gpe" else [], key.day, starts_at, ends_at,
                room[:50], week_set, "", places.get(item, Place(self.source.label))))

    def _students(self) -> None:
        data = self.data
        for label, element in _elements(self.source, "udcal_10.xml", "eleve"):
            get = element.get
            code = (get("code") or "").strip()
            data.students[code] = TtStudent(
                code, (get("nom") or "").strip(), (get("prenom") or "").strip(),
                parse_french_date(get("naissance") or ""),
                place=Place(label, element.sourceline, excerpt(element)))
        for _label, element in _elements(self.source, "udcal_21.xml", "ele_gpe"):
            get = element.get
            group = (get("gpe") or "").strip()
            student = data.students.get((get("ele") or "").strip())
            if not group or student is None:
                continue
            division = (get("code_div") or "").strip()
            code = self.group_codes.get((group, division)) or group
            if code in data.groups:
                student.group_keys.add(code)


def parse_udt(source: UdtSource) -> TimetableData:
    """Read an UnDeuxTemps export.

    Raises:
        TimetableFileError: unsafe or broken XML in one of its files.
    """
    return _UdtReader(source).run()
