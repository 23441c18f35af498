"""Where the rejects browser reads AAF import rejects: a thin adapter over the AAF package.

With a database, rejects are read from the AAF reject store (``aaf_rejects``); without
one, the browser is empty and says why, in French. "Handled" marks are a support-staff
annotation kept beside the ENT data (a small JSON file in the user data folder, with who
marked each and when), so marking a reject handled is allowed in read-only mode. The text
search is the support search of :mod:`yearchange_tui.aaf.support` (``yearchange find``).

Queries run on a worker thread of the console; nothing here touches a widget.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select

from yearchange_tui.aaf.support import PersonFacts, find, person_facts, reject_condition
from yearchange_tui.ent.base import utcnow
from yearchange_tui.ent.csvfile import write_csv
from yearchange_tui.ent.folding import fold, reject_search_text
from yearchange_tui.importing.models import AafReject
from yearchange_tui.workflow.audit import declared_ssh_client, system_user
from yearchange_tui.workflow.establishments import normalise_uai
from yearchange_tui.workflow.localtime import format_local, operator_zone

SEVERITY_ORDER = ("erreur", "avertissement", "information")
CSV_HEADER = ("import", "uai", "code", "gravité", "type", "fichier", "ligne", "enregistrement",
              "attribut", "valeur", "explication", "action suggérée", "traité", "traité par",
              "traité le")
NOTE_NO_SOURCE = "Aucune source de rejets AAF pour cette console : aucun rejet à afficher."


@dataclass(frozen=True)
class RejectRow:
    """One reject as the browser shows it."""

    id: int
    import_id: int
    uai: str
    code: str
    severity: str  # erreur, avertissement, information
    kind: str  # Eleve, PersEducNat, …
    file_name: str
    line: int | None
    record_id: str
    attribute: str
    raw_value: str
    message: str
    action: str
    raw_xml: str
    handled: bool = False
    handled_by: str = ""  # OS user (workflow.audit.system_user), with the declared SSH client
    handled_at: dt.datetime | None = None  # UTC

    @property
    def handled_note(self) -> str:
        """« ✓ traité par alice (depuis 10.0.0.9 (déclaré)) le 07/12/2026 09:50 »."""
        if not self.handled:
            return ""
        note = "✓ traité"
        if self.handled_by:
            note += f" par {self.handled_by}"
        if self.handled_at is not None:
            note += f" le {format_local(self.handled_at)}"
        return note

    @property
    def where(self) -> str:
        """``fichier.xml:123``."""
        return f"{self.file_name}:{self.line}" if self.line else self.file_name


@dataclass(frozen=True)
class RejectQuery:
    """Filters of the browser; empty strings mean "any"."""

    uai: str = ""
    code: str = ""
    severity: str = ""
    kind: str = ""
    text: str = ""
    hide_handled: bool = False
    limit: int = 2000


@dataclass(frozen=True)
class RejectPage:
    """A query's answer: the rows shown, how many matched in all, and how many per severity."""

    rows: list[RejectRow]
    total: int
    by_severity: dict[str, int] = field(default_factory=dict)
    handled: int = 0  # handled rejects the other filters match (hidden or not)


class RejectsSource(Protocol):
    """What the rejects browser reads and writes."""

    available: bool
    note: str

    def query(self, query: RejectQuery) -> RejectPage:
        """Rejects matching ``query`` (newest import first, then UAI, file, line)."""

    def facets(self) -> dict[str, list[str]]:
        """Values offered in the filters: ``uai``, ``code``, ``severity``, ``kind``."""

    def set_handled(self, reject_ids: Iterable[int], handled: bool) -> None:
        """Mark rejects handled (or not)."""

    def person(self, jointure: str, day: dt.date) -> PersonFacts | None:
        """The facts of the person with this AAF jointure on ``day`` (None when unknown)."""


def matches(row: RejectRow, query: RejectQuery) -> bool:
    """True when ``row`` passes ``query`` (used by in-memory sources)."""
    if query.uai and not row.uai.startswith(normalise_uai(query.uai)):
        return False
    if query.code and row.code != query.code.strip().upper():
        return False
    if query.severity and row.severity != query.severity:
        return False
    if query.kind and row.kind != query.kind:
        return False
    if query.hide_handled and row.handled:
        return False
    if query.text:
        # The in-memory form of aaf.support.reject_condition (no directory to join here).
        haystack = reject_search_text(row.code, row.record_id, row.attribute, row.raw_value,
                                      row.message)
        if not row.uai.startswith(normalise_uai(query.text)) and not all(
                word in haystack or row.uai.startswith(word.upper())
                for word in fold(query.text).split()):
            return False
    return True


