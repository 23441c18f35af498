"""CLI commands of the change-over: dry-run, run, status, verify, notify, override."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from yearchange_tui.changeover.dry_run import dry_run_warnings, write_warnings_csv
from yearchange_tui.changeover.notices import deactivation_line, send_deactivation_notices
from yearchange_tui.changeover.runner import ChangeoverRunner, unit_table
from yearchange_tui.changeover.steps import DRY_RUN, UNIT_STEPS, StepDefinition, step_definition
from yearchange_tui.changeover.steps.archive import RedoRefused, reset_archives_for_redo
from yearchange_tui.changeover.verify import verify
from yearchange_tui.cli import tables
from yearchange_tui.cli.steps import STEP_COMMANDS, counts_line, print_outcomes
from yearchange_tui.cli.tables import print_paragraph
from yearchange_tui.cli.util import (
    EXIT_FAILED,
    EXIT_OK,
    JSON_HELP,
    UsageError,
    day_option,
    err,
    open_database_from_args,
    print_json,
    snake_id,
)
from yearchange_tui.ent.database import Access, Database
from yearchange_tui.scheduling.changes import prune_changes
from yearchange_tui.scheduling.client import queue_table
from yearchange_tui.workflow.establishments import (
    KIND_LABELS,
    UnknownEstablishmentError,
    establishment_by_uai,
)
from yearchange_tui.workflow.guards import (
    GuardRefused,
    WindowProblem,
    grant_override,
    grant_window_override,
    record_window_refusal,
    run_window_problems,
    window_refusal_message,
)
from yearchange_tui.workflow.localtime import format_local
from yearchange_tui.workflow.models import (
    UNIT_STATUS_GLYPHS,
    UNIT_STATUS_LABELS,
    Step,
    UnitStatus,
)
from yearchange_tui.workflow.units import (
    QUEUE_STATE_GLYPHS,
    QUEUE_STATE_SHORT,
    NoCurrentYearError,
    QueueState,
    current_school_year,
)

STEP_ALIASES = {str(definition.number): definition.key for definition in UNIT_STEPS}


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the change-over commands to the ``yearchange`` parser."""
    dry = commands.add_parser(
        "dry-run", parents=[common], help="passage à blanc des étapes 1 à 3 (aucune modification)",
        description="Simule les étapes 1 à 3 pour chaque établissement : comptes, listes et "
                    "avertissements exacts, sans rien modifier. Le rapport est conservé.")
    dry.add_argument("--uai", action="append", metavar="UAI", help="établissement (répétable)")
    dry.add_argument("--at", metavar="AAAA-MM-JJ", help="date de référence (défaut : maintenant)")
    dry.add_argument("--all", action="store_true",
                     help="détailler chaque liste en entier (archives, classes, rubriques…)")
    dry.add_argument("--report", action="store_true",
                     help="ne rien simuler : lister les avertissements du dernier passage à "
                          "blanc de chaque établissement, pour toute l'académie")
    dry.add_argument("--code", action="append", metavar="CODE",
                     help="avec --report : seulement ce code d'avertissement (répétable)")
    dry.add_argument("--text", metavar="TEXTE",
                     help="avec --report : seulement les avertissements contenant ce texte")
    dry.add_argument("--csv", metavar="FICHIER",
                     help="avec --report : écrire le rapport en CSV (UTF-8 avec BOM, « ; », "
                          "fins de ligne CRLF) dans FICHIER, ou « - » pour la sortie standard")
    dry.add_argument("--workers", type=int, default=1, metavar="N",
                     help="établissements simulés en parallèle, chacun dans son processus "
                          "(défaut 1)")
    dry.add_argument("--json", action="store_true", help=JSON_HELP)
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
    run.add_argument("--hors-fenetre", action="store_true", dest="hors_fenetre",
                     help="étapes 1 à 3 : passer outre la fenêtre de maintenance et la "
                          "fermeture de l'établissement (exige --reason, tracé)")
    run.add_argument("--redo", action="store_true",
                     help="étape 2 : reconstruire les archives des établissements donnés "
                          "(--uai) tant que l'étape 3 n'a pas tourné (exige --reason, tracé)")
    run.add_argument("--reason", metavar="MOTIF",
                     help="motif de --hors-fenetre ou de --redo (tracé dans l'audit)")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="établissements traités en parallèle (défaut 1)")
    run.add_argument("--json", action="store_true", help=JSON_HELP)
    run.set_defaults(handler=cmd_run)

    status = commands.add_parser("status", parents=[common],
                                 help="état des établissements × étapes")
    status.add_argument("--json", action="store_true", help=JSON_HELP)
    status.set_defaults(handler=cmd_status)

    verify = commands.add_parser("verify", parents=[common],
                                 help="vérifier les archives (SHA-256) et les invariants")
    verify.add_argument("--uai", action="append", metavar="UAI",
                        help="établissement (répétable ; défaut : tous)")
    verify.add_argument("--json", action="store_true", help=JSON_HELP)
    verify.set_defaults(handler=cmd_verify)

    notify = commands.add_parser(
        "notify", parents=[common],
        help="avertir les gestionnaires des groupes libres limités à l'année scolaire, ou "
             "les comptes désactivés")
    notify.add_argument("which", choices=["warning", "second-warning", "deactivation"],
                        help="premier ou second avertissement, ou notifications de "
                             "désactivation en attente (hors suspension du projet)")
    notify.add_argument("--deletion-date", metavar="AAAA-MM-JJ",
                        help="jour du passage de l'étape 3, cité dans le message "
                             "(avertissements)")
    target = notify.add_mutually_exclusive_group()
    target.add_argument("--uai", action="append", metavar="UAI",
                        help="établissement (répétable)")
    target.add_argument("--all", action="store_true", help="tous les établissements")
    notify.add_argument("--json", action="store_true", help=JSON_HELP)
    notify.set_defaults(handler=cmd_notify)

    override = commands.add_parser(
        "override", parents=[common], help="dérogation MOE à une garde (tracée)")
    override.add_argument("guard", metavar="GARDE",
                          choices=["ordre-des-etapes", "gel-aaf", "gel-imports"],
                          help="la garde levée : ordre-des-etapes, gel-aaf ou gel-imports")
    override.add_argument("--reason", required=True, help="motif (obligatoire)")
    override.add_argument("--uai", metavar="UAI", help="établissement (défaut : tous)")
    override.set_defaults(handler=cmd_override)


