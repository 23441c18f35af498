"""CLI commands of the timetable import and of step 5.

``cli.py`` calls :func:`register`. Commands:

- ``import-timetable PATH --uai U [--version V] [--json]`` — import an EDT, UDT or
  STS-web export (the version verdict is printed before anything is written);
- ``watch-timetables DOSSIER [--once]`` — automatic mode: the drop folder, in name order;
- ``edt-key`` — the project's Index Education partner key (path to the PEM);
- ``school-life-check [--uai U] [--json]`` — what each establishment still misses
  before its cahier de textes can open;
- ``school-life-init --uai U`` — the wizard's defaults (periods, dates) shown and applied;
- ``timetable-rules`` — reject codes and the version policy;
- ``timetable-version show|set`` — each establishment's declared software and version, and
  whether its project may import automatically (the K+ module, ``--import-automatique``).

``yearchange run init-school-life`` is run by
:func:`yearchange_tui.cli.steps.run_init_school_life_command`.
Exit status: 0 success, 1 a guard refused or step 5 is incomplete, 2 bad usage or a
file refused whole (nothing changed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from yearchange_tui.cli.importing import refuse_import_in_read_only, report_import
from yearchange_tui.cli.util import (
    EXIT_FAILED,
    EXIT_OK,
    JSON_HELP,
    UsageError,
    day_option,
    err,
    open_database_from_args,
    print_json,
    yes_no,
)
from yearchange_tui.ent.base import utcnow
from yearchange_tui.ent.database import Access
from yearchange_tui.ent.models import PeriodKind, Project
from yearchange_tui.french import os_error_text
from yearchange_tui.importing.outcome import run_import
from yearchange_tui.importing.rules import table_line
from yearchange_tui.timetable.declarations import (
    Declaration,
    declarations,
    set_automatic_import,
    set_declaration,
)
from yearchange_tui.timetable.drop import process_drop_folder
from yearchange_tui.timetable.edt import load_private_key
from yearchange_tui.timetable.importer import MODE_MANUAL, TimetableUsageError, import_timetable
from yearchange_tui.timetable.models import TimetablePartnerKey
from yearchange_tui.timetable.policy import VersionError, policy_table
from yearchange_tui.timetable.reader import PartnerKey
from yearchange_tui.timetable.rules import rules_table
from yearchange_tui.timetable.school_life import (
    SchoolLifeError,
    apply_school_life,
    propose_school_life,
    school_life_check,
)
from yearchange_tui.workflow.audit import audit, operator_identity
from yearchange_tui.workflow.establishments import UnknownEstablishmentError, establishments_by_uai
from yearchange_tui.workflow.project_settings import ProjectSettingsError
from yearchange_tui.workflow.units import NoCurrentYearError


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the timetable and step-5 commands to the ``yearchange`` parser."""
    importer = commands.add_parser(
        "import-timetable", parents=[common],
        help="importer l'emploi du temps d'un établissement (EDT, UDT, STS-web)",
        description="Importe un export d'emploi du temps pour l'année N+1 d'un établissement : "
                    "export ENT d'EDT (chiffré ou en clair), ZIP UnDeuxTemps, fichier STS-web "
                    "sts_emp ou emp_sts (ou un dossier contenant la paire). La version et son "
                    "verdict sont affichés avant toute écriture. Aucune classe n'est jamais "
                    "créée : les classes, enseignants et matières inconnus sont des rejets "
                    "(yearchange rejects). Un fichier refusé ne change rien (code 2).")
    importer.add_argument("path", metavar="CHEMIN", type=Path,
                          help="fichier ou dossier de l'export")
    importer.add_argument("--uai", required=True, metavar="UAI", help="établissement")
    importer.add_argument("--version", dest="declared_version", metavar="VERSION",
                          help="version du logiciel quand le fichier ne la porte pas "
                               "(« EDT 2020 », « 2020 », « UDT 26 », « 26 »)")
    importer.add_argument("--key", type=Path, metavar="FICHIER.pem",
                          help="clé privée du partenaire pour un export EDT chiffré "
                               "(défaut : celle du projet, yearchange edt-key)")
    importer.add_argument("--partner", metavar="NOM",
                          help="nom du partenaire déclaré à Index Education (avec --key)")
    importer.add_argument("--dry-run", action="store_true",
                          help="à blanc : tout lire, vérifier et compter, ne rien enregistrer")
    importer.add_argument("--json", action="store_true", help="résumé en JSON")
    importer.set_defaults(handler=cmd_import_timetable)

    watch = commands.add_parser(
        "watch-timetables", parents=[common],
        help="import automatique : traiter le dossier de dépôt des emplois du temps",
        description="Importe en mode automatique les fichiers déposés, par ordre de nom, puis "
                    "les range dans importes/ ou refuses/. Réservé aux projets ayant l'option "
                    "d'import automatique, et seulement après le premier import manuel de "
                    "l'année de chaque établissement.")
    watch.add_argument("folder", metavar="DOSSIER", type=Path,
                       help="dossier surveillé (fichiers importés dans l'ordre des noms)")
    watch.add_argument("--once", action="store_true", help="un seul passage puis s'arrêter")
    watch.add_argument("--interval", type=float, default=60.0, metavar="SECONDES",
                       help="délai entre deux passages (défaut 60)")
    watch.add_argument("--json", action="store_true", help=JSON_HELP)
    watch.set_defaults(handler=cmd_watch_timetables)

    key = commands.add_parser(
        "edt-key", parents=[common], help="clé partenaire Index Education d'un projet",
        description="Enregistre où se trouve la clé privée RSA (PEM ou DER, sans mot de passe) "
                    "du partenaire ENT déclaré à Index Education, pour déchiffrer les exports "
                    "EDT chiffrés. Seul le chemin est enregistré, jamais la clé.")
    key.add_argument("--project", metavar="CODE", help="projet (défaut : le seul projet)")
    key.add_argument("--partner", metavar="NOM", help="nom du partenaire (PARTENAIRE@NOM)")
    key.add_argument("--key", type=Path, metavar="FICHIER", help="chemin de la clé privée")
    key.add_argument("--remove", action="store_true", help="oublier la clé du projet")
    key.set_defaults(handler=cmd_edt_key)

    check = commands.add_parser(
        "school-life-check", parents=[common],
        help="étape 5 : ce qui manque avant l'ouverture du cahier de textes",
        description="Pour chaque établissement : périodes, dates d'ouverture, emploi du temps, "
                    "services, cours, professeurs principaux… ✗ bloque l'étape 5, ! est à "
                    "compléter.")
    check.add_argument("--uai", action="append", metavar="UAI", help="établissement (répétable)")
    check.add_argument("--json", action="store_true", help=JSON_HELP)
    check.set_defaults(handler=cmd_school_life_check)

    init = commands.add_parser(
        "school-life-init", parents=[common],
        help="étape 5 : proposer et enregistrer périodes et dates d'un établissement",
        description="Propose les périodes (trimestres ou semestres) et les dates d'ouverture "
                    "et de fermeture d'après le calendrier du projet, puis les enregistre "
                    "(sans écraser ce qui est déjà saisi, sauf avec --replace).")
    init.add_argument("--uai", required=True, metavar="UAI", help="établissement")
    init.add_argument("--periods", choices=["trimestres", "semestres"],
                      help="découpage (défaut : trimestres en collège, semestres sinon)")
    init.add_argument("--opens", metavar="AAAA-MM-JJ", help="date d'ouverture")
    init.add_argument("--closes", metavar="AAAA-MM-JJ", help="date de fermeture")
    init.add_argument("--replace", action="store_true",
                      help="remplacer les périodes et dates déjà saisies")
    init.add_argument("--dry-run", action="store_true", help="afficher la proposition seulement")
    init.add_argument("--json", action="store_true", help=JSON_HELP)
    init.set_defaults(handler=cmd_school_life_init)

    version = commands.add_parser(
        "timetable-version", parents=[common],
        help="logiciel et version d'emploi du temps déclarés par établissement",
        description="La politique des versions (EDT, UDT) s'applique à tout import : la "
                    "version de chaque établissement est enregistrée à son premier import "
                    "manuel (--version ou version lue dans le fichier) ou déclarée ici. Les "
                    "imports automatiques l'utilisent et refusent un établissement sans "
                    "déclaration ; un --version contraire à la déclaration est refusé.")
    actions = version.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", parents=[common],
                              help="afficher les déclarations (tous ou --uai)")
    show.add_argument("--uai", action="append", metavar="UAI", help="établissement (répétable)")
    show.add_argument("--json", action="store_true", help="résultat en JSON")
    show.set_defaults(handler=cmd_timetable_version_show)
    declare = actions.add_parser(
        "set", parents=[common],
        help="déclarer le logiciel et la version d'un établissement, ou le mode automatique "
             "du projet")
    declare.add_argument("--uai", metavar="UAI", help="établissement")
    declare.add_argument("--logiciel", choices=["edt", "udt"],
                         help="logiciel d'emploi du temps")
    declare.add_argument("--version", dest="declared_version",
                         metavar="VERSION", help="année EDT (2020) ou version UDT (26)")
    declare.add_argument("--import-automatique", dest="automatic", type=yes_no,
                         metavar="oui|non",
                         help="le projet a le module K+ « Import emplois du temps automatisé » "
                              "(mode automatique permis après le premier import manuel)")
    declare.add_argument("--project", metavar="P",
                         help="projet visé par --import-automatique (défaut : celui de --uai, "
                              "ou le seul projet)")
    declare.add_argument("--json", action="store_true", help="résultat en JSON")
    declare.set_defaults(handler=cmd_timetable_version_set)

    rules = commands.add_parser(
        "timetable-rules", parents=[common],
        help="codes de rejet de l'import d'emploi du temps et politique de versions")
    rules.add_argument("--json", action="store_true", help=JSON_HELP)
    rules.set_defaults(handler=cmd_timetable_rules)