def export_csv(rows: Iterable[RejectRow], folder: Path, now: dt.datetime | None = None,
               uai: str = "") -> Path:
    """Write ``rows`` as a CSV (``;``, UTF-8 with BOM for spreadsheets); return its path.

    Named for its reader: ``rejets-<UAI>-<date>.csv`` when the rows are one establishment's
    (``uai``), else ``rejets-<date>.csv``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    stamp = (now or utcnow().astimezone(operator_zone())).strftime("%Y%m%d-%H%M%S")
    path = folder / (f"rejets-{uai}-{stamp}.csv" if uai else f"rejets-{stamp}.csv")
    temporary = path.with_suffix(".csv.tmp")
    with temporary.open("wb") as handle:
        write_csv(handle, CSV_HEADER, (
            (row.import_id, row.uai, row.code, row.severity, row.kind, row.file_name,
             row.line or "", row.record_id, row.attribute, row.raw_value, row.message,
             row.action, "oui" if row.handled else "non", row.handled_by,
             format_local(row.handled_at, empty="") if row.handled else "") for row in rows))
    temporary.replace(path)
    return path


class HandledStore:
    """Reject ids marked handled, with who and when, in a JSON file (one per database).

    The file maps each id to ``{"by": …, "at": ISO UTC}``; an older file (a bare list of
    ids) still reads, its marks without who nor when.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._marks: dict[int, dict[str, str]] | None = None

    def _load(self) -> dict[int, dict[str, str]]:
        if self._marks is None:
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError, TypeError):
                raw = {}
            if isinstance(raw, list):
                self._marks = {int(item): {} for item in raw}
            elif isinstance(raw, dict):
                self._marks = {int(key): value if isinstance(value, dict) else {}
                               for key, value in raw.items()}
            else:
                self._marks = {}
        return self._marks

    def ids(self) -> set[int]:
        """The handled ids."""
        with self._lock:
            return set(self._load())

    def marks(self) -> dict[int, tuple[str, dt.datetime | None]]:
        """Who marked each handled id, and when (UTC)."""
        with self._lock:
            return {key: (value.get("by", ""), _parse_utc(value.get("at", "")))
                    for key, value in self._load().items()}

    def set(self, reject_ids: Iterable[int], handled: bool) -> None:
        """Add (as this OS user, now) or remove ids, and save atomically."""
        with self._lock:
            marks = self._load()
            if handled:
                mark = {"by": handler_label(), "at": utcnow().isoformat(timespec="seconds")}
                for reject_id in reject_ids:
                    marks[reject_id] = mark
            else:
                for reject_id in reject_ids:
                    marks.pop(reject_id, None)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps({str(key): value for key, value in
                                             sorted(marks.items())}), encoding="utf-8")
            temporary.replace(self.path)


def handler_label() -> str:
    """Who marks a reject handled: the OS user (real uid) and the declared SSH client."""
    ssh = declared_ssh_client()
    return f"{system_user()} (depuis {ssh})" if ssh else system_user()