def _date(value: str | None, option: str) -> dt.date | None:
    return None if value is None else day_option(value, option)


def _runner(args: argparse.Namespace, now: dt.datetime | None = None,
            access: Access = Access.READ_WRITE,
            refuse: str | None = None) -> tuple[Any, ChangeoverRunner]:
    settings, database = open_database_from_args(args, access, refuse=refuse)
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
    if args.report:
        return _dry_run_report(args)
    if args.code or args.text or args.csv:
        raise UsageError("--code, --text et --csv vont avec --report (rapport académique des "
                         "avertissements).")
    at = _date(args.at, "--at")
    now = dt.datetime.combine(at, dt.time(12), tzinfo=dt.UTC) if at else None
    settings, runner = _runner(args, now)
    establishments = _select(runner, args.uai)
    if args.workers < 1:
        raise UsageError("--workers doit être au moins 1.")
    outcomes = runner.dry_run(establishments, DRY_RUN.replays, workers=args.workers)
    if args.json:
        print_json([outcome.as_dict() for outcome in outcomes])
        return EXIT_OK
    print_paragraph(f"Passage à blanc des étapes 1 à 3 — {len(establishments)} "
                    "établissement(s), aucune modification faite.")
    current = None
    for outcome in outcomes:
        if outcome.uai != current:
            current = outcome.uai
            print(f"\n{outcome.uai}")
        # Every count, exact: the line wraps between words instead of being cut.
        counts = counts_line(outcome.counts, limit=len(outcome.counts))
        print_paragraph(f"étape {outcome.step.number} {outcome.step.label} : "
                        f"{counts or 'rien à faire'}", "  ", "      ")
        if args.all:
            for key, items in outcome.lists.items():
                print_paragraph(f"{key} ({len(items)}) : {', '.join(items) or 'aucun'}",
                                "      ", "        ")
        elif any(outcome.lists.values()):
            listed = ", ".join(f"{key} ({len(items)})" for key, items in outcome.lists.items()
                               if items)
            print_paragraph(f"listes : {listed} — --all pour les détailler", "      ",
                            "        ")
        for warning in outcome.warnings:
            print_paragraph(f"⚠ {warning}", "    ", "      ")
    for step in DRY_RUN.replays:
        definition = step_definition(step)
        if definition.vigilance:
            print()
            print_paragraph(f"Points de vigilance de l'étape {definition.number} "
                            f"({definition.label}) :")
            for line in definition.vigilance:
                print_paragraph(f"⚠ {line}", "  ", "    ")
    warnings = sum(len(outcome.warnings) for outcome in outcomes)
    kept = ("Rapport non conservé (mode consultation)." if settings.read_only
            else "Rapport conservé ; comparez avec `yearchange status`, et voyez les "
                 "avertissements de toute l'académie avec `yearchange dry-run --report`.")
    print()
    print_paragraph(f"{warnings} avertissement(s). {kept}")
    return EXIT_OK


