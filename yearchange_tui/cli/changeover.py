"""CLI commands of the change-over: dry-run, run, status, verify, notify, override."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from yearchange_tui.changeover.runner import ChangeoverRunner, unit_table
from yearchange_tui.changeover.steps import DRY_RUN, UNIT_STEPS, StepDefinition, step_definition
from yearchange_tui.changeover.verify import verify
from yearchange_tui.cli.steps import STEP_COMMANDS, counts_line, print_outcomes
from yearchange_tui.cli.util import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    err,
    open_database_from_args,
    print_json,
    refuse_in_read_only,
    settings_from_args,
)
from yearchange_tui.ent.database import Access
from yearchange_tui.workflow.establishments import (
    UnknownEstablishmentError,
    establishment_by_uai,
)
from yearchange_tui.workflow.guards import grant_override
from yearchange_tui.workflow.models import (
    UNIT_STATUS_GLYPHS,
    UNIT_STATUS_LABELS,
    Step,
    UnitStatus,
)
from yearchange_tui.workflow.units import current_school_year

STEP_ALIASES = {str(definition.number): definition.key for definition in UNIT_STEPS}


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the change-over commands to the ``yearchange`` parser."""
    dry = commands.add_parser(
        "dry-run", parents=[common], help="passage à blanc des étapes 1 à 3 (aucune modification)",
        description="Simule les étapes 1 à 3 pour chaque établissement : comptes, listes et "
                    "avertissements exacts, sans rien modifier. Le rapport est conservé.")
    dry.add_argument("--uai", action="append", metavar="UAI", help="établissement (répétable)")
    dry.add_argument("--at", metavar="AAAA-MM-JJ", help="date de référence (défaut : maintenant)")
    dry.add_argument("--json", action="store_true")
    dry.set_defaults(handler=cmd_dry_run)

    run = commands.add_parser(
        "run", parents=[common], help="exécuter une étape",
        description="Exécute une étape pour les établissements choisis. Les étapes 1 à 3 "
                    "demandent de taper le nombre d'établissements (ou l'UAI) pour confirmer.")
    names = [definition.key.value for definition in UNIT_STEPS if definition.key]
    run.add_argument("step", metavar="ÉTAPE", choices=names + list(STEP_ALIASES),
                     help=", ".join(names))
    target = run.add_mutually_exclusive_group()
    target.add_argument("--uai", action="append", metavar="UAI", help="établissement (répétable)")
    target.add_argument("--all", action="store_true", help="tous les établissements")
    run.add_argument("--yes", action="store_true", help="ne pas demander de confirmation")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="établissements traités en parallèle (défaut 1)")
    run.add_argument("--json", action="store_true")
    run.set_defaults(handler=cmd_run)

    status = commands.add_parser("status", parents=[common],
                                 help="état des établissements × étapes")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)

    verify = commands.add_parser("verify", parents=[common],
                                 help="vérifier les archives (SHA-256) et les invariants")
    verify.add_argument("--uai", action="append", metavar="UAI")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=cmd_verify)

    notify = commands.add_parser(
        "notify", parents=[common],
        help="avertir les gestionnaires des groupes libres limités à l'année scolaire")
    notify.add_argument("which", choices=["warning", "second-warning"],
                        help="premier ou second avertissement")
    notify.add_argument("--deletion-date", required=True, metavar="AAAA-MM-JJ",
                        help="jour du passage de l'étape 3, cité dans le message")
    target = notify.add_mutually_exclusive_group()
    target.add_argument("--uai", action="append", metavar="UAI")
    target.add_argument("--all", action="store_true")
    notify.add_argument("--json", action="store_true")
    notify.set_defaults(handler=cmd_notify)

    override = commands.add_parser(
        "override", parents=[common], help="dérogation MOE à une garde (tracée)")
    override.add_argument("guard", metavar="GARDE",
                          choices=["ordre-des-etapes", "gel-aaf", "gel-imports"])
    override.add_argument("--reason", required=True, help="motif (obligatoire)")
    override.add_argument("--uai", metavar="UAI", help="établissement (défaut : tous)")
    override.set_defaults(handler=cmd_override)


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as error:
        raise UsageError(f"{option} : date invalide « {value} » (attendu AAAA-MM-JJ).") from error


