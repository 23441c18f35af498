"""Fill a database and a storage root with the year-N content of a sample académie.

Rows are built per establishment and written with set-based ``INSERT`` statements
(executemany, explicit ids), parents before children, in batches; files are written
under the storage root with their size and SHA-256 recorded. Everything derives from
the roster and per-establishment random streams, so the same seed gives the same data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import random
import struct
import unicodedata
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select, text

from yearchange_tui.ent.base import Base
from yearchange_tui.ent.csvfile import csv_bytes
from yearchange_tui.ent.models import (
    ArchiveRubric,
    AttendanceKind,
    ClassRole,
    EstablishmentKind,
    FolderKind,
    GroupKind,
    GroupLifetime,
    ImportSource,
    MessageArchivePolicy,
    PeriodKind,
    PersonKind,
    Profile,
    Project,
    RubricKind,
    RubricRole,
    TrashReason,
)
from yearchange_tui.sample.attachments import DEFAULT_PROFILE, make_attachment
from yearchange_tui.sample.roster import (
    COLLEGE,
    MEFS,
    SUBJECT_BY_CODE,
    SUBJECTS,
    EstablishmentHead,
    SampleAcademy,
    SampleEstablishment,
)

UTC = dt.UTC
BATCH_ROWS = 20_000

_FUNCTION_PROFILES = {
    "ENS": Profile.TEACHER, "DIR": Profile.DIRECTION, "EDU": Profile.EDUCATION,
    "AED": Profile.EDUCATION, "DOC": Profile.DOCUMENTALIST,
}


class SampleDatabaseNotEmptyError(Exception):
    """The target database already holds a project (French message)."""


def refuse_filled_database(connection: Connection) -> None:
    """Refuse a database that already holds a project (a sample goes into an empty one).

    Raises:
        SampleDatabaseNotEmptyError: when the database already holds a project.
    """
    if connection.execute(select(func.count()).select_from(Project.__table__)).scalar():
        raise SampleDatabaseNotEmptyError(
            "La base contient déjà un projet : l'académie d'exemple se construit dans une base vide.")


@dataclass
class FillStats:
    """What the filler wrote."""

    rows_per_table: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    files: int = 0
    bytes: int = 0


class _RowWriter:
    """Buffers rows per table and writes them in dependency order, with explicit ids."""

    def __init__(self, connection: Connection, storage_root: Path) -> None:
        self.connection = connection
        self.storage_root = storage_root
        self.buffers: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.next_ids: dict[str, int] = defaultdict(lambda: 1)
        self.pending = 0
        self.stats = FillStats()

    def add(self, table: str, **row: Any) -> int:
        """Queue a row for ``table`` and return its id."""
        row_id = self.next_ids[table]
        self.next_ids[table] = row_id + 1
        row["id"] = row_id
        self.buffers[table].append(row)
        self.pending += 1
        if self.pending >= BATCH_ROWS:
            self.flush()
        return row_id

    def flush(self) -> None:
        """Write every buffered row, parents first."""
        for table in Base.metadata.sorted_tables:
            rows = self.buffers.pop(table.name, None)
            if rows:
                self.connection.execute(insert(table), rows)
                self.stats.rows_per_table[table.name] += len(rows)
        self.pending = 0

    def store_file(self, establishment_id: int | None, area: str, name: str, content: bytes,
                   media_type: str, created_at: dt.datetime) -> int:
        """Write a file under the storage root and queue its ``stored_files`` row."""
        file_id = self.next_ids["stored_files"]
        relative = Path(area) / f"{file_id:08d}-{name}"
        path = self.storage_root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        self.stats.files += 1
        self.stats.bytes += len(content)
        return self.add("stored_files", establishment_id=establishment_id,
                        relative_path=relative.as_posix(), original_name=name,
                        media_type=media_type, size=len(content),
                        sha256=hashlib.sha256(content).hexdigest(), created_at=created_at)


def _ascii(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if c.isalnum() and ord(c) < 128).lower()


def _png(rng: random.Random) -> bytes:
    """A small valid 8×8 PNG of one random colour (a trombinoscope placeholder)."""
    colour = bytes(rng.randrange(256) for _ in range(3))
    raw = b"".join(b"\x00" + colour * 8 for _ in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _zip_bytes(entries: dict[str, str]) -> bytes:
    """A deterministic ZIP (fixed entry dates) of text entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content.encode("utf-8"))
    return buffer.getvalue()


def _school_days(year: int) -> list[dt.date]:
    """Weekdays of school year ``year``-``year+1`` outside the main holidays."""
    holidays = [
        (dt.date(year, 10, 18), dt.date(year, 11, 3)),
        (dt.date(year, 12, 20), dt.date(year + 1, 1, 5)),
        (dt.date(year + 1, 2, 14), dt.date(year + 1, 3, 2)),
        (dt.date(year + 1, 4, 11), dt.date(year + 1, 4, 27)),
    ]
    day = dt.date(year, 9, 1)
    days: list[dt.date] = []
    while day <= dt.date(year + 1, 7, 3):
        if day.weekday() < 5 and not any(start <= day <= end for start, end in holidays):
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


_SESSION_TOPICS = (
    "Correction de l'exercice", "Introduction du chapitre", "Travail en groupes",
    "Évaluation", "Étude de documents", "Exposés des élèves", "Révisions", "Cours magistral",
    "Travaux pratiques", "Lecture suivie",
)
_HOMEWORK = (
    "Apprendre la leçon", "Exercices 3 à 7 page 112", "Préparer l'exposé",
    "Lire le chapitre suivant", "Rédiger le compte rendu du TP", "Réviser pour l'évaluation",
)
_SANCTIONS = ("Avertissement", "Blâme", "Mesure de responsabilisation", "Exclusion temporaire de la classe")
_PUNISHMENTS = ("Retenue", "Devoir supplémentaire", "Excuse orale", "Observation écrite")
_SKILLS = (
    ("D1.1", "Comprendre, s'exprimer en utilisant la langue française à l'oral et à l'écrit"),
    ("D1.2", "Comprendre, s'exprimer en utilisant une langue étrangère"),
    ("D1.3", "Comprendre, s'exprimer en utilisant les langages mathématiques"),
    ("D2", "Les méthodes et outils pour apprendre"),
    ("D3", "La formation de la personne et du citoyen"),
    ("D4", "Les systèmes naturels et les systèmes techniques"),
    ("D5", "Les représentations du monde et l'activité humaine"),
)


