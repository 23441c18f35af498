"""The engine's import requests run in child processes that return an ImportOutcome each.

An ``import-aaf`` or ``import-timetable`` request runs :func:`run_import_request` (the
functions ``yearchange import-aaf`` and ``import-timetable`` call) in a child process
started with ``spawn`` (:class:`ImportChild`), which sends back the typed
:class:`~yearchange_tui.importing.outcome.ImportOutcome` through a pipe. An AAF delivery
has its own child; timetable imports, one establishment each, share one child that
imports them one after the other (one process start and one database connection for a
whole batch, each import its own transaction). A child process rather than an engine
thread because:

- a big AAF delivery's memory is given back to the system when the child ends, and the
  importer's pause of the cyclic garbage collector stays out of the engine;
- the engine's stop can interrupt an import at once: the child rolls back on SIGTERM
  (nothing written) unless it is already committing, and is killed after
  :data:`STOP_GRACE_SECONDS` if it does not answer (a killed transaction is rolled back
  by the database as well);
- the AAF importer forks its reader processes from a single-threaded process, never
  from the engine's threads.

As with every ``spawn`` start, the program's main module must be safe to import
(``yearchange`` and ``python -m yearchange_tui`` are).

Threads: the engine's ``import-N`` thread waits on :meth:`ImportChild.run`; the engine's
main thread calls :meth:`ImportChild.terminate` and :meth:`ImportChild.stop` on shutdown.
The child runs on its own main thread.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event

from yearchange_tui.changeover.runner import ChangeoverRunner
from yearchange_tui.changeover.steps.init_directory import import_aaf_delivery
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.errors import describe_error
from yearchange_tui.importing.outcome import ImportOutcome, ImportStatus, run_import
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.events import EventWriter
from yearchange_tui.timetable.importer import MODE_MANUAL, TimetableUsageError, import_timetable
from yearchange_tui.workflow.audit import on_behalf_of

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 30.0
"""How long a child asked to stop may take to roll back before it is killed."""

KINDS = {RequestAction.IMPORT_AAF: "aaf", RequestAction.IMPORT_TIMETABLE: "timetable"}


def run_import_request(database: Database, storage_root: Path, action: RequestAction,
                       params: dict[str, Any],
                       progress: Callable[[str], None] | None = None) -> ImportOutcome:
    """Run one import request, as ``yearchange import-aaf`` / ``import-timetable`` would.

    Args:
        database: the open database.
        storage_root: the storage root (an AAF import after step 3 runs step 4's units).
        action: :attr:`RequestAction.IMPORT_AAF` or :attr:`RequestAction.IMPORT_TIMETABLE`.
        params: ``path`` (and ``uai`` for a timetable; ``version`` optional; ``reimport``
            to import an AAF delivery already imported).
        progress: receives one French line per AAF file read (the console shows them).

    Returns:
        The outcome (an AAF import is audited as the command audits it; the timetable
        importer audits itself).

    Raises:
        Exception: an unexpected failure, as raised.
    """
    path = str(params.get("path") or "")
    if action is RequestAction.IMPORT_AAF:
        # After step 3 an import is step 4: its units run through the runner's lifecycle.
        runner = ChangeoverRunner(database, storage_root)
        return run_import("aaf", lambda: import_aaf_delivery(
            runner, [Path(path)], progress=progress, reimport=bool(params.get("reimport"))),
                          audit_in=database, source=[path])[0]
    return run_import(
        "timetable", lambda: import_timetable(
            database, Path(path), str(params.get("uai") or ""),
            declared_version=params.get("version") or None, mode=MODE_MANUAL),
        bad_request=(TimetableUsageError,))[0]


def _import_progress(writer: EventWriter, kind: str, line: str) -> None:
    """One progress line of an import, as a journal event of kind ``import``."""
    writer.record("import", f"Import {'AAF' if kind == 'aaf' else 'EDT'} en cours : {line}",
                  data={"event": "progress"})


class ImportInterrupted(BaseException):
    """Raised in the child by SIGTERM before the import commits (everything rolls back)."""


class _StopPoint:
    """In the child: SIGTERM interrupts the import until its commit starts, not after."""

    def __init__(self) -> None:
        self.committing = False

    def on_commit(self, _session: Any) -> None:
        self.committing = True

    def on_sigterm(self, _signum: int, _frame: Any) -> None:
        if not self.committing:
            raise ImportInterrupted


def _run_one(database: Database, writer: EventWriter, storage_root: Path,
             action: RequestAction, params: dict[str, Any],
             requester: str | None) -> tuple[ImportOutcome, str]:
    """One import in the child: its outcome and the traceback text of a failure.

    Raises:
        ImportInterrupted: SIGTERM before the import's commit (it rolled back).
    """
    try:
        progress = partial(_import_progress, writer, KINDS[action])
        with on_behalf_of(requester):  # audited for whoever sent the request
            return run_import_request(database, storage_root, action, params, progress), ""
    except ImportInterrupted:
        raise
    except Exception as error:  # noqa: BLE001 - every failure goes back to the engine
        return ImportOutcome.failed(KINDS[action], describe_error(error)), traceback.format_exc()


def _child_main(channel: Any, url: str, storage_root: str) -> None:
    """Body of the child process: run the imports it receives, one after the other.

    Each request (``(action, params, requester)``) is answered with ``(outcome, traceback
    text)`` before the next is read; ``None`` ends the child. One database connection for
    all of them; each import is its own transaction, so one failing file leaves the
    others as they are. SIGTERM interrupts the import under way (rolled back, answered
    « interrompu ») and ends the child.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine decides when the child stops
    stop_point = _StopPoint()
    signal.signal(signal.SIGTERM, stop_point.on_sigterm)
    database: Database | None = None
    writer: EventWriter | None = None
    try:
        database = open_database(url, migrate=False)
        event.listen(database.sessions, "before_commit", stop_point.on_commit)
        # Each file read goes to the journal at once: the console shows the import moving.
        writer = EventWriter(database)
        while True:
            stop_point.committing = False
            try:
                request = channel.recv()
            except EOFError:  # the engine went away
                break
            if request is None:
                break
            action_value, params, requester = request
            action = RequestAction(action_value)
            try:
                answer = _run_one(database, writer, Path(storage_root), action, params,
                                  requester)
            except ImportInterrupted:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the answer is on its way
                channel.send((ImportOutcome.interrupted(KINDS[action]), ""))
                break
            stop_point.committing = True  # the answer is on its way
            channel.send(answer)
    except ImportInterrupted:  # asked to stop between two imports
        pass
    except Exception as error:  # noqa: BLE001 - cannot even start: answer the first request
        log.error("Processus d'import : %s", describe_error(error))
        try:
            channel.send((None, traceback.format_exc()))
        except OSError:
            pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if writer is not None:
            writer.close()
        if database is not None:
            database.dispose()
        channel.close()


class ImportChild:
    """A child process running import requests one after the other (see the module
    docstring): one AAF delivery, or a batch of timetable imports of many establishments
    in one process and one database connection."""

    def __init__(self, url: str, storage_root: Path, kind: str) -> None:
        context = multiprocessing.get_context("spawn")
        channel, child_end = context.Pipe(duplex=True)
        self.kind = kind
        self._channel = channel
        self.ended = False
        # Not a daemon: the AAF importer starts reader processes of its own.
        self.process = context.Process(target=_child_main,
                                       args=(child_end, url, str(storage_root)),
                                       name=f"yearchange-import-{kind}")
        try:
            self.process.start()
        finally:
            child_end.close()

    def run(self, action: RequestAction, params: dict[str, Any],
            requester: str | None = None) -> tuple[ImportOutcome | None, str]:
        """Run one import in the child and wait for its answer.

        Returns:
            The outcome (None when the child ended without one: killed, or it could not
            start) and the traceback text of a failure. After None the child is done.
        """
        if self.ended:
            return None, ""
        try:
            self._channel.send((action.value, params, requester))
            outcome, details = self._channel.recv()
        except (EOFError, OSError):
            outcome, details = None, ""
        if outcome is None or outcome.status is ImportStatus.INTERRUPTED:
            self.close()
        return outcome, details

    def close(self) -> None:
        """Let the child end (after its last answer) and wait for it."""
        if not self.ended:
            self.ended = True
            try:
                self._channel.send(None)
            except OSError:
                pass
            self._channel.close()
        self.process.join()

    @property
    def exitcode(self) -> int | None:
        """The child's exit code (negative: the signal that ended it)."""
        return self.process.exitcode

    def terminate(self) -> None:
        """Ask the child to stop: it rolls back unless it is already committing."""
        if self.process.is_alive():
            self.process.terminate()

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Wait ``grace`` seconds for a child asked to stop, then kill it."""
        self.process.join(grace)
        if self.process.is_alive():
            log.warning("Le processus d'import %s ne s'est pas arrêté en %.0f s : il est tué "
                        "(sa transaction est annulée).", self.process.pid, grace)
            self.process.kill()
            self.process.join()
