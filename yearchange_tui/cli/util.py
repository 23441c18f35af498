"""Shared pieces of the command line: exit codes, usage errors, settings and database.

Command modules (``cli/changeover.py``, ``cli/aaf.py``…) expose
``register(commands, common)`` and use these helpers; ``cli/main.py`` wires them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import grp
import json
import os
import re
import stat
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from yearchange_tui.config import CONFIG_VARIABLE, FILE_UMASK, ConfigError, Settings, load_settings
from yearchange_tui.ent.database import (
    Access,
    Database,
    DatabaseError,
    open_database,
    open_existing_database,
    sqlite_path,
    sqlite_write_denied,
    wait_for_write_lock,
)
from yearchange_tui.importing.limits import configure as configure_input_limits
from yearchange_tui.workflow.calendar import CalendarError, parse_day
from yearchange_tui.workflow.localtime import iso_local

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


JSON_HELP = ("résultat en JSON (identifiants stables en snake_case avec leur libellé "
             "français, heures ISO 8601 avec le décalage du fuseau)")
"""The help of every ``--json`` option."""


class UsageError(Exception):
    """Bad usage or bad input: printed in French on stderr, exit status 2."""


FRENCH_YES_NO = {"oui": True, "o": True, "non": False, "n": False}
"""The answers a yes/no option takes (``--import-automatique oui``)."""


def yes_no(text: str, words: dict[str, bool] = FRENCH_YES_NO) -> bool:
    """An option's « oui » / « non » (argparse ``type``)."""
    try:
        return words[text.strip().lower()]
    except KeyError as error:
        raise argparse.ArgumentTypeError(f"« {text} » : oui ou non attendu") from error


def day_option(text: str, option: str | None = None) -> dt.date:
    """A date given on the command line (``--at``, ``--opens``…): ``JJ/MM/AAAA`` or
    ``AAAA-MM-JJ``, read by the one date parser (:func:`~yearchange_tui.workflow.calendar.
    parse_day`, the console's and ``plan set``'s); a bad one exits 2 with its French message.
    """
    try:
        return parse_day(text)
    except CalendarError as error:
        raise UsageError(f"{option} : {error}" if option else str(error)) from error


def err(message: str) -> None:
    """Print a line on stderr."""
    print(message, file=sys.stderr)


def json_value(value: Any) -> Any:
    """What JSON cannot hold, as text: a time in ISO 8601 with ``T`` and the offset of the
    operator's zone (``2027-07-07T06:00:00+02:00``), a date ``AAAA-MM-JJ``, anything else
    as ``str``."""
    if isinstance(value, dt.date):
        return iso_local(value)
    return str(value)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON (UTF-8 kept readable; times as :func:`json_value`)."""
    print(json.dumps(data, ensure_ascii=False, indent=2, default=json_value))


def snake_id(label: str) -> str:
    """A stable snake_case identifier for a French label (``rubriques supprimées`` →
    ``rubriques_supprimees``)."""
    plain = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "_", plain.lower()).strip("_")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Resolve settings from the global options of ``args``."""
    cli = {"db": getattr(args, "db", None), "storage": getattr(args, "storage", None),
           "read_only": getattr(args, "read_only", False),
           "lock_timeout": getattr(args, "lock_timeout", None)}
    config_file = getattr(args, "config", None)
    settings = load_settings(cli, config_file=Path(config_file) if config_file else None)
    configure_input_limits(settings.input_limits)
    return settings


def config_for_children(args: argparse.Namespace) -> None:
    """Make the processes this command starts (the engine's worker and import children)
    read the same configuration file as this one, not the per-user file: ``--config``
    passed on through their environment. Called by the engine once it really starts (a
    command that is refused leaves the environment as it was)."""
    config_file = getattr(args, "config", None)
    if config_file:
        os.environ[CONFIG_VARIABLE] = str(Path(config_file).resolve())