class _EstablishmentFiller:
    """Writes the year-N content of one establishment."""

    def __init__(self, writer: _RowWriter, academy: SampleAcademy, sample: SampleEstablishment,
                 ids: dict[str, Any], attachments: str = DEFAULT_PROFILE) -> None:
        self.w = writer
        self.academy = academy
        self.e = sample
        self.ids = ids
        self.rng = random.Random(f"yearchange-fill:{academy.seed}:{sample.index}")
        self.year = academy.year
        self.year_id = ids["year_n"]
        self.days = _school_days(self.year)
        self.created = _at(dt.date(self.year, 9, 1), 8)
        self.area = f"{sample.uai}"
        self.attachment_profile = attachments
        # Attachments draw from their own stream: the rest of the sample does not depend
        # on the profile.
        self.attachment_rng = random.Random(f"yearchange-attachments:{academy.seed}:{sample.index}")

    # -- helpers -------------------------------------------------------------------------

    def day(self) -> dt.date:
        return self.days[self.rng.randrange(len(self.days))]

    def text_file(self, area: str, name: str, body: str, when: dt.datetime) -> int:
        return self.w.store_file(self.est_id, f"{self.area}/{area}", name,
                                 body.encode("utf-8"), "text/plain; charset=utf-8", when)

    def attachment_file(self, area: str, stem: str, when: dt.datetime, *,
                        classeur: bool = False) -> int:
        """Store a generated attachment (type and size drawn from the profile's mix)."""
        made = make_attachment(self.attachment_rng, stem, profile=self.attachment_profile,
                               classeur=classeur)
        return self.w.store_file(self.est_id, f"{self.area}/{area}", made.name, made.content,
                                 made.media_type, when)

    # -- the content ---------------------------------------------------------------------

    def fill(self) -> None:
        self.establishment()
        self.people()
        self.classes_and_groups()
        self.school_life_frame()
        self.rubrics()
        self.trash()
        self.textbook()
        self.binder()
        self.school_life_records()
        self.messaging()
        self.directory()
        self.imports()

    def establishment(self) -> None:
        e = self.e
        self.est_id = self.w.add(
            "establishments", project_id=self.ids["project"], uai=e.uai, aaf_jointure=e.jointure,
            name=e.name, kind=EstablishmentKind(e.kind).value, town=e.town,
            postal_code=e.postal_code, closing_date=e.closing_date,
            access_block_starts_on=None, access_block_ends_on=None)

    def people(self) -> None:
        e, w = self.e, self.w
        self.student_ids: dict[str, int] = {}
        self.students_by_class: dict[str, list[int]] = defaultdict(list)
        self.relative_ids: dict[str, int] = {}
        self.staff_ids: dict[str, int] = {}
        self.teacher_ids: list[int] = []
        self.direction_ids: list[int] = []
        self.education_ids: list[int] = []
        self.archive_policy: dict[int, str] = {}
        students = [s for s in e.students if s.class_code_n is not None]

        def person(kind: PersonKind, jointure: str, title: str, last: str, first: str,
                   birth: dt.date | None, email: str, ine: str | None = None) -> int:
            policy = (MessageArchivePolicy.UNLIMITED if self.rng.random() < 0.3
                      else MessageArchivePolicy.SCHOOL_YEAR).value
            person_id = w.add("people", establishment_id=self.est_id, kind=kind.value,
                              aaf_jointure=jointure, ine=ine,
                              login=f"{_ascii(first)[:1]}.{_ascii(last)}.{jointure}",
                              title=title, last_name=last, first_name=first, birth_date=birth,
                              email=email, message_archive_policy=policy, disappeared_at=None)
            self.archive_policy[person_id] = policy
            return person_id

        for s in students:
            student_id = person(PersonKind.STUDENT, s.jointure, s.title, s.last_name,
                                s.first_name, s.birth_date, "", s.ine)
            self.student_ids[s.jointure] = student_id
            self.students_by_class[s.class_code_n].append(student_id)  # type: ignore[index]
            w.add("person_profiles", person_id=student_id, establishment_id=self.est_id,
                  profile=Profile.STUDENT.value, function_code="ELE")
        relatives = {r.jointure: r for r in e.relatives}
        for s in students:
            for link in s.relatives:
                relative_id = self.relative_ids.get(link.relative_jointure)
                if relative_id is None:
                    r = relatives[link.relative_jointure]
                    relative_id = person(PersonKind.RELATIVE, r.jointure, r.title, r.last_name,
                                         r.first_name, None, r.email)
                    self.relative_ids[r.jointure] = relative_id
                    w.add("person_profiles", person_id=relative_id,
                          establishment_id=self.est_id, profile=Profile.RELATIVE.value,
                          function_code="")
                w.add("student_relatives", student_id=self.student_ids[s.jointure],
                      relative_id=relative_id, link_code=link.link_code,
                      legal_responsibility=link.legal, financial=link.financial,
                      contact=link.contact)
        for p in e.personnel:
            kind = PersonKind.TEACHER if p.is_teacher else PersonKind.STAFF
            person_id = person(kind, p.jointure, p.title, p.last_name, p.first_name,
                               p.birth_date, p.email)
            self.staff_ids[p.jointure] = person_id
            profile = _FUNCTION_PROFILES.get(p.function_code, Profile.NON_TEACHING)
            w.add("person_profiles", person_id=person_id, establishment_id=self.est_id,
                  profile=profile.value, function_code=p.function_code)
            if p.is_teacher:
                self.teacher_ids.append(person_id)
            elif p.function_code == "DIR":
                self.direction_ids.append(person_id)
            elif p.function_code == "EDU":
                self.education_ids.append(person_id)

    def classes_and_groups(self) -> None:
        e, w = self.e, self.w
        self.class_ids: dict[str, int] = {}
        self.class_teachers: dict[str, set[int]] = defaultdict(set)
        self.timetable_report_id = w.add(
            "import_reports", establishment_id=self.est_id, school_year_id=self.year_id,
            source=ImportSource.TIMETABLE.value,
            source_name=f"sts_emp_{e.uai}_{self.year}.xml",
            started_at=_at(dt.date(self.year, 8, 30), 10),
            finished_at=_at(dt.date(self.year, 8, 30), 10, 2),
            created_count=len(e.services_n), updated_count=0, rejected_count=0,
            summary="Import manuel de l'emploi du temps")
        for c in e.classes_n:
            class_id = w.add("classes", establishment_id=self.est_id, school_year_id=self.year_id,
                             code=c.code, label=c.label, mef_code=c.level.mef_code)
            self.class_ids[c.code] = class_id
            for student_id in self.students_by_class[c.code]:
                w.add("class_memberships", class_id=class_id, person_id=student_id,
                      role=ClassRole.STUDENT.value, entered_on=dt.date(self.year, 9, 1))
        for service in e.services_n:
            if service.class_code is not None:
                self.class_teachers[service.class_code].add(self.staff_ids[service.teacher_jointure])
        for code, teachers in self.class_teachers.items():
            for teacher_id in sorted(teachers):
                w.add("class_memberships", class_id=self.class_ids[code], person_id=teacher_id,
                      role=ClassRole.TEACHER.value, entered_on=dt.date(self.year, 9, 1))

        # The "administrateurs" group: direction and one teacher.
        self.admins_group_id = w.add(
            "groups", establishment_id=self.est_id, school_year_id=None,
            kind=GroupKind.ADMINS.value, code="ADMINS", name="administrateurs",
            lifetime=GroupLifetime.UNLIMITED.value, import_report_id=None)
        self.admin_ids = self.direction_ids + self.teacher_ids[:1]
        for person_id in self.admin_ids:
            w.add("group_memberships", group_id=self.admins_group_id, person_id=person_id)

        # Option groups created by the timetable import.
        self.option_group_ids: dict[str, int] = {}
        members: dict[str, list[int]] = defaultdict(list)
        for s in e.students:
            for code in s.option_group_codes_n:
                if s.jointure in self.student_ids:
                    members[code].append(self.student_ids[s.jointure])
        for group in e.option_groups_n:
            group_id = w.add("groups", establishment_id=self.est_id,
                             school_year_id=self.year_id, kind=GroupKind.OPTION.value,
                             code=group.code, name=group.label,
                             lifetime=GroupLifetime.SCHOOL_YEAR.value,
                             import_report_id=self.timetable_report_id)
            self.option_group_ids[group.code] = group_id
            for student_id in members[group.code]:
                w.add("group_memberships", group_id=group_id, person_id=student_id)

        # Free groups of both lifetimes, with managers; two serve teaching services.
        free_names = ("Club théâtre", "Chorale", "Association sportive", "Délégués de classe",
                      "Club échecs", "Atelier robotique", "Soutien mathématiques",
                      "Aide aux devoirs", "Journal du collège", "Éco-délégués", "Voyage Espagne",
                      "Conseil de la vie collégienne")
        self.free_group_ids: list[int] = []
        self.year_limited_free_group_ids: list[int] = []
        all_students = list(self.student_ids.values())
        for position, name in enumerate(free_names):
            lifetime = GroupLifetime.SCHOOL_YEAR if position % 3 != 2 else GroupLifetime.UNLIMITED
            group_id = w.add("groups", establishment_id=self.est_id, school_year_id=self.year_id,
                             kind=GroupKind.FREE.value, code="", name=name,
                             lifetime=lifetime.value, import_report_id=None)
            self.free_group_ids.append(group_id)
            if lifetime is GroupLifetime.SCHOOL_YEAR:
                self.year_limited_free_group_ids.append(group_id)
            managers = self.rng.sample(self.teacher_ids, 1 + (position % 4 == 0))
            if position in (0, 1) and self.teacher_ids[1] not in managers:
                managers.append(self.teacher_ids[1])  # one manager of several groups
            for manager_id in managers:
                w.add("group_managers", group_id=group_id, person_id=manager_id)
            for student_id in self.rng.sample(all_students, min(len(all_students), 12)):
                w.add("group_memberships", group_id=group_id, person_id=student_id)
        # "Soutien mathématiques" and "Aide aux devoirs" are used by teaching services.
        self.service_free_group_ids = [self.free_group_ids[6], self.free_group_ids[7]]

    def school_life_frame(self) -> None:
        w, y = self.w, self.year
        self.period_ids: list[int] = []
        if self.e.kind == COLLEGE:
            bounds = [(dt.date(y, 9, 1), dt.date(y, 11, 30)), (dt.date(y, 12, 1), dt.date(y + 1, 3, 8)),
                      (dt.date(y + 1, 3, 9), dt.date(y + 1, 7, 4))]
            kind, names = PeriodKind.TRIMESTER, ("1er trimestre", "2e trimestre", "3e trimestre")
        else:
            bounds = [(dt.date(y, 9, 1), dt.date(y + 1, 1, 24)), (dt.date(y + 1, 1, 25), dt.date(y + 1, 7, 11))]
            kind, names = PeriodKind.SEMESTER, ("1er semestre", "2nd semestre")
        for position, ((start, end), name) in enumerate(zip(bounds, names), start=1):
            self.period_ids.append(w.add(
                "periods", establishment_id=self.est_id, school_year_id=self.year_id,
                kind=kind.value, position=position, name=name, starts_on=start, ends_on=end))
        self.period_bounds = bounds
        w.add("opening_dates", establishment_id=self.est_id, school_year_id=self.year_id,
              opens_on=dt.date(y, 9, 1), closes_on=self.e.closing_date)
        weeks_a = ",".join(str(week) for week in range(36, 53, 2))
        weeks_b = ",".join(str(week) for week in range(37, 53, 2))
        self.alternation_ids = [
            w.add("alternations", establishment_id=self.est_id, school_year_id=self.year_id,
                  name="Semaine A", weeks=weeks_a),
            w.add("alternations", establishment_id=self.est_id, school_year_id=self.year_id,
                  name="Semaine B", weeks=weeks_b),
        ]
        # Teaching services and weekly courses from the timetable.
        self.services: list[tuple[int, str, int | None, int]] = []  # (id, subject, class, teacher)
        self.course_ids: list[int] = []
        self.course_class: dict[int, str] = {}
        slot = 0
        services = list(self.e.services_n)
        for position, group_id in enumerate(self.service_free_group_ids):
            teacher_id = self.teacher_ids[position]
            service_id = w.add(
                "teaching_services", establishment_id=self.est_id, school_year_id=self.year_id,
                subject_id=self.ids["subjects"]["061300"], teacher_id=teacher_id, class_id=None,
                group_id=group_id, weekly_hours=1.0, import_report_id=None)
            self.services.append((service_id, "061300", None, teacher_id))
        for service in services:
            teacher_id = self.staff_ids[service.teacher_jointure]
            class_id = self.class_ids.get(service.class_code) if service.class_code else None
            group_id = self.option_group_ids.get(service.group_code) if service.group_code else None
            service_id = w.add(
                "teaching_services", establishment_id=self.est_id, school_year_id=self.year_id,
                subject_id=self.ids["subjects"][service.subject_code], teacher_id=teacher_id,
                class_id=class_id, group_id=group_id, weekly_hours=float(service.weekly_hours),
                import_report_id=self.timetable_report_id)
            self.services.append((service_id, service.subject_code, class_id, teacher_id))
            for hour in range(service.weekly_hours):
                slot += 1
                alternation = (self.alternation_ids[hour % 2]
                               if service.weekly_hours == 3 and hour == 2 else None)
                start_hour = 8 + slot % 8
                course_id = w.add(
                    "courses", establishment_id=self.est_id, school_year_id=self.year_id,
                    teaching_service_id=service_id, weekday=1 + slot % 5,
                    starts_at=dt.time(start_hour, 0), ends_at=dt.time(start_hour, 55),
                    room=f"S{100 + slot % 40}", alternation_id=alternation,
                    import_report_id=self.timetable_report_id)
                self.course_ids.append(course_id)
                if service.class_code:
                    self.course_class[course_id] = service.class_code
        for _ in range(30):
            w.add("course_replacements", establishment_id=self.est_id, school_year_id=self.year_id,
                  course_id=self.rng.choice(self.course_ids), replaced_on=self.day(),
                  replacement_teacher_id=self.rng.choice(self.teacher_ids),
                  cancelled=self.rng.random() < 0.3)
        self.head_teacher: dict[str, int] = {}
        for p in self.e.personnel:
            if p.head_of_class_n and p.head_of_class_n in self.class_ids:
                teacher_id = self.staff_ids[p.jointure]
                self.head_teacher[p.head_of_class_n] = teacher_id
                w.add("head_teachers", establishment_id=self.est_id, school_year_id=self.year_id,
                      class_id=self.class_ids[p.head_of_class_n], teacher_id=teacher_id)

    def rubrics(self) -> None:
        w, rng = self.w, self.rng
        self.rubric_ids_n: list[int] = []
        created = self.created

        def rubric(kind: RubricKind, name: str, *, year_id: int | None, class_id: int | None = None,
                   archive: ArchiveRubric | None = None, owner: int | None = None,
                   when: dt.datetime = created) -> int:
            return w.add("rubrics", establishment_id=self.est_id, school_year_id=year_id,
                         kind=kind.value, name=name, class_id=class_id,
                         archive_kind=archive.value if archive else None, owner_id=owner,
                         created_at=when)

        def right(rubric_id: int, role: RubricRole, *, person: int | None = None,
                  group: int | None = None) -> None:
            w.add("rubric_rights", rubric_id=rubric_id, person_id=person, group_id=group,
                  role=role.value)

        def document(rubric_id: int, title: str, body: str, author: int | None) -> None:
            when = _at(self.day(), 12)
            file_id = self.text_file("documents", f"{_ascii(title)[:40]}.txt", body, when)
            w.add("documents", rubric_id=rubric_id, stored_file_id=file_id, title=title,
                  description="", author_id=author, created_at=when)

        # Class rubrics of year N: every role held by users and by groups.
        for c in self.e.classes_n:
            class_id = self.class_ids[c.code]
            rubric_id = rubric(RubricKind.CLASS, f"Classe {c.code} {self.academy.year_label}",
                               year_id=self.year_id, class_id=class_id)
            self.rubric_ids_n.append(rubric_id)
            right(rubric_id, RubricRole.MANAGER, group=self.admins_group_id)
            if c.code in self.head_teacher:
                right(rubric_id, RubricRole.MANAGER, person=self.head_teacher[c.code])
            teachers = sorted(self.class_teachers.get(c.code, set())
                              - {self.head_teacher.get(c.code)})
            for position, teacher_id in enumerate(teachers):
                right(rubric_id, RubricRole.PUBLISHER if position == 0 else RubricRole.WRITER,
                      person=teacher_id)
            if self.education_ids:
                right(rubric_id, RubricRole.MODERATOR, person=self.education_ids[0])
            for student_id in self.students_by_class[c.code][:3]:
                right(rubric_id, RubricRole.VISITOR, person=student_id)
            right(rubric_id, RubricRole.VISITOR, group=self.free_group_ids[3])
            for number in range(rng.randrange(2, 5)):
                document(rubric_id, f"Document {number + 1} de la classe {c.code}",
                         f"Informations pour la classe {c.code}.\n", self.head_teacher.get(c.code))
        # Temporary rubrics.
        self.temporary_rubric_ids: list[int] = []
        for name in ("Voyage à Londres", "Sortie au musée", "Semaine des langues",
                     "Préparation du brevet" if self.e.kind == COLLEGE else "Préparation du bac"):
            rubric_id = rubric(RubricKind.TEMPORARY, f"{name} {self.academy.year_label}",
                               year_id=self.year_id)
            self.temporary_rubric_ids.append(rubric_id)
            manager = rng.choice(self.teacher_ids)
            right(rubric_id, RubricRole.MANAGER, person=manager)
            right(rubric_id, RubricRole.MANAGER, group=self.free_group_ids[0])
            right(rubric_id, RubricRole.WRITER, person=rng.choice(self.teacher_ids))
            right(rubric_id, RubricRole.PUBLISHER, group=self.free_group_ids[1])
            right(rubric_id, RubricRole.MODERATOR, group=self.free_group_ids[2])
            right(rubric_id, RubricRole.VISITOR, group=self.free_group_ids[4])
            right(rubric_id, RubricRole.WRITER, group=self.free_group_ids[5])
            document(rubric_id, f"Programme — {name}", f"Programme de l'activité {name}.\n",
                     manager)
        # Regular rubrics (untouched by the change-over).
        for name in ("Vie de l'établissement", "CDI", "Actualités"):
            rubric_id = rubric(RubricKind.REGULAR, name, year_id=None)
            right(rubric_id, RubricRole.MANAGER, group=self.admins_group_id)
            right(rubric_id, RubricRole.VISITOR, person=rng.choice(self.teacher_ids))
            document(rubric_id, f"Accueil — {name}", "Bienvenue.\n", self.direction_ids[0])
        # Archive rubrics (step 2 targets), kept from year to year.
        self.archive_rubric_ids: dict[ArchiveRubric, int] = {}
        for archive in ArchiveRubric:
            rubric_id = rubric(RubricKind.ARCHIVE, archive.value, year_id=None, archive=archive)
            self.archive_rubric_ids[archive] = rubric_id
            right(rubric_id, RubricRole.MANAGER, group=self.admins_group_id)
        previous = f"{self.year - 1}-{self.year}"
        archive_when = _at(dt.date(self.year, 7, 10), 3)
        content = _zip_bytes({"index.html": f"<html><body><h1>Cahier de textes {previous}"
                                            "</h1></body></html>"})
        file_id = self.w.store_file(self.est_id, f"{self.area}/archives",
                                    f"cahier-de-textes-{previous}.zip", content,
                                    "application/zip", archive_when)
        w.add("documents", rubric_id=self.archive_rubric_ids[ArchiveRubric.TEXTBOOKS],
              stored_file_id=file_id, title=f"Cahiers de textes {previous}", description="",
              author_id=None, created_at=archive_when)
        # Porte-documents of students and teachers, with a few documents.
        self.document_folder: dict[int, int] = {}
        for person_id in list(self.student_ids.values()) + self.teacher_ids:
            rubric_id = rubric(RubricKind.DOCUMENT_FOLDER, "Porte-documents", year_id=None,
                               owner=person_id)
            self.document_folder[person_id] = rubric_id
            right(rubric_id, RubricRole.MANAGER, person=person_id)
            if rng.random() < 0.05:
                document(rubric_id, "Mes notes", "Notes personnelles.\n", person_id)

    def trash(self) -> None:
        """Rubrics archived last year (N-1) and rubrics trashed by users during year N."""
        w, rng = self.w, self.rng
        previous = f"{self.year - 1}-{self.year}"
        archived_at = _at(dt.date(self.year, 7, 10), 3)
        for c in self.e.classes_n[: max(1, len(self.e.classes_n) - 2)]:
            rubric_id = w.add("rubrics", establishment_id=self.est_id,
                              school_year_id=self.ids["year_previous"], kind=RubricKind.CLASS.value,
                              name=f"Classe {c.code} {previous}", class_id=None, archive_kind=None,
                              owner_id=None, created_at=_at(dt.date(self.year - 1, 9, 1), 8))
            w.add("rubric_rights", rubric_id=rubric_id, person_id=None,
                  group_id=self.admins_group_id, role=RubricRole.MANAGER.value)
            for teacher_id in rng.sample(self.teacher_ids, 3):
                w.add("rubric_rights", rubric_id=rubric_id, person_id=teacher_id, group_id=None,
                      role=RubricRole.VISITOR.value)
            file_id = self.text_file("documents", "bilan.txt", f"Bilan {c.code} {previous}\n",
                                     archived_at)
            w.add("documents", rubric_id=rubric_id, stored_file_id=file_id,
                  title=f"Bilan {c.code}", description="", author_id=None, created_at=archived_at)
            w.add("trash_entries", establishment_id=self.est_id, rubric_id=rubric_id,
                  reason=TrashReason.YEAR_ARCHIVE.value, trashed_at=archived_at,
                  trashed_by_id=None, school_year_id=self.ids["year_previous"])
        # Trashed by users during year N; the last two a few days before the closing date.
        dates = [_at(self.day(), 16) for _ in range(4)]
        dates += [_at(self.e.closing_date - dt.timedelta(days=3), 17),
                  _at(self.e.closing_date - dt.timedelta(days=1), 11)]
        for position, trashed_at in enumerate(dates):
            owner = rng.choice(self.teacher_ids)
            rubric_id = w.add("rubrics", establishment_id=self.est_id,
                              school_year_id=self.year_id, kind=RubricKind.REGULAR.value,
                              name=f"Rubrique supprimée {position + 1}", class_id=None,
                              archive_kind=None, owner_id=None, created_at=self.created)
            w.add("rubric_rights", rubric_id=rubric_id, person_id=owner, group_id=None,
                  role=RubricRole.MANAGER.value)
            file_id = self.text_file("documents", "brouillon.txt", "Brouillon.\n", trashed_at)
            w.add("documents", rubric_id=rubric_id, stored_file_id=file_id, title="Brouillon",
                  description="", author_id=owner, created_at=trashed_at)
            w.add("trash_entries", establishment_id=self.est_id, rubric_id=rubric_id,
                  reason=TrashReason.USER.value, trashed_at=trashed_at, trashed_by_id=owner,
                  school_year_id=self.year_id)

    def textbook(self) -> None:
        w, rng = self.w, self.rng
        subject_ids = self.ids["subjects"]
        weeks: dict[tuple[int, int], dt.date] = {}
        for day in self.days:
            weeks.setdefault(day.isocalendar()[:2], day)
        mondays = list(weeks.values())
        for service_id, subject_code, class_id, teacher_id in self.services:
            if class_id is None:
                continue
            for week_start in mondays:
                held_on = week_start + dt.timedelta(days=rng.randrange(5))
                topic = rng.choice(_SESSION_TOPICS)
                session_id = w.add(
                    "textbook_sessions", establishment_id=self.est_id, school_year_id=self.year_id,
                    class_id=class_id, group_id=None, subject_id=subject_ids[subject_code],
                    teacher_id=teacher_id, held_on=held_on, title=topic,
                    content=f"{topic} — {SUBJECT_BY_CODE[subject_code].label.title()}.")
                if rng.random() < 0.02:
                    file_id = self.attachment_file("textbook", "support-de-cours",
                                                   _at(held_on, 18))
                    w.add("textbook_attachments", session_id=session_id, homework_id=None,
                          stored_file_id=file_id)
                if rng.random() < 0.3:
                    homework_id = w.add(
                        "homeworks", establishment_id=self.est_id, school_year_id=self.year_id,
                        session_id=session_id, class_id=class_id,
                        subject_id=subject_ids[subject_code], teacher_id=teacher_id,
                        given_on=held_on, due_on=held_on + dt.timedelta(days=7),
                        description=rng.choice(_HOMEWORK))
                    if rng.random() < 0.03:
                        file_id = self.attachment_file("textbook", "consignes",
                                                       _at(held_on, 18))
                        w.add("textbook_attachments", session_id=None, homework_id=homework_id,
                              stored_file_id=file_id)

    def binder(self) -> None:
        w, rng = self.w, self.rng
        for c in self.e.classes_n:
            class_id = self.class_ids[c.code]
            teachers = sorted(self.class_teachers.get(c.code, set())) or self.teacher_ids[:1]
            for number in range(8):
                day = self.day()
                teacher_id = rng.choice(teachers)
                activity_id = w.add(
                    "binder_activities", establishment_id=self.est_id, school_year_id=self.year_id,
                    teacher_id=teacher_id, subject_id=None,
                    title=f"Activité {number + 1} — {c.code}",
                    instructions="Lire le document joint et répondre aux questions.",
                    created_at=_at(day, 9))
                file_id = self.attachment_file("binder", f"activite-{number + 1}", _at(day, 9),
                                               classeur=True)
                w.add("activity_attachments", activity_id=activity_id, stored_file_id=file_id,
                      title=f"Fiche activité {number + 1}")
                for student_id in self.students_by_class[c.code]:
                    w.add("activity_distributions", activity_id=activity_id,
                          student_id=student_id, class_id=class_id,
                          distributed_at=_at(day, 10), due_on=day + dt.timedelta(days=7))

    def school_life_records(self) -> None:
        w, rng = self.w, self.rng
        est, year = self.est_id, self.year_id
        subject_ids = self.ids["subjects"]
        # Roll calls and attendance.
        roll_calls: dict[str, list[tuple[int, dt.date]]] = defaultdict(list)
        for c in self.e.classes_n:
            for day in self.days[::3]:
                roll_call_id = w.add("roll_calls", establishment_id=est, school_year_id=year,
                                     class_id=self.class_ids[c.code], course_id=None,
                                     teacher_id=self.head_teacher.get(c.code),
                                     taken_at=_at(day, 8, 5))
                roll_calls[c.code].append((roll_call_id, day))
        kinds = [AttendanceKind.ABSENCE] * 6 + [AttendanceKind.LATE] * 3 + [AttendanceKind.DEPARTURE]
        for c in self.e.classes_n:
            for student_id in self.students_by_class[c.code]:
                for _ in range(rng.randrange(8, 22)):
                    roll_call_id, day = rng.choice(roll_calls[c.code])
                    kind = rng.choice(kinds)
                    start = _at(day, 8) if kind is not AttendanceKind.DEPARTURE else _at(day, 15)
                    length = {AttendanceKind.ABSENCE: dt.timedelta(hours=rng.choice((1, 4, 8))),
                              AttendanceKind.LATE: dt.timedelta(minutes=rng.randrange(5, 30)),
                              AttendanceKind.DEPARTURE: dt.timedelta(hours=2)}[kind]
                    w.add("attendance_events", establishment_id=est, school_year_id=year,
                          student_id=student_id, roll_call_id=roll_call_id, kind=kind.value,
                          starts_at=start, ends_at=start + length,
                          justified=rng.random() < 0.7,
                          reason=rng.choice(("Maladie", "Rendez-vous médical", "Transport", "")))
        # Assessments and grades: two per subject and period per class.
        for c in self.e.classes_n:
            class_id = self.class_ids[c.code]
            students = self.students_by_class[c.code]
            class_services = [s for s in self.services if s[2] == class_id]
            for period_id, (start, end) in zip(self.period_ids, self.period_bounds):
                span = (end - start).days
                for _service_id, subject_code, _class_id, teacher_id in class_services:
                    for number in (1, 2):
                        assessment_id = w.add(
                            "assessments", establishment_id=est, school_year_id=year,
                            class_id=class_id, subject_id=subject_ids[subject_code],
                            teacher_id=teacher_id, period_id=period_id,
                            title=f"Évaluation {number}",
                            given_on=start + dt.timedelta(days=rng.randrange(span)),
                            coefficient=rng.choice((1.0, 1.0, 2.0)), max_score=20.0)
                        for student_id in students:
                            absent = rng.random() < 0.04
                            w.add("grades", assessment_id=assessment_id, student_id=student_id,
                                  score=None if absent else round(rng.triangular(2, 20, 13), 1),
                                  status="Abs" if absent else "")
        # Skills, report cards and their lines, end-of-cycle reports.
        template_id = w.add("report_card_templates", establishment_id=est, school_year_id=year,
                            name="Modèle standard", layout="portrait;moyennes;appréciations")
        w.add("report_card_templates", establishment_id=est, school_year_id=year,
              name="Modèle conseil de classe", layout="paysage;compétences")
        for c in self.e.classes_n:
            class_id = self.class_ids[c.code]
            class_subjects = sorted({s[1] for s in self.services if s[2] == class_id})
            for student_id in self.students_by_class[c.code]:
                for period_id in self.period_ids:
                    for domain, skill in rng.sample(_SKILLS, 3):
                        w.add("skill_assessments", establishment_id=est, school_year_id=year,
                              student_id=student_id, period_id=period_id,
                              teacher_id=self.head_teacher.get(c.code), domain=domain,
                              skill=skill, level=rng.randrange(1, 5))
                    card_id = w.add(
                        "report_cards", establishment_id=est, school_year_id=year,
                        student_id=student_id, class_id=class_id, period_id=period_id,
                        template_id=template_id, general_average=round(rng.uniform(7, 18), 2),
                        general_appraisal=rng.choice(("Bon trimestre.", "Des efforts à poursuivre.",
                                                      "Ensemble satisfaisant.", "Travail sérieux.")))
                    for subject_code in class_subjects:
                        w.add("report_card_lines", report_card_id=card_id,
                              subject_id=subject_ids[subject_code],
                              average=round(rng.uniform(5, 19), 2), appraisal="")
            if c.level.key in ("6", "3"):
                for student_id in self.students_by_class[c.code]:
                    levels = ";".join(f"{domain}={rng.randrange(1, 5)}" for domain, _ in _SKILLS)
                    w.add("end_of_cycle_reports", establishment_id=est, school_year_id=year,
                          student_id=student_id, cycle=3 if c.level.key == "6" else 4,
                          domain_levels=levels, appraisal="Maîtrise satisfaisante du socle.")
            for period_id, (_start, end) in zip(self.period_ids, self.period_bounds):
                w.add("class_councils", establishment_id=est, school_year_id=year,
                      class_id=class_id, period_id=period_id,
                      held_at=_at(end - dt.timedelta(days=rng.randrange(3, 10)), 17),
                      notes="Conseil de classe tenu.")
        # Sanctions, punishments, EPI, mail merges.
        students = list(self.student_ids.values())
        for _ in range(rng.randrange(6, 14)):
            w.add("sanctions", establishment_id=est, school_year_id=year,
                  student_id=rng.choice(students), kind=rng.choice(_SANCTIONS),
                  decided_on=self.day(), reason="Manquement au règlement intérieur",
                  decided_by_id=self.direction_ids[0])
        for _ in range(rng.randrange(40, 80)):
            w.add("punishments", establishment_id=est, school_year_id=year,
                  student_id=rng.choice(students), kind=rng.choice(_PUNISHMENTS),
                  given_on=self.day(), reason="Travail non fait",
                  given_by_id=rng.choice(self.teacher_ids))
        epi_classes = [c for c in self.e.classes_n if c.level.key in ("5", "4", "3", "2")][:4]
        for position, c in enumerate(epi_classes):
            epi_id = w.add("epis", establishment_id=est, school_year_id=year,
                           class_id=self.class_ids[c.code],
                           title=f"EPI {position + 1} — {c.code}",
                           theme=rng.choice(("Transition écologique", "Corps, santé, bien-être",
                                             "Culture et création artistiques",
                                             "Monde économique et professionnel")),
                           subjects="SVT, Technologie")
            members = self.students_by_class[c.code][:10] + self.teacher_ids[position:position + 2]
            for person_id in members:
                w.add("epi_members", epi_id=epi_id, person_id=person_id)
        for name in ("Convocation réunion parents", "Autorisation de sortie", "Lettre de rentrée"):
            w.add("mail_merges", establishment_id=est, school_year_id=year, name=name,
                  template=f"Madame, Monsieur,\n{name}.\n", recipient_count=len(students),
                  author_id=self.direction_ids[0])

    def messaging(self) -> None:
        w, rng = self.w, self.rng
        owners = list(self.student_ids.values()) + list(self.staff_ids.values())
        folders: dict[int, dict[FolderKind, int]] = {}
        for owner_id in owners:
            folders[owner_id] = {
                kind: w.add("message_folders", owner_id=owner_id, kind=kind.value, name=name)
                for kind, name in ((FolderKind.INBOX, "Boîte de réception"),
                                   (FolderKind.SENT, "Envoyés"),
                                   (FolderKind.ARCHIVED, "Archivés"))
            }
        senders = self.teacher_ids + self.direction_ids
        for number in range(120):
            sender = rng.choice(senders)
            sent_at = _at(self.day(), 13, rng.randrange(60))
            message_id = w.add("messages", establishment_id=self.est_id, sender_id=sender,
                               subject=f"Information n°{number + 1}",
                               body="Bonjour,\nVeuillez trouver ci-dessous les informations.\n",
                               sent_at=sent_at, is_system=False)
            w.add("message_copies", message_id=message_id, owner_id=sender,
                  folder_id=folders[sender][FolderKind.SENT], is_read=True)
            for recipient in rng.sample(owners, 6):
                if recipient == sender:
                    continue
                folder = FolderKind.ARCHIVED if rng.random() < 0.35 else FolderKind.INBOX
                w.add("message_copies", message_id=message_id, owner_id=recipient,
                      folder_id=folders[recipient][folder], is_read=rng.random() < 0.7)
            if number % 10 == 0:
                file_id = self.text_file("messages", "piece-jointe.txt", "Pièce jointe.\n", sent_at)
                w.add("message_attachments", message_id=message_id, stored_file_id=file_id)

    def directory(self) -> None:
        w, rng = self.w, self.rng
        for owner_id in self.teacher_ids + self.direction_ids:
            for number in range(rng.randrange(2, 6)):
                w.add("address_book_entries", establishment_id=self.est_id, owner_id=owner_id,
                      display_name=f"Contact {number + 1}",
                      email=f"contact{number + 1}@exemple.fr", phone="0400000000")
        for student_id in self.student_ids.values():
            file_id = self.w.store_file(self.est_id, f"{self.area}/trombinoscope",
                                        f"{student_id}.png", _png(rng), "image/png", self.created)
            w.add("photos", establishment_id=self.est_id, school_year_id=self.year_id,
                  person_id=student_id, stored_file_id=file_id)

    def imports(self) -> None:
        w, e = self.w, self.e
        day = dt.date(self.year, 8, 20)
        w.add("import_reports", establishment_id=self.est_id, school_year_id=self.year_id,
              source=ImportSource.AAF.value,
              source_name=f"ENT_{self.academy.academy_code}_Complet_{day:%Y%m%d}",
              started_at=_at(day, 6), finished_at=_at(day, 6, 20),
              created_count=len(self.student_ids), updated_count=len(self.staff_ids),
              rejected_count=2, summary="Import AAF complet d'initialisation")
        w.add("import_reports", establishment_id=self.est_id, school_year_id=self.year_id,
              source=ImportSource.CSV.value, source_name="comptes-supplementaires.csv",
              started_at=_at(day + dt.timedelta(days=20), 9),
              finished_at=_at(day + dt.timedelta(days=20), 9, 1),
              created_count=3, updated_count=0, rejected_count=0, summary="Import CSV")
        for profile in ("eleves", "parents"):
            ids = self.student_ids if profile == "eleves" else self.relative_ids
            credentials = csv_bytes(("login", "mot de passe provisoire"), (
                (jointure, f"{random.Random(jointure).randrange(10**8):08d}")
                for jointure in sorted(ids)[:50]))
            file_id = self.w.store_file(self.est_id, f"{self.area}/identifiants",
                                        f"identifiants-{profile}-{e.uai}.csv", credentials,
                                        "text/csv", _at(day, 7))
            w.add("credentials_files", establishment_id=self.est_id, school_year_id=self.year_id,
                  stored_file_id=file_id, profile=profile, created_at=_at(day, 7))