# --- timetable-version ---------------------------------------------------------------------


def _automatic_text(declaration: Declaration) -> str:
    if declaration.automatic_import:
        return "import automatique : permis (module K+ du projet, après un import manuel)"
    return (f"import automatique : non (module K+ inactif pour le projet "
            f"{declaration.project})")


def _declaration_line(declaration: Declaration) -> str:
    if declaration.version is None:
        return (f"{declaration.uai:<9} {declaration.name} — aucune déclaration (les imports "
                f"sans version lue dans le fichier sont refusés) ; "
                f"{_automatic_text(declaration)}")
    when = (f", le {declaration.declared_at:%d/%m/%Y}" if declaration.declared_at else "")
    return (f"{declaration.uai:<9} {declaration.name} — {declaration.version.label} "
            f"({declaration.source}{when}{', ' + declaration.declared_by if declaration.declared_by else ''})"
            f" ; {_automatic_text(declaration)}")


def cmd_timetable_version_show(args: argparse.Namespace) -> int:
    """``yearchange timetable-version show [--uai U]``."""
    _settings, database = open_database_from_args(args, Access.READ_ONLY)
    with database.session() as session:
        if args.uai:
            try:
                establishments_by_uai(session, args.uai)
            except UnknownEstablishmentError as error:
                raise UsageError(str(error)) from error
        found = declarations(session, args.uai)
    if args.json:
        print_json([declaration.to_dict() for declaration in found])
    else:
        for declaration in found:
            print(_declaration_line(declaration))
    return EXIT_OK


