"""Contents of the step-2 archives, built entry by entry from streamed queries.

- the cahier de textes of a class: a static site (``index.html``, a page per session,
  homework and distributed activity, the attachments) readable offline;
- the classeur of a student: every activity distributed to them, with attachments;
- school life: CSV in French spreadsheet conventions (UTF-8 with BOM, ``;``, decimal
  comma, dd/mm/yyyy) and printable HTML for report cards and end-of-cycle reports.

Each builder takes a :class:`~yearchange_tui.changeover.effects.ZipBuilder`; the same
builder feeds the real archive and the dry run's counting sink.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, case, func, select
from sqlalchemy.orm import aliased

from yearchange_tui.changeover.effects import ZipBuilder
from yearchange_tui.changeover.zipwriter import (
    STREAM_THRESHOLD,
    Member,
    deflate,
    is_measuring,
    pack,
)
from yearchange_tui.ent.csvfile import csv_bytes, decimal_comma
from yearchange_tui.ent.models import (
    ActivityAttachment,
    ActivityDistribution,
    Assessment,
    AttendanceEvent,
    AttendanceKind,
    BinderActivity,
    ClassMembership,
    ClassRole,
    EndOfCycleReport,
    Epi,
    EpiMember,
    Grade,
    Homework,
    Period,
    Person,
    Punishment,
    ReportCard,
    ReportCardLine,
    RollCall,
    Sanction,
    SchoolClass,
    SkillAssessment,
    StoredFile,
    Subject,
    TextbookAttachment,
    TextbookSession,
)

STREAM_ROWS = 2_000
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #111; }
h1, h2 { font-weight: normal; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #999; padding: 0.2em 0.5em; text-align: left; }
.page { page-break-after: always; }
@media print { a { color: inherit; text-decoration: none; } }
"""


def safe_name(value: str) -> str:
    """A file-name-safe form of ``value`` (ASCII letters, digits, ``._-``)."""
    return _UNSAFE.sub("-", value).strip("-") or "x"


_cursor_names = itertools.count(1)
_compiled_statements: dict[tuple[Any, str], Any] = {}


def _stream(connection: Connection, statement: Select[Any] | Callable[[], Select[Any]],
            *, cache: str | None = None, **values: Any) -> Iterator[tuple[Any, ...]]:
    """Rows of ``statement`` as the driver returns them, fetched in batches.

    The archives read millions of rows and only format them as text: going through the
    driver's cursor (inside the connection's transaction) rather than SQLAlchemy's result
    rows halves the cost per row. Values are what the driver gives — callers select
    dates already formatted (:func:`_sql_date`) so both databases give the same text.
    On PostgreSQL the cursor is a server-side one, so memory does not grow with the rows.

    Queries run once per class pass a ``cache`` name, build the statement in a callable
    with ``bindparam`` placeholders and give their ``values``: compiled once per process.
    """
    dialect = connection.dialect
    compiled = _compiled_statements.get((dialect, cache)) if cache else None
    if compiled is None:
        built = statement() if callable(statement) else statement
        compiled = built.compile(dialect=dialect)
        if cache:
            _compiled_statements[(dialect, cache)] = compiled
    params = compiled.construct_params(values or None)
    for name, bind in compiled.binds.items():
        processor = bind.type.bind_processor(dialect)
        if processor is not None and name in params:
            params[name] = processor(params[name])
    arguments: Any = (tuple(params[name] for name in compiled.positiontup or ())
                      if compiled.positional else params)
    driver_connection = connection.connection.dbapi_connection
    assert driver_connection is not None
    if dialect.name == "postgresql":
        cursor = driver_connection.cursor(name=f"archive_rows_{next(_cursor_names)}")
    else:
        cursor = driver_connection.cursor()
    try:
        cursor.execute(compiled.string, arguments)
        while rows := cursor.fetchmany(STREAM_ROWS):
            yield from rows
    finally:
        cursor.close()


