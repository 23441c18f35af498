"""The engine's APScheduler: its job store in the project database, and its job events.

One scheduler per engine (one per job store). Its jobs only queue tasks
(:func:`yearchange_tui.scheduling.engine.fire_batch`); its listener, on a scheduler
thread, only notes missed and failed jobs for the engine's main loop (:class:`JobNotes`).
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor as JobThreadPool
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from yearchange_tui.ent.database import Database
from yearchange_tui.scheduling.config import EngineConfig
from yearchange_tui.workflow.calendar import Milestone

JOB_TABLE = "apscheduler_jobs"
JOB_PREFIX = "plan:"
FIRE_BATCH = "yearchange_tui.scheduling.engine:fire_batch"
"""The job function as stored in the job table (its import path must not change)."""


def job_id(milestone: Milestone, due_at: dt.datetime) -> str:
    """The scheduler job id of a calendar batch."""
    return f"{JOB_PREFIX}{milestone.value}@{due_at.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"


def job_milestone(identifier: str) -> Milestone | None:
    """The milestone of a calendar job id (None for another job)."""
    if not identifier.startswith(JOB_PREFIX):
        return None
    return Milestone(identifier[len(JOB_PREFIX):].split("@", 1)[0])


@dataclass(frozen=True)
class JobNote:
    """A scheduler job that was missed or failed, seen by the listener."""

    kind: str
    """``missed`` or ``error``."""
    job_id: str
    run_time: dt.datetime | None


@dataclass
class JobNotes:
    """The listener's notes, queued for the main loop (scheduler thread → main thread)."""

    wake: threading.Event
    notes: queue.SimpleQueue[JobNote] = field(default_factory=queue.SimpleQueue)

    def on_job_event(self, event: Any) -> None:
        """APScheduler listener (scheduler thread): note it for the main loop, nothing more."""
        kind = "missed" if event.code == EVENT_JOB_MISSED else "error"
        self.notes.put(JobNote(kind, str(event.job_id), getattr(event, "scheduled_run_time", None)))
        self.wake.set()

    def drain(self) -> list[JobNote]:
        """The notes queued so far, oldest first (main thread)."""
        drained: list[JobNote] = []
        while True:
            try:
                drained.append(self.notes.get_nowait())
            except queue.Empty:
                return drained


def make_scheduler(database: Database, config: EngineConfig,
                   notes: JobNotes) -> BackgroundScheduler:
    """A background scheduler on the project database's job table (not started).

    Args:
        database: the project database (its ``apscheduler_jobs`` table holds the jobs).
        config: the engine settings (``misfire_grace_time``).
        notes: receives missed and failed jobs.
    """
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=database.engine, tablename=JOB_TABLE)},
        executors={"default": JobThreadPool(max_workers=2)},
        job_defaults={"misfire_grace_time": config.misfire_grace_time,
                      "coalesce": True, "max_instances": 1},
        timezone=dt.UTC)
    scheduler.add_listener(notes.on_job_event,
                           EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
    return scheduler