def cmd_timetable_version_set(args: argparse.Namespace) -> int:
    """``yearchange timetable-version set --uai U --logiciel udt --version 27``."""
    declaring = args.logiciel is not None or args.declared_version is not None
    if not declaring and args.automatic is None:
        raise UsageError("Rien à déclarer : --uai, --logiciel et --version, ou "
                         "--import-automatique oui|non.")
    if declaring and not (args.uai and args.logiciel and args.declared_version):
        raise UsageError("--logiciel et --version se déclarent ensemble, avec --uai.")
    _settings, database = open_database_from_args(
        args, refuse="la déclaration de version d'emploi du temps")
    answer: dict[str, Any] = {}
    try:
        if args.automatic is not None:
            code, changed = set_automatic_import(database, args.automatic,
                                                 project_code=args.project, uai=args.uai)
            answer["automatic_import_setting"] = {"project": code, "enabled": args.automatic,
                                          "changed": changed}
        if declaring:
            declaration, verdict = set_declaration(database, args.uai, args.logiciel,
                                                   args.declared_version)
            answer.update({**declaration.to_dict(), "verdict": verdict})
    except (VersionError, UnknownEstablishmentError, ProjectSettingsError) as error:
        raise UsageError(f"Déclaration refusée : {error}") from error
    if args.json:
        print_json(answer)
        return EXIT_OK
    if "automatic_import_setting" in answer:
        state = answer["automatic_import_setting"]
        print(f"Projet {state['project']} : import automatique des emplois du temps "
              + ("permis (module K+ activé)" if state["enabled"] else
                 "refusé (module K+ inactif)")
              + ("" if state["changed"] else " — inchangé"))
    if declaring:
        print(f"Déclaré : {_declaration_line(declaration)}")
        print(f"  politique aujourd'hui : {verdict}")
    return EXIT_OK


