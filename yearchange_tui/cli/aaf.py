"""CLI commands of the AAF importer: ``import-aaf``, ``rejects`` and ``access-block``.

``cli.py`` calls :func:`register`. Operator text is French; exit status 0 on
success or when the delivery was already imported (nothing to do, nothing changed; see
``--reimport``), 1 when a guard refused the import, 2 for bad usage or a delivery
refused whole (nothing changed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from yearchange_tui.aaf.rules import RULES, rules_table
from yearchange_tui.changeover.rejects_publication import (
    CSV_COLUMNS,
    PublicationError,
    csv_row,
    html_document,
    html_name,
    latest_aaf_import,
    publish_rejects,
)
from yearchange_tui.changeover.runner import ChangeoverRunner
from yearchange_tui.changeover.steps.init_directory import import_aaf_delivery
from yearchange_tui.cli.importing import refuse_import_in_read_only, report_import
from yearchange_tui.cli.steps import summary_line
from yearchange_tui.cli.tables import print_paragraph
from yearchange_tui.cli.util import (
    EXIT_OK,
    EXIT_USAGE,
    JSON_HELP,
    UsageError,
    day_option,
    err,
    open_database_from_args,
    print_json,
)
from yearchange_tui.ent.base import utcnow
from yearchange_tui.ent.csvfile import write_csv
from yearchange_tui.ent.database import Access
from yearchange_tui.ent.models import Person
from yearchange_tui.ent.uai import InvalidUAIError, validate_uai
from yearchange_tui.french import os_error_text
from yearchange_tui.importing.models import AafImport, AafReject
from yearchange_tui.importing.outcome import run_import
from yearchange_tui.importing.rules import SEVERITY_LABELS, table_line
from yearchange_tui.timetable.rules import RULES as TIMETABLE_RULES
from yearchange_tui.workflow.access_block import access_decision
from yearchange_tui.workflow.establishments import UnknownEstablishmentError
from yearchange_tui.workflow.localtime import operator_zone


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the AAF commands to the ``yearchange`` parser."""
    importer = commands.add_parser(
        "import-aaf", parents=[common],
        help="importer une livraison AAF (dossier, .tgz, .zip, fichiers)",
        description="Valide et applique une livraison AAF (ficAlimMENESR) en une transaction. "
                    "Pour un établissement dont l'étape 3 est terminée, l'import est l'étape 4 "
                    "(initialisation de l'annuaire N+1). Un fichier refusé (XML mal formé ou "
                    "dangereux, type incohérent…) ne change rien (code de sortie 2). Une livraison "
                    "déjà importée (mêmes fichiers, même SHA-256) n'est pas réimportée (rien à "
                    "faire, code de sortie 0), sauf avec --reimport.")
    importer.add_argument("paths", nargs="+", metavar="CHEMIN", type=Path,
                          help="dossier, archive .tgz/.zip ou fichiers XML de la livraison")
    importer.add_argument("--dry-run", action="store_true",
                          help="à blanc : tout valider et compter, ne rien enregistrer")
    importer.add_argument("--json", action="store_true", help="résumé en JSON")
    importer.add_argument("--reimport", action="store_true",
                          help="importer de nouveau une livraison déjà importée (mêmes "
                               "fichiers, même SHA-256) ; tracé dans l'audit")
    importer.set_defaults(handler=cmd_import_aaf)

    rejects = commands.add_parser(
        "rejects", parents=[common], help="rejets de l'import AAF, expliqués",
        description="Rejets et avertissements du dernier import AAF (ou de l'import choisi), "
                    "avec fichier, ligne, explication et action à mener.")
    rejects.add_argument("--uai", action="append", metavar="UAI", help="établissement (répétable)")
    rejects.add_argument("--code", action="append", metavar="CODE",
                         help="code de rejet (répétable), par exemple AAF-NAISSANCE-MANQUANTE")
    rejects.add_argument("--severity", choices=["erreur", "avertissement", "information"],
                         help="ne garder qu'une sévérité")
    which = rejects.add_mutually_exclusive_group()
    which.add_argument("--import", dest="import_id", type=int, metavar="N",
                       help="numéro d'import (défaut : le dernier)")
    which.add_argument("--all", action="store_true", help="tous les imports")
    output = rejects.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="CSV (séparateur « ; », UTF-8)")
    output.add_argument("--json", action="store_true", help="JSON (avec le XML de chaque rejet)")
    rejects.add_argument("--codes", action="store_true",
                         help="afficher la liste documentée des codes de rejet")
    rejects.add_argument("--publish", action="store_true",
                         help="publier à chaque établissement (ou --uai) ses rejets de l'import "
                              "(dernier, ou --import N) : fichier CSV dans son espace, joint à "
                              "un message à ses chefs d'établissement, avec sa version "
                              "HTML imprimable ; un import déjà publié à un établissement "
                              "n'est pas renvoyé sans --republier")
    rejects.add_argument("--republier", dest="republish", action="store_true",
                         help="avec --publish : renvoyer aussi aux établissements déjà "
                              "servis (remplace la publication précédente, journalisé)")
    output.add_argument("--html", action="store_true",
                        help="écrire pour chaque établissement (--uai, sinon chacun ayant "
                             "des rejets) un fichier HTML imprimable de ses rejets de "
                             "l'import (dernier, ou --import N)")
    rejects.add_argument("--output", metavar="DOSSIER", type=Path,
                         help="avec --html : dossier des fichiers (défaut : le dossier "
                              "courant)")
    rejects.set_defaults(handler=cmd_rejects)

    block = commands.add_parser(
        "access-block", parents=[common], help="un utilisateur est-il bloqué (étape 4) ?",
        description="Dit si un élève ou un parent est redirigé vers la page d'explication "
                    "pendant l'initialisation de l'annuaire, et avec quel message.")
    # Not required: ``access-block set`` (cli/project.py) is a sub-command of this one.
    who = block.add_mutually_exclusive_group()
    who.add_argument("--login", metavar="IDENTIFIANT", help="identifiant de connexion ENT")
    who.add_argument("--jointure", metavar="ID", help="identifiant AAF (ENTPersonJointure)")
    block.add_argument("--at", metavar="AAAA-MM-JJ", help="date (défaut : aujourd'hui)")
    block.add_argument("--json", action="store_true", help=JSON_HELP)
    block.set_defaults(handler=cmd_access_block)


