"""French wording shared by every layer: operating-system and TOML errors, plurals.

Python's ``OSError.strerror`` and ``tomllib``'s messages are English; these functions
give the French text of the common cases (the error number or the TOML message decides),
with the line and column of a TOML error. :func:`plural` is the one agreement of a count
and its noun. Standard library only.
"""

from __future__ import annotations

import datetime as dt
import errno
import re
import tomllib

OS_ERRORS = {
    errno.ENOENT: "fichier ou dossier introuvable",
    errno.EACCES: "permission refusée",
    errno.EPERM: "opération non permise",
    errno.EISDIR: "c'est un dossier, pas un fichier",
    errno.ENOTDIR: "un élément du chemin n'est pas un dossier",
    errno.EEXIST: "le fichier existe déjà",
    errno.ENOSPC: "plus de place sur le disque",
    errno.EROFS: "système de fichiers en lecture seule",
    errno.ENAMETOOLONG: "nom de fichier trop long",
    errno.EMFILE: "trop de fichiers ouverts",
    errno.EIO: "erreur d'entrée-sortie",
    errno.ENOTEMPTY: "dossier non vide",
    errno.EBUSY: "ressource occupée",
    errno.ELOOP: "trop de liens symboliques",
}

TOML_MESSAGES = (
    ("Invalid value", "valeur invalide"),
    ("Expected '=' after a key in a key/value pair", "« = » attendu après la clé"),
    ("Invalid statement", "instruction invalide"),
    ("Cannot overwrite a value", "valeur déjà définie"),
    ("Cannot declare", "table déclarée deux fois"),
    ("Unclosed array", "tableau non fermé"),
    ("Unclosed inline table", "table en ligne non fermée"),
    ("Unterminated string", "chaîne non terminée"),
    ("Illegal character", "caractère interdit"),
    ("Invalid initial character for a key part", "début de clé invalide"),
    ("Expected newline or end of document after a statement",
     "fin de ligne attendue après une instruction"),
    ("Invalid date or datetime", "date invalide"),
    ("Invalid hex value", "valeur hexadécimale invalide"),
)
_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)|\(at end of document\)")


def os_error_text(error: OSError) -> str:
    """The French reason of an operating-system error (``permission refusée``…)."""
    if error.errno in OS_ERRORS:
        return OS_ERRORS[error.errno]
    return f"erreur système n° {error.errno}" if error.errno else "erreur système"


def toml_error_text(error: tomllib.TOMLDecodeError) -> str:
    """The French reason of a TOML syntax error, with its line and column."""
    message = str(error)
    reason = next((french for english, french in TOML_MESSAGES if message.startswith(english)),
                  "syntaxe TOML invalide")
    position = _POSITION.search(message)
    if position is None:
        return reason
    if position.group(1):
        return f"{reason} (ligne {position.group(1)}, colonne {position.group(2)})"
    return f"{reason} (fin du fichier)"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``count`` and the noun agreeing with it, French rule (0 and 1 take the singular):
    ``plural(1, "élève")`` → ``1 élève``, ``plural(3, "élève")`` → ``3 élèves``,
    ``plural(2, "travail", "travaux")`` → ``2 travaux``."""
    noun = singular if abs(count) < 2 else (plural_form or f"{singular}s")
    return f"{count} {noun}"


MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")


def long_date(day: dt.date, *, with_year: bool = True, first: str = "1") -> str:
    """``15 juillet 2026`` (``first="1er"``: ``1er septembre``), in the messages' words."""
    text = f"{first if day.day == 1 else day.day} {MONTHS[day.month - 1]}"
    return f"{text} {day.year}" if with_year else text
