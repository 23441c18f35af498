"""Console themes: TOML files validated on load, turned into Textual themes.

A theme file holds ``name``, ``dark``, Textual's base colours (only ``primary`` is
required) and an optional ``[variables]`` table: our own variables (``status-done``…)
and Textual's (``footer-key-foreground``…). Missing variables of ours are derived from
the theme's semantic colours. A file that fails validation is skipped and reported;
the console shows one notification and keeps running on a fallback theme.

No Textual widget is touched here; runs on the UI thread at start-up.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

from yearchange_tui.french import os_error_text, toml_error_text

DEFAULT_THEME = "yearchange-dark"
"""The theme used when none is configured."""

FALLBACK_THEME = Theme(
    name="yearchange-secours",
    primary="#5f87d7",
    secondary="#5f8787",
    accent="#d7af5f",
    warning="#d7af00",
    error="#d75f5f",
    success="#5faf5f",
    foreground="#d0d0d0",
    background="#1c1c1c",
    surface="#262626",
    panel="#303030",
    dark=True,
)
"""Built into the code, so the console runs even when every theme file is missing."""

BASE_COLOURS = ("primary", "secondary", "accent", "foreground", "background", "surface",
                "panel", "boost", "warning", "error", "success")
METADATA_KEYS = ("description", "author")

OWN_VARIABLES = ("status-pending", "status-running", "status-done", "status-failed",
                 "status-blocked", "status-missed", "status-skipped", "status-none",
                 "reject-error", "reject-warning", "reject-info", "timeline-today",
                 "timeline-window", "grid-marked")
"""Variables the console's stylesheet uses; each theme may set them."""

_DERIVED_FROM = {
    "status-pending": "foreground-muted",
    "status-running": "accent",
    "status-done": "success",
    "status-failed": "error",
    "status-blocked": "warning",
    "status-missed": "warning",
    "status-skipped": "foreground-muted",
    "status-none": "foreground-muted",
    "reject-error": "error",
    "reject-warning": "warning",
    "reject-info": "primary",
    "timeline-today": "error",
    "timeline-window": "accent",
    "grid-marked": "accent",
}

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class ThemeFileError(Exception):
    """A theme file is unreadable or invalid (French message naming the file)."""


@dataclass
class ThemeLoad:
    """What loading the theme folders gave."""

    themes: dict[str, Theme] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def derived_variables(generated: dict[str, str]) -> dict[str, str]:
    """Our variables from a theme's generated colour system (``$success``…)."""
    return {name: generated[source] for name, source in _DERIVED_FROM.items()
            if source in generated}


def _check_colour(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ThemeFileError(f"{where} : une couleur est attendue (texte), reçu {value!r}.")
    try:
        Color.parse(value)
    except ColorParseError as error:
        raise ThemeFileError(f"{where} : couleur invalide « {value} » ({error}).") from error
    return value


def theme_from_data(data: dict[str, object], origin: str) -> Theme:
    """Build a Textual theme from the parsed TOML of one file.

    Args:
        data: the parsed file.
        origin: the file name, for messages.

    Raises:
        ThemeFileError: an unknown key, a missing name or primary, a bad colour.
    """
    known = {"name", "dark", "variables", *BASE_COLOURS, *METADATA_KEYS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ThemeFileError(f"{origin} : clé inconnue {', '.join(unknown)}.")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ThemeFileError(f"{origin} : « name » manquant ou invalide (minuscules, chiffres, "
                             "tirets).")
    if "primary" not in data:
        raise ThemeFileError(f"{origin} : la couleur « primary » est obligatoire.")
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeFileError(f"{origin} : « dark » doit valoir true ou false.")
    colours = {key: _check_colour(data[key], f"{origin} : {key}")
               for key in BASE_COLOURS if key in data}
    variables_data = data.get("variables", {})
    if not isinstance(variables_data, dict):
        raise ThemeFileError(f"{origin} : [variables] doit être une table.")
    variables: dict[str, str] = {}
    for key, value in variables_data.items():
        if key in OWN_VARIABLES or key.endswith(("-background", "-foreground", "-color")):
            variables[key] = _check_colour(value, f"{origin} : variables.{key}")
        elif isinstance(value, str):
            variables[key] = value
        else:
            raise ThemeFileError(f"{origin} : variables.{key} doit être un texte.")
    theme = Theme(name=name, dark=dark, variables=variables, **colours)  # type: ignore[arg-type]
    try:
        generated = theme.to_color_system().generate()
    except Exception as error:
        raise ThemeFileError(f"{origin} : couleurs incohérentes ({error}).") from error
    for key, value in derived_variables(generated).items():
        theme.variables.setdefault(key, value)
    return theme


def load_theme_file(path: Path) -> Theme:
    """Read and validate one ``*.toml`` theme file.

    Raises:
        ThemeFileError: unreadable, not TOML, or invalid.
    """
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise ThemeFileError(f"{path.name} : illisible ({os_error_text(error)}).") from error
    except tomllib.TOMLDecodeError as error:
        raise ThemeFileError(f"{path.name} : TOML invalide ({toml_error_text(error)}).") from error
    return theme_from_data(data, path.name)


def load_theme_dirs(folders: Iterable[Path]) -> ThemeLoad:
    """Load every ``*.toml`` of ``folders``; later folders override earlier ones by name.

    Never raises: problems are collected in :attr:`ThemeLoad.errors`.
    """
    result = ThemeLoad()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = load_theme_file(path)
            except ThemeFileError as error:
                result.errors.append(str(error))
                continue
            result.themes[theme.name] = theme
            result.sources[theme.name] = path
    return result
