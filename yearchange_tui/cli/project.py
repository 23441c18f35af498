"""CLI commands of the project's settings: ``project show|set`` and ``access-block set``.

The project owns the access block (seed §6.4: dates, message, profiles, whether and
within which limits its establishments may amend it), the free-group notices' dates (seed
§6.3: none by default), the exchange days of the AAF rhythm (§3.3), the deactivation-notice
suspension and, per establishment, whether step 5 writes « valeurs par défaut » (§6.5).
Every change is checked by the owner of the fact and audited; a refused value changes
nothing (exit 2, French message, stable code).
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from yearchange_tui.cli.util import (
    EXIT_OK,
    FRENCH_YES_NO,
    JSON_HELP,
    UsageError,
    err,
    open_database_from_args,
    print_json,
    yes_no,
)
from yearchange_tui.ent.database import Access
from yearchange_tui.ent.models import Establishment, Project
from yearchange_tui.workflow.access_block import (
    AccessBlockError,
    effective_window,
    own_block_dates,
    render_message,
    set_block_window,
    set_establishment_message,
)
from yearchange_tui.workflow.audit import audit, operator_identity
from yearchange_tui.workflow.calendar import CalendarError, Target, changeover_year, parse_date
from yearchange_tui.workflow.establishments import (
    UnknownEstablishmentError,
    establishment_by_uai,
)
from yearchange_tui.workflow.project_settings import (
    ProjectSettingsError,
    apply_changes,
    describe,
    find_project,
    lifetime_link_warning,
)
from yearchange_tui.workflow.units import current_school_year

_REFUSED = (AccessBlockError, CalendarError, ProjectSettingsError, UnknownEstablishmentError)
_YES = {**FRENCH_YES_NO, "yes": True, "no": False}
_SCHOOL_LIFE = {"defaut": True, "défaut": True, "etablissement": False, "établissement": False}


def _yes_no(text: str) -> bool:
    return yes_no(text, _YES)


def _school_life(text: str) -> bool:
    try:
        return _SCHOOL_LIFE[text.strip().lower()]
    except KeyError as error:
        raise argparse.ArgumentTypeError(
            f"« {text} » : « defaut » ou « etablissement » attendu") from error


_SET_OPTIONS: dict[str, tuple[str, str, Any]] = {
    "blocage_debut": ("block_start", "premier jour du blocage des accès (étape 4)",
                      parse_date),
    "blocage_fin": ("block_end", "dernier jour du blocage (au plus tard mi-septembre)",
                    parse_date),
    "blocage_message": ("message", ("message de la page d'explication ({ent}, {debut}, {fin}, "
                                    "{debut_texte}, {fin_texte}, {annee}) ; « » : l'exemple "
                                    "du cahier des charges"), str),
    "blocage_profils": ("profiles", "profils bloqués (eleves,parents ou National_ELV,…)", str),
    "etablissements_modifient": ("may_amend", ("les établissements peuvent modifier le "
                                               "blocage (oui|non, autorisation de la MOA)"),
                                 _yes_no),
    "limite_debut": ("limit_start", "début au plus tôt du blocage d'un établissement",
                     parse_date),
    "limite_fin": ("limit_end", "fin au plus tard du blocage d'un établissement",
                   parse_date),
    "lien_duree_de_vie": ("lifetime_url", ("lien « modifier la durée de vie » des groupes "
                                           "libres ({group_id} remplacé)"), str),
    "jours_delta": ("delta_days", "jours des deltas AAF (lundi,mardi,…)", str),
    "jours_complet": ("complete_days", "jours des complets AAF (samedi)", str),
    "avertissement": ("warning", ("date de l'avertissement aux gestionnaires de groupes "
                                  "libres (« aucune » : non prévu)"), parse_date),
    "second_avertissement": ("second_warning", "date du second avertissement",
                             parse_date),
    "bilan_groupes": ("summary", ("envoyer le bilan des groupes libres supprimés à l'étape 3 "
                                  "(oui|non)"), _yes_no),
    "suspension_notifications": ("suspension", ("suspendre les notifications de désactivation "
                                                "aux élèves et parents jusqu'au (mi-septembre "
                                                "au plus tard ; « aucune »)"), parse_date),
    "vie_scolaire": ("school_life_defaults", ("étape 5 : « defaut » (le moteur écrit les "
                                              "périodes et dates par défaut) ou « etablissement » "
                                              "(il les saisit) ; pour --uai, sinon tous les "
                                              "établissements du projet"), _school_life),
}
"""Option dest → (setting key of :data:`~yearchange_tui.workflow.project_settings.SETTING_NAMES`,
help, type). Dates are read by the handler with :func:`parse_date`, the one date parser of
the console and ``plan set`` (JJ/MM/AAAA or AAAA-MM-JJ, « aucune »), so a bad date gets the
same French message as everywhere else."""


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``project`` and ``access-block set``."""
    project = commands.add_parser(
        "project", parents=[common], help="paramètres du projet (blocage des accès, "
        "avertissements, rythme AAF, étape 5)",
        description="Affiche ou modifie les paramètres que le projet possède.")
    sub = project.add_subparsers(dest="project_command", metavar="ACTION")
    show = sub.add_parser("show", parents=[common], help="afficher les paramètres")
    _project_options(show)
    show.add_argument("--json", action="store_true", help=JSON_HELP)
    show.set_defaults(handler=cmd_project_show)
    change = sub.add_parser("set", parents=[common], help="modifier des paramètres (audité)")
    _project_options(change)
    change.add_argument("--uai", action="append", metavar="UAI",
                        help="établissement(s) visé(s) par --vie-scolaire")
    for dest, (_key, text, kind) in _SET_OPTIONS.items():
        change.add_argument("--" + dest.replace("_", "-"), dest=dest,
                            type=None if kind is parse_date else kind,
                            default=argparse.SUPPRESS, help=text)
    change.set_defaults(handler=cmd_project_set)
    project.set_defaults(handler=cmd_project_show, json=False, project=None, year=None)

    block = commands.choices.get("access-block")
    if block is not None:
        actions = block.add_subparsers(dest="access_block_command", metavar="ACTION")
        edit = actions.add_parser(
            "set", parents=[common], help="dates et message du blocage d'un établissement",
            description="Modifie le blocage d'un établissement pendant la pré-rentrée, dans "
                        "les limites du projet, "
                        "si le projet l'autorise (cahier des charges §6.4).")
        edit.add_argument("--uai", required=True, metavar="UAI",
                          help="l'établissement dont on règle le blocage")
        edit.add_argument("--debut", default=argparse.SUPPRESS,
                          metavar="JJ/MM/AAAA", help="premier jour (« aucune » : celui du projet)")
        edit.add_argument("--fin", default=argparse.SUPPRESS,
                          metavar="JJ/MM/AAAA", help="dernier jour (« aucune » : celui du projet)")
        edit.add_argument("--message", default=argparse.SUPPRESS,
                          help="message propre à l'établissement (« » : celui du projet)")
        edit.add_argument("--year", type=int, metavar="AAAA", help="année N (défaut : en cours)")
        edit.add_argument("--json", action="store_true", help=JSON_HELP)
        edit.set_defaults(handler=cmd_access_block_set)