def _dry_run_report(args: argparse.Namespace) -> int:
    """``yearchange dry-run --report``: every warning of the newest dry runs."""
    if args.at or args.all:
        raise UsageError("--report lit les passages à blanc déjà faits : --at et --all ne "
                         "s'y appliquent pas.")
    _settings, database = open_database_from_args(args, Access.READ_ONLY)
    try:
        warnings = dry_run_warnings(database, uais=args.uai or (), codes=args.code or (),
                                    text=args.text or "")
        if args.csv == "-":
            write_warnings_csv(warnings, sys.stdout)
            return EXIT_OK
        if args.csv:
            try:
                with open(args.csv, "w", encoding="utf-8", newline="") as stream:
                    written = write_warnings_csv(warnings, stream)
            except OSError as error:
                raise UsageError(f"--csv : écriture impossible dans « {args.csv} » "
                                 f"({error.strerror or error}).") from error
            print_paragraph(f"{written} avertissement(s) écrit(s) dans {args.csv} (CSV UTF-8, "
                            "séparateur « ; »).")
            return EXIT_OK
        if args.json:
            print_json([warning.as_dict() for warning in warnings])
            return EXIT_OK
        rows = list(warnings)
    except NoCurrentYearError as error:
        raise UsageError(str(error)) from error
    _print_warnings(rows, args)
    return EXIT_OK


def _print_warnings(rows: list[Any], args: argparse.Namespace) -> None:
    filters = [f"UAI {', '.join(args.uai)}"] if args.uai else []
    filters += [f"code {', '.join(args.code)}"] if args.code else []
    filters += [f"texte « {args.text} »"] if args.text else []
    scope = f" (filtre : {' ; '.join(filters)})" if filters else ""
    establishments = len({row.uai for row in rows})
    print_paragraph(f"Avertissements des derniers passages à blanc{scope} : {len(rows)} "
                    f"avertissement(s), {establishments} établissement(s).")
    current = None
    table = None
    for row in rows:
        if row.uai != current:
            if table is not None:
                tables.print_table(table, indent=2)
            current = row.uai
            print()
            print_paragraph(f"{row.uai} — {row.name} (passage à blanc du "
                            f"{format_local(row.made_at, '%d/%m/%Y à %H:%M')})")
            table = tables.table(("étape", {"no_wrap": True}), ("code", {"no_wrap": True}),
                                 ("message", {"ratio": 1, "min_width": 20}))
        assert table is not None
        table.add_row(str(row.step.number), row.code, row.message)
    if table is not None:
        tables.print_table(table, indent=2)
    if rows:
        print()
        print_paragraph("Export tableur : yearchange dry-run --report --csv FICHIER.")




def print_vigilance(definition: StepDefinition) -> None:
    """The step's points of vigilance (seed), on stderr, before it is confirmed or run."""
    if definition.vigilance:
        err(tables.paragraph(f"⚠ Points de vigilance de l'étape {definition.number} "
                             f"({definition.label}) :"))
        for line in definition.vigilance:
            err(tables.paragraph(f"- {line}", "  ", "    "))


