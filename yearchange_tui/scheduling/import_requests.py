"""The engine's import requests in flight.

The main loop hands an accepted request over with :meth:`ImportRequests.submit` and starts
it with :meth:`ImportRequests.start_pending` once the request row says it runs. An AAF
request gets an ``import-N`` thread and child of its own; timetable requests (one
establishment each) are queued for the ``import-edt`` thread, whose single child
(:class:`~yearchange_tui.scheduling.imports.ImportChild`) imports them one after the other
in one process. Each request's thread writes its answer and the rejects' events as soon
as its import ends. On shutdown the main thread stops the children and joins the threads;
timetable requests not started yet go back to the queue.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from yearchange_tui.importing.outcome import ImportOutcome, ImportStatus
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.imports import ImportChild
from yearchange_tui.scheduling.models import EngineRequest, RequestStatus
from yearchange_tui.scheduling.state import EngineState, engine_log
from yearchange_tui.workflow.audit import current_requester

log = engine_log()


@dataclass(frozen=True)
class ImportOrder:
    """An accepted import request, waiting for its thread."""

    request_id: int
    action: RequestAction
    params: dict[str, Any]
    # Who sent the request: the child's audit entries are recorded for them.
    requester: str | None = None


def import_status(outcome: ImportOutcome | None, exitcode: int | None,
                  stopping: bool) -> tuple[RequestStatus, str]:
    """The request's status and answer from an import's outcome.

    Args:
        outcome: the child's outcome (None when it ended without one).
        exitcode: the child's exit code.
        stopping: True when the engine is stopping (an interrupted import goes back to the
            queue).
    """
    interrupted = outcome is None or outcome.status is ImportStatus.INTERRUPTED
    if interrupted and stopping:
        return RequestStatus.QUEUED, ("interrompu par l'arrêt du moteur, rien n'a été "
                                      "importé ; reprise au redémarrage")
    if outcome is None:
        return RequestStatus.FAILED, ("le processus d'import s'est arrêté sans réponse "
                                      f"(code {exitcode})")
    status = {ImportStatus.DONE: RequestStatus.DONE,
              ImportStatus.REFUSED: RequestStatus.REFUSED,
              # The same delivery was imported before: nothing to do.
              ImportStatus.ALREADY_IMPORTED: RequestStatus.NO_EFFECT}.get(
                  outcome.status, RequestStatus.FAILED)
    return status, outcome.summary


@dataclass
class ImportRequests:
    """Import requests between acceptance and answer, and their child processes.

    An AAF request gets its own ``import-N`` thread and child. Timetable requests go to
    one queue served by one ``import-edt`` thread and one child for as long as requests
    keep coming: many establishments imported in one process, each answered as soon as
    its import ends.
    """

    state: EngineState
    pending: list[ImportOrder] = field(default_factory=list)
    """Accepted this tick, started once their request rows are written (main thread)."""
    children: dict[int, ImportChild] = field(default_factory=dict)
    """Child processes by the id of the request they run (guarded by :attr:`lock`)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)
    """``import-N`` threads started so far and maybe alive (main thread)."""
    timetables: list[ImportOrder] = field(default_factory=list)
    """Timetable requests waiting for the batch's child (guarded by :attr:`lock`)."""
    batch_running: bool = False
    """True while the ``import-edt`` thread serves :attr:`timetables` (guarded by
    :attr:`lock`)."""

    def submit(self, request_id: int, action: RequestAction, params: dict[str, Any]) -> None:
        """Keep an accepted request for :meth:`start_pending` (main thread)."""
        self.pending.append(ImportOrder(request_id, action, dict(params), current_requester()))

    def start_pending(self) -> None:
        """Start the submitted requests: an ``import-N`` thread per AAF request, the
        timetable ones queued for the ``import-edt`` thread (started when idle) (main
        thread)."""
        while self.pending:
            order = self.pending.pop(0)
            if order.action is RequestAction.IMPORT_TIMETABLE:
                with self.lock:
                    self.timetables.append(order)
                    if self.batch_running:
                        continue
                    self.batch_running = True
                self._start(self._run_timetables, "import-edt", ())
            else:
                self._start(self._run, f"import-{order.request_id}", (order,))

    def _start(self, target: Any, name: str, args: tuple[Any, ...]) -> None:
        thread = threading.Thread(target=target, name=name, args=args, daemon=True)
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()

    def running(self) -> list[int]:
        """The ids of the requests whose child process runs (any thread)."""
        with self.lock:
            return sorted(self.children)

    def terminate(self) -> list[ImportChild]:
        """Ask every child to stop (main thread, on shutdown); returns them."""
        with self.lock:
            children = list({id(child): child for child in self.children.values()}.values())
        for child in children:
            child.terminate()
        return children

    def join(self, children: list[ImportChild]) -> None:
        """Wait for the children asked to stop (killed after their grace), then the
        threads."""
        for child in children:
            child.stop()
        for thread in self.threads:
            thread.join(timeout=60)

    def _run(self, order: ImportOrder) -> None:
        """Run an AAF import request in its own child process and record its outcome
        (``import-N`` thread)."""
        child = None
        try:
            with self.lock:
                child = None if self.state.stopping else ImportChild(
                    self.state.database.url, self.state.storage_root, "aaf")
            self._run_in(child, order)
        except Exception:  # noqa: BLE001 - the request is answered, the engine goes on
            self._fail(order)
        finally:
            if child is not None:
                child.close()

    def _fail(self, order: ImportOrder) -> None:
        """Answer ``order`` after an unexpected error of the engine's own (not of the
        import): logged with its traceback, the request failed rather than left « en
        cours » for good."""
        log.exception("Demande n°%d (%s) : erreur inattendue du moteur.", order.request_id,
                      order.action.value)
        message = "erreur inattendue du moteur, rien n'a été importé ; détail dans le journal"
        try:
            with self.state.database.session() as session:
                row = session.get(EngineRequest, order.request_id)
                if row is not None:
                    row.status = RequestStatus.FAILED
                    row.message = message
                    row.finished_at = self.state.clock()
            self._record(order, RequestStatus.FAILED, message, None)
        except Exception:
            log.exception("Demande n°%d : la réponse n'a pas pu être enregistrée.",
                          order.request_id)

    def _run_timetables(self) -> None:
        """Serve the timetable queue with one child until it is empty (``import-edt``
        thread); a child that died is replaced for the next request."""
        child: ImportChild | None = None
        served = False
        try:
            while True:
                with self.lock:
                    if not self.timetables:
                        self.batch_running = False
                        served = True
                        return
                    order = self.timetables.pop(0)
                    if child is not None and child.ended:
                        child = None
                try:
                    if child is None and not self.state.stopping:
                        child = ImportChild(self.state.database.url,
                                            self.state.storage_root, "timetable")
                    self._run_in(None if self.state.stopping else child, order)
                except Exception:  # noqa: BLE001 - the request is answered, the engine goes on
                    # This request is answered; the others keep their place in the queue.
                    self._fail(order)
                    if child is not None:
                        child.close()
                        child = None
        finally:
            if not served:  # an unexpected error: the next request starts a new thread
                with self.lock:
                    self.batch_running = False
            if child is not None:
                child.close()

    def _run_in(self, child: ImportChild | None, order: ImportOrder) -> None:
        """Run ``order`` in ``child`` (None: the engine is stopping) and record its
        outcome."""
        outcome: ImportOutcome | None = None
        details, exitcode = "", None
        if child is not None:
            with self.lock:
                self.children[order.request_id] = child
            try:
                outcome, details = child.run(order.action, order.params, order.requester)
                if outcome is None:
                    child.close()
                    exitcode = child.exitcode
            finally:
                with self.lock:
                    self.children.pop(order.request_id, None)
        if details:
            log.error("Demande n°%d (%s) : import en échec.\n%s", order.request_id,
                      order.action.value, details.rstrip())
        status, message = import_status(outcome, exitcode, self.state.stopping)
        with self.state.database.session() as session:
            row = session.get(EngineRequest, order.request_id)
            if row is not None:
                row.status = status
                row.message = message
                row.finished_at = None if status is RequestStatus.QUEUED else self.state.clock()
        self._record(order, status, message, outcome)

    def _record(self, order: ImportOrder, status: RequestStatus, message: str,
                outcome: ImportOutcome | None) -> None:
        """The request's answer and each establishment's rejects, as events."""
        data: dict[str, Any] = {"request_id": order.request_id, "action": order.action.value,
                                "status": status.value}
        if outcome is not None:
            data.update({"outcome": outcome.status.value, "code": outcome.code,
                         "file": outcome.file, "line": outcome.line,
                         "import_id": outcome.import_id, "counts": outcome.counts,
                         "rejects_by_code": outcome.rejects_by_code})
        level = {RequestStatus.DONE: "info", RequestStatus.FAILED: "error"}.get(status,
                                                                                 "warning")
        events = self.state.events
        events.record("request", f"Demande n°{order.request_id} ({order.action.value}) : "
                      f"{message}", level=level, data=data)
        for uai, by_code in (outcome.rejects.items() if outcome is not None else ()):
            if uai:
                count = sum(by_code.values())
                events.record("reject", f"{uai} : {count} rejet(s) à l'import", uai=uai,
                              level="warning", data={"count": count, "codes": by_code,
                                                     "request_id": order.request_id})
