"""Settings: defaults, the config file, ``YEARCHANGE_*`` environment variables, the CLI.

Later sources win: default < config file < environment < command line. Each value
remembers where it came from, so ``yearchange config`` can tell the operator.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platformdirs import user_config_dir, user_data_dir

from yearchange_tui.ent.database import DEFAULT_LOCK_TIMEOUT
from yearchange_tui.french import os_error_text, toml_error_text
from yearchange_tui.importing.limits import InputLimits

APP_NAME = "yearchange_tui"


class ConfigError(Exception):
    """The configuration file is unreadable or holds a bad value (French message)."""


def default_data_dir() -> Path:
    """The per-user data folder (database, storage, demo, logs)."""
    override = os.environ.get("YEARCHANGE_DATA_DIR")
    return Path(override).expanduser() if override else Path(user_data_dir(APP_NAME))


CONFIG_VARIABLE = "YEARCHANGE_CONFIG"
"""The configuration file's path (``--config`` sets it for the processes a command starts)."""


def default_config_file() -> Path:
    """The per-user configuration file path (it need not exist)."""
    override = os.environ.get(CONFIG_VARIABLE)
    if override:
        return Path(override).expanduser()
    return Path(user_config_dir(APP_NAME)) / "config.toml"


@dataclass(frozen=True)
class Setting:
    """One value with the place it came from (``défaut``, a file path, ``YEARCHANGE_DB``, ``--db``)."""

    value: Any
    source: str


@dataclass
class Settings:
    """Resolved settings of one run."""

    values: dict[str, Setting] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key].value

    @property
    def db_url(self) -> str:
        """SQLAlchemy URL of the database."""
        return str(self["db"])

    @property
    def storage_dir(self) -> Path:
        """Root folder of stored files (documents, attachments, archives)."""
        return Path(self["storage"]).expanduser()

    @property
    def read_only(self) -> bool:
        """Support-staff mode: nothing that changes data is allowed."""
        return bool(self["read_only"])

    def grant_read_only(self, reason: str) -> None:
        """Record the database's answer: it refuses this account's writes (``reason``, French).

        From then on :attr:`read_only` is true whatever the flag said, and
        :attr:`read_only_reason` names the database as the source.
        """
        self.values["read_only"] = Setting(True, f"{READ_ONLY_BY_DATABASE} ({reason})")

    @property
    def read_only_by_database(self) -> bool:
        """True when the database itself refuses this account's writes."""
        return self.values["read_only"].source.startswith(READ_ONLY_BY_DATABASE)

    @property
    def read_only_reason(self) -> str:
        """Why this run is read-only, in French, capitalised to open a sentence
        (« Accès en lecture seule accordé par la base (…) » or « Mode consultation
        (--read-only) »); empty when it is not."""
        if not self.read_only:
            return ""
        setting = self.values["read_only"]
        reason = (setting.source if self.read_only_by_database
                  else f"mode consultation ({setting.source})")
        return reason[:1].upper() + reason[1:]

    @property
    def lock_timeout(self) -> float:
        """Seconds a command waits for a SQLite database another program is writing to."""
        return float(self["lock_timeout"])

    @property
    def group(self) -> str:
        """The group that may read what the tool creates (empty: the account's own)."""
        return str(self["group"] or "")

    @property
    def input_limits(self) -> InputLimits:
        """The caps on what an import reads (defaults, then the ``[limits]`` section)."""
        setting = self.values.get("limits")
        return InputLimits().with_values(dict(setting.value) if setting else {})

    @property
    def data_dir(self) -> Path:
        """The per-user data folder."""
        return Path(self["data_dir"])

    @property
    def exports_dir(self) -> Path:
        """Where the console writes its CSV exports (``exports``, default DATA/exports)."""
        return Path(self["exports"]).expanduser()

    def describe(self) -> list[tuple[str, str, str]]:
        """Rows of (name, value, source) for display; passwords in URLs are masked."""
        return [(name, mask_password(str(setting.value)), setting.source)
                for name, setting in self.values.items()]


# ``scheme://user:password@host``: the password part of a URL's authority.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*):[^@/?#\s]*@")


def mask_password(text: str) -> str:
    """``text`` with every URL password replaced by ``***`` (for display and logs)."""
    return _URL_PASSWORD.sub(lambda match: f"{match['head']}:***@", text)