# --- import-aaf ----------------------------------------------------------------------------


def cmd_import_aaf(args: argparse.Namespace) -> int:
    """``yearchange import-aaf PATH…``."""

    refuse_import_in_read_only(args, "l'import AAF")
    settings, database = open_database_from_args(
        args, Access.ROLLBACK_ONLY if args.dry_run else Access.READ_WRITE)
    progress = None if args.json else (lambda line: err(f"… {line}"))
    outcome, result = run_import(
        # After step 3 an import is step 4: its units run through the runner's lifecycle.
        "aaf", lambda: import_aaf_delivery(ChangeoverRunner(database, settings.storage_dir),
                                           args.paths, dry_run=args.dry_run, progress=progress,
                                           reimport=args.reimport),
        audit_in=None if args.dry_run else database, source=[str(path) for path in args.paths])
    status = report_import(outcome, result, args.json, _print_import, "livraison refusée",
                           "ce gel")
    # Step 4 refused for an establishment (not its Complet): a run that did not fully succeed.
    return 1 if status == 0 and result is not None and result.step4_refused else status


def _print_import(result: Any) -> None:
    records = result.records
    head = "Import AAF à blanc (rien n'a été enregistré)" if result.dry_run else \
        f"Import AAF n° {result.import_id}"
    kind = result.delivery_type or "livraison"
    print(f"{head} — {kind}, {len(result.files)} fichier(s), {records['total']} "
          f"enregistrement(s) : {records['imported']} importé(s), {records['refused']} "
          f"refusé(s), {records['skipped']} hors périmètre.")
    if result.reimport_of is not None:
        print(f"  réimport (--reimport) de la livraison de l'import n° {result.reimport_of}")
    common = result.header.get("common") or {}
    if common:
        print("  en-tête : " + ", ".join(f'{key}="{value}"' for key, value in common.items()))
    for summary in result.establishments:
        if summary["uai"]:
            if summary["mode"] == "step-4":
                mode = f"étape 4, initialisation {summary['school_year']}"
            elif summary.get("establishment_created"):
                mode = f"établissement créé, année {summary['school_year']}"
            else:
                mode = f"mise à jour {summary['school_year']}"
            print(f"  {summary['uai']}  {summary['name']} — {mode}")
        else:
            print("  sans établissement (structure inconnue ou absente, responsable sans élève)")
        print(f"      {summary_line(summary)}")
    if result.unknown_attributes:
        print("  attributs inconnus (ignorés) : " + ", ".join(
            f"{name} ×{count}" for name, count in result.unknown_attributes.items()))
    if result.step4_uais:
        print(f"  étape 4 terminée pour : {', '.join(result.step4_uais)}")
    for refusal in result.step4_refused:
        print(f"  ⊘ {refusal['uai']} [{refusal['code']}] {refusal['message']}\n"
              f"      Action : {refusal['action']}")
    for line in result.deactivation_notices:
        print(f"  {line}")
    if result.rejects_by_code and not result.dry_run:
        print("  détail : yearchange rejects [--uai UAI] [--code CODE] [--csv]")


# --- rejects -------------------------------------------------------------------------------


