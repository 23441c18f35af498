"""Set-based writes of the directory update: batches of executemany and bulk statements.

Every function works on a batch (a few hundred to a few thousand rows) with one
SELECT to read what exists and one executemany per kind of change; nothing loops
over ORM objects. The hot statements go straight to the driver
(``exec_driver_sql``) with values converted once per column, because SQLAlchemy's
per-row parameter and result processing would cost more than the database work.
Functions take a Core :class:`~sqlalchemy.Connection` inside the import's
transaction. Runs on the caller's thread.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import unicodedata
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Boolean, Connection, Date, DateTime, Table, and_, delete, select

from yearchange_tui.aaf.models import AafClassHistory, AafGroupHistory, AafTeacherSubject
from yearchange_tui.ent.folding import person_search_text
from yearchange_tui.ent.models import (
    ClassMembership,
    ClassRole,
    Group,
    GroupKind,
    GroupLifetime,
    GroupMembership,
    HeadTeacher,
    MessageArchivePolicy,
    Person,
    PersonKind,
    PersonProfile,
    SchoolClass,
    StudentRelative,
)

CHUNK = 900
"""Largest list bound in one ``IN (…)`` (under SQLite's variable limit)."""

people = Person.__table__
profiles = PersonProfile.__table__
classes = SchoolClass.__table__
class_memberships = ClassMembership.__table__
groups = Group.__table__
group_memberships = GroupMembership.__table__
relatives = StudentRelative.__table__
head_teachers = HeadTeacher.__table__
teacher_subjects = AafTeacherSubject.__table__
class_history = AafClassHistory.__table__
group_history = AafGroupHistory.__table__

PERSON_COLUMNS = ("kind", "establishment_id", "ine", "title", "last_name", "first_name",
                  "birth_date", "email", "disappeared_at")
"""The ``people`` columns an import manages (the login is set once, at creation)."""

_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"

Converter = Callable[[Any], Any]


def chunks(values: Sequence[Any] | Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    """Split ``values`` into lists of at most ``size`` items."""
    if isinstance(values, list | tuple):
        for start in range(0, len(values), size):
            yield list(values[start:start + size])
        return
    batch: list[Any] = []
    for value in values:
        batch.append(value)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- driver-level statements -------------------------------------------------------------


def _sqlite_date(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def _sqlite_datetime(value: Any) -> Any:
    return value.strftime(_SQLITE_DATETIME) if isinstance(value, dt.datetime) else value


def _sqlite_bool(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


_CONVERTERS: dict[tuple[str, str, str], Converter | None] = {}


def _converter(connection: Connection, table: Table, column: str) -> Converter | None:
    """How a Python value of ``table.column`` is handed to the driver (None: as is)."""
    key = (connection.dialect.name, table.name, column)
    if key not in _CONVERTERS:
        column_type = table.c[column].type
        sqlite = connection.dialect.name == "sqlite"
        converter: Converter | None = None
        if sqlite and isinstance(column_type, DateTime):
            converter = _sqlite_datetime
        elif sqlite and isinstance(column_type, Date):
            converter = _sqlite_date
        elif sqlite and isinstance(column_type, Boolean):
            converter = _sqlite_bool
        _CONVERTERS[key] = converter
    return _CONVERTERS[key]


def _mark(connection: Connection) -> str:
    return "?" if connection.dialect.paramstyle == "qmark" else "%s"


def _tuples(connection: Connection, table: Table, columns: Sequence[str],
            rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Driver parameters: one tuple per row, temporal values converted for SQLite.

    Enumerations are ``StrEnum`` members, which every driver takes as strings.
    """
    pick = operator.itemgetter(*columns)
    if len(columns) == 1:
        values = [(pick(row),) for row in rows]
    else:
        values = list(map(pick, rows))
    plan = [(index, converter) for index, column in enumerate(columns)
            if (converter := _converter(connection, table, column)) is not None]
    if not plan:
        return values
    converted: list[tuple[Any, ...]] = []
    for row_values in values:
        if any(row_values[index] is not None for index, _ in plan):
            mutable = list(row_values)
            for index, converter in plan:
                if mutable[index] is not None:
                    mutable[index] = converter(mutable[index])
            row_values = tuple(mutable)
        converted.append(row_values)
    return converted


def bulk_insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows (all with the same keys) with one driver executemany."""
    if not rows:
        return
    columns = list(rows[0])
    mark = _mark(connection)
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
           f"VALUES ({', '.join([mark] * len(columns))})")
    connection.exec_driver_sql(sql, _tuples(connection, table, columns, rows))  # type: ignore[arg-type]


def bulk_update(connection: Connection, table: Table, columns: Sequence[str],
                rows: list[dict[str, Any]]) -> None:
    """Update rows by ``id`` (each row has ``id`` and every column) with one executemany."""
    if not rows:
        return
    mark = _mark(connection)
    sql = (f"UPDATE {table.name} SET {', '.join(f'{c} = {mark}' for c in columns)} "
           f"WHERE id = {mark}")
    ordered = [*columns, "id"]
    connection.exec_driver_sql(sql, _tuples(connection, table, ordered, rows))  # type: ignore[arg-type]


def select_in(connection: Connection, sql: str, values: Sequence[Any],
              extra: Sequence[Any] = ()) -> list[Any]:
    """Run ``sql`` (with ``{in}`` for the list and driver marks for ``extra``) by chunks.

    ``extra`` parameters come first, in the order their marks appear before ``{in}``.
    Results are plain driver values (no type processing).
    """
    found: list[Any] = []
    mark = _mark(connection)
    template = sql.replace("?", mark)
    for batch in chunks(values):
        query = template.replace("{in}", ", ".join([mark] * len(batch)))
        found.extend(connection.exec_driver_sql(query, (*extra, *batch)).fetchall())
    return found


def delete_ids(connection: Connection, table: Table, ids: Sequence[int]) -> None:
    """Delete rows by id, by chunks."""
    for batch in chunks(ids):
        connection.execute(delete(table).where(table.c.id.in_(batch)))


# --- people ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def _ascii(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if c.isalnum() and ord(c) < 128).lower()


def make_login(first_name: str, last_name: str, jointure: str) -> str:
    """A unique login: ``p.nom.<jointure>`` in lower-case ASCII (at most 100 characters)."""
    base = f"{_ascii(first_name)[:1]}.{_ascii(last_name)[:60]}"
    return f"{base}.{jointure}"[:100]


_PEOPLE_SELECT = ("SELECT id, aaf_jointure, " + ", ".join(PERSON_COLUMNS)
                  + " FROM people WHERE aaf_jointure IN ({in})")


def fetch_people(connection: Connection, jointures: Sequence[str]) -> dict[str, Any]:
    """Existing people by AAF jointure: rows ``(id, aaf_jointure, *PERSON_COLUMNS)``.

    Values are the driver's (dates may be strings on SQLite).
    """
    return {row[1]: row for row in select_in(connection, _PEOPLE_SELECT, list(jointures))}


def fetch_ine_owners(connection: Connection, ines: Iterable[str]) -> dict[str, Any]:
    """People holding these INEs: ``ine -> (id, aaf_jointure, ine, last_name, first_name)``."""
    rows = select_in(connection, "SELECT id, aaf_jointure, ine, last_name, first_name "
                                 "FROM people WHERE ine IN ({in})", sorted(set(ines)))
    return {row[2]: row for row in rows}


_NEW_PERSON_COLUMNS = ("aaf_jointure", "login", "kind", "establishment_id", "ine", "title",
                       "last_name", "first_name", "birth_date", "email", "disappeared_at",
                       "message_archive_policy", "search_folded")


def insert_new_people(connection: Connection,
                      new: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    """Insert new people from ``(jointure, columns)``; return their ids by jointure.

    Rows are built straight as driver parameters (one tuple per person, no
    intermediate dictionary); the login is set here, once.
    """
    if not new:
        return {}
    to_date = _converter(connection, people, "birth_date")
    policy = MessageArchivePolicy.SCHOOL_YEAR
    values = []
    for jointure, columns in new:
        get = columns.get
        first_name = get("first_name")
        last_name = get("last_name")
        birth = get("birth_date")
        if birth is not None and to_date is not None:
            birth = to_date(birth)
        values.append((jointure, make_login(str(first_name or ""), str(last_name or ""), jointure),
                       get("kind"), get("establishment_id"), get("ine"), get("title") or "",
                       last_name, first_name, birth, get("email") or "", None, policy,
                       person_search_text(last_name, first_name, get("ine"))))
    insert_tuples(connection, people, _NEW_PERSON_COLUMNS, values)
    found = select_in(connection,
                      "SELECT aaf_jointure, id FROM people WHERE aaf_jointure IN ({in})",
                      [jointure for jointure, _ in new])
    return {row[0]: row[1] for row in found}


def insert_tuples(connection: Connection, table: Table, columns: Sequence[str],
                  rows: list[tuple[Any, ...]]) -> None:
    """Insert rows given as driver-ready tuples (no value needs converting) in one executemany."""
    if rows:
        mark = _mark(connection)
        connection.exec_driver_sql(
            f"INSERT INTO {table.name} ({', '.join(columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))})", rows)  # type: ignore[arg-type]


def update_people(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Update changed people (``id`` plus every managed column)."""
    for row in rows:
        row["search_folded"] = person_search_text(row.get("last_name"), row.get("first_name"),
                                                  row.get("ine"))
    bulk_update(connection, people, (*PERSON_COLUMNS, "search_folded"), rows)


def flag_disappeared(connection: Connection, person_ids: Sequence[int], now: dt.datetime) -> int:
    """Set ``disappeared_at`` on these people (those not flagged yet); return the count."""
    count = 0
    for batch in chunks(person_ids):
        result = connection.execute(people.update().where(
            people.c.id.in_(batch), people.c.disappeared_at.is_(None)).values(disappeared_at=now))
        count += result.rowcount or 0
    return count


def sync_profiles(connection: Connection,
                  desired: dict[int, set[tuple[int, str, str]]],
                  new: Collection[int] = ()) -> None:
    """Make each person's profiles exactly ``(establishment, profile, function code)`` sets.

    ``new`` are people created in this batch (they have no profile yet: not looked up).
    """
    if not desired:
        return
    existing: dict[int, dict[tuple[int, str], tuple[int, str]]] = {}
    known = [person_id for person_id in desired if person_id not in new] if new else list(desired)
    for row_id, person_id, establishment_id, profile, function_code in select_in(
            connection, "SELECT id, person_id, establishment_id, profile, function_code "
                        "FROM person_profiles WHERE person_id IN ({in})", known):
        existing.setdefault(person_id, {})[(establishment_id, profile)] = (row_id, function_code)
    to_delete: list[int] = []
    to_insert: list[tuple[Any, ...]] = []
    to_update: list[dict[str, Any]] = []
    for person_id, wanted in desired.items():
        current = existing.get(person_id)
        if current is None:
            if len(wanted) == 1:
                for establishment_id, profile, function_code in wanted:
                    to_insert.append((person_id, establishment_id, profile, function_code))
                continue
            seen: set[tuple[int, str]] = set()
            for establishment_id, profile, function_code in wanted:
                if (establishment_id, profile) not in seen:
                    seen.add((establishment_id, profile))
                    to_insert.append((person_id, establishment_id, profile, function_code))
            continue
        wanted_keys: dict[tuple[int, str], str] = {}
        for establishment_id, profile, function_code in wanted:
            wanted_keys.setdefault((establishment_id, profile), function_code)
        for key, (row_id, function_code) in current.items():
            if key not in wanted_keys:
                to_delete.append(row_id)
            elif wanted_keys[key] != function_code:
                to_update.append({"id": row_id, "function_code": wanted_keys[key]})
        for key, function_code in wanted_keys.items():
            if key not in current:
                to_insert.append((person_id, key[0], key[1], function_code))
    delete_ids(connection, profiles, to_delete)
    bulk_update(connection, profiles, ("function_code",), to_update)
    insert_tuples(connection, profiles, ("person_id", "establishment_id", "profile",
                                         "function_code"), to_insert)


# --- classes and groups --------------------------------------------------------------------


def load_classes(connection: Connection, establishment_id: int,
                 school_year_id: int) -> dict[str, int]:
    """Classes of an establishment for a year: ``code -> id``."""
    query = select(classes.c.code, classes.c.id).where(
        classes.c.establishment_id == establishment_id, classes.c.school_year_id == school_year_id)
    return {row.code: row.id for row in connection.execute(query)}


def create_classes(connection: Connection,
                   rows: list[dict[str, Any]]) -> dict[tuple[int, int, str], int]:
    """Insert classes (``establishment_id, school_year_id, code, label, mef_code``); return ids."""
    if not rows:
        return {}
    bulk_insert(connection, classes, rows)
    created: dict[tuple[int, int, str], int] = {}
    for establishment_id, school_year_id in {(r["establishment_id"], r["school_year_id"])
                                             for r in rows}:
        codes = {r["code"] for r in rows if r["establishment_id"] == establishment_id
                 and r["school_year_id"] == school_year_id}
        for code, class_id in load_classes(connection, establishment_id, school_year_id).items():
            if code in codes:
                created[(establishment_id, school_year_id, code)] = class_id
    return created


def load_groups(connection: Connection, establishment_id: int,
                school_year_id: int) -> dict[str, int]:
    """AAF groups of an establishment for a year: ``code -> id``."""
    query = select(groups.c.code, groups.c.id).where(
        groups.c.establishment_id == establishment_id, groups.c.school_year_id == school_year_id,
        groups.c.kind == GroupKind.AAF)
    return {row.code: row.id for row in connection.execute(query)}


def create_groups(connection: Connection,
                  rows: list[dict[str, Any]]) -> dict[tuple[int, int, str], int]:
    """Insert AAF groups (``establishment_id, school_year_id, code, name``); return ids."""
    if not rows:
        return {}
    bulk_insert(connection, groups, [{**row, "kind": GroupKind.AAF,
                                      "lifetime": GroupLifetime.SCHOOL_YEAR,
                                      "import_report_id": None} for row in rows])
    created: dict[tuple[int, int, str], int] = {}
    for establishment_id, school_year_id in {(r["establishment_id"], r["school_year_id"])
                                             for r in rows}:
        for code, group_id in load_groups(connection, establishment_id, school_year_id).items():
            created[(establishment_id, school_year_id, code)] = group_id
    return created


YearSets = dict[int, dict[int, set[int]]]
"""``person_id -> {school_year_id: {class or group id…}}``."""


def _sync_memberships(connection: Connection, table: Table, sql: str, key: str,
                      desired: YearSets, extra: dict[str, Any],
                      extra_params: Sequence[Any], new: Collection[int] = ()) -> tuple[int, int]:
    current: dict[tuple[int, int], dict[int, int]] = {}
    known = [person_id for person_id in desired if person_id not in new] if new else list(desired)
    for row_id, person_id, target_id, year_id in select_in(connection, sql, known,
                                                           extra_params):
        if year_id in desired[person_id]:
            current.setdefault((person_id, year_id), {})[target_id] = row_id
    # Driver-ready values of the constant columns (converted once, not per row).
    constants = tuple(value if (convert := _converter(connection, table, name)) is None
                      or value is None else convert(value) for name, value in extra.items())
    to_delete: list[int] = []
    to_insert: list[tuple[Any, ...]] = []
    empty: dict[int, int] = {}
    for person_id, years in desired.items():
        for year_id, wanted in years.items():
            have = current.get((person_id, year_id), empty)
            if have:
                to_delete.extend(row_id for target_id, row_id in have.items()
                                 if target_id not in wanted)
            to_insert.extend((target_id, person_id, *constants)
                             for target_id in wanted if target_id not in have)
    delete_ids(connection, table, to_delete)
    insert_tuples(connection, table, (key, "person_id", *extra), to_insert)
    return len(to_insert), len(to_delete)


def sync_class_memberships(connection: Connection, role: ClassRole, desired: YearSets,
                           entered_on: dt.date | None,
                           new: Collection[int] = ()) -> tuple[int, int]:
    """Make each person's classes of the given school years exactly the desired sets.

    Args:
        connection: the import's connection.
        role: student or teacher memberships.
        desired: ``person_id -> {school_year_id: {class_id…}}``; memberships in classes
            of other years are left alone.
        entered_on: date recorded on new memberships.
        new: people created in this batch (no membership yet: not looked up).

    Returns:
        ``(added, removed)``.
    """
    if not desired:
        return 0, 0
    sql = ("SELECT m.id, m.person_id, m.class_id, c.school_year_id FROM class_memberships m "
           "JOIN classes c ON c.id = m.class_id WHERE m.role = ? AND m.person_id IN ({in})")
    return _sync_memberships(connection, class_memberships, sql, "class_id", desired,
                             {"role": role, "entered_on": entered_on}, (role.value,), new)


def sync_group_memberships(connection: Connection, desired: YearSets,
                           new: Collection[int] = ()) -> tuple[int, int]:
    """Make each person's AAF groups of the given school years exactly the desired sets."""
    if not desired:
        return 0, 0
    sql = ("SELECT m.id, m.person_id, m.group_id, g.school_year_id FROM group_memberships m "
           "JOIN groups g ON g.id = m.group_id WHERE g.kind = ? AND m.person_id IN ({in})")
    return _sync_memberships(connection, group_memberships, sql, "group_id", desired, {},
                             (GroupKind.AAF.value,), new)


def _replace_per_year(connection: Connection, table: Table, person_column: str,
                      rows_by_person: dict[int, dict[int, list[dict[str, Any]]]]) -> None:
    by_year: dict[int, list[int]] = {}
    rows: list[dict[str, Any]] = []
    for person_id, years in rows_by_person.items():
        for year_id, person_rows in years.items():
            by_year.setdefault(year_id, []).append(person_id)
            rows.extend(person_rows)
    for year_id, person_ids in by_year.items():
        for batch in chunks(person_ids):
            connection.execute(delete(table).where(table.c[person_column].in_(batch),
                                                   table.c.school_year_id == year_id))
    bulk_insert(connection, table, rows)


def replace_head_teachers(connection: Connection,
                          rows_by_person: dict[int, dict[int, list[dict[str, Any]]]]) -> None:
    """Replace the head-teacher rows of these teachers for the given school years.

    Args:
        connection: the import's connection.
        rows_by_person: ``teacher_id -> {school_year_id: [head_teachers rows]}``.
    """
    _replace_per_year(connection, head_teachers, "teacher_id", rows_by_person)


def replace_teacher_subjects(connection: Connection,
                             rows_by_person: dict[int, dict[int, list[dict[str, Any]]]]) -> None:
    """Replace the teacher–subject links of these teachers for the given school years."""
    _replace_per_year(connection, teacher_subjects, "person_id", rows_by_person)


def snapshot_class_history(connection: Connection, establishment_id: int,
                           school_year_id: int) -> int:
    """Record which class each student of the establishment is in for a school year.

    Replaces the history of that (establishment, year) with the current student
    memberships, in two statements. Step 3 deletes classes; the N-1 report of
    the next step 4 reads this history.

    Returns:
        The number of history rows written.
    """
    connection.execute(delete(class_history).where(
        class_history.c.establishment_id == establishment_id,
        class_history.c.school_year_id == school_year_id))
    source = (select(classes.c.establishment_id, classes.c.school_year_id,
                     class_memberships.c.person_id, classes.c.code)
              .join(classes, classes.c.id == class_memberships.c.class_id)
              .where(classes.c.establishment_id == establishment_id,
                     classes.c.school_year_id == school_year_id,
                     class_memberships.c.role == ClassRole.STUDENT)
              .distinct())
    result = connection.execute(class_history.insert().from_select(
        ["establishment_id", "school_year_id", "person_id", "class_code"], source)
        .execution_options(preserve_rowcount=True))
    snapshot_group_history(connection, establishment_id, school_year_id)
    return max(result.rowcount or 0, 0)


def snapshot_group_history(connection: Connection, establishment_id: int,
                           school_year_id: int) -> None:
    """Record which AAF group each student of the establishment is in for a school year.

    Like the class history (and written with it): step 3 deletes the year's AAF groups;
    the N-1 report of the next step 4 reads this history.
    """
    connection.execute(delete(group_history).where(
        group_history.c.establishment_id == establishment_id,
        group_history.c.school_year_id == school_year_id))
    source = (select(groups.c.establishment_id, groups.c.school_year_id,
                     group_memberships.c.person_id, groups.c.code)
              .join(groups, groups.c.id == group_memberships.c.group_id)
              .join(people, people.c.id == group_memberships.c.person_id)
              .where(groups.c.establishment_id == establishment_id,
                     groups.c.school_year_id == school_year_id,
                     groups.c.kind == GroupKind.AAF,
                     people.c.kind == PersonKind.STUDENT)
              .distinct())
    connection.execute(group_history.insert().from_select(
        ["establishment_id", "school_year_id", "person_id", "group_code"], source))


def student_group_counts(connection: Connection, establishment_id: int,
                         school_year_id: int) -> dict[str, list[int]]:
    """Students (not flagged absent) of each AAF group of a year: ``code -> [person ids]``."""
    query = (select(groups.c.code, group_memberships.c.person_id)
             .join(group_memberships, group_memberships.c.group_id == groups.c.id)
             .join(people, people.c.id == group_memberships.c.person_id)
             .where(groups.c.establishment_id == establishment_id,
                    groups.c.school_year_id == school_year_id,
                    groups.c.kind == GroupKind.AAF,
                    people.c.kind == PersonKind.STUDENT,
                    people.c.disappeared_at.is_(None)))
    found: dict[str, list[int]] = {}
    for row in connection.execute(query):
        found.setdefault(row.code, []).append(row.person_id)
    return found


def student_class_counts(connection: Connection, establishment_id: int,
                         school_year_id: int) -> dict[str, list[int]]:
    """Students (not flagged absent) of each class of a year: ``code -> [person ids]``."""
    query = (select(classes.c.code, class_memberships.c.person_id)
             .join(class_memberships, and_(class_memberships.c.class_id == classes.c.id,
                                           class_memberships.c.role == ClassRole.STUDENT))
             .join(people, people.c.id == class_memberships.c.person_id)
             .where(classes.c.establishment_id == establishment_id,
                    classes.c.school_year_id == school_year_id,
                    people.c.disappeared_at.is_(None)))
    found: dict[str, list[int]] = {code: [] for code in
                                   load_classes(connection, establishment_id, school_year_id)}
    for row in connection.execute(query):
        found.setdefault(row.code, []).append(row.person_id)
    return found


# --- staging tables of one import ------------------------------------------------------------

STAGING_SEEN = "aaf_staging_seen"
STAGING_LINKS = "aaf_staging_links"


def create_staging(connection: Connection) -> None:
    """Create the import's temporary staging tables (private to this connection).

    ``aaf_staging_seen`` holds every person identifier of the current dated
    delivery (``accepted_add`` = 1 for the first accepted addRequest), so that
    duplicates and people absent from a Complet are found in SQL; ``aaf_staging_links``
    holds every student → relative link read. Nothing per record stays in memory.
    On PostgreSQL they are dropped at commit; on SQLite by :func:`drop_staging`.
    """
    on_commit = " ON COMMIT DROP" if connection.dialect.name == "postgresql" else ""
    drop_staging(connection)
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {STAGING_SEEN} (jointure VARCHAR(64) NOT NULL, "
        f"accepted_add INTEGER NOT NULL, file VARCHAR(500), line INTEGER){on_commit}")
    connection.exec_driver_sql(f"CREATE INDEX {STAGING_SEEN}_j ON {STAGING_SEEN} (jointure)")
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {STAGING_LINKS} (student_id INTEGER, "
        "student_jointure VARCHAR(64) NOT NULL, relative_jointure VARCHAR(64), "
        "link_code VARCHAR(4), legal INTEGER, financial INTEGER, contact INTEGER, "
        f"establishment_id INTEGER, file VARCHAR(500), line INTEGER){on_commit}")
    connection.exec_driver_sql(
        f"CREATE INDEX {STAGING_LINKS}_r ON {STAGING_LINKS} (relative_jointure)")
    connection.exec_driver_sql(f"CREATE INDEX {STAGING_LINKS}_s ON {STAGING_LINKS} (student_id)")


def drop_staging(connection: Connection) -> None:
    """Drop the staging tables if they exist."""
    for table in (STAGING_SEEN, STAGING_LINKS):
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")


def clear_staging(connection: Connection) -> None:
    """Empty the staging tables (at the start of each dated delivery)."""
    for table in (STAGING_SEEN, STAGING_LINKS):
        connection.exec_driver_sql(f"DELETE FROM {table}")


def stage_seen(connection: Connection, rows: list[tuple[str, int, str, int]]) -> None:
    """Record person identifiers read: ``(jointure, accepted_add, file, line)``."""
    if rows:
        mark = _mark(connection)
        connection.exec_driver_sql(
            f"INSERT INTO {STAGING_SEEN} (jointure, accepted_add, file, line) "
            f"VALUES ({mark}, {mark}, {mark}, {mark})", rows)  # type: ignore[arg-type]


def first_occurrences(connection: Connection,
                      jointures: Sequence[str]) -> dict[str, tuple[str, int]]:
    """Where each identifier was first accepted in this dated delivery, if it was."""
    rows = select_in(connection, f"SELECT jointure, file, line FROM {STAGING_SEEN} "
                                 "WHERE accepted_add = 1 AND jointure IN ({in})", list(jointures))
    return {row[0]: (row[1], row[2]) for row in rows}


def stage_links(connection: Connection, rows: list[tuple[Any, ...]],
                replace_students: Sequence[int] = ()) -> None:
    """Record student → relative links.

    Args:
        connection: the import's connection.
        rows: ``(student_id or None, student_jointure, relative_jointure or None,
            link_code, legal, financial, contact, establishment_id, file, line)``; a
            row with no relative marks a student whose (empty) list was read.
        replace_students: students whose links read earlier in this delivery are replaced.
    """
    for batch in chunks(list(replace_students)):
        mark = _mark(connection)
        connection.exec_driver_sql(
            f"DELETE FROM {STAGING_LINKS} WHERE student_id IN ({', '.join([mark] * len(batch))})",
            tuple(batch))
    if rows:
        mark = _mark(connection)
        connection.exec_driver_sql(
            f"INSERT INTO {STAGING_LINKS} (student_id, student_jointure, relative_jointure, "
            "link_code, legal, financial, contact, establishment_id, file, line) VALUES ("
            + ", ".join([mark] * 10) + ")", rows)  # type: ignore[arg-type]


def referencing_establishments(connection: Connection,
                               relatives_jointures: Sequence[str]) -> dict[str, list[int | None]]:
    """For each relative cited by a student of this delivery, the students' establishments."""
    found: dict[str, list[int | None]] = {}
    for jointure, establishment_id in select_in(
            connection, f"SELECT DISTINCT relative_jointure, establishment_id FROM {STAGING_LINKS} "
                        "WHERE relative_jointure IN ({in})", list(relatives_jointures)):
        found.setdefault(jointure, []).append(establishment_id)
    for establishments in found.values():
        establishments.sort(key=lambda value: (value is None, value or 0))
    return found


def apply_staged_links(connection: Connection) -> None:
    """Make the relatives of every student read exactly the staged links, set-based."""
    links = STAGING_LINKS
    connection.exec_driver_sql(
        f"DELETE FROM student_relatives WHERE student_id IN "
        f"(SELECT student_id FROM {links} WHERE student_id IS NOT NULL) "
        f"AND NOT EXISTS (SELECT 1 FROM {links} t JOIN people r ON r.aaf_jointure = "
        "t.relative_jointure WHERE t.student_id = student_relatives.student_id "
        "AND r.id = student_relatives.relative_id)")
    changed = connection.exec_driver_sql(
        f"SELECT s.id, t.link_code, t.legal, t.financial, t.contact FROM {links} t "
        "JOIN people r ON r.aaf_jointure = t.relative_jointure "
        "JOIN student_relatives s ON s.student_id = t.student_id AND s.relative_id = r.id "
        "WHERE t.student_id IS NOT NULL AND (s.link_code <> t.link_code "
        "OR s.legal_responsibility <> t.legal OR s.financial <> (t.financial = 1) "
        "OR s.contact <> (t.contact = 1))").fetchall()
    bulk_update(connection, relatives, ("link_code", "legal_responsibility", "financial",
                                        "contact"),
                [{"id": row[0], "link_code": row[1], "legal_responsibility": row[2],
                  "financial": bool(row[3]), "contact": bool(row[4])} for row in changed])
    connection.exec_driver_sql(
        "INSERT INTO student_relatives (student_id, relative_id, link_code, "
        "legal_responsibility, financial, contact) "
        "SELECT t.student_id, r.id, MIN(t.link_code), MIN(t.legal), MAX(t.financial) = 1, "
        f"MAX(t.contact) = 1 FROM {links} t JOIN people r ON r.aaf_jointure = t.relative_jointure "
        "WHERE t.student_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM student_relatives s "
        "WHERE s.student_id = t.student_id AND s.relative_id = r.id) "
        "GROUP BY t.student_id, r.id")


def unknown_relatives(connection: Connection) -> list[Any]:
    """Links to relatives neither in the directory nor read in this delivery.

    Rows ``(file, line, student_jointure, relative_jointure, establishment_id,
    last_name, first_name)`` of the citing student.
    """
    return connection.exec_driver_sql(
        f"SELECT t.file, t.line, t.student_jointure, t.relative_jointure, t.establishment_id, "
        f"s.last_name, s.first_name FROM {STAGING_LINKS} t "
        "LEFT JOIN people r ON r.aaf_jointure = t.relative_jointure "
        "LEFT JOIN people s ON s.id = t.student_id "
        "WHERE t.student_id IS NOT NULL AND t.relative_jointure IS NOT NULL AND r.id IS NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {STAGING_SEEN} p WHERE p.jointure = t.relative_jointure) "
        "ORDER BY t.file, t.line").fetchall()


def flag_absent(connection: Connection, establishment_id: int, now: dt.datetime) -> int:
    """Flag people of an establishment whose identifier this Complet did not carry."""
    mark = _mark(connection)
    stamp: Any = _sqlite_datetime(now) if connection.dialect.name == "sqlite" else now
    result = connection.exec_driver_sql(
        f"UPDATE people SET disappeared_at = {mark} WHERE establishment_id = {mark} "
        "AND aaf_jointure IS NOT NULL AND disappeared_at IS NULL AND NOT EXISTS "
        f"(SELECT 1 FROM {STAGING_SEEN} s WHERE s.jointure = people.aaf_jointure)",
        (stamp, establishment_id))
    return max(result.rowcount or 0, 0)
