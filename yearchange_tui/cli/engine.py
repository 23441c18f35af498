"""CLI commands of the scheduler: ``engine``, ``engine-status``, ``engine-stop``,
``engine-request`` and ``plan`` (show and edit the calendar and the maintenance windows)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import logging.handlers
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, inspect, select, text

from yearchange_tui.cli import tables
from yearchange_tui.cli.tables import print_paragraph
from yearchange_tui.cli.util import (
    EXIT_FAILED,
    EXIT_OK,
    JSON_HELP,
    UsageError,
    config_for_children,
    err,
    open_database_from_args,
    print_json,
    refuse_in_read_only,
    settings_from_args,
)
from yearchange_tui.config import LOG_FORMAT, ConfigError, MaskingFormatter
from yearchange_tui.ent.base import utcnow
from yearchange_tui.ent.database import Access
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.lease import (
    LeaseHeldError,
    read_lease,
    request_engine_stop,
    wait_engine_stopped,
)
from yearchange_tui.scheduling.models import (
    TASK_STATUS_LABELS,
    EngineRequest,
    EngineTask,
    TaskStatus,
)
from yearchange_tui.scheduling.spawn import (
    EngineStartError,
    default_log_file,
    spawn_engine,
    wait_for_engine,
)
from yearchange_tui.workflow.access_block import block_warnings
from yearchange_tui.workflow.audit import audit, operator_identity
from yearchange_tui.workflow.calendar import (
    AAF_RHYTHM,
    DEFAULT_TIMEZONE,
    CalendarError,
    add_window,
    build_plan,
    parse_date,
    parse_local_datetime,
    parse_milestone,
    parse_time,
    remove_window,
    resolve_target,
    set_date,
    unset_date,
)
from yearchange_tui.workflow.establishments import KIND_LABELS, normalise_uai
from yearchange_tui.workflow.localtime import TimezoneError, operator_zone
from yearchange_tui.workflow.localtime import configure as configure_operator_zone
from yearchange_tui.workflow.units import current_school_year

ACTIONS = ("run", "dry-run", "pause", "resume", "cancel", "retry", "import-aaf",
           "import-timetable", "set-date")
WEEKDAYS = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")
_LOGGER_LEVELS = {"yearchange_tui": logging.INFO, "apscheduler": logging.WARNING}


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the scheduler commands to the ``yearchange`` parser."""
    engine = commands.add_parser(
        "engine", parents=[common], help="moteur sans interface : calendrier et demandes",
        description="Moteur du changement d'année, sans interface : exécute le calendrier et "
                    "les demandes des consoles. Un seul moteur par base. Journal dans un "
                    "fichier et sur la sortie standard ; SIGTERM l'arrête proprement (les "
                    "unités en cours s'arrêtent à leur point de reprise), SIGHUP est ignoré.")
    engine.add_argument("--concurrency", type=int, metavar="N",
                        help="unités exécutées en parallèle (défaut 2)")
    engine.add_argument("--log-file", type=Path, metavar="FICHIER",
                        help="journal (défaut : <données>/logs/engine.log)")
    engine.add_argument("--no-stdout", action="store_true",
                        help="ne pas écrire le journal sur la sortie standard")
    engine.add_argument("--timezone", metavar="FUSEAU", help="fuseau du calendrier "
                        "(défaut Europe/Paris)")
    engine.add_argument("--poll", type=float, metavar="S", help="secondes entre deux lectures "
                        "des demandes (défaut 1)")
    engine.add_argument("--detach", action="store_true",
                        help="démarrer en arrière-plan (nouvelle session) et rendre la main")
    engine.set_defaults(handler=cmd_engine)

    status = commands.add_parser("engine-status", parents=[common],
                                 help="état du moteur : bail, pause, files, dernières demandes")
    status.add_argument("--json", action="store_true", help=JSON_HELP)
    status.set_defaults(handler=cmd_engine_status)

    stop = commands.add_parser(
        "engine-stop", parents=[common], help="arrêter proprement le moteur de cette base",
        description="Demande au moteur qui tient le bail de cette base de s'arrêter : les "
                    "unités en cours s'arrêtent à leur prochain point de reprise (elles "
                    "reprendront au prochain démarrage), puis le moteur rend le bail. "
                    "Statut : 0 arrêté (ou aucun moteur), 1 toujours en marche après "
                    "--timeout, 2 mauvais usage.")
    stop.add_argument("--timeout", type=float, default=900.0, metavar="S",
                      help="attente maximale de l'arrêt (défaut 900 s)")
    stop.add_argument("--json", action="store_true", help="résultat en JSON")
    stop.set_defaults(handler=cmd_engine_stop)

    request = commands.add_parser(
        "engine-request", parents=[common], help="envoyer une demande au moteur (scripts)",
        description="Dépose une demande que le moteur prend en compte en une ou deux secondes. "
                    "Exemples : engine-request run --step 1 --uai 0750654D ; engine-request "
                    "dry-run ; engine-request pause ; engine-request cancel --uai 0750654D ; "
                    "engine-request retry --step 2 ; engine-request set-date --step 3 "
                    "--date 2026-07-09 --kind lycee.")
    request.add_argument("action", metavar="ACTION", choices=ACTIONS, help=", ".join(ACTIONS))
    request.add_argument("--step", metavar="ÉTAPE",
                         help="étape ou jalon : 1 à 5, purge-trash…, dry-run, warning")
    request.add_argument("--uai", action="append", metavar="UAI", help="établissement (répétable)")
    request.add_argument("--kind", choices=["college", "lycee", "other"],
                         help="type d'établissement (set-date)")
    request.add_argument("--project", metavar="CODE", help="projet (set-date)")
    request.add_argument("--date", metavar="DATE",
                         help="JJ/MM/AAAA ou AAAA-MM-JJ (set-date ; « aucune » retire le jalon)")
    request.add_argument("--time", metavar="HH:MM", help="heure locale (set-date)")
    request.add_argument("--path", metavar="CHEMIN",
                         help="livraison AAF ou emploi du temps à importer")
    request.add_argument("--hors-fenetre", action="store_true", dest="hors_fenetre",
                         help="run ou retry des étapes 1 à 3 : passer outre la fenêtre et la fermeture "
                              "(exige --reason, tracé)")
    request.add_argument("--reason", metavar="MOTIF", help="motif de --hors-fenetre")
    request.add_argument("--wait", action="store_true",
                         help="attendre la prise en compte et la fin des unités")
    request.add_argument("--timeout", type=float, default=3600.0, metavar="S",
                         help="attente maximale avec --wait (défaut 3600 s)")
    request.add_argument("--json", action="store_true", help=JSON_HELP)
    request.set_defaults(handler=cmd_engine_request)

    plan = commands.add_parser(
        "plan", parents=[common], help="calendrier du changement d'année (afficher, modifier)",
        description="Affiche le calendrier (modèle du §3.5, modifié par projet, par type "
                    "d'établissement ou par établissement), les fenêtres de maintenance et le "
                    "rythme AAF. Sous-commandes : set, unset, window.")
    _plan_view_options(plan)
    plan.set_defaults(handler=cmd_plan)
    plan_commands = plan.add_subparsers(dest="plan_command", metavar="ACTION")

    plan_set = plan_commands.add_parser(
        "set", parents=[common], help="fixer la date d'un jalon",
        description="Fixe la date (et l'heure locale) d'un jalon pour tous les établissements, "
                    "un projet, un type d'établissement ou des établissements. DATE « aucune » "
                    "retire le jalon.")
    plan_set.add_argument("milestone", metavar="JALON",
                          help="0 à 5, dry-run, warning, second-warning, purge-trash…")
    plan_set.add_argument("date", metavar="DATE", help="JJ/MM/AAAA, AAAA-MM-JJ ou « aucune »")
    plan_set.add_argument("--time", metavar="HH:MM", help="heure locale (défaut : celle du jalon)")
    _target_options(plan_set)
    plan_set.set_defaults(handler=cmd_plan_set)

    plan_unset = plan_commands.add_parser(
        "unset", parents=[common], help="revenir à la date du niveau supérieur (ou du modèle)")
    plan_unset.add_argument("milestone", metavar="JALON",
                            help="0 à 5, dry-run, warning, second-warning, purge-trash…")
    _target_options(plan_unset)
    plan_unset.set_defaults(handler=cmd_plan_unset)

    window = plan_commands.add_parser(
        "window", parents=[common], help="fenêtres de maintenance (liste, ajout, retrait)",
        description="Sans action : liste les fenêtres. Les fenêtres d'un projet remplacent "
                    "celles du modèle pour leur portée (1-3 : étapes 1 à 3, 4 : étape 4).")
    window.add_argument("--year", type=int, metavar="AAAA",
                        help="année N (défaut : courante)")
    window.add_argument("--json", action="store_true", help=JSON_HELP)
    window.set_defaults(handler=cmd_window_list)
    window_commands = window.add_subparsers(dest="window_command", metavar="ACTION")
    add = window_commands.add_parser("add", parents=[common], help="ajouter une fenêtre")
    add.add_argument("scope", choices=["1-3", "4"], metavar="PORTÉE", help="1-3 ou 4")
    add.add_argument("start", metavar="DÉBUT", help="AAAA-MM-JJTHH:MM (heure locale)")
    add.add_argument("end", metavar="FIN", help="AAAA-MM-JJTHH:MM (heure locale)")
    add.add_argument("--project", metavar="CODE", help="projet (défaut : tous)")
    add.add_argument("--label", metavar="TEXTE", help="libellé de la fenêtre")
    add.add_argument("--year", type=int, metavar="AAAA", help="année N (défaut : courante)")
    add.add_argument("--timezone", metavar="FUSEAU",
                     help="fuseau des heures données (défaut : celui du projet, Europe/Paris)")
    add.set_defaults(handler=cmd_window_add)
    remove = window_commands.add_parser("remove", parents=[common], help="retirer une fenêtre")
    remove.add_argument("window_id", type=int, metavar="ID",
                        help="numéro de la fenêtre (plan window)")
    remove.set_defaults(handler=cmd_window_remove)


