"""Scheduling tables: calendar overrides, maintenance windows, the engine lease, requests,
unit tasks and persisted events.

They live on the project's metadata (one database, one migration chain). APScheduler's own
job table (``apscheduler_jobs``) is created by APScheduler's SQLAlchemy job store, not here.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yearchange_tui.ent.base import Base, enum_column, fk


class RequestStatus(enum.StrEnum):
    """Where a console's request to the engine stands."""

    QUEUED = "queued"  # en file
    RUNNING = "running"  # en cours (imports)
    DONE = "done"  # fait
    REFUSED = "refused"  # refusé (mode consultation, prérequis absent, paramètre invalide…)
    NO_EFFECT = "no-effect"  # sans effet (0 unité en file : déjà faites, rien à relancer…)
    FAILED = "failed"  # échec


REQUEST_STATUS_LABELS = {
    RequestStatus.QUEUED: "en file",
    RequestStatus.RUNNING: "en cours",
    RequestStatus.DONE: "fait",
    RequestStatus.REFUSED: "refusé",
    RequestStatus.NO_EFFECT: "sans effet",
    RequestStatus.FAILED: "échec",
}
"""The French word of each request state (console requests screen, ``yearchange requests``)."""

REQUEST_STATUS_GLYPHS = {
    RequestStatus.QUEUED: "≡",
    RequestStatus.RUNNING: "◐",
    RequestStatus.DONE: "✓",
    RequestStatus.REFUSED: "⊘",
    RequestStatus.NO_EFFECT: "∅",
    RequestStatus.FAILED: "✗",
}


class TaskStatus(enum.StrEnum):
    """State of one piece of work the engine was given (an establishment and a milestone)."""

    QUEUED = "queued"  # en file
    WAITING = "waiting"  # en attente d'une étape préalable
    RUNNING = "running"  # en cours
    DONE = "done"  # terminée
    FAILED = "failed"  # échec
    BLOCKED = "blocked"  # refusée par une garde
    MISSED = "missed"  # fenêtre passée sans exécution
    CANCELLED = "cancelled"  # annulée


ACTIVE_TASK_STATUSES = (TaskStatus.QUEUED, TaskStatus.WAITING, TaskStatus.RUNNING)

TASK_STATUS_LABELS = {
    TaskStatus.QUEUED: "en file",
    TaskStatus.WAITING: "en attente",
    TaskStatus.RUNNING: "en cours",
    TaskStatus.DONE: "terminée",
    TaskStatus.FAILED: "échec",
    TaskStatus.BLOCKED: "bloquée",
    TaskStatus.MISSED: "manquée",
    TaskStatus.CANCELLED: "annulée",
}


