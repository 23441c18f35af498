"""Automatic timetable imports from a watched drop folder, processed in name order.

Establishments (or their timetable software) drop exports into a folder; each file
is imported in automatic mode (:data:`~yearchange_tui.timetable.importer.MODE_AUTOMATIC`),
one after another, **sorted by name** (entcore's behaviour). Automatic mode is
refused for projects without the option and before the establishment's first
manual import of the year (seed §2.2.3). The establishment comes from the file name
(any ``[0-9]{7}[A-Z]``, as UDT drops are named ``<UAI>_<horodatage>_UDT.zip``) or
else from the file itself (EDT ``UAI``, STS ``UAJ``). A processed file is moved to
``importes/``, a refused one to ``refuses/`` with a ``.refus.txt`` note beside it,
so the folder only holds what is still to do. Every file is its own transaction: a file
refused, or failing unexpectedly (left in the folder for the next pass), never stops the
files after it, all imported in this one process. Runs on the caller's thread (the CLI
loop, or an engine job calling :func:`process_drop_folder`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yearchange_tui.ent.base import utcnow
from yearchange_tui.ent.database import Database
from yearchange_tui.ent.errors import describe_error
from yearchange_tui.importing.outcome import CODE_FAILED
from yearchange_tui.timetable.importer import (
    MODE_AUTOMATIC,
    TimetableImportResult,
    TimetableUsageError,
    import_timetable,
)
from yearchange_tui.timetable.reader import inspect_timetable
from yearchange_tui.timetable.udt import uai_from_name
from yearchange_tui.timetable.xmlsafe import TimetableFileError
from yearchange_tui.workflow.guards import GuardRefused

log = logging.getLogger(__name__)

DONE_FOLDER = "importes"
REFUSED_FOLDER = "refuses"


@dataclass
class DropOutcome:
    """What happened to one dropped file."""

    name: str
    uai: str
    status: str  # importé, refusé, échec (unexpected: left in the folder for the next pass)
    code: str = ""
    message: str = ""
    moved_to: str = ""
    result: TimetableImportResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "uai": self.uai, "status": self.status, "code": self.code,
                "message": self.message, "moved_to": self.moved_to,
                "result": self.result.to_dict() if self.result else None}


def pending_files(folder: Path) -> list[Path]:
    """Files waiting in the drop folder, sorted by name (hidden and partial ones skipped)."""
    return sorted((p for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith(".")
                   and not p.name.endswith((".part", ".tmp", ".refus.txt"))),
                  key=lambda p: p.name)


def guess_uai(path: Path) -> str:
    """The establishment of a dropped file: from its name, else from its content."""
    uai = uai_from_name(path.name)
    if uai:
        return uai
    try:
        return inspect_timetable(path).uai
    except TimetableFileError:
        return ""


def _move(path: Path, folder: Path, moment: dt.datetime) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / f"{moment:%Y%m%d-%H%M%S}_{path.name}"
    counter = 1
    while target.exists():
        target = folder / f"{moment:%Y%m%d-%H%M%S}-{counter}_{path.name}"
        counter += 1
    os.replace(path, target)
    return target


def process_drop_folder(database: Database, folder: Path | str,
                        now: dt.datetime | None = None) -> list[DropOutcome]:
    """Import every file waiting in ``folder``, in name order, in automatic mode.

    Args:
        database: the open database.
        folder: the drop folder.
        now: the time recorded (tests).

    Returns:
        One outcome per file, in the order processed.

    Raises:
        TimetableUsageError: the folder does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TimetableUsageError(f"Dossier de dépôt introuvable : {folder}.")
    outcomes: list[DropOutcome] = []
    for path in pending_files(folder):
        moment = now or utcnow()
        uai = guess_uai(path)
        outcome = DropOutcome(path.name, uai, "refusé")
        try:
            if not uai:
                raise TimetableUsageError(
                    "Établissement introuvable : ni le nom du fichier ni son contenu ne donnent "
                    "d'UAI (nommer le dépôt <UAI>_<horodatage>_UDT.zip).")
            outcome.result = import_timetable(database, path, uai, mode=MODE_AUTOMATIC, now=now)
            outcome.status = "importé"
        except (TimetableFileError, GuardRefused) as refusal:
            outcome.code, outcome.message = refusal.code, refusal.message
        except TimetableUsageError as error:
            outcome.code, outcome.message = "usage", str(error)
        except Exception as error:  # one failing file never stops the others
            # Unexpected (a database error…): nothing of it was written; the file stays
            # in the folder for the next pass, the others are imported.
            log.exception("Import automatique de %s en échec.", path.name)
            outcome.status, outcome.code = "échec", CODE_FAILED
            outcome.message = describe_error(error)
            outcomes.append(outcome)
            continue
        target = folder / (DONE_FOLDER if outcome.status == "importé" else REFUSED_FOLDER)
        moved = _move(path, target, moment)
        outcome.moved_to = str(moved)
        if outcome.status != "importé":
            note = moved.with_name(moved.name + ".refus.txt")
            note.write_text(f"[{outcome.code}] {outcome.message}\n", encoding="utf-8")
        outcomes.append(outcome)
    return outcomes