def _reset_sequences(connection: Connection) -> None:
    """After inserts with explicit ids, move PostgreSQL sequences past the largest id."""
    if connection.dialect.name != "postgresql":
        return
    for table in Base.metadata.sorted_tables:
        if "id" in table.c:
            connection.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"))


def _write_header(writer: _RowWriter, academy: SampleAcademy) -> dict[str, Any]:
    """The project, the school years, subjects and MEFs; returns their ids."""
    y = academy.year
    ids: dict[str, Any] = {}
    ids["project"] = writer.add(
        "projects", code=academy.project_code, name=f"ENT de l'académie de {academy.academy_name.title()}",
        ent_name="ENT Lyon", academy_code=academy.academy_code,
        group_lifetime_url_template="https://ent.exemple.fr/groupes/{group_id}/duree-de-vie",
        newest_timetable_versions_enabled=False, automatic_timetable_import=True,
        access_block_starts_on=dt.date(y + 1, 8, 20), access_block_ends_on=dt.date(y + 1, 9, 1),
        access_block_message=(
            "Madame, monsieur, bonjour,\n\nVotre espace {ent} sera indisponible du {debut} "
            "au {fin} inclus, pour permettre le paramétrage des services et des "
            f"comptes utilisateurs pour l'année {y + 1}-{y + 2}.\n\nCordialement,\n\nL'Equipe ENT."),
        access_block_profiles="National_ELV,National_TUT", access_block_override_allowed=True,
        deactivation_notices_suspended_until=dt.date(y + 1, 9, 15), free_group_summary=True)
    for key, start in (("year_previous", y - 1), ("year_n", y), ("year_next", y + 1)):
        ids[key] = writer.add("school_years", start_year=start, label=f"{start}-{start + 1}",
                              starts_on=dt.date(start, 9, 1), ends_on=dt.date(start + 1, 8, 31),
                              is_current=start == y)
    ids["subjects"] = {s.code: writer.add("subjects", code=s.code, label=s.label,
                                          short_label=s.short) for s in SUBJECTS}
    for mef in MEFS:
        writer.add("mefs", code=mef.code, label=mef.label, level_label=mef.level_label)
    return ids