READ_ONLY_BY_DATABASE = "accès en lecture seule accordé par la base"
"""The source of the read-only setting when the database refuses the account's writes."""

_ENV = {"db": "YEARCHANGE_DB", "storage": "YEARCHANGE_STORAGE", "read_only": "YEARCHANGE_READ_ONLY",
        "lock_timeout": "YEARCHANGE_LOCK_TIMEOUT", "group": "YEARCHANGE_GROUP",
        "exports": "YEARCHANGE_EXPORTS"}
_KEYS = ("db", "storage", "read_only", "lock_timeout", "group", "exports")
# Everything the tool creates is private to its account and group (minors' data).
FILE_UMASK = 0o027
_BOOL_TRUE = {"1", "true", "yes", "oui", "on"}


def load_settings(cli: dict[str, Any] | None = None, *,
                  config_file: Path | None = None) -> Settings:
    """Resolve the settings of this run.

    Args:
        cli: values given on the command line (None means not given).
        config_file: the TOML file to read; defaults to the per-user file.

    Raises:
        ConfigError: for an unreadable file or an unknown key in it.
    """
    data_dir = default_data_dir()
    settings = Settings({
        "data_dir": Setting(str(data_dir), "défaut"),
        "db": Setting(f"sqlite:///{data_dir / 'yearchange.db'}", "défaut"),
        "storage": Setting(str(data_dir / "storage"), "défaut"),
        "read_only": Setting(False, "défaut"),
        "lock_timeout": Setting(DEFAULT_LOCK_TIMEOUT, "défaut"),
        "group": Setting("", "défaut"),
        "exports": Setting(str(data_dir / "exports"), "défaut"),
    })
    path = config_file or default_config_file()
    try:
        present = path.is_file()
    except OSError as error:  # a folder on the way that this account cannot read
        raise ConfigError(f"Fichier de configuration illisible {path} : {os_error_text(error)}.") from error
    if present:
        try:
            with path.open("rb") as handle:
                content = tomllib.load(handle)
        except OSError as error:
            raise ConfigError(f"Fichier de configuration illisible {path} : "
                              f"{os_error_text(error)}.") from error
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"Fichier de configuration illisible {path} : "
                              f"{toml_error_text(error)}.") from error
        general = content.get("yearchange", content)
        for key, value in general.items():
            if key in ("keys", "theme", "engine"):
                settings.values[key] = Setting(value, str(path))
                continue
            if key == "limits":
                settings.values[key] = Setting(_checked_limits(value, path), str(path))
                continue
            if key not in _KEYS:
                raise ConfigError(f"Clé inconnue « {key} » dans {path}.")
            settings.values[key] = Setting(value, str(path))
    for key, variable in _ENV.items():
        raw = os.environ.get(variable)
        if raw:
            value: Any = raw.strip().lower() in _BOOL_TRUE if key == "read_only" else raw
            settings.values[key] = Setting(value, variable)
    for key, value in (cli or {}).items():
        if value is not None and value is not False:
            settings.values[key] = Setting(value, f"--{key.replace('_', '-')}")
    _check_lock_timeout(settings.values["lock_timeout"])
    return settings


def _check_lock_timeout(setting: Setting) -> None:
    try:
        seconds = float(setting.value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(setting.value, bool) or not 0 <= seconds <= 86400:
        raise ConfigError(f"Délai d'attente d'une base verrouillée invalide « {setting.value} » "
                          f"({setting.source}) : un nombre de secondes entre 0 et 86400.")


def _checked_limits(section: Any, path: Path) -> dict[str, int]:
    """The ``[limits]`` section: known keys, each a whole number of at least 1."""
    if not isinstance(section, dict):
        raise ConfigError(f"La clé « limits » de {path} doit être une section [limits].")
    checked: dict[str, int] = {}
    for key, value in section.items():
        if key not in InputLimits.config_keys():
            raise ConfigError(f"Clé inconnue « {key} » dans la section [limits] de {path} "
                              f"(clés possibles : {', '.join(InputLimits.config_keys())}).")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"Limite invalide « {key} = {value} » dans {path} : un nombre "
                              "entier supérieur ou égal à 1.")
        checked[key] = value
    return checked


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s : %(message)s"
"""The engine log's line format (the engine, its local worker processes, the workers)."""


class MaskingFormatter(logging.Formatter):
    """Formats a record, then hides any URL password it holds (logs never keep secrets)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_password(super().format(record))