def _runner(args: argparse.Namespace, now: dt.datetime | None = None,
            access: Access = Access.READ_WRITE) -> tuple[Any, ChangeoverRunner]:
    settings, database = open_database_from_args(args, access)
    return settings, ChangeoverRunner(database, settings.storage_dir, now=now,
                                      read_only=settings.read_only)


def _select(runner: ChangeoverRunner, uais: list[str] | None) -> list[Any]:
    try:
        establishments = runner.establishments(uais)
    except UnknownEstablishmentError as error:
        raise UsageError(str(error)) from error
    if not establishments:
        raise UsageError("Aucun établissement dans la base.")
    return establishments


def cmd_dry_run(args: argparse.Namespace) -> int:
    """``yearchange dry-run``."""
    at = _date(args.at, "--at")
    now = dt.datetime.combine(at, dt.time(12), tzinfo=dt.UTC) if at else None
    settings, runner = _runner(args, now)
    establishments = _select(runner, args.uai)
    outcomes = runner.dry_run(establishments, DRY_RUN.replays)
    if args.json:
        print_json([outcome.as_dict() for outcome in outcomes])
        return EXIT_OK
    print(f"Passage à blanc des étapes 1 à 3 — {len(establishments)} établissement(s), "
          "aucune modification faite.")
    current = None
    for outcome in outcomes:
        if outcome.uai != current:
            current = outcome.uai
            print(f"\n{outcome.uai}")
        print(f"  étape {outcome.step.number} {outcome.step.label} : "
              f"{counts_line(outcome.counts) or 'rien à faire'}")
        for warning in outcome.warnings:
            print(f"    ⚠ {warning}")
    warnings = sum(len(outcome.warnings) for outcome in outcomes)
    kept = ("Rapport non conservé (mode consultation)." if settings.read_only
            else "Rapport conservé ; comparez avec `yearchange status`.")
    print(f"\n{warnings} avertissement(s). {kept}")
    return EXIT_OK


def _confirm(definition: StepDefinition, establishments: list[Any], assume_yes: bool) -> None:
    if assume_yes or not definition.confirm:
        return
    expected = establishments[0].uai if len(establishments) == 1 else str(len(establishments))
    what = "l'UAI" if len(establishments) == 1 else "le nombre d'établissements"
    if not sys.stdin.isatty():
        raise UsageError(f"Confirmation requise pour l'étape {definition.number} "
                         f"({definition.label}) : relancez avec --yes ou dans un terminal.")
    print(f"Étape {definition.number} — {definition.label} — pour {len(establishments)} "
          "établissement(s).")
    answer = input(f"Tapez {what} ({expected}) pour confirmer : ").strip().upper()
    if answer != expected:
        raise UsageError("Confirmation incorrecte : rien n'a été fait.")


