"""CLI commands of the fleet: ``worker`` (run units on this machine) and ``workers``
(list the fleet)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from yearchange_tui.cli.util import (
    EXIT_OK,
    JSON_HELP,
    UsageError,
    open_database_from_args,
    print_json,
    refuse_in_read_only,
    settings_from_args,
)
from yearchange_tui.ent.database import Access
from yearchange_tui.scheduling.config import EngineConfig
from yearchange_tui.scheduling.fleet import fleet, fleet_now
from yearchange_tui.scheduling.fleet_text import (
    ago,
    empty_fleet,
    queues_text,
    since_text,
    unit_step,
    worker_state,
)
from yearchange_tui.workflow.calendar import Milestone
from yearchange_tui.workflow.claims import HOST_VARIABLE


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``worker`` and ``workers`` to the ``yearchange`` parser."""
    worker = commands.add_parser(
        "worker", parents=[common], help="exécuter des unités sur cette machine (PostgreSQL)",
        description="Démarre N processus qui prennent les unités que le moteur confie à la "
                    "flotte (PostgreSQL seulement ; sur SQLite le moteur exécute lui-même les "
                    "unités). Chaque machine doit joindre la base et monter le stockage "
                    "partagé au chemin --storage. SIGTERM ou Ctrl-C : les unités en cours "
                    "s'arrêtent à leur point de reprise, puis les processus s'arrêtent.")
    worker.add_argument("--concurrency", type=int, metavar="N",
                        help="processus de travail (défaut : [engine] concurrency, 2)")
    worker.add_argument("--queues", metavar="FILES",
                        help="files servies, séparées par des virgules (archive, "
                             "init-directory, delete-obsolete, dry-run… ; défaut : toutes)")
    worker.add_argument("--host", metavar="NOM",
                        help=f"nom de machine dans la flotte (défaut : variable "
                             f"{HOST_VARIABLE}, sinon le nom du système)")
    worker.add_argument("--retries", type=int, metavar="N",
                        help="nouveaux essais d'une unité en échec (défaut : [engine] retries, 2)")
    worker.set_defaults(handler=cmd_worker)

    workers = commands.add_parser("workers", parents=[common],
                                  help="la flotte : workers, signe de vie, unités en cours")
    workers.add_argument("--all", action="store_true", help="avec les workers arrêtés")
    workers.add_argument("--json", action="store_true", help=JSON_HELP)
    workers.set_defaults(handler=cmd_workers)


def _engine_config(args: argparse.Namespace, **overrides: Any) -> EngineConfig:
    settings = settings_from_args(args)
    value = settings.values.get("engine")
    table = value.value if value is not None else {}
    if not isinstance(table, dict):
        raise UsageError("La section [engine] du fichier de configuration doit être une table.")
    try:
        return EngineConfig.from_mapping(
            {k: v for k, v in table.items() if k != "log_file"}, **overrides)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from error


def cmd_worker(args: argparse.Namespace) -> int:
    """``yearchange worker``: N worker processes until SIGTERM/SIGINT."""
    # The worker module loads the executor and the runner, which only this command needs.
    from yearchange_tui.scheduling.worker import (
        WORKER_SQLITE_CODE,
        StorageMismatchError,
        WorkerOptions,
        check_storage,
        run_worker_processes,
    )

    refuse_in_read_only(settings_from_args(args), "le démarrage d'un worker")
    _check_queues(args.queues or "")
    if args.host:
        os.environ[HOST_VARIABLE] = args.host
    settings, database = open_database_from_args(args, refuse="le démarrage d'un worker")
    try:
        if database.is_sqlite:
            raise UsageError(
                f"Worker refusé (code {WORKER_SQLITE_CODE}) : la base est SQLite. Sur SQLite, "
                "le moteur (yearchange engine) exécute lui-même les unités dans ses processus "
                "locaux ; les workers sur plusieurs machines demandent PostgreSQL. Rien n'a "
                "été démarré.")
        config = _engine_config(args, concurrency=args.concurrency, retries=args.retries)
        try:
            check_storage(database, settings.storage_dir)
        except StorageMismatchError as error:
            raise UsageError(str(error)) from error
    finally:
        database.dispose()
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s : %(message)s")
    options = WorkerOptions(url=settings.db_url, storage_root=str(settings.storage_dir),
                            queues=args.queues or "", retries=config.retries,
                            retry_wait=config.retry_wait, timezone=config.timezone,
                            host=os.environ.get(HOST_VARIABLE, ""))

    def started(pids: list[int]) -> None:
        print(f"Worker démarré (processus de travail) : {len(pids)} processus (pid "
              f"{', '.join(map(str, pids))}), files : {args.queues or 'toutes'}.", flush=True)

    return run_worker_processes(options, config.concurrency, on_started=started)


QUEUE_UNKNOWN_CODE = "FILE-INCONNUE"


def _check_queues(queues: str) -> None:
    """Refuse a queue no task is ever deferred to (a typo would serve nothing forever)."""
    known = [milestone.value for milestone in Milestone]
    for name in (part.strip() for part in queues.split(",")):
        if name and name.removeprefix("step-") not in known:
            raise UsageError(
                f"File inconnue « {name} » (code {QUEUE_UNKNOWN_CODE}) : les files sont "
                f"{', '.join(known)}. Rien n'a été démarré.")


def cmd_workers(args: argparse.Namespace) -> int:
    """``yearchange workers``: the fleet."""
    _settings, database = open_database_from_args(args, Access.READ_ONLY)
    now = fleet_now()
    embedded = database.is_sqlite
    with database.session() as session:
        workers = fleet(session, include_stopped=args.all)
    rows = [{
        "host": worker.host, "pid": worker.pid, "state": worker.state.value,
        "state_label": worker.state_label(now), "queues": worker.queues or "",
        "heartbeat_age_s": round((now - worker.heartbeat_at).total_seconds(), 1),
        "started_at": worker.started_at.isoformat(),
        "units": [{"uai": unit.uai, "step": unit.step.value, "since": unit.since.isoformat()}
                  for unit in worker.units],
    } for worker in workers]
    if args.json:
        print_json({"workers": rows})
        return EXIT_OK
    if not rows:
        print(f"{empty_fleet(embedded)} (--all : avec les processus arrêtés)")
        return EXIT_OK
    for worker in workers:
        print(f"{worker.host:<20} pid {worker.pid:<7} {worker_state(worker, now):<17} "
              f"signe de vie {ago(now, worker.heartbeat_at)}  files : {queues_text(worker)}")
        units = ", ".join(f"{unit.uai} {unit_step(unit)} ({since_text(unit, now)})"
                          for unit in worker.units)
        print(f"    {units or 'aucune unité en cours'}")
    return EXIT_OK