def open_database_from_args(args: argparse.Namespace, access: Access = Access.READ_WRITE, *,
                            migrate: bool = False, wait_for_lock: bool = True,
                            refuse: str | None = None) -> tuple[Settings, Database]:
    """Open the database named by the settings, for one command.

    Without ``migrate`` nothing is created or upgraded: a missing database, an empty one or
    an older schema is refused (exit 2) with the command to run. With ``--read-only``
    every command reads: a read-write open becomes read-only (writing commands are
    refused before they open, see :func:`refuse_in_read_only`). When the database itself
    refuses this account's writes (a role given ``db grant-readonly``, a SQLite file it
    cannot write or opened ``mode=ro``), the connection is read-only and the returned
    settings say so (``read_only``, with the database as its source), as with the flag.

    Args:
        args: the command's arguments (global options).
        access: what the command does with the database: ``READ_ONLY`` for a command that
            only reads, ``ROLLBACK_ONLY`` for a dry run, ``READ_WRITE`` otherwise.
        migrate: create or upgrade the schema, reporting on stderr (the engine, which
            refuses to start read-only before it opens the database). Under
            ``--read-only`` nothing is migrated.
        wait_for_lock: a read-write command first waits (up to the ``lock_timeout``
            setting, saying so on stderr) while another program writes to a SQLite
            database, and is refused with ``BASE-VERROUILLEE`` (exit 2, nothing written)
            if it is still locked; the console opens without waiting.
        refuse: for a command that changes data, what it does (French, ``l'étape 2``): it
            is refused (:func:`refuse_in_read_only`) under ``--read-only`` before anything
            is opened, and when the database refuses this account's writes as soon as the
            one connection has said so (no second open to ask).

    Raises:
        DatabaseError: the database is missing, empty, at another schema, unreachable or
            locked.
        UsageError: ``refuse`` given and the run is read-only.
    """
    settings = settings_from_args(args)
    if refuse is not None and settings.read_only:
        refuse_in_read_only(settings, refuse)
    timeout = settings.lock_timeout
    if migrate:
        if settings.read_only:
            return settings, open_existing_database(settings.db_url, Access.READ_WRITE,
                                                    lock_timeout=timeout)
        return settings, open_database(settings.db_url, report=lambda line: err(f"… {line}"),
                                       lock_timeout=timeout)
    if settings.read_only and access is Access.READ_WRITE:
        access = Access.READ_ONLY
    database = open_existing_database(settings.db_url, access, lock_timeout=timeout)
    if database.write_denied is not None:
        settings.grant_read_only(database.write_denied)
        if refuse is not None:
            database.dispose()
            refuse_in_read_only(settings, refuse)
    if database.access is Access.READ_WRITE and wait_for_lock:
        try:
            wait_for_write_lock(settings.db_url, timeout, report=err)
        except BaseException:
            database.dispose()
            raise
    return settings, database


def database_write_denied(settings: Settings) -> str | None:
    """Why the configured database refuses this account's writes (French), None when it
    accepts them or cannot be opened yet (the command that opens it reports that)."""
    try:
        database = open_existing_database(settings.db_url, Access.READ_ONLY,
                                          lock_timeout=settings.lock_timeout)
    except DatabaseError:
        try:  # unreadable now (a WAL file no engine holds open): the file's mode still tells
            return sqlite_write_denied(settings.db_url)
        except DatabaseError:
            return None
    try:
        return database.write_denied
    finally:
        database.dispose()


def refuse_in_read_only(settings: Settings, what: str) -> None:
    """Raise a usage error when the run is read-only: the ``--read-only`` setting (support
    staff), or the database refusing this account's writes (a read-only PostgreSQL role,
    a SQLite file this account cannot write). The one check every changing command makes
    before it opens the database.

    Args:
        settings: the run's settings (the database's answer is recorded in them).
        what: the refused action, in French (``l'étape 2``).

    A command that opens the database through :func:`open_database_from_args` passes
    ``refuse=what`` instead: the same refusal, without opening the database a second time
    to ask whether it accepts writes.
    """
    if not settings.read_only:
        denied = database_write_denied(settings)
        if denied is not None:
            settings.grant_read_only(denied)
    if settings.read_only:
        raise UsageError(f"{settings.read_only_reason} : {what} — action interdite, rien "
                         "n'a été modifié.")


def _group_id(name: str) -> int:
    try:
        return int(name) if name.isdigit() else grp.getgrnam(name).gr_gid
    except KeyError as error:
        raise ConfigError(f"Groupe inconnu « {name} » (réglage group / YEARCHANGE_GROUP) : "
                          "créez-le ou corrigez le réglage.") from error


def share_with_group(settings: Settings) -> None:
    """Give the configured group the folders the tool writes to, setgid.

    The database's folder, the storage root and the data folder (with its logs and
    exports), when they exist: their group becomes the configured one and their setgid bit
    makes every file and folder created inside inherit it (readable by the group, never
    by others, under :data:`FILE_UMASK`).

    Raises:
        ConfigError: the group does not exist, or a folder cannot be given to it.
    """
    if not settings.group:
        return
    gid = _group_id(settings.group)
    folders = [settings.storage_dir, settings.data_dir, settings.data_dir / "logs",
               settings.exports_dir]
    try:
        database = sqlite_path(settings.db_url)
    except DatabaseError:
        database = None
    if database is not None:
        folders.insert(0, database.parent)
    for folder in folders:
        try:
            info = folder.stat()
        except OSError:
            continue  # not created yet: the folder above it passes the group on
        if not stat.S_ISDIR(info.st_mode):
            continue
        try:
            if info.st_gid != gid:
                os.chown(folder, -1, gid)
            if not info.st_mode & stat.S_ISGID:
                folder.chmod(stat.S_IMODE(info.st_mode) | stat.S_ISGID)
        except OSError as error:
            raise ConfigError(f"Impossible de confier le dossier {folder} au groupe "
                              f"« {settings.group} » : {error.strerror}.") from error


@contextmanager
def private_files(args: argparse.Namespace) -> Iterator[None]:
    """Everything created while the command runs is private to its account and group.

    Sets the umask to :data:`FILE_UMASK` (files 0640, folders 0750: minors' data is never
    readable by other accounts) and hands the configured group its folders; the previous
    umask is restored afterwards.
    """
    previous = os.umask(FILE_UMASK)
    try:
        try:
            settings = settings_from_args(args)
        except ConfigError:
            settings = None  # reported by the command that needs the settings
        if settings is not None:
            share_with_group(settings)
        yield
    finally:
        os.umask(previous)