class EngineLease(Base):
    """The one engine allowed on this database: who holds it and when it last said so."""

    __tablename__ = "engine_lease"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Random per engine run; None when nobody holds the lease.
    token: Mapped[str | None] = mapped_column(String(64))
    holder: Mapped[str] = mapped_column(String(300), default="")
    host: Mapped[str] = mapped_column(String(200), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    acquired_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Survives engine restarts: no new unit starts while paused.
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    log_path: Mapped[str] = mapped_column(String(1000), default="")
    # ``yearchange engine-stop``: who asked the holder to stop, and when (cleared on acquire).
    stop_requested_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    stop_requested_by: Mapped[str] = mapped_column(String(300), default="",
                                                   server_default="")


class EngineRequest(Base):
    """Something a console or a script asked the engine to do."""

    __tablename__ = "engine_requests"
    __table_args__ = (Index("ix_engine_requests_status", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # A RequestAction value (scheduling/api.py).
    action: Mapped[str] = mapped_column(String(32))
    params: Mapped[str] = mapped_column(Text, default="{}")
    requested_by: Mapped[str] = mapped_column(String(300), default="")
    # Sent by a read-only console (support staff): the engine refuses changing actions.
    requester_read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[RequestStatus] = mapped_column(enum_column(RequestStatus),
                                                  default=RequestStatus.QUEUED)
    picked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    message: Mapped[str] = mapped_column(Text, default="")


class EngineTask(Base):
    """One establishment's milestone handed to the engine (by the calendar or a request)."""

    __tablename__ = "engine_tasks"
    __table_args__ = (Index("ix_engine_tasks_status", "status"),
                      Index("ix_engine_tasks_unit", "establishment_id", "school_year_id",
                            "milestone"))

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int | None] = fk("engine_requests.id", nullable=True, index=True,
                                        ondelete="SET NULL")
    # calendar, request or retry.
    origin: Mapped[str] = mapped_column(String(16))
    # A calendar Milestone value: dry-run, warning, second-warning or a Step value.
    milestone: Mapped[str] = mapped_column(String(32))
    establishment_id: Mapped[int] = fk("establishments.id")
    school_year_id: Mapped[int] = fk("school_years.id", index=True)
    status: Mapped[TaskStatus] = mapped_column(enum_column(TaskStatus),
                                               default=TaskStatus.QUEUED)
    # Not started before ``due_at``, nor after ``not_after`` (end of its window).
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    not_after: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Set by a cancel request: the process running the unit (anywhere) stops at its next
    # checkpoint.
    cancel_requested_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # PostgreSQL: when the engine handed the task to the workers (a procrastinate job).
    deferred_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    # Times a worker started it (retries included).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # ``host:pid`` of the process that runs (or last ran) it.
    worker: Mapped[str] = mapped_column(String(300), default="", server_default="")


class StorageIdentity(Base):
    """The storage root this database expects: its id, also in a marker file at the root
    (every worker compares the two before taking units)."""

    __tablename__ = "storage_identity"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    storage_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(300), default="")


class EngineEventRow(Base):
    """A persisted engine event (unit state, coalesced progress, rejects, log lines).

    Bounded: the engine prunes by age and by count.
    """

    __tablename__ = "engine_events"
    __table_args__ = (Index("ix_engine_events_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # unit, progress, reject, log, engine, request
    kind: Mapped[str] = mapped_column(String(16))
    uai: Mapped[str] = mapped_column(String(8), default="")
    step: Mapped[str] = mapped_column(String(32), default="")
    level: Mapped[str] = mapped_column(String(10), default="info")
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[str] = mapped_column(Text, default="{}")


class WorkerState(enum.StrEnum):
    """Where a worker process stands."""

    RUNNING = "running"  # prend des unités
    STOPPING = "stopping"  # finit ses unités, n'en prend plus
    STOPPED = "stopped"  # arrêté proprement


WORKER_STATE_LABELS = {
    WorkerState.RUNNING: "actif",
    WorkerState.STOPPING: "s'arrête",
    WorkerState.STOPPED: "arrêté",
}


class WorkerRow(Base):
    """One worker process of the fleet (``yearchange worker``, including the one the engine
    starts itself on PostgreSQL; not the engine's local processes on SQLite): where it runs
    and when it last said it was alive.

    The units it runs right now are its claims (``unit_claims`` rows with the same host and
    pid); see :mod:`yearchange_tui.scheduling.fleet`.
    """

    __tablename__ = "workers"
    __table_args__ = (Index("ix_workers_host_pid", "host", "pid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    # The queues it takes units from (comma-separated; empty: every queue).
    queues: Mapped[str] = mapped_column(String(500), default="")
    concurrency: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[WorkerState] = mapped_column(enum_column(WorkerState),
                                               default=WorkerState.RUNNING)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The storage root the worker writes archives under (must be the database's one).
    storage_root: Mapped[str] = mapped_column(String(1000), default="")


class ConsoleChange(Base):
    """One change a console must redraw: written by the database's own triggers (migration
    0025), never by Python, so every writer (ORM, Core updates, another process, a
    ``psql`` session) goes through it.

    ``establishment_id`` names the establishment whose row, units, tasks, dry-run reports
    or audited notices changed (no foreign key: a deleted establishment is recorded too);
    None means a change every row depends on (project, school year, calendar dates,
    maintenance windows, an AAF import), which a console answers by reading everything.
    ``xid`` is the writing transaction (PostgreSQL; None on SQLite, whose writers are
    serialised): a console reads rows of transactions still open at its previous read
    (:mod:`yearchange_tui.scheduling.changes`).
    """

    __tablename__ = "console_changes"
    __table_args__ = (Index("ix_console_changes_xid", "xid"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    establishment_id: Mapped[int | None] = mapped_column(Integer)
    xid: Mapped[int | None] = mapped_column(BigInteger)
