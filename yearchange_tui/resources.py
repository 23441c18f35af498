"""Locate the data folders shipped with the package (``themes/``, ``sample_data/``).

In a wheel they are installed inside the package; in a checkout (or an editable
install) they sit at the repository root, next to the package.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder ``name`` (``themes`` or ``sample_data``), installed or in a checkout.

    Raises:
        FileNotFoundError: when the folder is in neither place.
    """
    for candidate in (_PACKAGE_DIR / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"dossier de données « {name} » introuvable près de {_PACKAGE_DIR}")


def sample_data_dir() -> Path:
    """Return the ``sample_data`` folder."""
    return data_dir("sample_data")


def themes_dir() -> Path:
    """Return the ``themes`` folder."""
    return data_dir("themes")
