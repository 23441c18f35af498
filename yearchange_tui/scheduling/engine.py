"""The headless engine: one per database, it runs the calendar and the consoles' requests.

:class:`Engine.run` takes the lease, starts an APScheduler ``BackgroundScheduler`` whose
jobs live in the project database (``apscheduler_jobs``), and loops on the main thread:
it picks up requests (about once a second), turns due calendar batches into tasks, marks
the ones whose window passed as missed, and hands units out in step order, one unit per
establishment at a time: to ``concurrency`` local worker processes on SQLite, to the
fleet's workers through procrastinate on PostgreSQL (:mod:`~yearchange_tui.scheduling.dispatch`).

The engine is a facade over collaborators that share one
:class:`~yearchange_tui.scheduling.state.EngineState`: the calendar
(:mod:`~yearchange_tui.scheduling.calendar_sync`), the request table
(:mod:`~yearchange_tui.scheduling.requests`), the unit dispatch
(:mod:`~yearchange_tui.scheduling.dispatch`) and the import children
(:mod:`~yearchange_tui.scheduling.import_requests`). It keeps the lifecycle, the lease and
its heartbeat, and the main loop.

Threads: the caller's (main loop; signal handlers only set a flag), ``heartbeat``,
APScheduler's scheduler and job threads (:func:`fire_batch` only queues tasks), the
local worker processes' result threads, ``import-N`` (each waits on the child process of an
import request, :mod:`yearchange_tui.scheduling.imports`), ``event-writer``. Nothing here
imports Textual.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from yearchange_tui.ent.database import Database
from yearchange_tui.scheduling.calendar_sync import CalendarSync
from yearchange_tui.scheduling.config import EngineConfig
from yearchange_tui.scheduling.dispatch import Dispatcher
from yearchange_tui.scheduling.events import EventLogHandler, EventWriter
from yearchange_tui.scheduling.import_requests import ImportRequests
from yearchange_tui.scheduling.jobs import JOB_PREFIX, JOB_TABLE, JobNotes, job_id, make_scheduler
from yearchange_tui.scheduling.lease import Lease, LeaseLostError, acquire, holder_name
from yearchange_tui.scheduling.models import (
    EngineRequest,
    EngineTask,
    RequestStatus,
    TaskStatus,
)
from yearchange_tui.scheduling.requests import RequestHandlers
from yearchange_tui.scheduling.state import EngineState, engine_log
from yearchange_tui.workflow.audit import identity_label, process_identity
from yearchange_tui.workflow.calendar import Milestone
from yearchange_tui.workflow.units import utcnow

__all__ = ["JOB_PREFIX", "JOB_TABLE", "Engine", "EngineConfig", "engine_identity",
           "fire_batch", "job_id"]

log = engine_log()

_active_engine: Engine | None = None


def fire_batch(milestone: str, due_at: str) -> None:
    """APScheduler job: queue the units of one calendar batch (runs in a scheduler thread).

    Args:
        milestone: the milestone value.
        due_at: the batch's start (ISO 8601, UTC).
    """
    engine = _active_engine
    if engine is None:
        log.warning("Tâche planifiée %s %s sans moteur actif : ignorée ici, le moteur suivant "
                    "la reprendra.", milestone, due_at)
        return
    engine.enqueue_calendar_batch(Milestone(milestone), dt.datetime.fromisoformat(due_at))


class Engine:
    """The engine process's work: lease, heartbeat, main loop, over its collaborators."""

    def __init__(self, database: Database, storage_root: Path,
                 config: EngineConfig | None = None, *,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        """Build the engine (nothing starts before :meth:`run`).

        Raises:
            TimezoneError: for an unknown time zone in ``config``.
        """
        self.state = EngineState.create(database, Path(storage_root), config or EngineConfig(),
                                        clock)
        """What the collaborators share."""
        self.calendar = CalendarSync(self.state)
        self.imports = ImportRequests(self.state)
        self.requests = RequestHandlers(self.state, self.imports)
        self.dispatcher = Dispatcher(self.state)
        self.job_notes = JobNotes(self.state.wake)
        self.ready = threading.Event()
        """Set once the lease is held and the scheduler runs."""
        self.stopped = threading.Event()
        self.exit_status = 0
        self.stop_reason = ""
        self.ticks = 0
        """Main-loop passes so far (tests wait on it rather than on the clock)."""
        self.lease: Lease | None = None
        self.scheduler: BackgroundScheduler | None = None
        self._heartbeat_stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._last_sync = float("-inf")
        self._last_prune = float("-inf")

    @property
    def database(self) -> Database:
        """The project database."""
        return self.state.database

    @property
    def storage_root(self) -> Path:
        """The storage root (archives, documents)."""
        return self.state.storage_root

    @property
    def config(self) -> EngineConfig:
        """The engine settings."""
        return self.state.config

    @property
    def clock(self) -> Callable[[], dt.datetime]:
        """The engine's clock (UTC)."""
        return self.state.clock

    @property
    def events(self) -> EventWriter:
        """The events writer (consoles read its table)."""
        return self.state.events

    # -- lifecycle -------------------------------------------------------------------------

    def request_stop(self, reason: str = "") -> None:
        """Ask the engine to stop: running units stop at their next checkpoint (any thread,
        signal handlers included)."""
        if not self.stop_reason:
            self.stop_reason = reason or "arrêt demandé"
        self.state.stop.set()
        self.state.wake.set()

    @property
    def stopping(self) -> bool:
        """True once a stop was asked."""
        return self.state.stopping

    def wake(self) -> None:
        """Run the main loop now rather than at the next poll."""
        self.state.wake.set()

    def run(self) -> int:
        """Run until :meth:`request_stop`; returns the exit status (0 clean, 1 lease lost).

        Raises:
            LeaseHeldError: when another live engine holds the lease (nothing started).
        """
        global _active_engine
        config = self.config
        self.lease = acquire(self.database, ttl=dt.timedelta(seconds=config.lease_ttl),
                             read_only=config.read_only, log_path=config.log_path,
                             clock=self.clock)
        logger = logging.getLogger("yearchange_tui.scheduling")
        handler = EventLogHandler(self.events)
        logger.addHandler(handler)
        try:
            if self.lease.previous is not None:
                log.warning("Bail repris au moteur arrêté %s (plus de signe de vie).",
                            self.lease.previous.holder)
            _active_engine = self
            self._start()
            while not self.state.stop.is_set():
                try:
                    self.tick()
                except Exception:
                    log.exception("Erreur dans la boucle du moteur ; nouvel essai.")
                self.state.wake.wait(config.poll_interval)
                self.state.wake.clear()
        finally:
            try:
                self._shutdown()
            finally:
                logger.removeHandler(handler)
                self.events.close()
                _active_engine = None
                self.stopped.set()
        return self.exit_status

    def _start(self) -> None:
        """Recover the stopped engine's work, start the workers, scheduler and heartbeat."""
        self._recover()
        self.dispatcher.start()
        self.scheduler = make_scheduler(self.database, self.config, self.job_notes)
        self.scheduler.start()
        self._heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat",
                                           daemon=True)
        self._heartbeat.start()
        log.info("Moteur démarré (%s) : %d unité(s) en parallèle, fuseau %s%s.",
                 self.lease_holder, self.config.concurrency, self.config.timezone,
                 ", mode consultation" if self.config.read_only else "")
        self.ready.set()

    @property
    def lease_holder(self) -> str:
        """``host:pid`` of this engine."""
        return holder_name()

    def _heartbeat_loop(self) -> None:
        assert self.lease is not None
        # Beats until the units have stopped, so no other engine takes over meanwhile.
        while not self._heartbeat_stop.wait(self.config.heartbeat_interval):
            try:
                asked_by = self.lease.heartbeat()
                if asked_by and not self.stopping:
                    log.info("Arrêt demandé par %s (yearchange engine-stop).", asked_by)
                    self.request_stop(f"demandé par {asked_by}")
            except LeaseLostError as error:
                log.error("%s Le moteur s'arrête.", error)
                self.exit_status = 1
                self.request_stop("bail perdu")
                return
            except Exception:
                log.warning("Signe de vie non enregistré ; nouvel essai.", exc_info=True)

    def _recover(self) -> None:
        """Tasks and imports left running by a stopped engine go back to the queue."""
        with self.database.session() as session:
            # Tasks handed to the fleet (a procrastinate job) keep running in their workers.
            tasks = list(session.scalars(select(EngineTask).where(
                EngineTask.status == TaskStatus.RUNNING, EngineTask.job_id.is_(None))))
            for task in tasks:
                task.status = TaskStatus.QUEUED
                task.started_at = task.deferred_at = None
                task.reason = "reprise après l'arrêt du moteur précédent"
            requests = list(session.scalars(select(EngineRequest).where(
                EngineRequest.status == RequestStatus.RUNNING)))
            for request in requests:
                request.status = RequestStatus.QUEUED
        if tasks:
            log.info("%d unité(s) interrompue(s) reprise(s) à leur dernier point de reprise.",
                     len(tasks))

    def _shutdown(self) -> None:
        log.info("Arrêt du moteur (%s) : les unités en cours s'arrêtent à leur prochain point "
                 "de reprise.", self.stop_reason or "arrêt")
        self.state.stop.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        children = self.imports.terminate()
        self.dispatcher.shutdown()
        self.imports.join(children)
        self._heartbeat_stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=10)
        log.info("Moteur arrêté.")
        if self.lease is not None and self.exit_status == 0:
            try:
                self.lease.release()
            except Exception:
                log.warning("Bail non libéré (il expirera).", exc_info=True)

    # -- the main loop ---------------------------------------------------------------------

    def tick(self) -> None:
        """One pass of the main loop (main thread)."""
        self.calendar.take_job_notes(self.job_notes.drain())
        now_mono = time.monotonic()
        if (self.state.plan_dirty
                or now_mono - self._last_sync >= self.config.plan_sync_interval):
            self.state.plan_dirty = False
            self._last_sync = now_mono
            self.sync_plan()
        self.requests.process()
        self.dispatcher.dispatch()
        self.events.flush()
        if now_mono - self._last_prune >= self.config.prune_interval:
            self._last_prune = now_mono
            self.events.prune()
        self.ticks += 1

    def sync_plan(self) -> None:
        """Make the scheduler's jobs match the calendar; mark batches whose window passed."""
        assert self.scheduler is not None
        self.calendar.sync(self.scheduler)

    def enqueue_calendar_batch(self, milestone: Milestone, due_at: dt.datetime) -> int:
        """Queue a due batch's units (scheduler thread). Returns the number queued."""
        return self.calendar.enqueue_batch(milestone, due_at)


def engine_identity() -> str:
    """Who asks: OS user, host, pid (and SSH client) for request rows."""
    return identity_label(process_identity())