def _print_codes(as_json: bool) -> int:
    table = rules_table()
    if as_json:
        print_json(table)
        return EXIT_OK
    for rule in table:
        print(table_line(rule))
    return EXIT_OK


def cmd_rejects(args: argparse.Namespace) -> int:
    """``yearchange rejects``."""

    if args.codes:
        return _print_codes(args.json)
    codes = [code.strip().upper() for code in args.code or []]
    known = set(RULES)
    known |= set(TIMETABLE_RULES)
    unknown = [code for code in codes if code not in known]
    if unknown:
        raise UsageError(f"Code de rejet inconnu : {', '.join(unknown)} "
                         "(liste : yearchange rejects --codes).")
    uais: list[str] = []
    for uai in args.uai or []:
        try:
            uais.append(validate_uai(uai))
        except InvalidUAIError as error:
            raise UsageError(str(error)) from error
    if args.republish and not args.publish:
        raise UsageError("--republier s'emploie avec --publish.")
    if args.output is not None and not args.html:
        raise UsageError("--output s'emploie avec --html.")
    if args.publish:
        return _publish(args, uais, codes)
    if args.html:
        return _write_html(args, uais, codes)
    _settings, database = open_database_from_args(args, Access.READ_ONLY)
    with database.session() as session:
        if args.all:
            import_ids = None
        elif args.import_id is not None:
            if session.get(AafImport, args.import_id) is None:
                raise UsageError(f"Import AAF n° {args.import_id} inconnu.")
            import_ids = [args.import_id]
        else:
            # The latest AAF delivery, and each establishment's latest timetable import
            # (timetable rejects share this store).
            latest = session.scalar(select(AafImport.id).where(AafImport.mode != "timetable")
                                    .order_by(AafImport.id.desc()).limit(1))
            timetable_ids = list(session.scalars(
                select(func.max(AafReject.import_id))
                .join(AafImport, AafImport.id == AafReject.import_id)
                .where(AafImport.mode == "timetable").group_by(AafReject.uai)))
            if latest is None and not timetable_ids:
                print("Aucun import AAF dans la base.")
                return EXIT_OK
            import_ids = ([latest] if latest is not None else []) + timetable_ids
        query = select(AafReject).order_by(AafReject.import_id, AafReject.uai,
                                           AafReject.file_name, AafReject.line, AafReject.id)
        if import_ids is not None:
            query = query.where(AafReject.import_id.in_(import_ids))
        if uais:
            query = query.where(AafReject.uai.in_(uais))
        if codes:
            query = query.where(AafReject.code.in_(codes))
        if args.severity:
            query = query.where(AafReject.severity == args.severity)
        rows = list(session.scalars(query))
        if args.csv:
            _write_csv(rows)
        elif args.json:
            print_json([_as_dict(row) for row in rows])
        else:
            _print_rejects(rows, import_ids)
    return EXIT_OK


def _publish(args: argparse.Namespace, uais: list[str], codes: list[str]) -> int:
    """``yearchange rejects --publish [--uai U] [--import N]``."""
    if args.all or args.csv or args.html or codes or args.severity:
        raise UsageError("--publish publie tous les rejets d'un import : il ne s'emploie "
                         "qu'avec --uai, --import, --republier et --json.")
    settings, database = open_database_from_args(args, refuse="la publication des rejets")
    try:
        published = publish_rejects(ChangeoverRunner(database, settings.storage_dir),
                                    args.import_id, uais or None, republish=args.republish)
    except (PublicationError, UnknownEstablishmentError) as error:
        raise UsageError(str(error)) from error
    if args.json:
        print_json([publication.as_dict() for publication in published])
        return EXIT_OK
    if not published:
        print("Aucun rejet à publier dans cet import.")
        return EXIT_OK
    done = [p for p in published if not p.problem]
    print(f"Rejets de l'import AAF n° {published[0].import_id} publiés pour {len(done)} "
          f"établissement(s) :")
    for publication in published:
        if publication.problem:
            print_paragraph(f"⊘ {publication.uai} : {publication.problem}", "  ", "    ")
            continue
        detail = ", ".join(f"{count} {severity}(s)"
                           for severity, count in sorted(publication.by_severity.items()))
        print_paragraph(f"✓ {publication.uai} : {publication.rejects} rejet(s) ({detail}) → "
                        f"{publication.recipients} chef(s) d'établissement"
                        + (" — remplace la publication précédente" if publication.replaced
                           else ""), "  ", "    ")
        print(f"    {publication.path}")
        print(f"    {publication.html_path}")
    return EXIT_OK