# --- import-timetable ----------------------------------------------------------------------


def _partner_key(args: argparse.Namespace) -> Any:
    if args.key is None and args.partner is None:
        return None
    if args.key is None or not args.partner:
        raise UsageError("--key et --partner vont ensemble (clé privée et nom du partenaire).")
    try:
        data = args.key.read_bytes()
    except OSError as error:
        raise UsageError(f"Clé illisible : {args.key} ({os_error_text(error)}).") from error
    return PartnerKey(args.partner, data, f"--key {args.key}")


def print_inspection(inspection: Any, stream: Any = None) -> None:
    """Print what an export is and the version verdict, in French."""
    out = stream or sys.stdout
    print(f"Export : {inspection.format_label}", file=out)
    for info in inspection.files:
        print(f"  fichier   : {info.name} ({info.size} octets, SHA-256 {info.sha256[:16]}…)",
              file=out)
    header = inspection.header
    if inspection.format == "edt-chiffre":
        for name in ("VERSION", "LOGICIEL", "UAI", "DATEHEURE", "NOMETABLISSEMENT"):
            print(f"  {name:<10}: {header.get(name, '')}", file=out)
        partners = ", ".join(header.get("PARTENAIRES") or []) or "aucun"
        print(f"  partenaires : {partners}", file=out)
        print(f"  clé       : {inspection.key_status}", file=out)
    if header.get("Version"):
        print(f"  format    : ExportEmploiDuTemps Version {header['Version']}", file=out)
    if inspection.uai:
        print(f"  UAI       : {inspection.uai} ({inspection.uai_source})", file=out)
    if inspection.school_year_start:
        start = inspection.school_year_start
        print(f"  année     : {start}-{start + 1}", file=out)
    if inspection.verdict is not None:
        print(f"  version   : {inspection.verdict.label}", file=out)
    if inspection.data is not None:
        counts = inspection.data.counts()
        print("  contenu   : " + ", ".join(f"{value} {name}" for name, value in counts.items()),
              file=out)


def cmd_import_timetable(args: argparse.Namespace) -> int:
    """``yearchange import-timetable PATH --uai U``."""

    refuse_import_in_read_only(args, "l'import d'emploi du temps")
    key = _partner_key(args)
    _settings, database = open_database_from_args(
        args, Access.ROLLBACK_ONLY if args.dry_run else Access.READ_WRITE)
    shown = {"done": False}

    def show(inspection: Any) -> None:
        shown["done"] = True
        if not args.json:
            print_inspection(inspection)

    outcome, result = run_import(
        "timetable", lambda: import_timetable(
            database, args.path, args.uai, declared_version=args.declared_version,
            mode=MODE_MANUAL, dry_run=args.dry_run, partner_key=key, on_inspected=show),
        bad_request=(TimetableUsageError,))
    return report_import(outcome, result, args.json, _print_result, "emploi du temps refusé",
                         "cette garde")


def _print_result(result: Any) -> None:
    head = ("Import à blanc (rien n'a été enregistré)" if result.dry_run
            else f"Import d'emploi du temps n° {result.import_id}")
    override = " — dérogation MOE tracée" if result.overridden else ""
    print(f"\n{head} — {result.uai} {result.establishment_name}, année {result.school_year}, "
          f"mode {result.mode}{override}")
    created = result.created
    print(f"  créé      : {created.get('services', 0)} service(s), {created.get('cours', 0)} "
          f"cours, {created.get('groupes', 0)} groupe(s) d'options ({created.get('membres', 0)} "
          f"élève(s)), {created.get('alternances', 0)} alternance(s)")
    replaced = {name: value for name, value in result.replaced.items() if value}
    if replaced:
        print("  remplacé  : " + ", ".join(f"{value} {name}" for name, value in replaced.items())
              + " (créés par l'import précédent)")
    records = result.records
    if records:
        total = sum(kind["file"] for kind in records.values())
        print(f"  fichier   : {total} enregistrement(s) — "
              f"{total - result.records_rejected} importé(s), "
              f"{result.records_rejected} non importé(s) (" + ", ".join(
                  f"{name} {kind['imported']}/{kind['file']}"
                  for name, kind in records.items() if kind["file"]) + ")")
    if result.rejects_by_code:
        print(f"  rejets    : {sum(result.rejects_by_code.values())} ligne(s) — " + ", ".join(
            f"{code} ×{count}" for code, count in result.rejects_by_code.items()))
        if not result.dry_run:
            print(f"  détail    : yearchange rejects --import {result.reject_import_id} "
                  f"(ou --uai {result.uai})")
    else:
        print("  rejets    : aucun")
    print("  aucune classe n'a été créée (les classes viennent de l'import AAF).")


