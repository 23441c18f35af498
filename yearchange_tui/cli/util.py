"""Shared pieces of the command line: exit codes, usage errors, settings and database.

Command modules (``changeover/commands.py``, ``aaf/commands.py``…) expose
``register(commands, common)`` and use these helpers; ``cli.py`` wires them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from yearchange_tui.config import Settings, load_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad usage or bad input: printed in French on stderr, exit status 2."""


def err(message: str) -> None:
    """Print a line on stderr."""
    print(message, file=sys.stderr)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON (UTF-8 kept readable)."""
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Resolve settings from the global options of ``args``."""
    cli = {"db": getattr(args, "db", None), "storage": getattr(args, "storage", None),
           "read_only": getattr(args, "read_only", False)}
    config_file = getattr(args, "config", None)
    return load_settings(cli, config_file=Path(config_file) if config_file else None)


def open_database_from_args(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Open (creating or upgrading) the database named by the settings; report on stderr."""
    from yearchange_tui.ent.database import open_database

    settings = settings_from_args(args)
    return settings, open_database(settings.db_url, report=lambda line: err(f"… {line}"))


def refuse_in_read_only(settings: Settings, what: str) -> None:
    """Raise a usage error when the run is read-only (support staff)."""
    if settings.read_only:
        raise UsageError(f"Mode consultation (--read-only) : {what} est interdit.")