def _write_html(args: argparse.Namespace, uais: list[str], codes: list[str]) -> int:
    """``yearchange rejects --html [--uai U] [--import N] [--output DIR]``."""
    if args.all or codes or args.severity:
        raise UsageError("--html écrit tous les rejets d'un import par établissement : il ne "
                         "s'emploie qu'avec --uai, --import et --output.")
    settings, database = open_database_from_args(args, Access.READ_ONLY)
    runner = ChangeoverRunner(database, settings.storage_dir)
    import_id = args.import_id if args.import_id is not None else latest_aaf_import(runner)
    if import_id is None:
        raise UsageError("Aucun import AAF dans la base. [REJETS-AUCUN-IMPORT]")
    with database.session() as session:
        if session.get(AafImport, import_id) is None:
            raise UsageError(f"Import AAF n° {import_id} inconnu. [REJETS-IMPORT-INCONNU]")
        with_rejects = set(session.scalars(select(AafReject.uai).where(
            AafReject.import_id == import_id, AafReject.uai != "").distinct()))
    try:
        refs = [ref for ref in runner.establishments(uais or None)
                if uais or ref.uai in with_rejects]
    except UnknownEstablishmentError as error:
        raise UsageError(str(error)) from error
    folder = args.output or Path()
    written = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with database.engine.connect() as connection:
            for ref in refs:
                path = folder / html_name(ref.uai, import_id)
                path.write_bytes(html_document(connection, import_id, ref.uai, ref.name))
                written.append(path)
    except OSError as error:
        err(f"Impossible d'écrire les fichiers HTML : {os_error_text(error)} "
            "[REJETS-HTML-ECRITURE]")
        return EXIT_USAGE
    if not written:
        print(f"Aucun rejet dans l'import AAF n° {import_id}.")
    for path in written:
        print(path)
    return EXIT_OK


def _as_dict(row: Any) -> dict[str, Any]:
    return {"import": row.import_id, "uai": row.uai, "code": row.code,
            "severity": row.severity, "file": row.file_name, "line": row.line,
            "record_id": row.record_id, "kind": row.kind, "request": row.request,
            "attribute": row.attribute, "raw_value": row.raw_value, "message": row.message,
            "action": row.action, "raw_xml": row.raw_xml}


def _write_csv(rows: list[Any]) -> None:
    sys.stdout.flush()
    write_csv(sys.stdout.buffer, CSV_COLUMNS, (csv_row(row) for row in rows))
    sys.stdout.buffer.flush()


def _print_rejects(rows: list[Any], import_ids: list[int] | None) -> None:
    scope = "tous les imports" if import_ids is None else \
        ", ".join(f"import n° {i}" for i in import_ids)
    if not rows:
        print(f"Aucun rejet ({scope}).")
        return
    print(f"{len(rows)} rejet(s) — {scope}")
    current = None
    for row in rows:
        if row.uai != current:
            current = row.uai
            print(f"\n{row.uai or 'sans établissement'}")
        where = f"{row.file_name}:{row.line}" if row.line else (row.file_name or "")
        # Wrapped between words at the terminal's width (a file name is never cut).
        print_paragraph(f"{SEVERITY_LABELS.get(row.severity, row.severity)} · {row.code} · "
                        f"{row.record_id} · {where}", "  ", "      ")
        print_paragraph(row.message, "      ")
        print_paragraph(f"→ {row.action}", "      ", "        ")


# --- access-block --------------------------------------------------------------------------


def cmd_access_block(args: argparse.Namespace) -> int:
    """``yearchange access-block --login L [--at DATE]``."""
    if not args.login and not args.jointure:
        raise UsageError("Précisez l'utilisateur : --login IDENTIFIANT ou --jointure ID "
                         "(ou « access-block set --uai UAI » pour modifier un blocage).")

    if args.at:
        moment: dt.date = day_option(args.at)
    else:
        moment = utcnow().astimezone(operator_zone()).date()
    _settings, database = open_database_from_args(args, Access.READ_ONLY)
    with database.session() as session:
        column = Person.login if args.login else Person.aaf_jointure
        person_id = session.scalar(select(Person.id).where(column == (args.login or args.jointure)))
        if person_id is None:
            raise UsageError(f"Utilisateur inconnu : « {args.login or args.jointure} ».")
        decision = access_decision(session, person_id, moment)
    if args.json:
        print_json({"blocked": decision.blocked, "message": decision.message,
                    "reason": decision.reason,
                    "window": None if decision.window is None else {
                        "starts_on": decision.window.starts_on.isoformat(),
                        "ends_on": decision.window.ends_on.isoformat(),
                        "source": decision.window.source}})
        return EXIT_OK
    if decision.blocked:
        print(f"⊘ bloqué le {moment:%d/%m/%Y} ({decision.reason}). Message affiché :")
        print(decision.message)
    else:
        print(f"✓ accès ouvert le {moment:%d/%m/%Y} ({decision.reason}).")
    return EXIT_OK