def cmd_run(args: argparse.Namespace) -> int:
    """``yearchange run STEP``: any step of the registry, through the runner."""
    step = STEP_ALIASES.get(args.step) or Step(args.step)
    definition = step_definition(step)
    if not args.uai and not args.all:
        raise UsageError("Précisez les établissements : --uai UAI (répétable) ou --all.")
    refuse_in_read_only(settings_from_args(args), f"l'étape {definition.number}")
    if args.workers < 1:
        raise UsageError("--workers doit être au moins 1.")
    _settings, runner = _runner(args)
    establishments = _select(runner, None if args.all else args.uai)
    _confirm(definition, establishments, args.yes)
    command = STEP_COMMANDS.get(step)
    if command is not None:
        return command(runner, establishments, args)
    outcomes = runner.run_units(step, establishments, workers=args.workers)
    if args.json:
        print_json([outcome.as_dict() for outcome in outcomes])
    else:
        print_outcomes(step, outcomes)
    failed = [o for o in outcomes if o.status in ("failed", "refused", "cancelled")]
    return EXIT_FAILED if failed else EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """``yearchange status``."""
    _settings, database = open_database_from_args(args, Access.READ_ONLY)
    table = unit_table(database)
    if args.json:
        print_json(table)
        return EXIT_OK
    if not table:
        print("Aucun établissement.")
        return EXIT_OK
    print(f"Changement d'année {table[0]['school_year']} → établissements × étapes")
    header = "UAI       " + "".join(f"{'étape ' + str(d.number):<16}" for d in UNIT_STEPS) + "nom"
    print(header)
    for row in table:
        cells = []
        for definition in UNIT_STEPS:
            assert definition.key is not None
            state = row["steps"][definition.key.value]
            status = UnitStatus(state["status"])
            word = UNIT_STATUS_LABELS[status]
            if status is UnitStatus.RUNNING and state["progress"][1]:
                done, total = state["progress"]
                word = f"en cours {100 * done // total} %"
            cells.append(f"{UNIT_STATUS_GLYPHS[status]} {word:<14}")
        print(f"{row['uai']:<10}" + "".join(cells) + row["name"])
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    """``yearchange verify``."""
    settings, database = open_database_from_args(args, Access.READ_ONLY)
    runner = ChangeoverRunner(database, settings.storage_dir, read_only=True)
    establishments = _select(runner, args.uai)
    with database.session() as session:
        year = current_school_year(session)
        reports = verify(session, settings.storage_dir, [e.id for e in establishments], year.id)
    if args.json:
        print_json([report.as_dict() for report in reports])
    else:
        for report in reports:
            mark = "✓ conforme" if not report.problems else "✗ anomalies"
            print(f"{mark:<13} {report.uai}  {report.archives_checked} archive(s) vérifiée(s)")
            for problem in report.problems:
                print(f"    {problem}")
    return EXIT_FAILED if any(report.problems for report in reports) else EXIT_OK


def cmd_notify(args: argparse.Namespace) -> int:
    """``yearchange notify warning|second-warning``."""
    deletion_date = _date(args.deletion_date, "--deletion-date")
    assert deletion_date is not None
    if not args.uai and not args.all:
        raise UsageError("Précisez les établissements : --uai UAI (répétable) ou --all.")
    refuse_in_read_only(settings_from_args(args), "l'envoi des avertissements")
    _settings, runner = _runner(args)
    establishments = _select(runner, None if args.all else args.uai)
    outcomes = runner.send_warnings(establishments, deletion_date,
                                    second=args.which == "second-warning")
    if args.json:
        print_json([outcome.as_dict() for outcome in outcomes])
        return EXIT_OK
    for outcome in outcomes:
        print(f"✓ {outcome.uai}  {outcome.counts.get('avertissements envoyés', 0)} message(s), "
              f"{outcome.counts.get('groupes signalés', 0)} groupe(s) signalé(s)")
        for warning in outcome.warnings:
            print(f"    ⚠ {warning}")
    return EXIT_OK


def cmd_override(args: argparse.Namespace) -> int:
    """``yearchange override GUARD --reason …``."""
    refuse_in_read_only(settings_from_args(args), "une dérogation")
    _settings, database = open_database_from_args(args)
    with database.session() as session:
        establishment_id = None
        if args.uai:
            try:
                establishment_id = establishment_by_uai(session, args.uai).id
            except UnknownEstablishmentError as error:
                raise UsageError(str(error)) from error
        try:
            grant_override(session, args.guard, args.reason, establishment_id)
        except ValueError as error:
            raise UsageError(str(error)) from error
    err(f"Dérogation « {args.guard} » enregistrée et tracée"
        f"{' pour ' + args.uai if args.uai else ' pour tous les établissements'}.")
    return EXIT_OK