# --- watch-timetables ---------------------------------------------------------------------


def cmd_watch_timetables(args: argparse.Namespace) -> int:
    """``yearchange watch-timetables DOSSIER``."""

    _settings, database = open_database_from_args(
        args, refuse="l'import automatique des emplois du temps")
    if args.interval <= 0:
        raise UsageError("--interval doit être positif.")
    refused = 0
    try:
        while True:
            try:
                outcomes = process_drop_folder(database, args.folder)
            except TimetableUsageError as error:
                raise UsageError(str(error)) from error
            refused += sum(1 for o in outcomes if o.status != "importé")
            if args.json:
                print_json([outcome.to_dict() for outcome in outcomes])
            else:
                for outcome in outcomes:
                    mark = {"importé": "✓ importé", "échec": "✗ échec"}.get(outcome.status,
                                                                            "⊘ refusé")
                    print(f"{mark:<12} {outcome.uai or '?':<9} {outcome.name}")
                    if outcome.message:
                        print(f"    [{outcome.code}] {outcome.message}")
            if args.once:
                break
            time.sleep(args.interval)
    except KeyboardInterrupt:
        err("yearchange : surveillance du dossier arrêtée.")
    return EXIT_FAILED if refused else EXIT_OK


# --- edt-key --------------------------------------------------------------------------------


def cmd_edt_key(args: argparse.Namespace) -> int:
    """``yearchange edt-key``: show, set or remove a project's partner key."""

    changing = args.remove or args.key is not None or args.partner is not None
    _settings, database = open_database_from_args(
        args, Access.READ_WRITE if changing else Access.READ_ONLY,
        refuse="la configuration d'une clé" if changing else None)
    with database.session() as session:
        projects = list(session.scalars(select(Project).order_by(Project.code)))
        if not changing and args.project is None:
            rows = {row.project_id: row for row in session.scalars(select(TimetablePartnerKey))}
            for project in projects:
                row = rows.get(project.id)
                state = (f"partenaire « {row.partner_name} », clé {row.key_path}" if row
                         else "aucune clé (les exports EDT chiffrés seront refusés)")
                print(f"{project.code:<16} {state}")
            return EXIT_OK
        if args.project:
            project = next((p for p in projects if p.code == args.project), None)
            if project is None:
                raise UsageError(f"Projet inconnu : {args.project}.")
        elif len(projects) == 1:
            project = projects[0]
        else:
            raise UsageError("Précisez le projet (--project CODE).")
        if not changing:
            row = session.scalar(select(TimetablePartnerKey).where(
                TimetablePartnerKey.project_id == project.id))
            print(f"{project.code:<16} " + (f"partenaire « {row.partner_name} », clé "
                                            f"{row.key_path}" if row else "aucune clé"))
            return EXIT_OK
        if args.remove:
            session.execute(delete(TimetablePartnerKey).where(
                TimetablePartnerKey.project_id == project.id))
            audit(session, "edt-key", "removed", details={"project": project.code})
            err(f"Clé partenaire du projet {project.code} oubliée.")
            return EXIT_OK
        if args.key is None or not args.partner:
            raise UsageError("--key et --partner sont nécessaires pour configurer la clé.")
        path = args.key.expanduser().resolve()
        try:
            load_private_key(path.read_bytes())
        except OSError as error:
            raise UsageError(f"Clé illisible : {path} ({os_error_text(error)}).") from error
        except ValueError as error:
            raise UsageError(f"Clé refusée : {error}.") from error
        if path.stat().st_mode & 0o077:
            err(f"Attention : {path} est lisible par d'autres comptes (chmod 600 conseillé).")
        session.execute(delete(TimetablePartnerKey).where(
            TimetablePartnerKey.project_id == project.id))
        session.add(TimetablePartnerKey(project_id=project.id, partner_name=args.partner,
                                        key_path=str(path),
                                        configured_at=utcnow(),
                                        configured_by=operator_identity()["os_user"]))
        audit(session, "edt-key", "configured",
              details={"project": project.code, "partner": args.partner, "path": str(path)})
    err(f"Clé du partenaire « {args.partner} » enregistrée pour le projet {project.code}.")
    return EXIT_OK


