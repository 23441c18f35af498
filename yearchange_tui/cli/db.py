"""CLI commands of the database itself: ``db upgrade`` (create or migrate the schema).

Only this command, ``engine``, ``sample`` and ``demo`` create or migrate a database;
every other command opens it as it is and says to run ``yearchange db upgrade`` when
its schema is missing or older.
"""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy.exc import DBAPIError

from yearchange_tui.cli.util import EXIT_OK, print_json, refuse_in_read_only, settings_from_args
from yearchange_tui.ent.database import (
    DatabaseError,
    create_db_engine,
    current_revision,
    display_url,
    head_revision,
    upgrade,
)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``db`` commands to the ``yearchange`` parser."""
    db = commands.add_parser(
        "db", parents=[common], help="base de données : créer ou mettre à jour le schéma",
        description="Gestion de la base de données. Sous-commande : upgrade.")
    db.set_defaults(handler=lambda _args: _missing_action(db))
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION")
    upgrade_parser = db_commands.add_parser(
        "upgrade", parents=[common], help="créer la base ou mettre son schéma à jour",
        description="Crée le schéma d'une base absente ou vide (un fichier SQLite est créé, "
                    "une base PostgreSQL doit exister), ou met à jour un schéma antérieur "
                    "vers celui de cette version (migrations Alembic livrées). Sauvegardez "
                    "la base avant une mise à jour. Dit ce qui a été fait.")
    upgrade_parser.add_argument("--json", action="store_true", help="résultat en JSON")
    upgrade_parser.set_defaults(handler=cmd_db_upgrade)


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.error("précisez l'action : upgrade")


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """``yearchange db upgrade``: create or upgrade the schema and say which."""
    settings = settings_from_args(args)
    refuse_in_read_only(settings, "la mise à jour du schéma de la base")
    url = settings.db_url
    engine = create_db_engine(url)
    try:
        try:
            before = current_revision(engine)
        except DBAPIError as error:
            raise DatabaseError(f"Base de données {display_url(url)} inaccessible : "
                                f"{error.orig}") from error
        upgrade(engine)
    finally:
        engine.dispose()
    head = head_revision()
    shown = display_url(url)
    if before is None:
        outcome, line = "created", f"✓ Base créée : {shown} (schéma {head})."
    elif before == head:
        outcome, line = "up-to-date", f"✓ Base déjà à jour : {shown} (schéma {head})."
    else:
        outcome, line = "upgraded", f"✓ Base mise à jour : {shown}, schéma {before} → {head}."
    if args.json:
        print_json({"db": shown, "outcome": outcome, "from": before, "to": head})
    else:
        print(line)
    return EXIT_OK