def _window_check(runner: ChangeoverRunner, step: Step, establishments: list[Any],
                  args: argparse.Namespace) -> list[WindowProblem]:
    """Refuse (exit 2, audited, nothing changed) steps 1 to 3 outside the window or before
    closure without ``--hors-fenetre``; with it, say so before anything is asked. The one
    window check of ``run``: the override of the problems found here is audited once the
    operator has confirmed (:func:`grant_window_override`)."""
    with runner.database.session() as session:
        problems = run_window_problems(session, establishments, step, runner.now())
        if problems and not args.hors_fenetre:
            record_window_refusal(session, step, problems)
    if problems and not args.hors_fenetre:
        raise UsageError(window_refusal_message(step, problems))
    if problems:
        err(f"⚠ Hors fenêtre ou avant la fermeture — {len(problems)} établissement(s), "
            f"dérogation --hors-fenetre (motif : {args.reason}) :")
        for problem in problems:
            err(f"  {problem.line}")
    elif args.hors_fenetre:
        err("--hors-fenetre sans effet : chaque établissement est dans sa fenêtre.")
    return problems


def _confirm(definition: StepDefinition, establishments: list[Any], assume_yes: bool) -> None:
    print_vigilance(definition)
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
    if args.workers < 1:
        raise UsageError("--workers doit être au moins 1.")
    if args.hors_fenetre and not (args.reason or "").strip():
        raise UsageError("--hors-fenetre exige un motif : --reason MOTIF.")
    if args.redo:
        if step is not Step.ARCHIVE or not args.uai:
            raise UsageError("--redo s'emploie avec l'étape 2 et --uai : "
                             "yearchange run archive --redo --uai UAI --reason MOTIF.")
        if not (args.reason or "").strip():
            raise UsageError("--redo exige un motif : --reason MOTIF.")
    if args.reason is not None and not (args.hors_fenetre or args.redo):
        raise UsageError("--reason s'emploie avec --hors-fenetre ou --redo.")
    _settings, runner = _runner(args, refuse=f"l'étape {definition.number}")
    establishments = _select(runner, None if args.all else args.uai)
    # A redo repairs archives of a step 2 already run: the window guard is for first runs.
    problems = [] if args.redo else _window_check(runner, step, establishments, args)
    _confirm(definition, establishments, args.yes)
    if problems:
        with runner.database.session() as session:
            try:
                grant_window_override(session, step, problems, args.reason)
            except GuardRefused as refusal:
                raise UsageError(refusal.message) from refusal
    if args.redo:
        _reset_for_redo(runner, establishments, args.reason)
    try:
        command = STEP_COMMANDS.get(step)
        if command is not None:
            return command(runner, establishments, args)
        outcomes = runner.run_units(step, establishments, workers=args.workers)
    finally:
        _prune_console_log(runner.database)
    if args.json:
        print_json([outcome.as_dict() for outcome in outcomes])
    else:
        print_outcomes(step, outcomes)
    failed = [o for o in outcomes if o.status in ("failed", "refused", "cancelled")]
    return EXIT_FAILED if failed else EXIT_OK


def _prune_console_log(database: Database) -> None:
    """Keep the console's change log bounded after a run: it grows with every unit, and
    without an engine nothing else prunes it (a failure here never hides the run's)."""
    try:
        with database.engine.begin() as connection:
            prune_changes(connection)
    except SQLAlchemyError as error:
        err("Le journal des changements de la console n'a pas été élagué (il le sera à la "
            f"prochaine exécution ; détail technique : {error}).")


def _reset_for_redo(runner: ChangeoverRunner, establishments: list[Any], reason: str) -> None:
    """``run archive --redo``: forget the step-2 archives (all establishments or none, exit
    2 on a refusal), so the run below writes them again through the one lifecycle."""
    forgotten: dict[str, int] = {}
    try:
        with runner.database.session() as session:
            year = current_school_year(session)
            for establishment in establishments:
                forgotten[establishment.uai] = reset_archives_for_redo(
                    session, establishment.id, establishment.uai, year.id, reason)
    except RedoRefused as refusal:
        raise UsageError(refusal.message) from refusal
    for uai, count in forgotten.items():
        err(f"{uai} : {count} archive(s) de l'étape 2 à reconstruire (motif : {reason}).")