def fill_console_database(connection: Connection, academy: SampleAcademy,
                          heads: Sequence[EstablishmentHead]) -> dict[str, int]:
    """Write the project, the school years and the ``establishments`` rows of ``heads``
    (:func:`~yearchange_tui.sample.roster.establishment_heads`) into an empty database,
    set-based: what the console reads of an académie, without its people (a console at
    national size is measured in seconds, not hours).

    Returns:
        Establishment id by UAI.

    Raises:
        SampleDatabaseNotEmptyError: when the database already holds a project.
    """
    refuse_filled_database(connection)
    writer = _RowWriter(connection, Path("."))
    ids = _write_header(writer, academy)
    by_uai = {head.uai: writer.add(
        "establishments", project_id=ids["project"], uai=head.uai, aaf_jointure=head.jointure,
        name=head.name, kind=EstablishmentKind(head.kind).value, town=head.town,
        postal_code=head.postal_code, closing_date=head.closing_date,
        access_block_starts_on=None, access_block_ends_on=None) for head in heads}
    writer.flush()
    _reset_sequences(connection)
    return by_uai


def fill_database(connection: Connection, storage_root: Path, academy: SampleAcademy,
                  progress: Callable[[str], None] | None = None,
                  attachments: str = DEFAULT_PROFILE) -> FillStats:
    """Write the year-N content of ``academy`` into an empty database and storage root.

    Args:
        connection: a connection inside a transaction (committed by the caller).
        storage_root: folder where documents and attachments are written.
        academy: the roster.
        progress: receives one French line per establishment.
        attachments: the attachments' size profile, ``small`` or ``realistic``
            (:mod:`yearchange_tui.sample.attachments`).

    Raises:
        SampleDatabaseNotEmptyError: when the database already holds a project.
    """
    refuse_filled_database(connection)
    storage_root.mkdir(parents=True, exist_ok=True)
    writer = _RowWriter(connection, storage_root)
    ids = _write_header(writer, academy)
    for sample in academy.establishments:
        _EstablishmentFiller(writer, academy, sample, ids, attachments).fill()
        writer.flush()
        if progress is not None:
            progress(f"{sample.uai} {sample.name} : écrit.")
    writer.flush()
    _reset_sequences(connection)
    return writer.stats
