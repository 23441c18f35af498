"""What an import did, as a typed value: the AAF and timetable importers' common answer.

:class:`ImportOutcome` is built by the importers' results (``ImportResult.outcome()``,
``TimetableImportResult.outcome()``) or, for an import refused or broken before it had a
result, by the constructors below. :func:`run_import` runs one import and always returns an
outcome for what an operator can fix (a refused file, a guard, a bad request); the
``import-aaf`` and ``import-timetable`` commands print it, and the engine's import child
sends it back to the engine, which takes the request's status, answer and events from it.
Runs on the caller's thread.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from yearchange_tui.importing.identity import AlreadyImportedError
from yearchange_tui.importing.xmlsafe import RefusedFileError
from yearchange_tui.workflow.audit import audit
from yearchange_tui.workflow.guards import GuardRefused
from yearchange_tui.workflow.units import NoCurrentYearError

if TYPE_CHECKING:
    from yearchange_tui.ent.database import Database

CODE_BAD_REQUEST = "IMPORT-DEMANDE-INVALIDE"
"""Refused before any file was read: unknown establishment, no current school year…"""
CODE_FAILED = "IMPORT-ECHEC"
"""An unexpected failure (the log has the traceback); nothing was written."""
CODE_INTERRUPTED = "IMPORT-INTERROMPU"
"""Stopped with the engine before its commit; nothing was written."""

KIND_LABELS = {"aaf": "Import AAF", "timetable": "Import d'emploi du temps"}


class ImportStatus(enum.StrEnum):
    """How an import ended."""

    DONE = "done"
    REFUSED = "refused"  # a file refused whole, a guard, a bad request: nothing written
    FAILED = "failed"  # an unexpected error: nothing written
    INTERRUPTED = "interrupted"  # stopped before its commit: nothing written
    ALREADY_IMPORTED = "already-imported"  # the same delivery was imported: nothing to do


@dataclass(frozen=True)
class ImportOutcome:
    """What one import did, or why it did nothing.

    Attributes:
        kind: ``aaf`` or ``timetable``.
        status: how it ended.
        summary: one French line for an operator (the engine's answer to the request).
        code: the stable code of a refusal or failure (empty when done).
        message: the French explanation of a refusal or failure (empty when done).
        action: what to do about a refused file.
        file: the refused file, as shown to operators.
        line: the offending line of the refused file, when known.
        by_guard: refused by a change-over guard (an MOE override may lift it).
        import_id: the import's number (None for a dry run or when nothing was written).
        dry_run: nothing was recorded on purpose.
        counts: per establishment UAI (``""``: records with no establishment), what was
            written (created, updated…).
        rejects: per establishment UAI, reject counts by code.
        rejects_by_code: reject counts by code over the whole import.
        details: what the importer adds to the audit entry (records, step 4).
    """

    kind: str
    status: ImportStatus
    summary: str
    code: str = ""
    message: str = ""
    action: str = ""
    file: str = ""
    line: int | None = None
    by_guard: bool = False
    import_id: int | None = None
    dry_run: bool = False
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    rejects: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    rejects_by_code: Mapping[str, int] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def exit_status(self) -> int:
        """The command's exit status: 0 done or nothing to do (already imported), 2 bad
        input (a refused file, a bad request), 1 otherwise (a guard, a failure, an
        interruption)."""
        if self.status in (ImportStatus.DONE, ImportStatus.ALREADY_IMPORTED):
            return 0
        if self.status is ImportStatus.REFUSED and not self.by_guard:
            return 2
        return 1

    @property
    def reject_total(self) -> int:
        """Rejects over the whole import."""
        return sum(self.rejects_by_code.values())

    def refusal_dict(self) -> dict[str, Any]:
        """The JSON the commands print for a refusal."""
        if self.by_guard:
            return {"refused": True, "code": self.code, "message": self.message}
        return {"refused": True, "code": self.code, "file": self.file, "line": self.line,
                "message": self.message, "action": self.action}

    def audit_details(self, source: Sequence[str]) -> dict[str, Any]:
        """The details of the import's audit entry."""
        if self.status is ImportStatus.DONE:
            return {"source": list(source), "import_id": self.import_id,
                    "rejects": dict(self.rejects_by_code), **self.details}
        if self.by_guard:
            return {"source": list(source), "guard": self.code, "message": self.message}
        if self.status is ImportStatus.ALREADY_IMPORTED:
            return {"source": list(source), "code": self.code, "import_id": self.import_id,
                    "message": self.message}
        return {"source": list(source), "code": self.code, "file": self.file,
                "line": self.line, "message": self.message}

    @classmethod
    def refused_file(cls, kind: str, error: RefusedFileError) -> ImportOutcome:
        """A file refused whole (nothing written)."""
        return cls(kind, ImportStatus.REFUSED, str(error), code=error.code,
                   message=error.message, action=error.action, file=error.file,
                   line=error.line)

    @classmethod
    def refused_by_guard(cls, kind: str, refusal: GuardRefused) -> ImportOutcome:
        """An import a change-over guard refused (nothing written)."""
        return cls(kind, ImportStatus.REFUSED, f"[{refusal.code}] {refusal.message}",
                   code=refusal.code, message=refusal.message, by_guard=True)

    @classmethod
    def already_imported(cls, kind: str, answer: AlreadyImportedError) -> ImportOutcome:
        """The delivery was already imported (nothing written); ``import_id`` is that
        earlier import."""
        return cls(kind, ImportStatus.ALREADY_IMPORTED, answer.message, code=answer.code,
                   message=answer.message, action=answer.action,
                   import_id=answer.import_id, details=answer.as_dict())

    @classmethod
    def bad_request(cls, kind: str, message: str) -> ImportOutcome:
        """Refused before any file was read (nothing written)."""
        return cls(kind, ImportStatus.REFUSED, message, code=CODE_BAD_REQUEST,
                   message=message)

    @classmethod
    def failed(cls, kind: str, message: str) -> ImportOutcome:
        """An unexpected failure (nothing written)."""
        return cls(kind, ImportStatus.FAILED, f"{_label(kind)} en échec : {message}",
                   code=CODE_FAILED, message=message)

    @classmethod
    def interrupted(cls, kind: str) -> ImportOutcome:
        """Stopped before its commit (nothing written)."""
        message = "interrompu avant son enregistrement : rien n'a été importé"
        return cls(kind, ImportStatus.INTERRUPTED, f"{_label(kind)} {message}",
                   code=CODE_INTERRUPTED, message=message)


def _label(kind: str) -> str:
    return KIND_LABELS.get(kind, "Import")


class HasOutcome(Protocol):
    """An importer's result: it knows its outcome."""

    def outcome(self) -> ImportOutcome:
        """The typed outcome of the import."""
        ...


ResultT = TypeVar("ResultT", bound=HasOutcome)


def run_import(kind: str, call: Callable[[], ResultT], *,
               bad_request: tuple[type[Exception], ...] = (),
               audit_in: Database | None = None,
               source: Sequence[str] = ()) -> tuple[ImportOutcome, ResultT | None]:
    """Run one import; turn what an operator can fix into an outcome.

    Args:
        kind: ``aaf`` or ``timetable``.
        call: runs the import (``import_delivery``, ``import_timetable``) and returns its
            result.
        bad_request: the importer's exceptions for a request refused before any file was
            read (besides :class:`~yearchange_tui.workflow.units.NoCurrentYearError`).
        audit_in: record the outcome (done or refused) in this database's audit trail as
            ``import-<kind>`` (None: the importer audits itself, or a dry run).
        source: the paths imported, for the audit entry.

    Returns:
        The outcome, and the importer's result when it finished.

    Raises:
        Exception: an unexpected failure, as raised (the caller logs its traceback).
    """
    result: ResultT | None = None
    try:
        result = call()
    except RefusedFileError as error:
        outcome = ImportOutcome.refused_file(kind, error)
    except GuardRefused as refusal:
        outcome = ImportOutcome.refused_by_guard(kind, refusal)
    except AlreadyImportedError as answer:
        outcome = ImportOutcome.already_imported(kind, answer)
    except (NoCurrentYearError, *bad_request) as error:
        return ImportOutcome.bad_request(kind, str(error)), None
    else:
        outcome = result.outcome()
    if audit_in is not None:
        with audit_in.session() as session:
            audit(session, f"import-{kind}", outcome.status.value,
                  details=outcome.audit_details(source))
    return outcome, result
