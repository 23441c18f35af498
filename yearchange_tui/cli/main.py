"""Command line: parse arguments, build settings and database, run a command.

Exit status: 0 success, 1 a run or check failed, 2 bad usage or bad input.
Operator-facing text is French.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError

from yearchange_tui import __version__
from yearchange_tui.changeover.runner import ReadOnlyError
from yearchange_tui.cli import aaf as cli_aaf
from yearchange_tui.cli import bench as cli_bench
from yearchange_tui.cli import changeover as cli_changeover
from yearchange_tui.cli import console as cli_console
from yearchange_tui.cli import db as cli_db
from yearchange_tui.cli import engine as cli_engine
from yearchange_tui.cli import fleet as cli_fleet
from yearchange_tui.cli import project as cli_project
from yearchange_tui.cli import requests as cli_requests
from yearchange_tui.cli import support as cli_support
from yearchange_tui.cli import timetable as cli_timetable
from yearchange_tui.cli.parser import FrenchParser
from yearchange_tui.cli.util import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    JSON_HELP,
    UsageError,
    err,
    open_database_from_args,
    private_files,
    settings_from_args,
)
from yearchange_tui.config import ConfigError, Settings, load_settings
from yearchange_tui.ent.database import (
    CODE_LOCKED,
    DatabaseError,
    is_lock_error,
    locked_message,
    open_database,
)
from yearchange_tui.ent.errors import describe_error
from yearchange_tui.french import plural
from yearchange_tui.sample.build import SampleOutputError, build_sample
from yearchange_tui.workflow.units import NoCurrentYearError

# Modules that add their commands with ``register(commands, common)``.
COMMAND_MODULES = (cli_changeover, cli_aaf, cli_timetable, cli_engine, cli_fleet, cli_console,
                   cli_bench,
                   cli_db, cli_requests,
                   cli_project,
                   cli_support)


def open_console(args: argparse.Namespace) -> int:
    """Open the operator console on the configured database."""
    # Textual is loaded only when a console opens, not for the other commands.
    from yearchange_tui.tui.app import run_console

    settings, database = open_database_from_args(args, wait_for_lock=False)
    return int(run_console(settings, database, config_file=getattr(args, "config", None),
                           theme=getattr(args, "theme", None)))


_err = err


def _global_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="URL", default=argparse.SUPPRESS,
                        help="base de données (SQLAlchemy URL ; variable YEARCHANGE_DB)")
    common.add_argument("--storage", metavar="DIR", default=argparse.SUPPRESS,
                        help="racine des fichiers stockés (variable YEARCHANGE_STORAGE)")
    common.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS,
                        help="mode consultation : aucune modification (équipes support)")
    common.add_argument("--config", metavar="FICHIER", default=argparse.SUPPRESS,
                        help="fichier de configuration TOML (variable YEARCHANGE_CONFIG)")
    common.add_argument("--lock-timeout", metavar="S", type=float, default=argparse.SUPPRESS,
                        help="secondes d'attente d'une base SQLite verrouillée par un autre "
                             "programme (variable YEARCHANGE_LOCK_TIMEOUT ; défaut 30)")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The ``yearchange`` argument parser."""
    common = _global_options()
    parser = FrenchParser(
        prog="yearchange", parents=[common],
        description="Changement d'année de l'ENT : console opérateur et moteur.")
    parser.add_argument("--version", action="version", version=f"yearchange {__version__}",
                        help="afficher la version et quitter")
    commands = parser.add_subparsers(dest="command", metavar="COMMANDE",
                                     parser_class=FrenchParser)

    sample = commands.add_parser(
        "sample", parents=[common], help="écrire une académie d'exemple dans un dossier",
        description="Écrit DIR/yearchange.db (SQLite), DIR/storage/, DIR/aaf/ (livraison AAF "
                    "N+1) et DIR/timetables/. Avec --db, la base donnée (vide, PostgreSQL "
                    "par exemple) reçoit l'académie au lieu de DIR/yearchange.db.")
    sample.add_argument("--establishments", type=int, default=3, metavar="N",
                        help="nombre d'établissements (défaut 3)")
    sample.add_argument("--seed", type=int, default=1, metavar="S",
                        help="graine aléatoire (défaut 1)")
    sample.add_argument("--year", type=int, default=None, metavar="AAAA",
                        help="année de début de l'année scolaire N (défaut : l'année en cours)")
    sample.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="dossier de sortie (vide, ou une académie d'exemple précédente)")
    sample.add_argument("--json", action="store_true", help="résumé en JSON")
    sample.set_defaults(handler=cmd_sample)

    demo = commands.add_parser(
        "demo", parents=[common], help="construire l'académie de démonstration et l'ouvrir",
        description="Construit une académie d'exemple neuve dans le dossier de données de "
                    "l'utilisateur puis ouvre la console.")
    demo.add_argument("--establishments", type=int, default=3, metavar="N",
                      help="nombre d'établissements (défaut 3)")
    demo.add_argument("--seed", type=int, default=1, metavar="S",
                      help="graine aléatoire (défaut 1)")
    demo.add_argument("--year", type=int, default=None, metavar="AAAA",
                      help="année de début de l'année scolaire N (défaut : l'année en cours)")
    demo.add_argument("--json", action="store_true", help="résumé en JSON")
    demo.add_argument("--no-console", action="store_true",
                      help="construire sans ouvrir la console")
    demo.set_defaults(handler=cmd_demo)

    config = commands.add_parser("config", parents=[common],
                                 help="afficher la configuration et l'origine de chaque valeur")
    config.add_argument("--json", action="store_true", help=JSON_HELP)
    config.set_defaults(handler=cmd_config)
    for module in COMMAND_MODULES:
        module.register(commands, common)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return settings_from_args(args)