def _page(title: str, body: str, stylesheet: str | None = None) -> str:
    """An HTML page; ``stylesheet`` links the archive's ``style.css`` instead of inlining it."""
    style = (f'<link rel="stylesheet" href="{stylesheet}">' if stylesheet
             else f"<style>{_STYLE}</style>")
    return (f'<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title>{style}</head><body>\n{body}\n</body></html>\n")


def printable_page(title: str, body: str) -> str:
    """A self-contained printable HTML page (French, the archives' inline style); ``title``
    is escaped here, ``body`` must already be escaped HTML."""
    return _page(title, body)


@functools.cache
def _style_member(measured: bool) -> Member:
    """The stylesheet, deflated (or measured, for the dry run) once per process."""
    return deflate(_STYLE.encode("utf-8"))


def _add_stylesheet(builder: ZipBuilder) -> None:
    builder.add_member("style.css", _style_member(is_measuring()))


def _date(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return ""
    return f"{value.day:02d}/{value.month:02d}/{value.year}"


_PG_FORMAT = {"%d": "DD", "%m": "MM", "%Y": "YYYY", "%H": "HH24", "%M": "MI"}


def _sql_format(connection: Connection, column: Any, pattern: str) -> Any:
    """A date or time column formatted by the database with a ``strftime`` ``pattern``
    (``%d %m %Y %H %M`` only): no per-row parsing in Python, same text on both databases."""
    if connection.dialect.name == "postgresql":
        for python, postgresql in _PG_FORMAT.items():
            pattern = pattern.replace(python, postgresql)
        return func.to_char(column, pattern)
    return func.strftime(pattern, column)


def _sql_date(connection: Connection, column: Any) -> Any:
    """A DATE column formatted dd/mm/yyyy by the database."""
    return _sql_format(connection, column, "%d/%m/%Y")


@functools.lru_cache(maxsize=4096)
def _decimal_comma(value: float) -> str:
    return decimal_comma(value)


def _number(value: float | None) -> str:
    """A number in French notation (decimal comma); grades repeat a few values."""
    return "" if value is None else _decimal_comma(value)


def _person_name(last: str | None, first: str | None) -> str:
    return f"{last or ''} {first or ''}".strip()


def _attachment_name(file_id: int, original_name: str) -> str:
    return f"pieces-jointes/{file_id}-{safe_name(original_name)}"


# -- cahier de textes of one class -------------------------------------------------------

class TextbookBatch:
    """What the cahiers de textes of a batch of classes share, loaded set-wise once.

    Attachments of their sessions and homework, the classeur activities distributed to
    them (pages and attachments deflated once for the batch) and how many sessions and
    homework each class has.
    """

    def __init__(self, connection: Connection, storage_root: Path,
                 class_ids: Sequence[int]) -> None:
        self.attachments: dict[int, dict[tuple[str, int], list[tuple[int, str, str]]]] = {
            class_id: defaultdict(list) for class_id in class_ids}
        self.activities: dict[int, list[int]] = {class_id: [] for class_id in class_ids}
        self.sessions: dict[int, int] = dict.fromkeys(class_ids, 0)
        self.homework: dict[int, int] = dict.fromkeys(class_ids, 0)
        wanted = list(class_ids)
        # Two indexed queries (by session, by homework) rather than one OR over outer
        # joins, which SQLite answers with a scan of every attachment of the académie.
        owners: tuple[tuple[str, Any, Any], ...] = (
            ("session", TextbookSession, TextbookAttachment.session_id),
            ("homework", Homework, TextbookAttachment.homework_id))
        for kind, owner, owner_id_column in owners:
            for class_id, owner_id, file_id, name, path in connection.execute(
                    select(owner.class_id, owner_id_column, StoredFile.id,
                           StoredFile.original_name, StoredFile.relative_path)
                    .join(StoredFile, StoredFile.id == TextbookAttachment.stored_file_id)
                    .join(owner, owner.id == owner_id_column)
                    .where(owner.class_id.in_(wanted)).order_by(StoredFile.id)):
                self.attachments[class_id][(kind, owner_id)].append((file_id, name, path))
        for class_id, activity_id in connection.execute(
                select(ActivityDistribution.class_id, ActivityDistribution.activity_id)
                .where(ActivityDistribution.class_id.in_(wanted)).distinct()):
            self.activities[class_id].append(activity_id)
        for model, counts in ((TextbookSession, self.sessions), (Homework, self.homework)):
            counts.update(connection.execute(
                select(model.class_id, func.count()).where(model.class_id.in_(wanted))
                .group_by(model.class_id)).all())
        self.catalog = ActivityCatalog(connection, FileCache(storage_root))
        self.catalog.load(activity_id for ids in self.activities.values() for activity_id in ids)

    def is_empty(self, class_id: int) -> bool:
        """Whether the class has neither session nor homework."""
        return not self.sessions.get(class_id) and not self.homework.get(class_id)


def build_textbook_archive(connection: Connection, storage_root: Path, *, establishment: str,
                           year_label: str, class_id: int, class_code: str,
                           builder: ZipBuilder, batch: TextbookBatch) -> None:
    """The static cahier de textes of a class: sessions, homework, activities, attachments.

    ``batch`` holds what the classes archived together share (loaded once for them).
    """
    def sessions_query() -> Select[Any]:
        teacher = aliased(Person)
        return (select(TextbookSession.id, _sql_date(connection, TextbookSession.held_on),
                       TextbookSession.title, TextbookSession.content, Subject.label,
                       teacher.last_name, teacher.first_name)
                .outerjoin(Subject, Subject.id == TextbookSession.subject_id)
                .outerjoin(teacher, teacher.id == TextbookSession.teacher_id)
                .where(TextbookSession.class_id == bindparam("class_id"))
                .order_by(TextbookSession.held_on, TextbookSession.id))

    sessions = _stream(connection, sessions_query, cache="textbook-sessions",
                       class_id=class_id)
    attachments = batch.attachments.get(class_id, {})
    copied: set[str] = set()  # attachment entries already in this archive (one per file)

    def attach(key: tuple[str, int]) -> str:
        links = []
        for file_id, name, path in attachments.get(key, []):
            target = _attachment_name(file_id, name)
            if target not in copied:
                builder.add_file(target, storage_root / path)
                copied.add(target)
            links.append(f'<li><a href="../{html.escape(target)}">{html.escape(name)}</a></li>')
        return f"<h2>Pièces jointes</h2><ul>{''.join(links)}</ul>" if links else ""

    index_sessions: list[str] = []
    for number, (session_id, held_on, title, content, subject, last, first) in enumerate(
            sessions, start=1):
        page = f"seances/{number:05d}.html"
        body = (f"<h1>{html.escape(title)}</h1><p>{held_on} — "
                f"{html.escape(subject or '')} — {html.escape(_person_name(last, first))}</p>"
                f"<div>{html.escape(content or '')}</div>{attach(('session', session_id))}"
                '<p><a href="../index.html">Retour au sommaire</a></p>')
        builder.add_text(page, _page(f"{class_code} — {title}", body, "../style.css"))
        index_sessions.append(f'<tr><td>{held_on}</td><td>{html.escape(subject or "")}'
                              f'</td><td><a href="{page}">{html.escape(title)}</a></td></tr>')

    homeworks = _stream(connection, lambda: select(
        Homework.id, _sql_date(connection, Homework.given_on),
        _sql_date(connection, Homework.due_on), Homework.description, Subject.label)
        .outerjoin(Subject, Subject.id == Homework.subject_id)
        .where(Homework.class_id == bindparam("class_id"))
        .order_by(Homework.due_on, Homework.id), cache="textbook-homework", class_id=class_id)
    index_homework: list[str] = []
    for number, (homework_id, given_on, due_on, description, subject) in enumerate(
            homeworks, start=1):
        page = f"travail-a-faire/{number:05d}.html"
        body = (f"<h1>Travail à faire pour le {due_on}</h1>"
                f"<p>Donné le {given_on} — {html.escape(subject or '')}</p>"
                f"<div>{html.escape(description)}</div>{attach(('homework', homework_id))}"
                '<p><a href="../index.html">Retour au sommaire</a></p>')
        builder.add_text(page, _page(f"{class_code} — travail à faire", body, "../style.css"))
        index_homework.append(f'<tr><td>{due_on}</td><td>{html.escape(subject or "")}'
                              f'</td><td><a href="{page}">{html.escape(description)}</a></td></tr>')

    index_activities = batch.catalog.write(builder, batch.activities.get(class_id, []), copied,
                                           prefix="activites")
    body = (f"<h1>Cahier de textes — classe {html.escape(class_code)}</h1>"
            f"<p>{html.escape(establishment)} — année scolaire {year_label}</p>"
            f"<h2>Séances ({len(index_sessions)})</h2><table><tr><th>Date</th><th>Matière</th>"
            f"<th>Séance</th></tr>{''.join(index_sessions)}</table>"
            f"<h2>Travail à faire ({len(index_homework)})</h2><table><tr><th>Pour le</th>"
            f"<th>Matière</th><th>Travail</th></tr>{''.join(index_homework)}</table>"
            f"<h2>Activités diffusées depuis le classeur ({len(index_activities)})</h2>"
            f"<table><tr><th>Date</th><th>Activité</th></tr>{''.join(index_activities)}</table>")
    _add_stylesheet(builder)
    builder.add_text("index.html", _page(f"Cahier de textes {class_code} {year_label}", body,
                                         "style.css"))


class FileCache:
    """Contents of stored files read once per phase (attachments repeat across archives)."""

    def __init__(self, storage_root: Path, limit_bytes: int = 64 << 20) -> None:
        self.storage_root = storage_root
        self.limit_bytes = limit_bytes
        self.used = 0
        self.members: dict[str, Member] = {}

    def add_to(self, builder: ZipBuilder, name: str, relative_path: str) -> None:
        """Add the stored file to the archive under ``name`` (compressed once per phase;
        stored when already compressed)."""
        member = self.members.get(relative_path)
        if member is None:
            path = self.storage_root / relative_path
            if path.stat().st_size > STREAM_THRESHOLD or self.used > self.limit_bytes:
                builder.add_file(name, path)
                return
            member = pack(name, path.read_bytes())
            self.members[relative_path] = member
            self.used += len(member.compressed)
        builder.add_member(name, member)


class ActivityCatalog:
    """Classeur activities with their pages and attachments, loaded set-wise once per phase."""

    def __init__(self, connection: Connection, files: FileCache) -> None:
        self.connection = connection
        self.files = files
        self.pages: dict[int, tuple[dt.datetime, str, Member, list[tuple[str, str]]]] = {}

    def load(self, activity_ids: Iterable[int]) -> None:
        """Fetch the activities (and their attachments) not loaded yet."""
        wanted = sorted(set(activity_ids) - set(self.pages))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            files: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
            for activity_id, file_id, name, path in self.connection.execute(select(
                    ActivityAttachment.activity_id, StoredFile.id, StoredFile.original_name,
                    StoredFile.relative_path)
                    .join(StoredFile, StoredFile.id == ActivityAttachment.stored_file_id)
                    .where(ActivityAttachment.activity_id.in_(chunk)).order_by(StoredFile.id)):
                files[activity_id].append((_attachment_name(file_id, name), name, path))
            for activity_id, title, instructions, created_at in self.connection.execute(select(
                    BinderActivity.id, BinderActivity.title, BinderActivity.instructions,
                    BinderActivity.created_at).where(BinderActivity.id.in_(chunk))):
                attached = files.get(activity_id, [])
                links = "".join(f'<li><a href="../{html.escape(target)}">{html.escape(name)}</a>'
                                "</li>" for target, name, _ in attached)
                body = (f"<h1>{html.escape(title)}</h1><p>Diffusée le {_date(created_at)}</p>"
                        f"<div>{html.escape(instructions or '')}</div>"
                        + (f"<h2>Pièces jointes</h2><ul>{links}</ul>" if links else "")
                        + '<p><a href="../index.html">Retour au sommaire</a></p>')
                self.pages[activity_id] = (created_at, title,
                                           deflate(_page(title, body, "../style.css").encode()),
                                           [(target, path) for target, _, path in attached])

    def write(self, builder: ZipBuilder, activity_ids: Iterable[int], copied: set[str],
              prefix: str = "activites") -> list[str]:
        """Add the pages and attachments of ``activity_ids``; return the index rows."""
        ordered = sorted(set(activity_ids), key=lambda a: (self.pages[a][0], a))
        rows = []
        for activity_id in ordered:
            created_at, title, page_member, attachments = self.pages[activity_id]
            for target, path in attachments:
                if target not in copied:
                    self.files.add_to(builder, target, path)
                    copied.add(target)
            page = f"{prefix}/{activity_id}.html"
            builder.add_member(page, page_member)
            rows.append(f'<tr><td>{_date(created_at)}</td><td><a href="{page}">'
                        f"{html.escape(title)}</a></td></tr>")
        return rows


def build_binder_archive(*, student_name: str, year_label: str, builder: ZipBuilder,
                         catalog: ActivityCatalog, activity_ids: Sequence[int]) -> None:
    """Every activity distributed to one student this year, with its attachments.

    The ``catalog`` is loaded for a whole batch of students: no query per student.
    """
    rows = catalog.write(builder, activity_ids, set())
    body = (f"<h1>Classeur pédagogique — {html.escape(student_name)}</h1>"
            f"<p>Année scolaire {year_label} — {len(rows)} activités diffusées</p>"
            f"<table><tr><th>Date</th><th>Activité</th></tr>{''.join(rows)}</table>")
    _add_stylesheet(builder)
    builder.add_text("index.html", _page(f"Classeur {student_name} {year_label}", body,
                                         "style.css"))


# -- school life --------------------------------------------------------------------------

def _scope(model: Any, establishment_id: int, school_year_id: int) -> Any:
    return and_(model.establishment_id == establishment_id,
                model.school_year_id == school_year_id)


@dataclass
class SchoolLife:
    """The establishment and year whose school life is archived, with what several
    archives need (its classes, each student's class) read once."""

    connection: Connection
    establishment_id: int
    school_year_id: int
    establishment: str = ""
    year_label: str = ""

    @property
    def where(self) -> tuple[Connection, int, int]:
        return self.connection, self.establishment_id, self.school_year_id

    @functools.cached_property
    def classes(self) -> list[tuple[int, str]]:
        """The classes of the year, by code."""
        return [(row[0], row[1]) for row in self.connection.execute(
            select(SchoolClass.id, SchoolClass.code).where(
                _scope(SchoolClass, self.establishment_id, self.school_year_id))
            .order_by(SchoolClass.code))]

    @functools.cached_property
    def student_classes(self) -> dict[int, str]:
        """Each student's class code."""
        return {row[0]: row[1] for row in self.connection.execute(
            select(ClassMembership.person_id, SchoolClass.code)
            .join(SchoolClass, SchoolClass.id == ClassMembership.class_id)
            .where(_scope(SchoolClass, self.establishment_id, self.school_year_id),
                   ClassMembership.role == ClassRole.STUDENT))}


def build_roll_calls(life: SchoolLife, builder: ZipBuilder) -> None:
    """Registres d'appel: each roll call, then each absence, late and departure recorded."""
    connection, establishment_id, school_year_id = life.where
    teacher = aliased(Person)
    calls = _stream(connection, select(
        RollCall.id, _sql_date(connection, RollCall.taken_at),
        _sql_format(connection, RollCall.taken_at, "%H:%M"), SchoolClass.code,
        teacher.last_name, teacher.first_name,
        select(func.count(AttendanceEvent.id)).where(AttendanceEvent.roll_call_id == RollCall.id)
        .scalar_subquery())
        .outerjoin(SchoolClass, SchoolClass.id == RollCall.class_id)
        .outerjoin(teacher, teacher.id == RollCall.teacher_id)
        .where(_scope(RollCall, establishment_id, school_year_id))
        .order_by(RollCall.taken_at, RollCall.id))
    builder.add_rendered("registres-d-appel.csv", lambda: csv_bytes(
        ["Appel", "Date", "Heure", "Classe", "Enseignant", "Élèves signalés"],
        ((call_id, taken_on, taken_at, code, _person_name(last, first), count)
         for call_id, taken_on, taken_at, code, last, first, count in calls)))
    student = aliased(Person)
    events = _stream(connection, select(
        AttendanceEvent.roll_call_id, student.last_name, student.first_name, AttendanceEvent.kind,
        _sql_format(connection, AttendanceEvent.starts_at, "%d/%m/%Y %H:%M"),
        _sql_format(connection, AttendanceEvent.ends_at, "%d/%m/%Y %H:%M"),
        AttendanceEvent.justified, AttendanceEvent.reason)
        .join(student, student.id == AttendanceEvent.student_id)
        .where(_scope(AttendanceEvent, establishment_id, school_year_id))
        .order_by(AttendanceEvent.starts_at, AttendanceEvent.id))
    labels = {AttendanceKind.ABSENCE.value: "Absence", AttendanceKind.LATE.value: "Retard",
              AttendanceKind.DEPARTURE.value: "Départ"}
    builder.add_rendered("absences-retards-departs.csv", lambda: csv_bytes(
        ["Appel", "Élève", "Type", "Début", "Fin", "Justifié", "Motif"],
        ((call_id, _person_name(last, first), labels[kind], starts_at, ends_at,
          "oui" if justified else "non", reason)
         for call_id, last, first, kind, starts_at, ends_at, justified, reason in events)))


def build_grade_reports(life: SchoolLife, builder: ZipBuilder) -> None:
    """Relevés d'évaluations: one CSV per class, one line per grade."""
    connection = life.connection

    def grades_query() -> Select[Any]:
        student = aliased(Person)
        return (select(student.last_name, student.first_name, Period.name, Subject.label,
                       Assessment.title, _sql_date(connection, Assessment.given_on),
                       Assessment.coefficient, Grade.score, Assessment.max_score, Grade.status)
                .select_from(Grade).join(Assessment, Assessment.id == Grade.assessment_id)
                .join(student, student.id == Grade.student_id)
                .outerjoin(Period, Period.id == Assessment.period_id)
                .outerjoin(Subject, Subject.id == Assessment.subject_id)
                .where(Assessment.class_id == bindparam("class_id"))
                .order_by(student.last_name, student.first_name, student.id,
                          Assessment.given_on, Assessment.id))

    for class_id, code in life.classes:
        rows = _stream(connection, grades_query, cache="grades", class_id=class_id)
        builder.add_rendered(f"releve-evaluations-{safe_name(code)}.csv",
                             lambda rows=rows: csv_bytes(
            ["Élève", "Période", "Matière", "Évaluation", "Date", "Coefficient", "Note", "Sur",
             "Mention"],
            ((f"{last} {first}", period, subject, title, given_on,
              _number(coefficient), _number(score), _number(max_score), status)
             for last, first, period, subject, title, given_on, coefficient, score, max_score,
             status in rows)))


def build_skills(life: SchoolLife, builder: ZipBuilder) -> None:
    """Relevés de compétences: one CSV per class."""
    connection, establishment_id, school_year_id = life.where
    student = aliased(Person)
    membership_class = life.student_classes
    rows = _stream(connection, select(
        SkillAssessment.student_id, student.last_name, student.first_name, Period.name,
        SkillAssessment.domain, SkillAssessment.skill, SkillAssessment.level)
        .join(student, student.id == SkillAssessment.student_id)
        .outerjoin(Period, Period.id == SkillAssessment.period_id)
        .where(_scope(SkillAssessment, establishment_id, school_year_id))
        .order_by(student.last_name, student.first_name, student.id, SkillAssessment.id))
    levels = {1: "Maîtrise insuffisante", 2: "Maîtrise fragile", 3: "Maîtrise satisfaisante",
              4: "Très bonne maîtrise"}
    builder.add_rendered("releves-de-competences.csv", lambda: csv_bytes(
        ["Classe", "Élève", "Période", "Domaine", "Compétence", "Niveau", "Libellé du niveau"],
        ((membership_class.get(student_id, ""), _person_name(last, first), period, domain,
          skill, level, levels.get(level, ""))
         for student_id, last, first, period, domain, skill, level in rows)))


def build_report_cards(life: SchoolLife, builder: ZipBuilder) -> None:
    """Bulletins périodiques: one printable HTML document per class, a page per card."""
    connection = life.connection
    establishment, year_label = life.establishment, life.year_label
    student = aliased(Person)
    for class_id, code in life.classes:
        def render(class_id: int = class_id, code: str = code) -> bytes:
            lines: dict[int, list[tuple[str, float | None, str]]] = defaultdict(list)
            for card_id, subject, average, appraisal in connection.execute(select(
                    ReportCardLine.report_card_id, Subject.label, ReportCardLine.average,
                    ReportCardLine.appraisal)
                    .join(ReportCard, ReportCard.id == ReportCardLine.report_card_id)
                    .outerjoin(Subject, Subject.id == ReportCardLine.subject_id)
                    .where(ReportCard.class_id == class_id).order_by(ReportCardLine.id)):
                lines[card_id].append((subject or "", average, appraisal))
            cards = connection.execute(select(
                ReportCard.id, student.last_name, student.first_name, Period.name,
                ReportCard.general_average, ReportCard.general_appraisal)
                .join(student, student.id == ReportCard.student_id)
                .outerjoin(Period, Period.id == ReportCard.period_id)
                .where(ReportCard.class_id == class_id)
                .order_by(student.last_name, student.first_name, student.id, Period.position)).all()
            pages = []
            for card_id, last, first, period, average, appraisal in cards:
                table = "".join(f"<tr><td>{html.escape(subject)}</td><td>{_number(value)}</td>"
                                f"<td>{html.escape(text)}</td></tr>"
                                for subject, value, text in lines.get(card_id, []))
                pages.append(
                    f'<section class="page"><h1>Bulletin — {html.escape(period or "")}</h1>'
                    f"<p>{html.escape(establishment)} — {year_label} — classe "
                    f"{html.escape(code)}</p>"
                    f"<h2>{html.escape(_person_name(last, first))}</h2>"
                    f"<table><tr><th>Matière</th><th>Moyenne</th><th>Appréciation</th></tr>{table}"
                    f"</table><p>Moyenne générale : {_number(average)}</p>"
                    f"<p>Appréciation générale : {html.escape(appraisal or '')}</p></section>")
            return _page(f"Bulletins {code} {year_label}", "\n".join(pages)).encode("utf-8")

        builder.add_rendered(f"bulletins-{safe_name(code)}.html", render)


def build_end_of_cycle(life: SchoolLife, builder: ZipBuilder) -> None:
    """Bilans de fin de cycle: one printable HTML document, a page per student."""
    connection, establishment_id, school_year_id = life.where
    establishment, year_label = life.establishment, life.year_label
    student = aliased(Person)
    membership_class = life.student_classes
    reports = _stream(connection, select(
        EndOfCycleReport.student_id, student.last_name, student.first_name,
        EndOfCycleReport.cycle, EndOfCycleReport.domain_levels, EndOfCycleReport.appraisal)
        .join(student, student.id == EndOfCycleReport.student_id)
        .where(_scope(EndOfCycleReport, establishment_id, school_year_id))
        .order_by(student.last_name, student.first_name, student.id))
    def render() -> bytes:
        pages = []
        for student_id, last, first, cycle, levels, appraisal in reports:
            rows = "".join(f"<tr><td>{html.escape(domain)}</td><td>{html.escape(level)}</td></tr>"
                           for domain, _, level in (part.partition("=")
                                                    for part in levels.split(";") if part))
            pages.append(
                f'<section class="page"><h1>Bilan de fin de cycle {cycle}</h1>'
                f"<p>{html.escape(establishment)} — {year_label} — classe "
                f"{html.escape(membership_class.get(student_id, ''))}</p>"
                f"<h2>{html.escape(_person_name(last, first))}</h2>"
                f"<table><tr><th>Domaine du socle</th><th>Niveau</th></tr>{rows}</table>"
                f"<p>{html.escape(appraisal or '')}</p></section>")
        return _page(f"Bilans de fin de cycle {year_label}", "\n".join(pages)).encode("utf-8")

    builder.add_rendered("bilans-de-fin-de-cycle.html", render)


def build_punishments(life: SchoolLife, builder: ZipBuilder) -> None:
    """Punitions: one CSV."""
    connection, establishment_id, school_year_id = life.where
    student, giver = aliased(Person), aliased(Person)
    membership_class = life.student_classes
    rows = _stream(connection, select(
        Punishment.student_id, student.last_name, student.first_name,
        _sql_date(connection, Punishment.given_on),
        Punishment.kind, Punishment.reason, giver.last_name, giver.first_name)
        .join(student, student.id == Punishment.student_id)
        .outerjoin(giver, giver.id == Punishment.given_by_id)
        .where(_scope(Punishment, establishment_id, school_year_id))
        .order_by(Punishment.given_on, Punishment.id))
    builder.add_rendered("punitions.csv", lambda: csv_bytes(
        ["Date", "Classe", "Élève", "Punition", "Motif", "Donnée par"],
        ((given_on, membership_class.get(student_id, ""), _person_name(last, first), kind,
          reason, _person_name(giver_last, giver_first))
         for student_id, last, first, given_on, kind, reason, giver_last, giver_first in rows)))


def build_epis(life: SchoolLife, builder: ZipBuilder) -> None:
    """EPI: one CSV of the EPI and one of their members."""
    connection, establishment_id, school_year_id = life.where
    epis = connection.execute(select(Epi.id, Epi.title, Epi.theme, Epi.subjects, SchoolClass.code)
                              .outerjoin(SchoolClass, SchoolClass.id == Epi.class_id)
                              .where(_scope(Epi, establishment_id, school_year_id))
                              .order_by(Epi.id)).all()
    builder.add_rendered("epi.csv", lambda: csv_bytes(
        ["EPI", "Intitulé", "Thématique", "Disciplines", "Classe"],
        [tuple(row) for row in epis]))
    member = aliased(Person)
    members = connection.execute(select(EpiMember.epi_id, member.last_name, member.first_name,
                                        member.kind)
                                 .join(member, member.id == EpiMember.person_id)
                                 .join(Epi, Epi.id == EpiMember.epi_id)
                                 .where(_scope(Epi, establishment_id, school_year_id))
                                 .order_by(EpiMember.epi_id, member.last_name, member.id)).all()
    builder.add_rendered("epi-participants.csv", lambda: csv_bytes(
        ["EPI", "Participant", "Profil"],
        ((epi_id, _person_name(last, first), "Élève" if kind == "student" else "Enseignant")
         for epi_id, last, first, kind in members)))


def build_absence_statistics(life: SchoolLife, builder: ZipBuilder) -> None:
    """Statistiques d'absences: per student, absences, lates and departures over the year."""
    connection, establishment_id, school_year_id = life.where
    student = aliased(Person)
    membership_class = life.student_classes

    def count_of(kind: AttendanceKind) -> Any:
        return func.sum(case((AttendanceEvent.kind == kind, 1), else_=0))

    rows = connection.execute(select(
        AttendanceEvent.student_id, student.last_name, student.first_name,
        count_of(AttendanceKind.ABSENCE), count_of(AttendanceKind.LATE),
        count_of(AttendanceKind.DEPARTURE),
        func.sum(case((AttendanceEvent.justified.is_(False), 1), else_=0)))
        .join(student, student.id == AttendanceEvent.student_id)
        .where(_scope(AttendanceEvent, establishment_id, school_year_id))
        .group_by(AttendanceEvent.student_id, student.last_name, student.first_name)
        .order_by(student.last_name, student.first_name, AttendanceEvent.student_id)).all()
    builder.add_rendered("statistiques-absences.csv", lambda: csv_bytes(
        ["Classe", "Élève", "Absences", "Retards", "Départs", "Non justifiés"],
        ((membership_class.get(student_id, ""), _person_name(last, first), absences, lates,
          departures, unjustified)
         for student_id, last, first, absences, lates, departures, unjustified in rows)))


def sanctions_csv(life: SchoolLife) -> bytes:
    """Sanctions of the year as one CSV (sent to the heads of establishment)."""
    connection, establishment_id, school_year_id = life.where
    student, decider = aliased(Person), aliased(Person)
    membership_class = life.student_classes
    rows = connection.execute(select(
        Sanction.student_id, student.last_name, student.first_name, Sanction.decided_on,
        Sanction.kind, Sanction.reason, decider.last_name, decider.first_name)
        .join(student, student.id == Sanction.student_id)
        .outerjoin(decider, decider.id == Sanction.decided_by_id)
        .where(_scope(Sanction, establishment_id, school_year_id))
        .order_by(Sanction.decided_on, Sanction.id)).all()
    return csv_bytes(
        ["Date", "Classe", "Élève", "Sanction", "Motif", "Décidée par"],
        ((_date(decided_on), membership_class.get(student_id, ""), _person_name(last, first),
          kind, reason, _person_name(decider_last, decider_first))
         for student_id, last, first, decided_on, kind, reason, decider_last, decider_first
         in rows))
