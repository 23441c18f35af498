"""CLI commands of the database itself: ``db upgrade`` (create or migrate the schema) and
``db grant-readonly`` (a PostgreSQL role for support staff that the database keeps read-only).

Only this command, ``engine``, ``sample`` and ``demo`` create or migrate a database;
every other command opens it as it is and says to run ``yearchange db upgrade`` when
its schema is missing or older.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from yearchange_tui.cli.util import (
    EXIT_OK,
    UsageError,
    print_json,
    refuse_in_read_only,
    settings_from_args,
)
from yearchange_tui.ent.database import (
    DatabaseError,
    check_schema,
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
    grant = db_commands.add_parser(
        "grant-readonly", parents=[common],
        help="PostgreSQL : rôle en lecture seule pour les équipes support",
        description="Crée (s'il manque) ou met à jour le rôle PostgreSQL ROLE : droit de "
                    "connexion à la base, USAGE sur le schéma, SELECT sur toutes les tables "
                    "de yearchange et sur celles que les futures migrations créeront "
                    "(privilèges par défaut), rien d'autre. yearchange, lancé avec ce rôle, "
                    "se met de lui-même en mode consultation. Un rôle créé ne peut pas se "
                    "connecter (NOLOGIN) sauf avec --login ; le mieux est de donner ce rôle "
                    "aux comptes de connexion du support (GRANT ROLE TO compte). "
                    "Relançable sans effet de bord ; à lancer avec un compte qui possède les "
                    "tables (celui de db upgrade). SQLite n'a pas de rôles : voir le README.")
    grant.add_argument("role", metavar="ROLE", help="nom du rôle PostgreSQL")
    grant.add_argument("--login", action="store_true",
                       help="créer le rôle avec le droit de connexion (LOGIN) ; sans mot de "
                            "passe : définissez-le avec ALTER ROLE … PASSWORD")
    grant.add_argument("--json", action="store_true", help="résultat en JSON")
    grant.set_defaults(handler=cmd_db_grant_readonly)


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.error("précisez l'action : upgrade ou grant-readonly")


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


# A plain PostgreSQL identifier: quoted anyway, but no quote, NUL or odd character in it.
_ROLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")

SQLITE_NO_ROLES = (
    "SQLite n'a pas de rôles : les droits sont ceux des fichiers. Pour un accès en lecture "
    "seule des équipes support : la base et son dossier appartiennent au groupe des "
    "opérateurs, accessibles en écriture pour ce groupe seulement (chmod 2770 sur le dossier, "
    "660 sur la base) ; le support lit la base sans pouvoir l'écrire (par exemple "
    "setfacl -m g:support:r sur la base et ses fichiers -wal et -shm, g:support:rx sur le "
    "dossier) et l'ouvre avec --db 'sqlite:///file:CHEMIN?mode=ro&uri=true'. yearchange "
    "constate alors de lui-même que la base est en lecture seule. Voir le README, section "
    "« Support staff accounts ». Rien n'a été modifié.")


def cmd_db_grant_readonly(args: argparse.Namespace) -> int:
    """``yearchange db grant-readonly ROLE``: a PostgreSQL role that may only read.

    Creates the role when missing (NOLOGIN unless ``--login``), then grants CONNECT on the
    database, USAGE on the schema and SELECT on every table and sequence of the schema,
    plus default privileges so tables later migrations create (``db upgrade``, run by
    this same account) are readable too. Revokes any write it finds. Idempotent.
    """
    settings = settings_from_args(args)
    refuse_in_read_only(settings, "l'attribution de droits sur la base")
    url = settings.db_url
    role = args.role
    if not _ROLE_NAME.match(role):
        raise UsageError(f"Nom de rôle invalide « {role} » : lettres, chiffres, _ . - "
                         "(63 caractères au plus, sans commencer par un chiffre).")
    engine = create_db_engine(url)
    try:
        if engine.dialect.name != "postgresql":
            raise UsageError(SQLITE_NO_ROLES if engine.dialect.name == "sqlite" else
                             f"« db grant-readonly » ne connaît que PostgreSQL (base "
                             f"{engine.dialect.name}) ; rien n'a été modifié.")
        try:
            check_schema(engine, url)
            created = _grant_readonly(engine, role, login=args.login)
        except DBAPIError as error:
            raise DatabaseError(f"Droits non accordés sur {display_url(url)} : "
                                f"{str(error.orig).strip()} ; rien n'a été modifié "
                                "(lancez la commande avec le compte propriétaire des tables, "
                                "celui de db upgrade).") from error
    finally:
        engine.dispose()
    shown = display_url(url)
    if args.json:
        print_json({"db": shown, "role": role, "created": created, "login": args.login})
    else:
        what = "créé" + (" (LOGIN)" if args.login else " (NOLOGIN)") if created else "mis à jour"
        print(f"✓ Rôle {role} {what} : lecture seule sur {shown} (SELECT sur toutes les "
              "tables, y compris celles des prochaines migrations).")
    return EXIT_OK


def _grant_readonly(engine: Any, role: str, *, login: bool) -> bool:
    """Create or update ``role`` as read-only in one transaction; True when created."""
    quoted = engine.dialect.identifier_preparer.quote_identifier(role)
    with engine.begin() as connection:
        database = engine.dialect.identifier_preparer.quote_identifier(
            connection.execute(text("SELECT current_database()")).scalar())
        schema = engine.dialect.identifier_preparer.quote_identifier(
            connection.execute(text("SELECT current_schema()")).scalar())
        exists = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                                    {"r": role}).scalar() is not None
        if not exists:
            connection.execute(text(f"CREATE ROLE {quoted} {'LOGIN' if login else 'NOLOGIN'}"))
        for statement in (
                f"GRANT CONNECT ON DATABASE {database} TO {quoted}",
                f"GRANT USAGE ON SCHEMA {schema} TO {quoted}",
                # Whatever it held before: it keeps reading, never writes.
                (f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER "
                 f"ON ALL TABLES IN SCHEMA {schema} FROM {quoted}"),
                f"REVOKE CREATE ON SCHEMA {schema} FROM {quoted}",
                f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {quoted}",
                f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {quoted}",
                # Tables the next migrations create (by this same account) are readable too.
                (f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES "
                 f"TO {quoted}"),
                (f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON SEQUENCES "
                 f"TO {quoted}")):
            connection.execute(text(statement))
    return not exists
