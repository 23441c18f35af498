"""Is this delivery one already imported? The same files, with the same SHA-256 each.

Every import records its files with their SHA-256 (``aaf_import_files``, computed while
the files are streamed). A delivery whose files — by base name and SHA-256, wherever
they come from (a folder, the same archive renamed, the files given one by one) — are
exactly those of an import committed before is the same delivery:
:func:`previous_import` finds that import (hashing the files only when an earlier
import has files of the same names and sizes), and :class:`AlreadyImportedError` is the
importer's answer unless the operator asked to import it again (``--reimport``).
Runs on the caller's thread.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from yearchange_tui.importing.models import AafImport, AafImportFile
from yearchange_tui.workflow.localtime import format_local, iso_local

CODE_ALREADY_IMPORTED = "AAF-LIVRAISON-DEJA-IMPORTEE"
"""The delivery was already imported (same files, same SHA-256): nothing changed."""

TIMETABLE_MODE = "timetable"


class DeliveredFile(Protocol):
    """A file of the delivery being imported (:class:`~yearchange_tui.aaf.delivery.DeliveryFile`)."""

    name: str
    size: int

    @property
    def sha256(self) -> str:
        """Its SHA-256 (computed on first use, the file streamed)."""
        ...


def _base(name: str) -> str:
    return PurePosixPath(name).name


def previous_import(session: Session, files: Sequence[DeliveredFile]) -> AafImport | None:
    """The newest committed AAF import of exactly these files, or None.

    The files are compared by base name and SHA-256. Their SHA-256 are only computed
    when an earlier import has files of the same names and sizes: a new delivery costs
    no extra read.

    Args:
        session: an open session.
        files: the delivery's files.
    """
    if not files:
        return None
    shape = sorted((_base(f.name), f.size) for f in files)
    candidates = (
        select(AafImportFile.import_id).distinct()
        .join(AafImport, AafImport.id == AafImportFile.import_id)
        .where(AafImportFile.size == shape[0][1], AafImport.mode != TIMETABLE_MODE,
               AafImport.finished_at.is_not(None)))
    files_of: dict[int, list[tuple[str, int, str]]] = {}
    for import_id, name, size, sha in session.execute(select(
            AafImportFile.import_id, AafImportFile.name, AafImportFile.size,
            AafImportFile.sha256).where(AafImportFile.import_id.in_(candidates))):
        files_of.setdefault(import_id, []).append((name, size, sha))
    wanted: list[tuple[str, str]] | None = None
    for import_id in sorted(files_of, reverse=True):
        rows = files_of[import_id]
        if sorted((_base(name), size) for name, size, _sha in rows) != shape:
            continue
        if wanted is None:
            wanted = sorted((_base(f.name), f.sha256) for f in files)
        if sorted((_base(name), sha) for name, _size, sha in rows) == wanted:
            return session.get(AafImport, import_id)
    return None


class AlreadyImportedError(Exception):
    """The delivery was already imported: nothing was changed (French message)."""

    code = CODE_ALREADY_IMPORTED

    def __init__(self, import_id: int, imported_at: dt.datetime | None) -> None:
        self.import_id = import_id
        self.imported_at = imported_at
        when = format_local(imported_at, "%d/%m/%Y à %H:%M") if imported_at else "?"
        self.message = (f"Livraison déjà importée le {when} (import AAF n° {import_id}) : "
                        "mêmes fichiers, même empreinte SHA-256 ; rien n'a été modifié.")
        self.action = ("Rien à faire. Pour l'importer de nouveau quand même : "
                       "yearchange import-aaf --reimport CHEMIN (tracé dans l'audit).")
        super().__init__(self.message)

    @classmethod
    def of(cls, previous: AafImport) -> AlreadyImportedError:
        """The answer for a delivery already imported as ``previous``."""
        return cls(previous.id, previous.finished_at or previous.started_at)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {"already_imported": True, "code": self.code, "import_id": self.import_id,
                "imported_at": iso_local(self.imported_at), "message": self.message,
                "action": self.action}