def _plan_view_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--uai", action="append", metavar="UAI", help="établissement (répétable)")
    parser.add_argument("--year", type=int, metavar="AAAA",
                        help="année N (2025 pour 2025-2026 ; défaut : l'année courante)")
    parser.add_argument("--timezone", metavar="FUSEAU", help="défaut Europe/Paris")
    parser.add_argument("--json", action="store_true", help=JSON_HELP)


def _target_options(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--uai", action="append", metavar="UAI", help="établissement (répétable)")
    target.add_argument("--kind", choices=["college", "lycee", "other"],
                        help="type d'établissement")
    parser.add_argument("--project", metavar="CODE", help="projet (défaut : tous)")
    parser.add_argument("--year", type=int, metavar="AAAA", help="année N (défaut : courante)")


def _engine_settings(args: argparse.Namespace) -> dict[str, Any]:
    settings = settings_from_args(args)
    value = settings.values.get("engine")
    table = value.value if value is not None else {}
    if not isinstance(table, dict):
        raise UsageError("La section [engine] du fichier de configuration doit être une table.")
    return table


def _timezone_name(args: argparse.Namespace) -> str:
    return (getattr(args, "timezone", None) or _engine_settings(args).get("timezone")
            or DEFAULT_TIMEZONE)


def configure_timezone(args: argparse.Namespace) -> None:
    """Make the configured zone (``--timezone``, else ``[engine] timezone``, else
    Europe/Paris) the operator's zone of this process: every time shown is in it.

    Raises:
        UsageError: for an unknown zone name.
    """
    try:
        name = _timezone_name(args)
    except (ConfigError, UsageError):
        return  # a broken config file is reported by the command that reads it
    try:
        configure_operator_zone(name)
    except TimezoneError as error:
        raise UsageError(f"{error} (option --timezone ou clé timezone de la section "
                         "[engine] du fichier de configuration)") from error


# -- engine ------------------------------------------------------------------------------

def _setup_logging(log_file: Path, to_stdout: bool) -> list[logging.Handler]:
    formatter = MaskingFormatter(LOG_FORMAT)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.handlers.WatchedFileHandler(log_file,
                                                                           encoding="utf-8")]
    if to_stdout:
        handlers.append(logging.StreamHandler(sys.stdout))
    for handler in handlers:
        handler.setFormatter(formatter)
    for name, level in _LOGGER_LEVELS.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        for handler in handlers:
            logger.addHandler(handler)
    return handlers


