"""System errors in French, with the path concerned, for operators.

Python's own texts (``[Errno 28] No space left on device``) are English and raw; every
place that shows an error to an operator — the CLI's last-resort handler, a unit's or a
request's failure in the engine — goes through :func:`describe_error`, which words system
errors with :mod:`yearchange_tui.french` (the one table of their French reasons).
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError

from yearchange_tui.french import os_error_text

UNKNOWN_PATH = "chemin non précisé par le système"


def _path(error: OSError) -> str:
    paths = [str(name) for name in (error.filename, error.filename2) if name not in (None, "")]
    return " → ".join(paths) if paths else f"({UNKNOWN_PATH})"


def describe_os_error(error: OSError) -> str:
    """An :class:`OSError` in French (:func:`~yearchange_tui.french.os_error_text`) with
    its path: ``plus de place sur le disque : /srv/….zip``."""
    return f"{os_error_text(error)} : {_path(error)}"


def _describe_sqlite(error: sqlite3.Error) -> str | None:
    text = str(error)
    if "database or disk is full" in text:
        return "plus de place sur le disque : la base de données ne peut plus grandir"
    if "database is locked" in text:
        return "base de données verrouillée par un autre programme qui y écrit"
    if "readonly database" in text and "attempt to write" in text:
        return ("base de données en lecture seule : le fichier ou son dossier n'est pas "
                "accessible en écriture")
    if "disk I/O error" in text:
        return "erreur d'entrée-sortie du disque sur la base de données"
    return None


def describe_error(error: BaseException) -> str:
    """The operator's text for ``error``: system errors in French, others as they are."""
    if isinstance(error, OSError):
        return describe_os_error(error)
    original = error.orig if isinstance(error, DBAPIError) else error
    if isinstance(original, OSError):
        return describe_os_error(original)
    if isinstance(original, sqlite3.Error):
        french = _describe_sqlite(original)
        if french is not None:
            return french
    return str(error) or type(error).__name__