def _parse_utc(text: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


class EmptyRejectsSource:
    """No source of rejects (a console without a database): an empty browser, a French note."""

    available = False

    def __init__(self, note: str = NOTE_NO_SOURCE) -> None:
        self.note = note

    def query(self, query: RejectQuery) -> RejectPage:
        """Nothing."""
        return RejectPage([], 0)

    def facets(self) -> dict[str, list[str]]:
        """Nothing to offer."""
        return {"uai": [], "code": [], "severity": list(SEVERITY_ORDER), "kind": []}

    def set_handled(self, reject_ids: Iterable[int], handled: bool) -> None:
        """Nothing to mark."""

    def person(self, jointure: str, day: dt.date) -> PersonFacts | None:
        """No one."""
        return None


class DatabaseRejectsSource:
    """Rejects of the AAF package's table, read with SQLAlchemy.

    Args:
        database: the open database.
        handled_store: where handled marks go (the AAF package keeps none).
    """

    available = True
    note = ""

    def __init__(self, database: Any, handled_store: HandledStore) -> None:
        self.database = database
        self.model = AafReject
        self.handled_store = handled_store

    def query(self, query: RejectQuery) -> RejectPage:
        """Rejects matching ``query``, at most ``query.limit`` of them."""

        model = self.model
        statement = select(model)
        if query.uai:
            statement = statement.where(model.uai.startswith(normalise_uai(query.uai),
                                                             autoescape=True))
        if query.code:
            statement = statement.where(model.code == query.code.strip().upper())
        if query.severity:
            statement = statement.where(model.severity == query.severity)
        if query.kind:
            statement = statement.where(model.kind == query.kind)
        handled = self.handled_store.marks()
        with self.database.session() as session:
            if query.text:
                # The one search of support staff (yearchange find): folded, people included.
                statement = statement.where(reject_condition(session, query.text))
            handled_count = session.scalar(select(func.count()).select_from(
                statement.where(model.id.in_(list(handled))).subquery())) if handled else 0
            if query.hide_handled and handled:
                statement = statement.where(model.id.not_in(list(handled)))
            matched = statement.subquery()
            by_severity = {severity: int(count) for severity, count in session.execute(
                select(matched.c.severity, func.count()).group_by(matched.c.severity))}
            records = session.scalars(statement.order_by(
                model.import_id.desc(), model.uai, model.file_name, model.line, model.id)
                .limit(query.limit)).all()
            rows = [_row_from_record(record, handled.get(record.id)) for record in records]
        return RejectPage(rows, sum(by_severity.values()), by_severity, int(handled_count or 0))

    def facets(self) -> dict[str, list[str]]:
        """Distinct UAIs, codes and kinds present, plus the severities."""

        model = self.model
        with self.database.session() as session:
            def distinct(column: Any) -> list[str]:
                return [value for value in session.scalars(
                    select(column).distinct().order_by(column)) if value]
            return {"uai": distinct(model.uai), "code": distinct(model.code),
                    "severity": list(SEVERITY_ORDER), "kind": distinct(model.kind)}

    def set_handled(self, reject_ids: Iterable[int], handled: bool) -> None:
        """Mark rejects handled in the store beside the database."""
        self.handled_store.set(reject_ids, handled)

    def person(self, jointure: str, day: dt.date) -> PersonFacts | None:
        """The person of this jointure (in the directory, or only in the rejects)."""
        with self.database.session() as session:
            hit = next((hit for hit in find(session, jointure, limit=50).people
                        if hit.jointure == jointure), None)
            return person_facts(session, hit, day) if hit is not None else None


def _row_from_record(record: Any, mark: tuple[str, dt.datetime | None] | None) -> RejectRow:
    return RejectRow(id=record.id, import_id=record.import_id, uai=record.uai or "",
                     code=record.code, severity=record.severity, kind=record.kind or "",
                     file_name=record.file_name or "", line=record.line,
                     record_id=record.record_id or "", attribute=record.attribute or "",
                     raw_value=record.raw_value or "", message=record.message,
                     action=record.action or "", raw_xml=record.raw_xml or "",
                     handled=mark is not None, handled_by=mark[0] if mark else "",
                     handled_at=mark[1] if mark else None)


def handled_store_for(database_url: str, data_dir: Path) -> HandledStore:
    """The handled-marks file of one database, in the user data folder."""
    digest = hashlib.sha1(database_url.encode("utf-8")).hexdigest()[:10]
    return HandledStore(data_dir / "console" / f"rejets-traites-{digest}.json")


def open_rejects_source(database: Any | None, data_dir: Path) -> RejectsSource:
    """The rejects source for the console: the AAF reject store, or an empty one."""
    if database is None:
        return EmptyRejectsSource("Aucune base ouverte : aucun rejet à afficher.")
    return DatabaseRejectsSource(database, handled_store_for(database.url, data_dir))


class MemoryRejectsSource:
    """Rejects held in memory (scripted engine, tests)."""

    available = True
    note = ""

    def __init__(self, rows: Iterable[RejectRow] = ()) -> None:
        self._lock = threading.Lock()
        self._rows: dict[int, RejectRow] = {row.id: row for row in rows}

    def add(self, rows: Iterable[RejectRow]) -> None:
        """Append rejects (an import streaming them)."""
        with self._lock:
            for row in rows:
                self._rows[row.id] = row

    def query(self, query: RejectQuery) -> RejectPage:
        """Rejects matching ``query``."""
        with self._lock:
            found = [row for row in self._rows.values() if matches(row, query)]
            handled = sum(1 for row in self._rows.values() if row.handled and matches(
                row, replace(query, hide_handled=False)))
        found.sort(key=lambda row: (-row.import_id, row.uai, row.file_name, row.line or 0,
                                    row.id))
        return RejectPage(found[:query.limit], len(found),
                          dict(Counter(row.severity for row in found)), handled)

    def facets(self) -> dict[str, list[str]]:
        """Values present."""
        with self._lock:
            rows = list(self._rows.values())
        return {"uai": sorted({row.uai for row in rows if row.uai}),
                "code": sorted({row.code for row in rows}),
                "severity": list(SEVERITY_ORDER),
                "kind": sorted({row.kind for row in rows if row.kind})}

    def person(self, jointure: str, day: dt.date) -> PersonFacts | None:
        """No directory in memory."""
        return None

    def set_handled(self, reject_ids: Iterable[int], handled: bool) -> None:
        """Mark in memory."""
        with self._lock:
            for reject_id in reject_ids:
                if reject_id in self._rows:
                    self._rows[reject_id] = replace(
                        self._rows[reject_id], handled=handled,
                        handled_by=handler_label() if handled else "",
                        handled_at=utcnow() if handled else None)