def _remove_handler(handler: logging.Handler) -> None:
    for name in _LOGGER_LEVELS:
        logging.getLogger(name).removeHandler(handler)


ENGINE_READ_ONLY = ("le démarrage d'un moteur (un moteur en consultation prendrait le bail et "
                    "bloquerait celui de l'opérateur ; seul un compte qui peut écrire dans la "
                    "base lance le moteur)")


def cmd_engine(args: argparse.Namespace) -> int:
    """``yearchange engine``: the headless engine (blocks until SIGTERM)."""
    # The engine module loads APScheduler, which only this command needs.
    from yearchange_tui.scheduling.engine import Engine, EngineConfig

    # A read-only engine would hold the lease and lock the operator's engine out: refused
    # before anything is opened or taken (the flag, or the database's own answer).
    refuse_in_read_only(settings_from_args(args), ENGINE_READ_ONLY)
    if _engine_settings(args).get("read_only"):
        raise UsageError(f"read_only = true dans la section [engine] du fichier de "
                         f"configuration : {ENGINE_READ_ONLY} — action interdite, rien n'a "
                         "été modifié.")
    settings, database = open_database_from_args(args, migrate=True)
    config_for_children(args)
    engine_settings = _engine_settings(args)
    log_file = (args.log_file or Path(engine_settings.get("log_file")
                                      or default_log_file())).expanduser().resolve()
    try:
        config = EngineConfig.from_mapping(
            {k: v for k, v in engine_settings.items() if k != "log_file"},
            concurrency=args.concurrency, timezone=args.timezone, poll_interval=args.poll,
            read_only=settings.read_only or None, log_path=str(log_file))
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from error
    if args.detach:
        client = DatabaseEngineClient(database)
        if client.engine_live():
            info = client.lease()
            err(f"yearchange : un moteur tourne déjà ({info.holder if info else '?'}).")
            return EXIT_FAILED
        extra: list[str] = []
        if args.concurrency:
            extra += ["--concurrency", str(args.concurrency)]
        if args.timezone:
            extra += ["--timezone", args.timezone]
        config_file = getattr(args, "config", None)
        process = spawn_engine(settings.db_url, settings.storage_dir, log_file=log_file,
                               config_file=Path(config_file) if config_file else None,
                               read_only=settings.read_only, extra_args=tuple(extra))
        try:
            started = wait_for_engine(database, process, timeout=30)
        except EngineStartError as error:
            err(f"yearchange : {error}")
            return EXIT_FAILED
        print(f"Moteur démarré en arrière-plan (pid {process.pid}) ; journal : {log_file}"
              + ("" if started else " (bail pas encore pris)"))
        return EXIT_OK
    try:
        engine = Engine(database, settings.storage_dir, config)
    except _calendar_errors() as error:
        raise UsageError(str(error)) from error
    handlers = _setup_logging(log_file, not args.no_stdout)
    log = logging.getLogger("yearchange_tui.scheduling.engine")

    def on_stop(signum: int, _frame: Any) -> None:
        engine.request_stop(signal.Signals(signum).name)

    def on_hangup(_signum: int, _frame: Any) -> None:
        for handler in list(handlers):
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                    handler, logging.FileHandler):
                _remove_handler(handler)
                handlers.remove(handler)
        log.info("SIGHUP reçu (terminal fermé ?) : le moteur continue ; arrêt par SIGTERM.")

    previous = {sig: signal.signal(sig, on_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hangup)
    try:
        return engine.run()
    except LeaseHeldError as error:
        err(f"yearchange : {error}")
        return EXIT_FAILED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for handler in handlers:
            _remove_handler(handler)
            handler.close()
        database.dispose()


# -- engine-status and engine-request ----------------------------------------------------

def _client(args: argparse.Namespace,  # type: ignore[no-untyped-def]
            access: Access = Access.READ_WRITE, refuse: str | None = None):
    settings, database = open_database_from_args(args, access, refuse=refuse)
    return settings, DatabaseEngineClient(database, read_only=settings.read_only,
                                          timezone_name=_timezone_name(args))


def _scheduled_jobs(client: Any) -> list[dict[str, Any]]:
    # The engine module loads APScheduler, which the other commands do not need.
    from yearchange_tui.scheduling.engine import JOB_TABLE

    engine = client.database.engine
    if not inspect(engine).has_table(JOB_TABLE):
        return []
    with engine.connect() as connection:
        rows = connection.execute(text(
            f"SELECT id, next_run_time FROM {JOB_TABLE} ORDER BY next_run_time LIMIT 10")).all()
    return [{"id": row[0], "next_run_time": dt.datetime.fromtimestamp(row[1], dt.UTC)
             if row[1] is not None else None} for row in rows]


def stop_engine(database: Any, timeout: float,
                announce: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Ask the live engine of ``database`` to stop and wait for it (``engine-stop``, and
    ``demo`` before it replaces a demo). The lease is read once: ``announce`` is given the
    live engine's holder before the wait (``engine-stop`` says what it waits for).

    Returns:
        ``{"stopped": bool, "holder": str, "running_units": int, "message": str}``; holder
        '' when no engine was running.
    """
    # The engine module loads APScheduler, which stopping an engine does not need.
    from yearchange_tui.scheduling.engine import engine_identity

    info = read_lease(database)
    now = utcnow()
    if info is None or not info.is_live(now):
        message = "Aucun moteur ne tourne sur cette base : rien à arrêter."
        if info is not None and info.held:
            message = (f"Aucun moteur actif : le dernier ({info.holder}) ne donne plus signe "
                       "de vie ; son bail sera repris au prochain démarrage. Rien à arrêter.")
        return {"stopped": True, "holder": "", "running_units": 0, "message": message}
    if announce is not None:
        announce(info.holder)
    with database.session() as session:
        running = int(session.scalar(select(func.count()).select_from(EngineTask).where(
            EngineTask.status == TaskStatus.RUNNING)) or 0)
    if not request_engine_stop(database, engine_identity()):
        return {"stopped": True, "holder": "", "running_units": 0,
                "message": "Le moteur s'est arrêté entre-temps : rien à arrêter."}
    if not wait_engine_stopped(database, info, timeout):
        return {"stopped": False, "holder": info.holder, "running_units": running,
                "message": (f"Le moteur {info.holder} ne s'est pas arrêté en {timeout:.0f} s : "
                            "une unité termine sa phase en cours ; il s'arrêtera à son point "
                            "de reprise. Relancez yearchange engine-stop pour attendre encore.")}
    units = (f" ; {running} unité(s) en cours arrêtée(s) à leur dernier point de reprise, "
             "elles reprendront au prochain démarrage du moteur" if running else "")
    return {"stopped": True, "holder": info.holder, "running_units": running,
            "message": f"Moteur {info.holder} arrêté proprement{units}."}


def cmd_engine_stop(args: argparse.Namespace) -> int:
    """``yearchange engine-stop``: 0 stopped or none running, 1 still running after the
    timeout, 2 bad usage (read-only, bad database)."""
    if args.timeout <= 0:
        raise UsageError("--timeout doit être positif.")
    _settings, database = open_database_from_args(args, Access.READ_WRITE,
                                                  refuse="l'arrêt du moteur")
    def announce(holder: str) -> None:
        print(f"Arrêt demandé au moteur {holder} : les unités en cours s'arrêtent à leur "
              "prochain point de reprise…", flush=True)

    try:
        result = stop_engine(database, args.timeout, None if args.json else announce)
    finally:
        database.dispose()
    if args.json:
        print_json(result)
    else:
        print(result["message"])
    return EXIT_OK if result["stopped"] else EXIT_FAILED


def cmd_engine_status(args: argparse.Namespace) -> int:
    """``yearchange engine-status``."""

    _settings, client = _client(args, Access.READ_ONLY)
    status = client.status()
    info = client.lease()
    with client.database.session() as session:
        counts = {TaskStatus(s).value: n for s, n in session.execute(
            select(EngineTask.status, func.count()).group_by(EngineTask.status)).all()}
        recent = [row.id for row in session.scalars(
            select(EngineRequest).order_by(EngineRequest.id.desc()).limit(5))]
    requests = [client.request_state(request_id) for request_id in recent]
    jobs = _scheduled_jobs(client)
    if args.json:
        print_json({"mode": status.mode.value, "holder": status.holder, "paused": status.paused,
                    "read_only": status.read_only,
                    "heartbeat_at": status.heartbeat_at, "log_path": info.log_path if info else "",
                    "next_window": status.next_window.__dict__ if status.next_window else None,
                    "tasks": counts, "requests": requests, "scheduled_jobs": jobs})
        return EXIT_OK
    if status.holder:
        age = ""
        if status.heartbeat_at is not None:
            seconds = int((utcnow() - status.heartbeat_at).total_seconds())
            age = f", signe de vie il y a {seconds} s"
        print(f"● Moteur actif : {status.holder}{age}"
              + (" — EN PAUSE" if status.paused else "")
              + (" — mode consultation" if info and info.read_only else ""))
        if info and info.log_path:
            print(f"  journal : {info.log_path}")
    else:
        print("○ Aucun moteur actif (démarrer : yearchange engine --detach)"
              + (" — pause demandée" if status.paused else ""))
    if status.next_window is not None:
        window = status.next_window
        print(f"  prochaine fenêtre : {window.label} du {_local(window.starts_at, client)} "
              f"au {_local(window.ends_at, client)}")
    if counts:
        print("  unités : " + ", ".join(f"{TASK_STATUS_LABELS[TaskStatus(k)]} {v}"
                                         for k, v in sorted(counts.items())))
    if jobs:
        print("  tâches planifiées :")
        for job in jobs[:5]:
            when = _local(job["next_run_time"], client) if job["next_run_time"] else "—"
            print(f"    {when}  {job['id']}")
    if requests:
        print("  dernières demandes :")
        for state in requests:
            if state:
                print(f"    n°{state['id']:<5} {state['action']:<16} {state['label']:<9} "
                      f"{state['message']}")
    return EXIT_OK


def _local(moment: dt.datetime, client: Any) -> str:
    local = moment.astimezone(operator_zone(client.timezone_name))
    return f"{WEEKDAYS[local.weekday()]} {local:%d/%m/%Y %H:%M}"


def cmd_engine_request(args: argparse.Namespace) -> int:
    """``yearchange engine-request ACTION``."""

    _settings, client = _client(args, refuse="une demande au moteur (un passage à blanc "
                                "sans rien enregistrer : yearchange --read-only dry-run)")
    action = RequestAction(args.action)
    params: dict[str, Any] = {}
    if args.step:
        params["step"] = args.step
    if args.uai:
        params["uais"] = [normalise_uai(uai) for uai in args.uai]
    for name in ("kind", "project", "date", "time", "path"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    if action is RequestAction.IMPORT_TIMETABLE and args.uai:
        params["uai"] = params["uais"][0]
    if args.hors_fenetre:
        if action not in (RequestAction.RUN, RequestAction.RETRY) or not (
                args.reason or "").strip():
            raise UsageError("--hors-fenetre s'emploie avec run ou retry et un motif : "
                             "--reason MOTIF.")
        params["hors_fenetre"] = True
        params["reason"] = args.reason
    if action in (RequestAction.RUN, RequestAction.SET_DATE) and not args.step:
        raise UsageError(f"{action.value} : précisez --step.")
    try:
        request_id = client.request(action, **params)
    except PermissionError as error:
        raise UsageError(str(error)) from error
    if not client.engine_live():
        err("yearchange : aucun moteur actif ; la demande attendra son démarrage "
            "(yearchange engine --detach).")
    if not args.wait:
        if args.json:
            print_json({"id": request_id})
        else:
            print(f"Demande n°{request_id} déposée ({action.value}).")
        return EXIT_OK
    state = client.wait_for_request(request_id, timeout=args.timeout,
                                    until_units_finish=action in (
                                        RequestAction.RUN, RequestAction.DRY_RUN,
                                        RequestAction.RETRY))
    if state is None:
        err(f"yearchange : demande n°{request_id} non terminée après {args.timeout:.0f} s.")
        return EXIT_FAILED
    tasks = state.get("tasks") or []
    if args.json:
        print_json(state)
    else:
        print(f"Demande n°{request_id} ({action.value}) : {state['label']} — {state['message']}")
        for task in tasks:
            print(f"  {task['uai']}  {task['milestone']:<16} {task['status']:<10} {task['reason']}")
    bad = state["status"] in ("refused", "failed") or any(
        task["status"] in ("failed", "blocked", "missed", "cancelled") for task in tasks)
    return EXIT_FAILED if bad else EXIT_OK


# -- plan --------------------------------------------------------------------------------

def _calendar_errors() -> tuple[type[Exception], ...]:
    return (CalendarError, TimezoneError)


def cmd_plan(args: argparse.Namespace) -> int:
    """``yearchange plan``: print the calendar."""

    _settings, database = open_database_from_args(args, Access.READ_ONLY)
    try:
        with database.session() as session:
            plan = build_plan(session, args.year, _timezone_name(args), args.uai)
    except _calendar_errors() as error:
        raise UsageError(str(error)) from error
    if args.uai and not plan.milestones:
        raise UsageError(f"Établissement inconnu : {', '.join(args.uai)}.")
    warnings = block_warnings(plan)
    if args.json:
        print_json({**plan.as_dict(), "warnings": warnings})
        return EXIT_OK
    for line in warnings:
        print(f"⚠ {line}")
    _print_plan(plan)
    return EXIT_OK


def _fmt_date(day: dt.date | None) -> str:
    if day is None:
        return "—"
    return f"{WEEKDAYS[day.weekday()]} {day:%d/%m/%Y}"


def _print_plan(plan: Any) -> None:
    zone = operator_zone(plan.timezone_name)
    start = plan.school_year_start
    print_paragraph(f"Calendrier du changement d'année {start}-{start + 1} → {start + 1}-"
                    f"{start + 2} (heures de {plan.timezone_name})")
    print("\nFenêtres de maintenance")
    # At 80 columns the source gives its width first, then the dates wrap between words.
    windows_table = tables.table(("projet", {"no_wrap": True}), ("fenêtre", {}),
                                 ("du", {"min_width": 10}), ("au", {"min_width": 10}),
                                 ("source", {"ratio": 1, "min_width": 10}))
    for project, windows in sorted(plan.windows.items()):
        for window in windows:
            begin = window.starts_at.astimezone(zone)
            end = window.ends_at.astimezone(zone)
            ident = f"n°{window.id}, {window.source}" if window.id else window.source
            windows_table.add_row(project, window.label,
                                  f"{_fmt_date(begin.date())} {begin:%H:%M}",
                                  f"{_fmt_date(end.date())} {end:%H:%M}", ident)
    tables.print_table(windows_table, indent=2)
    current = None
    milestones = None
    # The milestone's name stays whole; the date, then the source, wrap between words.
    label_width = max((len(planned.milestone.label) for planned in plan.milestones), default=10)
    # What is left beside it: the date gets its share, the source at least 16 columns.
    when_width = max(15, tables.width() - 2 - label_width - 1 - 14 - 1)
    for planned in plan.milestones:
        if planned.uai != current:
            if milestones is not None:
                tables.print_table(milestones, indent=2)
            current = planned.uai
            print()
            print_paragraph(f"{planned.uai}  {planned.name} "
                            f"({KIND_LABELS.get(planned.kind, planned.kind)}, projet "
                            f"{planned.project_code})")
            milestones = tables.table(("jalon", {"min_width": label_width}),
                                      ("quand", {"max_width": when_width}),
                                      ("source", {"min_width": 13}))
        assert milestones is not None
        when = _fmt_date(planned.on_date)
        if planned.due_at is not None:
            local = planned.due_at.astimezone(zone)
            when = f"{_fmt_date(local.date())} {local:%H:%M}"
            if planned.not_after is not None and planned.window_label:
                end = planned.not_after.astimezone(zone)
                when += f" → {end:%d/%m %H:%M}"
        milestones.add_row(planned.milestone.label, when, planned.source)
        if planned.note:
            milestones.add_row(f"  ⚠ {planned.note}", "", "")
    if milestones is not None:
        tables.print_table(milestones, indent=2)
    rhythms = getattr(plan, "rhythms", {}) or {"": AAF_RHYTHM}
    for project, rhythm in sorted(rhythms.items()):
        print()
        print_paragraph("Rythme AAF (§3.3) : mise à jour SIECLE/STS → fichier AAF → intégré "
                        "dans l'ENT" + (f" — projet {project}" if project else ""))
        table = tables.table(("mise à jour", {}), ("fichier AAF", {}), ("intégré", {}))
        for update, aaf, integrated in rhythm:
            table.add_row(update, aaf, integrated)
        tables.print_table(table, indent=2)


def _edit_context(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    return open_database_from_args(args, refuse="la modification du calendrier")


def _year_start(session: Any, year: int | None) -> int:
    return year if year is not None else current_school_year(session).start_year


def _targets(session: Any, args: argparse.Namespace) -> list[Any]:
    if args.uai:
        return [resolve_target(session, uai=uai) for uai in args.uai]
    return [resolve_target(session, kind=args.kind, project=args.project)]


def _target_words(args: argparse.Namespace) -> str:
    if args.uai:
        return "pour " + ", ".join(uai.upper() for uai in args.uai)
    who = {"college": "les collèges", "lycee": "les lycées", "other": "les autres "
           "établissements"}.get(args.kind or "", "tous les établissements")
    return f"pour {who}" + (f" du projet {args.project}" if args.project else "")


def cmd_plan_set(args: argparse.Namespace) -> int:
    """``yearchange plan set MILESTONE DATE``."""

    _settings, database = _edit_context(args)
    try:
        milestone = parse_milestone(args.milestone)
        on_date = parse_date(args.date)
        at_time = parse_time(args.time)
        with database.session() as session:
            start = _year_start(session, args.year)
            targets = _targets(session, args)
            for target in targets:
                set_date(session, start, milestone, on_date, at_time, target=target,
                         actor=operator_identity()["os_user"])
            audit(session, "plan", "set", details={
                "milestone": milestone.value, "date": str(on_date), "time": str(at_time),
                "uais": args.uai or [], "kind": args.kind, "project": args.project,
                "year": start})
    except _calendar_errors() as error:
        raise UsageError(str(error)) from error
    when = f"{on_date:%d/%m/%Y}" if on_date else "aucune date"
    if at_time:
        when += f" {at_time:%H:%M}"
    print(f"✓ {milestone.label} : {when} {_target_words(args)} (année {start}-{start + 1}). "
          "Le moteur en tient compte dans les 15 secondes.")
    return EXIT_OK


def cmd_plan_unset(args: argparse.Namespace) -> int:
    """``yearchange plan unset MILESTONE``."""

    _settings, database = _edit_context(args)
    try:
        milestone = parse_milestone(args.milestone)
        with database.session() as session:
            start = _year_start(session, args.year)
            removed = sum(unset_date(session, start, milestone, target=target)
                          for target in _targets(session, args))
            audit(session, "plan", "unset", details={
                "milestone": milestone.value, "uais": args.uai or [], "kind": args.kind,
                "project": args.project, "year": start, "removed": removed})
    except _calendar_errors() as error:
        raise UsageError(str(error)) from error
    if not removed:
        print(f"Aucune date propre à retirer pour {milestone.label} {_target_words(args)}.")
    else:
        print(f"✓ {milestone.label} {_target_words(args)} : date du niveau supérieur (ou du "
              "modèle) rétablie.")
    return EXIT_OK


def cmd_window_list(args: argparse.Namespace) -> int:
    """``yearchange plan window``: list the windows per project."""

    _settings, database = open_database_from_args(args, Access.READ_ONLY)
    with database.session() as session:
        plan = build_plan(session, args.year, _timezone_name(args), with_establishments=False)
    if args.json:
        print_json({code: [w.as_dict() for w in windows] for code, windows in plan.windows.items()})
        return EXIT_OK

    zone = operator_zone(plan.timezone_name)
    for code, windows in sorted(plan.windows.items()):
        for window in windows:
            begin, end = window.starts_at.astimezone(zone), window.ends_at.astimezone(zone)
            ident = f"n°{window.id:<4}" if window.id else "modèle"
            print(f"{ident:<7} projet {code:<8} {window.label:<14} {begin:%d/%m/%Y %H:%M} → "
                  f"{end:%d/%m/%Y %H:%M}  ({window.source})")
    return EXIT_OK


def cmd_window_add(args: argparse.Namespace) -> int:
    """``yearchange plan window add SCOPE START END``."""

    _settings, database = _edit_context(args)
    try:
        zone = operator_zone(_timezone_name(args))
        starts_at = parse_local_datetime(args.start, zone)
        ends_at = parse_local_datetime(args.end, zone)
        with database.session() as session:
            start = _year_start(session, args.year)
            project_id = resolve_target(session, project=args.project).project_id
            window_id = add_window(session, start, args.scope, starts_at, ends_at,
                                   project_id=project_id, label=args.label or "",
                                   actor=operator_identity()["os_user"])
            audit(session, "plan", "window-add", details={
                "id": window_id, "scope": args.scope, "starts_at": starts_at.isoformat(),
                "ends_at": ends_at.isoformat(), "project": args.project, "year": start})
    except _calendar_errors() as error:
        raise UsageError(str(error)) from error
    print(f"✓ Fenêtre n°{window_id} ajoutée ({args.scope}) du {starts_at:%d/%m/%Y %H:%M} au "
          f"{ends_at:%d/%m/%Y %H:%M}" + (f" pour le projet {args.project}" if args.project
                                           else " pour tous les projets") + ".")
    return EXIT_OK


def cmd_window_remove(args: argparse.Namespace) -> int:
    """``yearchange plan window remove ID``."""

    _settings, database = _edit_context(args)
    with database.session() as session:
        removed = remove_window(session, args.window_id)
        if removed:
            audit(session, "plan", "window-remove", details={"id": args.window_id})
    if not removed:
        raise UsageError(f"Fenêtre n°{args.window_id} inconnue.")
    print(f"✓ Fenêtre n°{args.window_id} retirée.")
    return EXIT_OK
