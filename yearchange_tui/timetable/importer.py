"""Apply a timetable export to an establishment's year N+1, in one transaction.

:func:`import_timetable` is what ``yearchange import-timetable`` and the drop folder
call. In order, before anything is written:

1. the export is read and judged (:func:`~yearchange_tui.timetable.reader.inspect_timetable`:
   format, identity, year, version policy, EDT decryption); ``on_inspected`` lets
   the caller show that verdict; a refused export raises
   :class:`~yearchange_tui.timetable.xmlsafe.TimetableFileError`;
2. the guards: refused while the establishment is between its steps 2 and 4
   (``gel-imports``) and before its step 4 is done (``ordre-des-etapes``), unless
   an MOE override is active (the import is then audited as overridden);
3. automatic mode only for projects with the option and only after a successful
   manual import of the year for the establishment.

Then the export is matched against the directory of year N+1. **A timetable import
never creates a class**: a course, service or group citing a class the directory
does not have is rejected (``EDT-CLASSE-INCONNUE``), as are unknown teachers and
subjects, each with its own code, French explanation and action; rejects go to the
AAF reject store (one ``aaf_imports`` row of mode ``timetable`` per import), so the
same browser shows them. Option groups are created as ``GroupKind.OPTION`` marked
with the import report; teaching services and weekly courses are created, with
the alternations their weeks need. Re-importing first deletes what earlier
timetable imports of the year created for that establishment (rows carrying a
timetable import report, and the alternations they created) and nothing else.

Set-based: the directory is loaded once per import, rows are written with
``insert().values()`` batches. Runs on the caller's thread.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.orm import Session

from yearchange_tui.ent.base import utcnow
from yearchange_tui.ent.database import Database
from yearchange_tui.ent.models import (
    Alternation,
    Course,
    Establishment,
    Group,
    GroupKind,
    GroupLifetime,
    GroupMembership,
    ImportReport,
    ImportSource,
    Person,
    PersonKind,
    PersonProfile,
    Project,
    SchoolClass,
    SchoolYear,
    Subject,
    TeachingService,
)
from yearchange_tui.ent.uai import InvalidUAIError, validate_uai
from yearchange_tui.french import os_error_text
from yearchange_tui.importing.models import AafImport, AafImportFile, AafReject
from yearchange_tui.importing.outcome import ImportOutcome, ImportStatus
from yearchange_tui.timetable.data import Place, Problem, TimetableData, TtCourse
from yearchange_tui.timetable.declarations import (
    SOURCE_FILE,
    SOURCE_FIRST_IMPORT,
    declaration_row,
    declaration_version,
    record_declaration,
)
from yearchange_tui.timetable.models import (
    TimetableDeclaration,
    TimetableImport,
    TimetablePartnerKey,
)
from yearchange_tui.timetable.policy import (
    DECLARATION_CONFLICT,
    OUTCOME_CODES,
    Outcome,
    supported_summary,
)
from yearchange_tui.timetable.reader import PartnerKey, TimetableInspection, inspect_timetable
from yearchange_tui.timetable.rules import explain, severity_of
from yearchange_tui.timetable.xmlsafe import TimetableFileError
from yearchange_tui.workflow.audit import audit, operator_identity
from yearchange_tui.workflow.establishments import UnknownEstablishmentError, establishment_by_uai
from yearchange_tui.workflow.guards import (
    GuardRefused,
    check_step_order,
    check_timetable_or_csv_import_allowed,
)
from yearchange_tui.workflow.models import Step
from yearchange_tui.workflow.units import (
    NoCurrentYearError,
    current_school_year,
    following_school_year,
)

MODE_MANUAL = "manuel"
MODE_AUTOMATIC = "automatique"
REJECT_STORE_MODE = "timetable"
"""``aaf_imports.mode`` of the rows that anchor timetable rejects."""

_BATCH = 500
DECLARATION_CODES = (OUTCOME_CODES[Outcome.UNDECLARED], DECLARATION_CONFLICT)
"""Refusals that depend on the establishment's declaration (judged once it is known)."""


class TimetableUsageError(Exception):
    """Bad usage (unknown establishment, no school year…): French message, exit status 2."""


@dataclass
class TimetableImportResult:
    """What one import did (or would do, for a dry run)."""

    uai: str
    establishment_name: str
    school_year: str
    mode: str
    inspection: TimetableInspection
    dry_run: bool = False
    overridden: bool = False
    import_id: int | None = None
    reject_import_id: int | None = None
    import_report_id: int | None = None
    created: dict[str, int] = field(default_factory=dict)
    replaced: dict[str, int] = field(default_factory=dict)
    rejects_by_code: dict[str, int] = field(default_factory=dict)
    records_rejected: int = 0
    records: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"uai": self.uai, "establishment": self.establishment_name,
                "school_year": self.school_year, "mode": self.mode, "dry_run": self.dry_run,
                "overridden": self.overridden, "import_id": self.import_id,
                "reject_import_id": self.reject_import_id,
                "import_report_id": self.import_report_id,
                "inspection": self.inspection.to_dict(), "created": self.created,
                "replaced": self.replaced, "rejects": self.rejects_by_code,
                "records_rejected": self.records_rejected, "records": self.records}

    def outcome(self) -> ImportOutcome:
        """The typed outcome: what was created and rejected for the establishment."""
        head = ("Import d'emploi du temps à blanc" if self.dry_run
                else f"Import d'emploi du temps n° {self.import_id}")
        created = self.created
        summary = (f"{head} — {self.uai} {self.establishment_name}, année {self.school_year} : "
                   f"{created.get('services', 0)} service(s), {created.get('cours', 0)} cours, "
                   f"{created.get('groupes', 0)} groupe(s) d'options ; "
                   f"{sum(self.rejects_by_code.values())} rejet(s)")
        return ImportOutcome(
            "timetable", ImportStatus.DONE, summary, import_id=self.import_id,
            dry_run=self.dry_run, counts={self.uai: dict(created)},
            rejects={self.uai: dict(self.rejects_by_code)} if self.rejects_by_code else {},
            rejects_by_code=dict(self.rejects_by_code),
            details={"reject_import_id": self.reject_import_id, "replaced": self.replaced,
                     "overridden": self.overridden})