# --- step 5 ----------------------------------------------------------------------------------


def _establishment_ids(settings: Any, database: Any, uais: list[str] | None) -> list[int] | None:
    if not uais:
        return None
    try:
        with database.session() as session:
            return [ref.id for ref in establishments_by_uai(session, uais).values()]
    except UnknownEstablishmentError as error:
        raise UsageError(str(error)) from error


def cmd_school_life_check(args: argparse.Namespace) -> int:
    """``yearchange school-life-check``."""

    settings, database = open_database_from_args(args, Access.READ_ONLY)
    try:
        statuses = school_life_check(database, _establishment_ids(settings, database, args.uai))
    except NoCurrentYearError as error:
        raise UsageError(str(error)) from error
    if args.json:
        print_json([status.to_dict() for status in statuses])
        return EXIT_OK if all(s.ready for s in statuses) else EXIT_FAILED
    for status in statuses:
        mark = "✓ prêt" if status.ready else "✗ incomplet"
        print(f"{mark:<13} {status.uai}  {status.name} — vie scolaire {status.school_year} "
              f"(étape 5 : {status.step_status})")
        for item in status.items:
            glyph = "✗" if item.blocking else "!"
            print(f"    {glyph} {item.label} — {item.detail}\n      → {item.action}")
    return EXIT_OK if all(s.ready for s in statuses) else EXIT_FAILED


def _iso(value: str | None, option: str) -> dt.date | None:
    return None if value is None else day_option(value, option)


def cmd_school_life_init(args: argparse.Namespace) -> int:
    """``yearchange school-life-init --uai U``: the wizard's defaults, shown and applied."""

    settings, database = open_database_from_args(
        args, Access.READ_ONLY if args.dry_run else Access.READ_WRITE,
        refuse=None if args.dry_run else "l'initialisation de la vie scolaire")
    kind = {"trimestres": PeriodKind.TRIMESTER, "semestres": PeriodKind.SEMESTER,
            None: None}[args.periods]
    (establishment_id,) = _establishment_ids(settings, database, [args.uai]) or []
    try:
        with database.session() as session:
            proposal = propose_school_life(session, establishment_id, period_kind=kind,
                                           opens_on=_iso(args.opens, "--opens"),
                                           closes_on=_iso(args.closes, "--closes"))
            written = {} if args.dry_run else apply_school_life(
                session, establishment_id, proposal, replace=args.replace)
    except (SchoolLifeError, NoCurrentYearError) as error:
        raise UsageError(str(error)) from error
    if args.json:
        print_json({"proposal": proposal.to_dict(), "written": written})
        return EXIT_OK
    print(f"{proposal.uai} {proposal.name} — vie scolaire {proposal.school_year} "
          f"({proposal.source})")
    print(f"  ouverture {proposal.opens_on:%d/%m/%Y}, fermeture {proposal.closes_on:%d/%m/%Y}")
    for period in proposal.periods:
        print(f"  {period.name:<14} {period.starts_on:%d/%m/%Y} → {period.ends_on:%d/%m/%Y}")
    if args.dry_run:
        print("  (proposition seulement : rien n'a été enregistré)")
    elif not any(written.values()):
        print("  déjà saisi : rien de changé (--replace pour remplacer)")
    else:
        print(f"  enregistré : {written.get('periodes', 0)} période(s), "
              f"{written.get('dates_ouverture', 0)} date(s) d'ouverture")
    return EXIT_OK


# --- timetable-rules ------------------------------------------------------------------------


def cmd_timetable_rules(args: argparse.Namespace) -> int:
    """``yearchange timetable-rules``: reject codes and version policy."""

    rules, policy = rules_table(), policy_table()
    if args.json:
        print_json({"codes": rules, "policy": policy})
        return EXIT_OK
    print("Codes de rejet de l'import d'emploi du temps :")
    for rule in rules:
        print(f"  {table_line(rule)}")
    print("\nPolitique de versions (sans / avec activation des nouvelles versions pour le "
          "projet) :")
    for row in policy:
        print(f"  {row['version']:<16} {row['sans_activation']:<18} {row['avec_activation']}")
    return EXIT_OK