def cmd_status(args: argparse.Namespace) -> int:
    """``yearchange status``."""
    _settings, database = open_database_from_args(args, Access.READ_ONLY)
    table = unit_table(database)
    _with_queue_states(table, queue_table(database))
    if args.json:
        print_json([_status_row(row) for row in table])
        return EXIT_OK
    if not table:
        print("Aucun établissement.")
        return EXIT_OK
    print_paragraph(f"Changement d'année {table[0]['school_year']} → établissements × étapes")
    # The UAI keeps its width; the name gives its width first, then the states wrap
    # between words.
    grid = tables.table(("UAI", {"no_wrap": True}),
                        *((f"étape {d.number}", {"min_width": 7}) for d in UNIT_STEPS),
                        ("nom", {"ratio": 1, "min_width": 12}))
    for row in table:
        cells = []
        for definition in UNIT_STEPS:
            assert definition.key is not None
            state = row["steps"][definition.key.value]
            status = UnitStatus(state["status"])
            word = UNIT_STATUS_LABELS[status]
            glyph = UNIT_STATUS_GLYPHS[status]
            if status is UnitStatus.RUNNING and state["progress"][1]:
                done, total = state["progress"]
                word = f"en cours {100 * done // total} %"
            if state.get("queue"):
                queue = QueueState(state["queue"])
                glyph, word = QUEUE_STATE_GLYPHS[queue], QUEUE_STATE_SHORT[queue]
            cells.append(f"{glyph} {word}")
        grid.add_row(row["uai"], *cells, row["name"])
    tables.print_table(grid)
    return EXIT_OK


def _with_queue_states(table: list[dict[str, Any]],
                       states: dict[tuple[str, str], tuple[UnitStatus, QueueState | None, str]]
                       ) -> None:
    """Each cell as the engine's queue sees it: queued, waiting, interrupted, or refused
    before the unit began (``queue`` is ``""`` when the unit is not waiting)."""
    for row in table:
        for key, state in row["steps"].items():
            status, queue, reason = states.get((row["uai"], key), (None, None, ""))
            state["queue"] = queue.value if queue is not None else ""
            if status is not None:
                state["status"] = status.value
                state["error"] = reason or state["error"]


def _status_row(row: dict[str, Any]) -> dict[str, Any]:
    """One establishment of ``status --json``: the kind's and each count's French label
    beside its stable identifier (times are printed by ``print_json``, ISO 8601 with the
    operator's offset)."""
    steps = {key: {**state, "counts": [{"id": snake_id(label), "label": label, "value": value}
                                       for label, value in state["counts"].items()]}
             for key, state in row["steps"].items()}
    return {**row, "kind_label": KIND_LABELS.get(row["kind"], row["kind"]), "steps": steps}


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
    """``yearchange notify warning|second-warning|deactivation``."""
    if not args.uai and not args.all:
        raise UsageError("Précisez les établissements : --uai UAI (répétable) ou --all.")
    if args.which == "deactivation":
        _settings, runner = _runner(args, refuse="l'envoi des notifications")
        sent = send_deactivation_notices(runner, _select(runner, None if args.all
                                                         else args.uai))
        if args.json:
            print_json([{"uai": o.uai, "sent": o.sent, "suspended": o.suspended,
                         "suspended_until": o.suspended_until.isoformat()
                         if o.suspended_until else None} for o in sent])
            return EXIT_OK
        for outcome in sent:
            print(f"✓ {deactivation_line(outcome)}")
        return EXIT_OK
    if not args.deletion_date:
        raise UsageError("--deletion-date AAAA-MM-JJ est nécessaire pour un avertissement.")
    deletion_date = _date(args.deletion_date, "--deletion-date")
    assert deletion_date is not None
    _settings, runner = _runner(args, refuse="l'envoi des avertissements")
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
    _settings, database = open_database_from_args(args, refuse="une dérogation")
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