def _positive(value: int, option: str) -> int:
    if value < 1:
        raise UsageError(f"{option} doit être un entier positif (reçu : {value}).")
    return value


def _print_sample(result: Any, as_json: bool, heading: str) -> None:
    summary = result.summary()
    if as_json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    print(heading)
    print(f"  année scolaire N   : {summary['school_year']} (N+1 : {summary['next_school_year']})")
    print(f"  graine             : {summary['seed']}")
    for establishment in summary["establishments"]:
        kind = "collège" if establishment["kind"] == "college" else "lycée"
        print(f"  {establishment['uai']}  {kind:8} {establishment['name']} — "
              f"{plural(establishment['students'], 'élève')}, "
              f"{plural(establishment['classes'], 'classe')}")
    rows = sum(summary["rows"].values())
    print(f"  lignes écrites     : {rows} dans {len(summary['rows'])} tables")
    print(f"  fichiers stockés   : {summary['files']} ({summary['bytes'] / 1e6:.1f} Mo)")
    print(f"  livraison AAF N+1  : {len(summary['aaf_files'])} fichiers")
    print(f"  emplois du temps   : {len(summary['timetable_files'])} fichiers")
    print(f"  durée              : {result.seconds:.1f} s")
    print(f"  base               : {summary['db']}")
    print(f"  stockage           : {summary['storage']}")