# --------------------------------------------------------------------------------------
# Directory lookups
# --------------------------------------------------------------------------------------


def fold(text: str | None) -> str:
    """Compare names and codes without case, accents, spaces or dashes."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in kept.casefold() if c.isalnum())


@dataclass
class _Directory:
    """The directory of one establishment and year, loaded once."""

    classes: dict[str, int]
    folded_classes: dict[str, int]
    subjects_by_code: dict[str, int]
    subjects_by_short: dict[str, int]
    subjects_by_label: dict[str, int]
    teachers_by_jointure: dict[str, int]
    teachers_by_name_birth: dict[tuple[str, str, dt.date | None], int]
    teachers_by_name: dict[tuple[str, str], int | None]
    students_by_ine: dict[str, tuple[int, str, str]]
    students_by_name_birth: dict[tuple[str, str, dt.date | None], int]
    aaf_group_members: dict[str, list[int]]

    def class_id(self, code: str) -> int | None:
        return self.classes.get(code) or self.folded_classes.get(fold(code))

    def subject_id(self, code: str, label: str, bcn: str) -> int | None:
        for candidate in (bcn, code):
            if candidate and candidate in self.subjects_by_code:
                return self.subjects_by_code[candidate]
        return (self.subjects_by_short.get(fold(code)) or self.subjects_by_label.get(fold(label))
                or self.subjects_by_label.get(fold(code)))

    def teacher_id(self, ids: tuple[str, ...], last: str, first: str,
                   birth: dt.date | None) -> int | None:
        for identifier in ids:
            if identifier in self.teachers_by_jointure:
                return self.teachers_by_jointure[identifier]
        if not last:
            return None
        found = self.teachers_by_name_birth.get((fold(last), fold(first), birth))
        if found is not None or birth is not None:
            return found
        return self.teachers_by_name.get((fold(last), fold(first)))

    def student_id(self, ine: str, last: str, first: str, birth: dt.date | None) -> int | None:
        if ine and ine in self.students_by_ine:
            person_id, known_last, known_first = self.students_by_ine[ine]
            if (known_last, known_first) == (fold(last), fold(first)):
                return person_id
        return self.students_by_name_birth.get((fold(last), fold(first), birth))


def _load_directory(session: Session, establishment_id: int, year_id: int) -> _Directory:
    classes = dict(session.execute(select(SchoolClass.code, SchoolClass.id).where(
        SchoolClass.establishment_id == establishment_id,
        SchoolClass.school_year_id == year_id)).all())
    subjects = session.execute(select(Subject.id, Subject.code, Subject.short_label,
                                      Subject.label)).all()
    staff = select(PersonProfile.person_id).where(
        PersonProfile.establishment_id == establishment_id)
    teacher_rows = session.execute(select(
        Person.id, Person.aaf_jointure, Person.last_name, Person.first_name, Person.birth_date)
        .where(Person.kind.in_((PersonKind.TEACHER, PersonKind.STAFF)),
               Person.disappeared_at.is_(None),
               or_(Person.establishment_id == establishment_id, Person.id.in_(staff)))).all()
    by_name: dict[tuple[str, str], int | None] = {}
    for row in teacher_rows:
        key = (fold(row.last_name), fold(row.first_name))
        by_name[key] = None if key in by_name else row.id
    student_rows = session.execute(select(
        Person.id, Person.ine, Person.last_name, Person.first_name, Person.birth_date)
        .where(Person.kind == PersonKind.STUDENT, Person.disappeared_at.is_(None),
               Person.establishment_id == establishment_id)).all()
    members: dict[str, list[int]] = defaultdict(list)
    for code, person_id in session.execute(
            select(Group.code, GroupMembership.person_id)
            .join(GroupMembership, GroupMembership.group_id == Group.id)
            .where(Group.establishment_id == establishment_id,
                   Group.school_year_id == year_id, Group.kind == GroupKind.AAF)):
        members[code].append(person_id)
    return _Directory(
        classes=classes, folded_classes={fold(code): id_ for code, id_ in classes.items()},
        subjects_by_code={row.code: row.id for row in subjects},
        subjects_by_short={fold(row.short_label): row.id for row in subjects if row.short_label},
        subjects_by_label={fold(row.label): row.id for row in subjects if row.label},
        teachers_by_jointure={row.aaf_jointure: row.id for row in teacher_rows
                              if row.aaf_jointure},
        teachers_by_name_birth={(fold(r.last_name), fold(r.first_name), r.birth_date): r.id
                                for r in teacher_rows},
        teachers_by_name=by_name,
        students_by_ine={row.ine: (row.id, fold(row.last_name), fold(row.first_name))
                         for row in student_rows if row.ine},
        students_by_name_birth={(fold(r.last_name), fold(r.first_name), r.birth_date): r.id
                                for r in student_rows},
        aaf_group_members=dict(members))


# --------------------------------------------------------------------------------------
# Rejects
# --------------------------------------------------------------------------------------


@dataclass
class _Reject:
    code: str
    place: Place
    record_id: str
    kind: str
    attribute: str = ""
    value: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    courses: int = 0
    services: int = 0
    groups: int = 0


def _what(reject: _Reject) -> str:
    parts = []
    if reject.groups:
        parts.append("le groupe" if reject.groups == 1 else f"{reject.groups} groupes")
    if reject.courses:
        parts.append(f"{reject.courses} cours")
    if reject.services:
        parts.append("1 service" if reject.services == 1 else f"{reject.services} services")
    if not parts:
        return "rien n'est importé pour cet élément"
    single = len(parts) == 1 and (reject.groups + reject.courses + reject.services) == 1
    return " et ".join(parts) + (" n'est pas importé" if single else " ne sont pas importés")


class _Rejects:
    """Rejects aggregated by (code, record): one row per unknown class, teacher…"""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str], _Reject] = {}
        self.order: list[tuple[str, str, str]] = []

    def add(self, code: str, place: Place, record_id: str, kind: str, *, scope: str = "",
            attribute: str = "", value: str = "", courses: int = 0, services: int = 0,
            groups: int = 0, **params: Any) -> _Reject:
        key = (code, record_id, scope)
        reject = self.items.get(key)
        if reject is None:
            reject = _Reject(code, place, record_id, kind, attribute, value, dict(params))
            self.items[key] = reject
            self.order.append(key)
        reject.courses += courses
        reject.services += services
        reject.groups += groups
        return reject

    def rows(self, context: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for key in self.order:
            reject = self.items[key]
            params = {"what": _what(reject), **context, **reject.params}
            record = params.get("record", "")
            params.setdefault("Record", record[:1].upper() + record[1:])
            message, action = explain(reject.code, value=reject.value,
                                      attribute=reject.attribute, **params)
            rows.append({
                "file_name": reject.place.file[:500], "line": reject.place.line,
                "record_id": reject.record_id[:64], "kind": reject.kind[:20],
                "request": "emploi du temps"[:20], "code": reject.code,
                "severity": severity_of(reject.code).value,
                "attribute": reject.attribute[:100], "raw_value": reject.value,
                "message": message, "action": action, "raw_xml": reject.place.raw_xml})
        return rows


# --------------------------------------------------------------------------------------
# The plan: what will be written
# --------------------------------------------------------------------------------------


def _school_order(week: int) -> tuple[int, int]:
    """Sort ISO weeks in school-year order (September first)."""
    return (0 if week >= 30 else 1, week)


@dataclass
class _AlternationPlan:
    name: str
    weeks: frozenset[int]

    @property
    def weeks_text(self) -> str:
        return ",".join(str(w) for w in sorted(self.weeks, key=_school_order))


@dataclass
class _Plan:
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # group key → row
    members: dict[str, set[int]] = field(default_factory=dict)
    alternations: dict[str, _AlternationPlan] = field(default_factory=dict)
    services: dict[tuple[int, int | None, int | None, str | None], float] = field(
        default_factory=dict)
    courses: list[tuple[tuple[int, int | None, int | None, str | None], int, dt.time, dt.time,
                        str, str | None]] = field(default_factory=list)


def _duration_hours(course: TtCourse) -> float:
    start = course.starts_at.hour * 60 + course.starts_at.minute
    end = course.ends_at.hour * 60 + course.ends_at.minute
    return (end - start) / 60


class _Planner:
    """Matches the export against the directory and collects rows and rejects."""

    def __init__(self, data: TimetableData, directory: _Directory, year_label: str) -> None:
        self.data = data
        self.directory = directory
        self.year_label = year_label
        self.rejects = _Rejects()
        self.plan = _Plan()
        self.subject_ids: dict[str, int | None] = {}
        self.teacher_ids: dict[str, int | None] = {}
        self.group_ok: dict[str, bool] = {}
        self.course_records_imported: set[tuple[str, int]] = set()  # see _course_record
        self.services_imported = 0  # file services kept

    # -- references ------------------------------------------------------------------------

    def class_code(self, key: str) -> str:
        known = self.data.classes.get(key)
        return known.code if known is not None else key

    def subject(self, key: str, place: Place, *, course: bool) -> int | None:
        if key not in self.subject_ids:
            subject = self.data.subjects.get(key)
            if subject is None:
                subject_id = self.directory.subjects_by_code.get(key)
            else:
                subject_id = self.directory.subject_id(subject.code, subject.label, subject.bcn)
            self.subject_ids[key] = subject_id
        subject_id = self.subject_ids[key]
        if subject_id is None:
            subject = self.data.subjects.get(key)
            shown = f"« {subject.code} »" if subject else f"« {key} »"
            detail = (subject.label or "sans libellé") if subject else "absente du fichier"
            if subject is not None and subject.bcn and subject.bcn != subject.code:
                detail += f", code national {subject.bcn}"
            self.rejects.add("EDT-MATIERE-INCONNUE", place, subject.code if subject else key,
                             "Matiere", value=shown, detail=detail,
                             courses=1 if course else 0, services=0 if course else 1)
        return subject_id

    def teacher(self, key: str, place: Place, *, course: bool) -> int | None:
        if key not in self.teacher_ids:
            teacher = self.data.teachers.get(key)
            if teacher is None:
                found = self.directory.teachers_by_jointure.get(key)
            else:
                found = self.directory.teacher_id(teacher.directory_ids, teacher.last_name,
                                                  teacher.first_name, teacher.birth_date)
            self.teacher_ids[key] = found
        found = self.teacher_ids[key]
        if found is None:
            teacher = self.data.teachers.get(key)
            if teacher is not None:
                birth = f"né(e) le {teacher.birth_date:%d/%m/%Y}" if teacher.birth_date else \
                    "date de naissance absente"
                ids = ", ".join(teacher.directory_ids)
                detail = f"{birth}, identifiant {ids or teacher.key}"
                value = teacher.display
                teacher_place = teacher.place or place
            else:
                detail, value, teacher_place = "absent du fichier", f"n° {key}", place
            self.rejects.add("EDT-ENSEIGNANT-INCONNU", teacher_place, key, "Professeur",
                             value=value, detail=detail, courses=1 if course else 0,
                             services=0 if course else 1)
        return found

    @cached_property
    def course_mentions(self) -> Counter[str]:
        """Courses of the file that cite each class code."""
        return Counter(code for course in self.data.courses
                       for code in {self.class_code(key) for key in course.class_keys})

    @cached_property
    def service_mentions(self) -> Counter[str]:
        """Services of the file that cite each class code."""
        return Counter(self.class_code(service.class_key) for service in self.data.services
                       if service.class_key)

    def unknown_class(self, code: str, place: Place, record: str | None = None, *,
                      courses: int = 0, services: int = 0, groups: int = 0,
                      scope: str = "") -> None:
        if record is None:
            if courses:
                record = f"{self.course_mentions[code]} cours du fichier"
            else:
                mentions = self.service_mentions[code]
                record = "1 service du fichier" if mentions == 1 else \
                    f"{mentions} services du fichier"
        self.rejects.add("EDT-CLASSE-INCONNUE", place, code, "Classe", scope=scope,
                         value=code, record=record, year=self.year_label, courses=courses,
                         services=services, groups=groups)

    # -- groups ----------------------------------------------------------------------------

    def groups(self) -> None:
        used = {key for course in self.data.courses for key in course.group_keys}
        used |= {s.group_key for s in self.data.services if s.group_key}
        used |= {key for student in self.data.students.values() for key in student.group_keys}
        for key in sorted(used):
            group = self.data.groups.get(key)
            if group is None:
                self.group_ok[key] = False
                continue
            place = group.place or Place("")
            known = []
            for class_key in group.class_keys:
                code = self.class_code(class_key)
                if self.directory.class_id(code) is None:
                    courses = sum(1 for c in self.data.courses if key in c.group_keys)
                    self.unknown_class(code, place, f"le groupe « {group.code} »",
                                       groups=1, courses=courses, scope=f"groupe:{key}")
                else:
                    known.append(code)
            if group.class_keys and not known:
                self.group_ok[key] = False
                continue
            self.group_ok[key] = True
            self.plan.groups[key] = {"code": group.code[:64],
                                     "name": (group.label or group.code)[:200]}
            self.plan.members[key] = set()

    def memberships(self) -> None:
        data = self.data
        if data.carries_students:
            for student in data.students.values():
                person_id = self.directory.student_id(student.ine, student.last_name,
                                                      student.first_name, student.birth_date)
                if person_id is None:
                    born = (f"né(e) le {student.birth_date:%d/%m/%Y}" if student.birth_date
                            else "date de naissance absente")
                    ine = f", INE {student.ine}" if student.ine else ""
                    self.rejects.add("EDT-ELEVE-INCONNU", student.place or Place(""),
                                     student.ine or student.key, "Eleve",
                                     value=student.display, detail=born + ine)
                    continue
                for key in student.group_keys:
                    if key in self.plan.members:
                        self.plan.members[key].add(person_id)
        else:
            # STS-web files carry no students: the AAF group of the same code gives them.
            for key, group in self.plan.groups.items():
                self.plan.members[key].update(self.directory.aaf_group_members.get(
                    group["code"], []))

    # -- alternations ------------------------------------------------------------------------

    def alternations(self) -> frozenset[int] | None:
        """Plan the alternations; return the week set that means "every week"."""
        data = self.data
        if data.format == "sts":
            for code, alternation in data.alternations.items():
                if code != "H":
                    self.plan.alternations[code] = _AlternationPlan(
                        (alternation.label or code)[:20], alternation.weeks)
            return None
        sets = Counter(c.weeks for c in data.courses if c.weeks is not None)
        if not sets:
            return None
        reference = max(sets, key=lambda weeks: (sets[weeks], len(weeks)))
        others = sorted((weeks for weeks in sets if weeks != reference),
                        key=lambda weeks: [_school_order(w) for w in sorted(
                            weeks, key=_school_order)])
        if (len(others) == 2 and not (others[0] & others[1])
                and others[0] | others[1] == reference):
            names = ["Semaine A", "Semaine B"]
        else:
            names = [f"Alternance {n}" for n in range(1, len(others) + 1)]
        for name, weeks in zip(names, others, strict=True):
            self.plan.alternations[name] = _AlternationPlan(name, weeks)
        return reference

    def alternation_key(self, course: TtCourse, reference: frozenset[int] | None) -> str | None:
        if self.data.format == "sts":
            code = course.alternation_code
            if not code or code == "H":
                return None
            if code not in self.plan.alternations:
                self.rejects.add("EDT-ALTERNANCE-INCONNUE", course.place, code, "COURS",
                                 value=code, record=course.label)
                return None
            return code
        if course.weeks is None or course.weeks == reference:
            return None
        return next(name for name, plan in self.plan.alternations.items()
                    if plan.weeks == course.weeks)

    # -- courses and services ----------------------------------------------------------------

    @staticmethod
    def _course_record(index: int, course: TtCourse) -> tuple[str, int]:
        """The file record a course comes from: one EDT « Cours » may give several courses
        (per teacher and audience), all with its place; without a line, the course alone."""
        if course.place.line is not None:
            return course.place.file, course.place.line
        return "#", index

    @property
    def courses_imported(self) -> int:
        """File course records that gave at least one course row."""
        return len(self.course_records_imported)

    def courses(self) -> None:
        reference = self.alternations()
        for index, course in enumerate(self.data.courses):
            subject_id = self.subject(course.subject_key, course.place, course=True)
            teachers: list[int | None] = []
            teacher_missing = False
            for key in course.teacher_keys:
                teacher_id = self.teacher(key, course.place, course=True)
                if teacher_id is None:
                    teacher_missing = True
                teachers.append(teacher_id)
            audiences: list[tuple[int | None, str | None]] = []
            audience_missing = False
            for key in course.class_keys:
                code = self.class_code(key)
                class_id = self.directory.class_id(code)
                if class_id is None:
                    self.unknown_class(code, course.place, courses=1)
                    audience_missing = True
                audiences.append((class_id, None))
            for key in course.group_keys:
                if not self.group_ok.get(key):
                    audience_missing = True
                audiences.append((None, key))
            if subject_id is None or teacher_missing or audience_missing:
                continue
            if not audiences:
                self.rejects.add("EDT-COURS-INCOMPLET", course.place, "", "Cours",
                                 scope=f"{course.place.file}:{course.place.line}", courses=1,
                                 record=course.label, detail="classe ni groupe")
                continue
            if not teachers:
                self.rejects.add("EDT-COURS-SANS-ENSEIGNANT", course.place, "", "Cours",
                                 scope=f"{course.place.file}:{course.place.line}",
                                 record=course.label)
                teachers = [None]
            alternation = self.alternation_key(course, reference)
            self.course_records_imported.add(self._course_record(index, course))
            share = 1.0
            if course.weeks is not None and reference:
                share = min(1.0, len(course.weeks) / len(reference))
            hours = _duration_hours(course) * share
            for teacher_id in teachers:
                for class_id, group_key in audiences:
                    service = (subject_id, teacher_id, class_id, group_key)
                    self.plan.services[service] = self.plan.services.get(service, 0.0) + hours
                    self.plan.courses.append((service, course.weekday, course.starts_at,
                                              course.ends_at, course.room, alternation))

    def services(self) -> None:
        for service in self.data.services:
            subject_id = self.subject(service.subject_key, service.place, course=False)
            teacher_id = None
            if service.teacher_key:
                teacher_id = self.teacher(service.teacher_key, service.place, course=False)
                if teacher_id is None:
                    continue
            if subject_id is None:
                continue
            class_id: int | None = None
            group_key: str | None = None
            if service.class_key:
                code = self.class_code(service.class_key)
                class_id = self.directory.class_id(code)
                if class_id is None:
                    self.unknown_class(code, service.place, services=1)
                    continue
            elif service.group_key:
                if not self.group_ok.get(service.group_key):
                    continue
                group_key = service.group_key
            key = (subject_id, teacher_id, class_id, group_key)
            self.services_imported += 1
            if key not in self.plan.services:
                self.plan.services[key] = service.weekly_hours

    def problems(self, problems: list[Problem]) -> None:
        for problem in problems:
            refused = severity_of(problem.code).value == "erreur"
            self.rejects.add(problem.code, problem.place, problem.record_id, problem.kind,
                             scope=f"{problem.place.file}:{problem.place.line}:{problem.value}",
                             attribute=problem.attribute, value=problem.value,
                             courses=1 if refused else 0, record=problem.record,
                             detail=problem.detail, what=problem.what)

    def records(self) -> dict[str, dict[str, int]]:
        """The file's records by kind: in the file, imported, not imported (each counted
        once, whatever the number of rejects it has)."""
        data = self.data
        refused_by_reader = sum(1 for problem in data.problems
                                if severity_of(problem.code).value == "erreur")
        course_records = {self._course_record(index, course)
                          for index, course in enumerate(data.courses)}
        counts = {"cours": (len(course_records) + refused_by_reader, self.courses_imported),
                  "services": (len(data.services), self.services_imported),
                  "groupes": (len(data.groups), sum(1 for key in self.plan.groups
                                                    if key in data.groups))}
        return {kind: {"file": total, "imported": imported, "not_imported": total - imported}
                for kind, (total, imported) in counts.items()}

    def run(self) -> None:
        self.problems(self.data.problems)
        self.groups()
        self.courses()
        self.services()
        self.memberships()


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def _insert_returning(session: Session, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    ids: list[int] = []
    for start in range(0, len(rows), _BATCH):
        part = rows[start:start + _BATCH]
        ids.extend(session.scalars(insert(model).returning(model.id, sort_by_parameter_order=True),
                                   part).all())
    return ids


def _insert(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), _BATCH):
        part = rows[start:start + _BATCH]
        if part:
            session.execute(insert(model), part)


def _previous_timetable_rows(session: Session, establishment_id: int, year_id: int
                             ) -> dict[str, int]:
    """Delete what earlier timetable imports of the year created; return the counts."""
    report_ids = select(ImportReport.id).where(
        ImportReport.establishment_id == establishment_id,
        ImportReport.school_year_id == year_id, ImportReport.source == ImportSource.TIMETABLE)
    scope = (Course.establishment_id == establishment_id, Course.school_year_id == year_id)
    counts: dict[str, int] = {}
    counts["cours"] = session.execute(delete(Course).where(
        *scope, Course.import_report_id.in_(report_ids))).rowcount or 0
    counts["services"] = session.execute(delete(TeachingService).where(
        TeachingService.establishment_id == establishment_id,
        TeachingService.school_year_id == year_id,
        TeachingService.import_report_id.in_(report_ids))).rowcount or 0
    option_groups = select(Group.id).where(
        Group.establishment_id == establishment_id, Group.school_year_id == year_id,
        Group.kind == GroupKind.OPTION, Group.import_report_id.in_(report_ids))
    session.execute(delete(GroupMembership).where(GroupMembership.group_id.in_(option_groups)))
    counts["groupes"] = session.execute(delete(Group).where(
        Group.id.in_(option_groups.scalar_subquery()))).rowcount or 0
    created: set[int] = set()
    for text in session.scalars(select(TimetableImport.alternation_ids).where(
            TimetableImport.establishment_id == establishment_id,
            TimetableImport.school_year_id == year_id)):
        created.update(json.loads(text or "[]"))
    if created:
        still_used = set(session.scalars(select(Course.alternation_id).where(
            *scope, Course.alternation_id.in_(created))))
        removable = sorted(created - still_used)
        counts["alternances"] = 0
        if removable:
            counts["alternances"] = session.execute(delete(Alternation).where(
                Alternation.id.in_(removable))).rowcount or 0
    else:
        counts["alternances"] = 0
    return counts


def _write_alternations(session: Session, establishment_id: int, year_id: int,
                        plans: dict[str, _AlternationPlan]) -> tuple[dict[str, int], list[int]]:
    """Create the planned alternations (reusing identical ones); return ids by key."""
    existing = session.execute(select(Alternation.id, Alternation.name, Alternation.weeks).where(
        Alternation.establishment_id == establishment_id,
        Alternation.school_year_id == year_id)).all()
    by_name = {row.name: row for row in existing}
    ids: dict[str, int] = {}
    created: list[int] = []
    for key, plan in plans.items():
        same = by_name.get(plan.name)
        if same is not None and same.weeks == plan.weeks_text:
            ids[key] = same.id
            continue
        name = plan.name if same is None else f"{plan.name[:14]} (EDT)"
        (new_id,) = _insert_returning(session, Alternation, [{
            "establishment_id": establishment_id, "school_year_id": year_id, "name": name,
            "weeks": plan.weeks_text}])
        ids[key] = new_id
        created.append(new_id)
    return ids, created


def _write(session: Session, planner: _Planner, establishment_id: int, year_id: int,
           report_id: int) -> tuple[dict[str, int], list[int]]:
    plan = planner.plan
    group_keys = list(plan.groups)
    group_ids = dict(zip(group_keys, _insert_returning(session, Group, [
        {"establishment_id": establishment_id, "school_year_id": year_id,
         "kind": GroupKind.OPTION, "code": plan.groups[key]["code"],
         "name": plan.groups[key]["name"], "lifetime": GroupLifetime.SCHOOL_YEAR,
         "import_report_id": report_id} for key in group_keys]), strict=True))
    members = [{"group_id": group_ids[key], "person_id": person_id}
               for key in group_keys for person_id in sorted(plan.members.get(key, ()))]
    _insert(session, GroupMembership, members)
    alternation_ids, created_alternations = _write_alternations(
        session, establishment_id, year_id, plan.alternations)
    service_keys = list(plan.services)
    service_ids = dict(zip(service_keys, _insert_returning(session, TeachingService, [
        {"establishment_id": establishment_id, "school_year_id": year_id,
         "subject_id": key[0], "teacher_id": key[1], "class_id": key[2],
         "group_id": group_ids[key[3]] if key[3] is not None else None,
         "weekly_hours": round(plan.services[key], 2), "import_report_id": report_id}
        for key in service_keys]), strict=True))
    seen: set[tuple[Any, ...]] = set()
    course_rows = []
    for service, weekday, starts_at, ends_at, room, alternation in plan.courses:
        row_key = (service, weekday, starts_at, ends_at, room, alternation)
        if row_key in seen:
            continue
        seen.add(row_key)
        course_rows.append({
            "establishment_id": establishment_id, "school_year_id": year_id,
            "teaching_service_id": service_ids[service], "weekday": weekday,
            "starts_at": starts_at, "ends_at": ends_at, "room": room,
            "alternation_id": alternation_ids.get(alternation) if alternation else None,
            "import_report_id": report_id})
    _insert(session, Course, course_rows)
    counts = {"groupes": len(group_ids), "membres": len(members),
              "alternances": len(created_alternations), "services": len(service_ids),
              "cours": len(course_rows)}
    return counts, created_alternations


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------


def project_partner_key(session: Session, project_id: int) -> PartnerKey | None:
    """The partner key configured for a project, read from its file.

    Raises:
        TimetableUsageError: the configured file cannot be read.
    """
    row = session.scalar(select(TimetablePartnerKey).where(
        TimetablePartnerKey.project_id == project_id))
    if row is None:
        return None
    try:
        data = Path(row.key_path).read_bytes()
    except OSError as error:
        raise TimetableUsageError(
            f"La clé partenaire EDT configurée pour le projet est illisible : {row.key_path} "
            f"({os_error_text(error)}).") from error
    return PartnerKey(row.partner_name, data, f"clé du projet, {row.key_path}")


def _target_year(session: Session) -> tuple[SchoolYear, SchoolYear | None, int]:
    year_n = current_school_year(session)
    return year_n, following_school_year(session, year_n), year_n.start_year + 1


def _check_guards(session: Session, establishment: Establishment, year_n_id: int) -> bool:
    """Both import guards; return True when an override let the import through."""
    what = "import d'emploi du temps"
    if check_timetable_or_csv_import_allowed(session, establishment.id, year_n_id, what):
        return True
    return check_step_order(session, establishment.id, year_n_id, Step.INIT_SCHOOL_LIFE)


def has_manual_import(session: Session, establishment_id: int, year_id: int) -> bool:
    """True when a manual timetable import of the year succeeded for the establishment."""
    return session.scalar(select(func.count()).select_from(TimetableImport).where(
        TimetableImport.establishment_id == establishment_id,
        TimetableImport.school_year_id == year_id,
        TimetableImport.mode == MODE_MANUAL)) > 0


def _audit_refusal(database: Database, establishment_id: int | None, details: dict[str, Any]
                   ) -> None:
    with database.session() as session:
        audit(session, "import-timetable", "refused", establishment_id=establishment_id,
              step=Step.INIT_SCHOOL_LIFE.value, details=details)


def import_timetable(database: Database, path: Path | str, uai: str, *,
                     declared_version: str | None = None, mode: str = MODE_MANUAL,
                     dry_run: bool = False, partner_key: PartnerKey | None = None,
                     now: dt.datetime | None = None,
                     on_inspected: Callable[[TimetableInspection], None] | None = None
                     ) -> TimetableImportResult:
    """Read, judge and apply a timetable export to an establishment's year N+1.

    Args:
        database: the open database.
        path: the export (file or folder).
        uai: the establishment (``--uai``).
        declared_version: the operator's version declaration (``--version``).
        mode: :data:`MODE_MANUAL` or :data:`MODE_AUTOMATIC` (drop folder).
        dry_run: do everything, report, roll back.
        partner_key: the key for an encrypted EDT export (default: the project's).
        now: the time recorded (tests).
        on_inspected: called with the inspection (format, header, version verdict)
            before anything is written, refused or not.

    Returns:
        What was created, replaced and rejected.

    Raises:
        TimetableUsageError: unknown establishment, no current school year.
        TimetableFileError: the export is refused whole (nothing changed).
        GuardRefused: a change-over guard refused the import (nothing changed).
    """

    moment = now or utcnow()
    session = database.sessions()
    establishment_id: int | None = None
    try:
        invalid_uai: InvalidUAIError | None = None
        try:
            wanted_uai = validate_uai(uai)
        except InvalidUAIError as error:
            # Still read the file: its header is worth showing before the usage error.
            wanted_uai, invalid_uai = uai.strip().upper(), error
        try:
            year_n, year_next, next_start = _target_year(session)
        except NoCurrentYearError as error:
            raise TimetableUsageError(str(error)) from error
        try:
            establishment = session.get(Establishment,
                                        establishment_by_uai(session, wanted_uai).id)
        except UnknownEstablishmentError:
            establishment = None  # refused below, once the file's header is shown
        project = session.get(Project, establishment.project_id) if establishment else None
        establishment_id = establishment.id if establishment else None
        key = partner_key or (project_partner_key(session, project.id) if project else None)
        # The declaration row is read once for the whole import: the inspection judges the
        # file against it, and a successful import records from it.
        declared = declaration_row(session, establishment.id) if establishment else None
        inspection = inspect_timetable(
            path, expected_uai=wanted_uai, expected_year=next_start,
            declared_version=declared_version,
            newest_enabled=bool(project and project.newest_timetable_versions_enabled),
            partner_key=key, project_code=project.code if project else "",
            establishment_version=declaration_version(declared))
        if on_inspected is not None:
            on_inspected(inspection)
        refusal = inspection.refusal
        # A version that depends on the establishment's declaration is judged once the
        # establishment (and, in automatic mode, its right to automatic imports) is known.
        if refusal is not None and refusal.code not in DECLARATION_CODES:
            raise refusal
        if invalid_uai is not None:
            raise TimetableUsageError(str(invalid_uai)) from invalid_uai
        if establishment is None or project is None:
            raise TimetableUsageError(f"Établissement inconnu : {wanted_uai}.")
        if mode == MODE_AUTOMATIC:
            if not project.automatic_timetable_import:
                raise TimetableFileError("EDT-IMPORT-AUTO-INACTIF", inspection.path.name,
                                         value=project.code)
            if year_next is None or not has_manual_import(session, establishment.id,
                                                          year_next.id):
                raise TimetableFileError("EDT-PREMIER-IMPORT-MANUEL", inspection.path.name,
                                         value=f"{next_start}-{next_start + 1}")
        if refusal is not None:
            raise refusal
        overridden = _check_guards(session, establishment, year_n.id)
        if year_next is None:
            raise TimetableUsageError(
                f"L'année {next_start}-{next_start + 1} n'existe pas encore : l'étape 4 "
                "(initialisation de l'annuaire) la crée.")
        result = _apply(session, establishment, year_next, inspection, mode=mode,
                        moment=moment, overridden=overridden)
        _remember_version(session, establishment.id, declared, inspection, mode, moment)
        result.dry_run = dry_run
        if dry_run:
            session.rollback()
            result.import_id = result.reject_import_id = result.import_report_id = None
        else:
            session.commit()
        return result
    except (TimetableFileError, GuardRefused) as refusal:
        session.rollback()
        if not dry_run:
            details: dict[str, Any] = {"source": str(path), "uai": uai, "mode": mode,
                                       "code": refusal.code, "message": refusal.message}
            if isinstance(refusal, TimetableFileError):
                details.update({"file": refusal.file, "line": refusal.line})
            _audit_refusal(database, establishment_id, details)
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _refuse_without_courses(planner: _Planner, file: str) -> None:
    """All or nothing: an export none of whose courses can be imported writes nothing.

    A services-only export (no course at all) is not concerned.

    Raises:
        TimetableFileError: ``EDT-AUCUN-COURS``, with the main causes.
    """
    courses = planner.records()["cours"]
    if planner.courses_imported or (not courses["file"] and planner.services_imported):
        return
    causes = Counter[str]()
    for reject in planner.rejects.items.values():
        if reject.courses and severity_of(reject.code).value == "erreur":
            causes[reject.code] += reject.courses
    detail = ("causes : " + ", ".join(f"{code} ×{n}" for code, n in causes.most_common(4))
              if causes else "l'export ne contient aucun cours")
    raise TimetableFileError("EDT-AUCUN-COURS", file, value=str(courses["file"]), detail=detail)


def _remember_version(session: Session, establishment_id: int,
                      declared: TimetableDeclaration | None, inspection: TimetableInspection,
                      mode: str, moment: dt.datetime) -> None:
    """Record the establishment's declaration (``declared``, its row as the import read
    it) from a successful import: the version read in the file, or the one the first
    manual import declared (seed §2.2.3 policy)."""
    verdict = inspection.verdict
    version = verdict.version if verdict is not None else None
    if version is None:
        return
    if version.source == "fichier":
        record_declaration(session, establishment_id, version, SOURCE_FILE, moment,
                           row=declared)
    elif mode == MODE_MANUAL and declared is None:
        record_declaration(session, establishment_id, version, SOURCE_FIRST_IMPORT, moment,
                           row=None)


def _apply(session: Session, establishment: Establishment, year: SchoolYear,
           inspection: TimetableInspection, *, mode: str,
           moment: dt.datetime, overridden: bool) -> TimetableImportResult:
    data = inspection.data
    assert data is not None and inspection.verdict is not None
    verdict = inspection.verdict
    result = TimetableImportResult(establishment.uai, establishment.name, year.label, mode,
                                   inspection, overridden=overridden)
    directory = _load_directory(session, establishment.id, year.id)
    planner = _Planner(data, directory, year.label)
    planner.run()
    file_names = ", ".join(f.name for f in inspection.files)
    first_file = inspection.files[0].name if inspection.files else inspection.path.name
    _refuse_without_courses(planner, first_file)
    if verdict.code and verdict.accepted:
        label = verdict.version.label if verdict.version else (
            "du logiciel" if not inspection.product else inspection.product)
        detail = {Outcome.UNDECLARED: "--version EDT 2020" if inspection.product != "UDT"
                  else "--version 26",
                  Outcome.UNSUPPORTED: supported_summary(verdict.product)}.get(verdict.outcome, "")
        planner.rejects.add(OUTCOME_CODES[verdict.outcome], Place(first_file), "", "Version",
                            value=label, detail=detail)
    if verdict.mismatch and verdict.version and verdict.declared:
        planner.rejects.add("EDT-VERSION-DECLAREE-DIFFERENTE", Place(first_file), "", "Version",
                            value=verdict.version.label, detail=verdict.declared.label)
    replaced = _previous_timetable_rows(session, establishment.id, year.id)
    report = ImportReport(
        establishment_id=establishment.id, school_year_id=year.id,
        source=ImportSource.TIMETABLE, source_name=file_names[:500], started_at=moment,
        finished_at=moment, created_count=0, updated_count=0, rejected_count=0, summary="")
    session.add(report)
    session.flush()
    created, created_alternations = _write(session, planner, establishment.id, year.id,
                                           report.id)
    reject_rows = planner.rejects.rows({"uai": establishment.uai})
    by_code = Counter(row["code"] for row in reject_rows)
    severities = Counter(row["severity"] for row in reject_rows)
    records = planner.records()
    rejected_records = sum(kind["not_imported"] for kind in records.values())
    operator = operator_identity()["os_user"]
    version_label = verdict.version.label if verdict.version else ""
    # Records of the file: imported + not imported = records in the file.
    report.created_count = sum(kind["imported"] for kind in records.values())
    report.rejected_count = rejected_records
    report.summary = (f"Import {mode} de l'emploi du temps ({inspection.format_label}"
                      f"{', ' + version_label if version_label else ''}) : "
                      f"{created['services']} service(s), {created['cours']} cours, "
                      f"{created['groupes']} groupe(s) d'options ; "
                      f"{sum(by_code.values())} rejet(s).")
    header = json.loads(json.dumps(inspection.header, default=str))
    summary = {"uai": establishment.uai, "format": inspection.format,
               "verdict": verdict.to_dict(), "created": created, "replaced": replaced,
               "rejects": dict(by_code), "records": records}
    store = AafImport(
        started_at=moment, finished_at=moment, source=str(inspection.path),
        source_kind=inspection.format, delivery_type=version_label[:20], delivery_date=None,
        mode=REJECT_STORE_MODE, operator=operator,
        record_count=sum(kind["file"] for kind in records.values()),
        error_count=severities.get("erreur", 0), warning_count=severities.get("avertissement", 0),
        info_count=severities.get("information", 0),
        header=json.dumps(header, ensure_ascii=False, sort_keys=True),
        summary=json.dumps(summary, ensure_ascii=False, sort_keys=True),
        unknown_attributes="{}")
    session.add(store)
    session.flush()
    _insert(session, AafImportFile, [{
        "import_id": store.id, "position": position, "name": info.name[:500],
        "path": info.path, "kind": info.kind[:20], "delivery_type": "",
        "delivery_date": None, "chunk": 0, "declared_encoding": "", "size": info.size,
        "sha256": info.sha256, "record_count": 0, "version_af": "", "version_sdet": "",
        "academy_code": "", "degree": "", "generated_on": "", "comments": ""}
        for position, info in enumerate(inspection.files)])
    _insert(session, AafReject, [{**row, "import_id": store.id,
                                  "establishment_id": establishment.id,
                                  "uai": establishment.uai} for row in reject_rows])
    timetable_import = TimetableImport(
        establishment_id=establishment.id, school_year_id=year.id, import_report_id=report.id,
        reject_import_id=store.id, started_at=moment, finished_at=moment, mode=mode,
        format=inspection.format, source=str(inspection.path), file_names=file_names,
        sha256=inspection.sha256, version_label=version_label,
        version_source=verdict.version.source if verdict.version else "",
        policy_outcome=verdict.outcome.value, operator=operator,
        header=json.dumps(header, ensure_ascii=False, sort_keys=True),
        counts=json.dumps({"created": created, "replaced": replaced, "rejects": dict(by_code),
                           "records": records},
                          ensure_ascii=False, sort_keys=True),
        alternation_ids=json.dumps(created_alternations))
    session.add(timetable_import)
    session.flush()
    audit(session, "import-timetable", "done", establishment_id=establishment.id,
          step=Step.INIT_SCHOOL_LIFE.value, override=overridden,
          details={"source": str(inspection.path), "mode": mode, "format": inspection.format,
                   "version": verdict.to_dict(), "created": created, "replaced": replaced,
                   "rejects": dict(by_code)})
    result.import_id = timetable_import.id
    result.reject_import_id = store.id
    result.import_report_id = report.id
    result.created = created
    result.replaced = replaced
    result.rejects_by_code = dict(sorted(by_code.items()))
    result.records_rejected = rejected_records
    result.records = records
    return result