def _project_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", metavar="P", help="code du projet (s'il y en a plusieurs)")
    parser.add_argument("--year", type=int, metavar="AAAA",
                        help="année N du changement d'année (défaut : en cours)")


def _fmt(day: str | None, absent: str = "non paramétré") -> str:
    return dt.date.fromisoformat(day).strftime("%d/%m/%Y") if day else absent


def cmd_project_show(args: argparse.Namespace) -> int:
    """``yearchange project show``."""
    _settings, database = open_database_from_args(args, Access.READ_ONLY)
    try:
        with database.session() as session:
            year = args.year or current_school_year(session).start_year
            data = describe(session, find_project(session, args.project), year)
    except _REFUSED as error:
        raise UsageError(str(error)) from error
    if args.json:
        print_json(data)
        return EXIT_OK
    block = data["access_block"]
    groups = data["free_groups"]
    print(f"Projet {data['project']} — {data['name']} ({data['ent_name']}), changement "
          f"d'année {data['school_year']}")
    print("\nBlocage des accès (étape 4, §6.4)")
    print(f"  dates                 : {_fmt(block['starts_on'])} → {_fmt(block['ends_on'])}")
    if not block["starts_on"] or not block["ends_on"]:
        print("  ⚠ sans dates, personne n'est redirigé pendant l'étape 4 [BLOCAGE-NON-PARAMETRE]")
    print(f"  profils               : {', '.join(block['profiles']) or 'aucun'}")
    print("  établissements        : " + (
        f"peuvent le modifier entre le {_fmt(block['establishment_earliest_start'], 'début du projet')}"
        f" et le {_fmt(block['establishment_latest_end'])}"
        if block["establishments_may_amend"] else "ne peuvent pas le modifier"))
    source = "exemple du cahier des charges" if block["message_is_default"] else "du projet"
    print(f"  message ({source}) :")
    for line in block["message"].splitlines():
        print(f"    {line}")
    print("  notifications de désactivation : " + (
        f"suspendues jusqu'au {_fmt(data['deactivation_notices_suspended_until'])}"
        if data["deactivation_notices_suspended_until"] else "non suspendues"))
    print("\nGroupes libres (étape 3, §6.3)")
    print(f"  avertissement         : {_fmt(groups['warning_on'], 'non prévu (à définir par le projet)')}")
    print(f"  second avertissement  : {_fmt(groups['second_warning_on'], 'non prévu (à définir par le projet)')}")
    print(f"  bilan après l'étape 3 : {'envoyé' if groups['summary'] else 'non envoyé'}")
    print(f"  lien durée de vie     : {groups['lifetime_url_template'] or '(vide)'}")
    if groups["lifetime_url_warning"]:
        print(f"  ⚠ {groups['lifetime_url_warning']}")
    print("\nRythme AAF (§3.3)")
    print(f"  deltas : {data['aaf']['delta_days'] or 'aucun'} ; complets : "
          f"{data['aaf']['complete_days'] or 'aucun'}")
    for update, aaf, integrated in data["aaf"]["rhythm"]:
        print(f"  {update:<10} {aaf:<22} {integrated}")
    print("\nÉtablissements")
    for row in data["establishments"]:
        step5 = "valeurs par défaut" if row["school_life_defaults"] else "saisie par l'établissement"
        own = ""
        if row["access_block_starts_on"] or row["access_block_ends_on"]:
            own = (f" ; blocage propre {_fmt(row['access_block_starts_on'], 'projet')} → "
                   f"{_fmt(row['access_block_ends_on'], 'projet')}")
        if row["access_block_message"]:
            own += " ; message propre"
        print(f"  {row['uai']}  étape 5 : {step5}{own}")
    return EXIT_OK


def cmd_project_set(args: argparse.Namespace) -> int:
    """``yearchange project set``: change settings, in one audited transaction."""
    try:
        changes = {key: parse_date(getattr(args, dest)) if kind is parse_date
                   else getattr(args, dest)
                   for dest, (key, _text, kind) in _SET_OPTIONS.items() if hasattr(args, dest)}
    except CalendarError as error:
        raise UsageError(str(error)) from error
    if not changes:
        raise UsageError("Rien à modifier : précisez au moins un paramètre (yearchange project "
                         "set --help).")
    if args.uai and "school_life_defaults" not in changes:
        raise UsageError("--uai ne s'emploie qu'avec --vie-scolaire.")
    _settings, database = open_database_from_args(
        args, refuse="la modification des paramètres du projet")
    try:
        with database.session() as session:
            project = find_project(session, args.project)
            year = args.year or current_school_year(session).start_year
            lines = apply_changes(session, project, year, changes, uais=args.uai,
                                  actor=operator_identity()["os_user"])
            audit(session, "project", "set", details={
                "project": project.code, "year": year, "uais": args.uai or [],
                "changes": {key: str(value) if isinstance(value, dt.date) else value
                            for key, value in changes.items()}})
            warning = (lifetime_link_warning(project.group_lifetime_url_template)
                       if "lifetime_url" in changes else "")
    except _REFUSED as error:
        raise UsageError(str(error)) from error
    for line in lines:
        print(f"✓ {line}")
    if warning:
        err(f"⚠ {warning}")
    return EXIT_OK


def cmd_access_block_set(args: argparse.Namespace) -> int:
    """``yearchange access-block set --uai U [--debut D] [--fin D] [--message M]``."""
    if not any(hasattr(args, name) for name in ("debut", "fin", "message")):
        raise UsageError("Rien à modifier : précisez --debut, --fin ou --message.")
    try:
        for name in ("debut", "fin"):
            if hasattr(args, name):
                setattr(args, name, parse_date(getattr(args, name)))
    except CalendarError as error:
        raise UsageError(str(error)) from error
    _settings, database = open_database_from_args(
        args, refuse="la modification du blocage des accès")
    try:
        with database.session() as session:
            ref = establishment_by_uai(session, args.uai)
            establishment = session.get(Establishment, ref.id)
            assert establishment is not None
            known = getattr(args, "debut", None) or getattr(args, "fin", None)
            year = args.year or (changeover_year(known) if known
                                 else current_school_year(session).start_year)
            if hasattr(args, "debut") or hasattr(args, "fin"):
                own_start, own_end = own_block_dates(session, ref.id, year)
                starts = getattr(args, "debut", own_start)
                ends = getattr(args, "fin", own_end)
                set_block_window(session, year, Target(establishment_id=ref.id), starts, ends,
                                 actor=operator_identity()["os_user"])
            if hasattr(args, "message"):
                set_establishment_message(session, ref.id, args.message, school_year_start=year)
            session.refresh(establishment)
            window = effective_window(session, establishment, year)
            project = session.get(Project, establishment.project_id)
            assert project is not None
            message = render_message(project, window, establishment) if window else ""
            audit(session, "access-block", "set", establishment_id=ref.id, details={
                "uai": ref.uai, "year": year,
                "debut": str(getattr(args, "debut", "inchangé")),
                "fin": str(getattr(args, "fin", "inchangé")),
                "message": getattr(args, "message", None)})
    except _REFUSED as error:
        raise UsageError(str(error)) from error
    if args.json:
        print_json({"uai": ref.uai, "window": None if window is None else {
            "starts_on": window.starts_on.isoformat(), "ends_on": window.ends_on.isoformat(),
            "source": window.source}, "message": message})
        return EXIT_OK
    if window is None:
        print(f"✓ {ref.uai} : aucun blocage (ni le projet ni l'établissement n'ont de dates).")
    else:
        print(f"✓ {ref.uai} : blocage du {window.starts_on:%d/%m/%Y} au "
              f"{window.ends_on:%d/%m/%Y} ({window.source}). Message affiché :")
        print(message)
    return EXIT_OK