def cmd_sample(args: argparse.Namespace) -> int:
    """``yearchange sample``: write a sample académie to a folder."""

    count = _positive(args.establishments, "--establishments")
    progress = None if args.json else (lambda line: _err(f"… {line}"))
    try:
        # Only an explicit --db (not YEARCHANGE_DB) sends the sample to another database.
        result = build_sample(args.out, count, args.seed, args.year, progress,
                              db_url=getattr(args, "db", None))
    except SampleOutputError as error:
        raise UsageError(str(error)) from error
    out = result.out_dir
    _print_sample(result, args.json, f"Académie d'exemple écrite dans {out}")
    if not args.json:
        print(f"\nPour l'utiliser : yearchange --db {result.summary()['db']} "
              f"--storage {out / 'storage'} …")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """``yearchange demo``: build a fresh demo académie in the user data folder and open it."""

    settings = _settings(args)
    count = _positive(args.establishments, "--establishments")
    demo_dir = settings.data_dir / "demo"
    if demo_dir.exists():
        _stop_demo_engine(demo_dir, args.json)
        shutil.rmtree(demo_dir)
    progress = None if args.json else (lambda line: _err(f"… {line}"))
    result = build_sample(demo_dir, count, args.seed, args.year, progress)
    _print_sample(result, args.json, f"Académie de démonstration construite dans {demo_dir}")
    if not args.json and not getattr(args, "no_console", False):
        args.db = result.db_url
        args.storage = str(result.storage_dir)
        return open_console(args)
    if not args.json:
        print(f"Base : --db {result.db_url} --storage {result.storage_dir}")
    return EXIT_OK


DEMO_ENGINE_STOP_TIMEOUT = 120.0


def _stop_demo_engine(demo_dir: Path, quiet: bool) -> None:
    """Stop the engine of the demo about to be replaced, and wait for its process to end,
    so nothing it writes reaches the new demo's database.

    Raises:
        UsageError: it did not stop (nothing is replaced).
    """
    db_file = demo_dir / "yearchange.db"
    if not db_file.exists():
        return
    try:
        database = open_database(f"sqlite:///{db_file}", migrate=True)
    except DatabaseError:
        return  # a broken old demo: no engine can run on it
    try:
        result = cli_engine.stop_engine(database, DEMO_ENGINE_STOP_TIMEOUT)
    finally:
        database.dispose()
    if not result["stopped"]:
        raise UsageError(f"Démo précédente non remplacée : {result['message']}")
    if result["holder"] and not quiet:
        _err(f"Démo précédente : {result['message']}")


def cmd_config(args: argparse.Namespace) -> int:
    """``yearchange config``: show each setting and where it came from."""
    settings = _settings(args)
    rows = settings.describe()
    if args.json:
        print(json.dumps({name: {"value": value, "source": source} for name, value, source in rows},
                         ensure_ascii=False, indent=2))
        return EXIT_OK
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        print(f"{name:<{width}}  {value}  ({source})")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``yearchange`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = getattr(args, "handler", open_console)

    try:
        with private_files(args):
            cli_engine.configure_timezone(args)
            status = handler(args)
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except (UsageError, ConfigError, DatabaseError, ReadOnlyError, NoCurrentYearError) as error:
        _err(f"yearchange : {error}")
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (``yearchange rejects | head``): stop quietly, and keep
        # Python from failing again when it flushes stdout on exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except OSError as error:
        # A file or folder the command cannot use (missing, no permission, disk full…):
        # the system's reason in French, with the path, never a traceback.
        _err(f"yearchange : {describe_error(error)}.")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("yearchange : interrompu.")
        return EXIT_FAILED
    except OperationalError as error:
        if not is_lock_error(error):
            described = describe_error(error)
            if described == str(error):
                raise
            _err(f"yearchange : {described}.")  # disk full under the database…
            return EXIT_FAILED
        # Another program kept a SQLite database locked longer than the wait allowed.
        settings = _settings_or_none(args)
        if settings is None:
            settings = load_settings({})
        try:
            message = locked_message(settings.db_url, settings.lock_timeout)
        except DatabaseError:
            message = locked_message("sqlite:///", settings.lock_timeout)
        _err(f"yearchange : [{CODE_LOCKED}] {message}")
        return EXIT_USAGE


def _settings_or_none(args: argparse.Namespace) -> Settings | None:
    try:
        return _settings(args)
    except (ConfigError, DatabaseError, UsageError):
        return None


if __name__ == "__main__":
    raise SystemExit(main())
