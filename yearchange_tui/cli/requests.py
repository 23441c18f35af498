"""``yearchange requests``: every request sent to the engine, its state and the engine's answer."""

from __future__ import annotations

import argparse
from typing import Any

from yearchange_tui.cli.tables import print_paragraph
from yearchange_tui.cli.util import EXIT_OK, open_database_from_args, print_json
from yearchange_tui.ent.database import Access
from yearchange_tui.scheduling.api import RequestView
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.models import REQUEST_STATUS_GLYPHS, REQUEST_STATUS_LABELS
from yearchange_tui.workflow.localtime import format_local, iso_local, zone_name

DEFAULT_LIMIT = 20
"""Requests listed without ``--all``: the newest ones."""


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``requests`` to the command line."""
    requests = commands.add_parser(
        "requests", parents=[common],
        help="les demandes envoyées au moteur : qui, quand, quoi, état, réponse du moteur",
        description="Liste les demandes faites au moteur (console, engine-request), de la plus "
                    "récente à la plus ancienne, avec leur état (en file, en cours, fait, "
                    "sans effet, refusé, échec) et la réponse du moteur.")
    requests.add_argument("--all", action="store_true",
                          help=f"toutes les demandes (par défaut les {DEFAULT_LIMIT} dernières)")
    requests.add_argument("--json", action="store_true", help="sortie JSON (clés stables)")
    requests.set_defaults(handler=cmd_requests)


def request_json(view: RequestView) -> dict[str, Any]:
    """One request as JSON: snake_case keys, French labels beside the stable values."""
    return {"id": view.id, "created_at": iso_local(view.created_at),
            "finished_at": iso_local(view.finished_at), "requested_by": view.requested_by,
            "read_only_client": view.read_only, "action": view.action, "what": view.what,
            "status": view.status.value, "status_label": REQUEST_STATUS_LABELS[view.status],
            "message": view.message}


def cmd_requests(args: argparse.Namespace) -> int:
    """``yearchange requests [--all] [--json]``."""
    _settings, database = open_database_from_args(args, Access.READ_ONLY)
    try:
        client = DatabaseEngineClient(database, read_only=True)
        views = client.request_list(None if args.all else DEFAULT_LIMIT + 1)
    finally:
        database.dispose()
    more = not args.all and len(views) > DEFAULT_LIMIT
    views = views[:DEFAULT_LIMIT] if more else views
    if args.json:
        print_json({"requests": [request_json(view) for view in views],
                    "complete": not more})
        return EXIT_OK
    if not views:
        print("Aucune demande au moteur.")
        return EXIT_OK
    print_paragraph(f"Demandes au moteur, de la plus récente à la plus ancienne (heure de "
                    f"{zone_name()}) :")
    for view in views:
        state = f"{REQUEST_STATUS_GLYPHS[view.status]} {REQUEST_STATUS_LABELS[view.status]}"
        when = format_local(view.created_at, "%d/%m/%Y %H:%M:%S")
        print_paragraph(f"n° {view.id:<5} {when}  {state:<12} {view.what}", "", " " * 9)
        who = view.requested_by + (" (mode consultation)" if view.read_only else "")
        print_paragraph(f"par {who}" + (f" — réponse : {view.message}" if view.message else ""),
                        " " * 9)
    if more:
        print(f"Les {DEFAULT_LIMIT} dernières seulement : --all pour toutes.")
    return EXIT_OK
