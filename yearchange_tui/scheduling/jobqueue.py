"""procrastinate on PostgreSQL: the engine defers one job per task, the fleet's workers run
them through :func:`~yearchange_tui.scheduling.executor.execute_task`.

A job is one ``engine_tasks`` row: queue per milestone (``step-archive``…), ``lock`` per
establishment (one unit of an establishment at a time across every machine), ``priority``
the establishment's size (the largest first), retries with a backoff decided by the worker
(``[engine] retries`` and ``retry_wait``). procrastinate's schema is applied by migration
0021.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from yearchange_tui.scheduling.executor import ExecutionContext, execute_task, task_queue

TASK_NAME = "yearchange.run_task"

FINISHED_JOB_STATES = frozenset({"succeeded", "failed", "cancelled", "aborted"})
"""procrastinate job states after which no worker will run the job again."""

log = logging.getLogger(__name__)


def job_states(session: Any, job_ids: list[int]) -> dict[int, str]:
    """The procrastinate state of each job still in its table, by id."""
    if not job_ids:
        return {}
    rows = session.execute(text("SELECT id, status::text FROM procrastinate_jobs "
                                "WHERE id = ANY(:ids)"), {"ids": job_ids})
    return {int(job_id): state for job_id, state in rows}


class UnitRetry(Exception):
    """The unit failed and has retries left: procrastinate runs the job again later."""


def conninfo(url: str) -> str:
    """A libpq URI from the project's SQLAlchemy URL (``postgresql+psycopg://…``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class _Runtime:
    """What the job function finds in a worker process (set by :func:`make_app`)."""

    context: ExecutionContext | None = None
    retries: int = 0


_runtime = _Runtime()


def run_job(job_context: Any, task_id: int) -> None:
    """The procrastinate task: execute one engine task in this worker process."""
    context = _runtime.context
    if context is None:
        raise RuntimeError("processus sans contexte d'exécution (yearchange worker)")
    retry_left = int(job_context.job.attempts or 0) < _runtime.retries
    done = execute_task(context, task_id, retry_left=retry_left)
    if done.retry:
        raise UnitRetry(done.reason)


def make_app(url: str, *, context: ExecutionContext | None = None, retries: int = 0,
             retry_wait: float = 30.0) -> Any:
    """The procrastinate app of the database at ``url`` (not opened).

    Args:
        url: the project's database URL (PostgreSQL).
        context: set in a worker process, where jobs run.
        retries: times a failed unit is tried again (0: never).
        retry_wait: seconds before the first retry; the n-th waits n times as long.
    """
    # procrastinate is a PostgreSQL-only dependency (the postgres extra): loaded on use.
    from procrastinate import App, PsycopgConnector, RetryStrategy

    app = App(connector=PsycopgConnector(conninfo=conninfo(url)))
    strategy = None
    if retries > 0:
        wait = max(0, int(retry_wait))
        strategy = RetryStrategy(max_attempts=retries, wait=wait, linear_wait=wait,
                                 retry_exceptions={UnitRetry})
    app.task(name=TASK_NAME, pass_context=True, retry=strategy)(run_job)
    if context is not None:
        _runtime.context = context
        _runtime.retries = retries
    return app


class JobQueue:
    """The engine's side: defer jobs, put the jobs of dead workers back in the queue."""

    def __init__(self, url: str) -> None:
        self.app = make_app(url)
        self.app.open()

    def defer(self, task_id: int, milestone: str, establishment_id: int,
              priority: int = 0) -> int:
        """Hand one task to the fleet; returns the job's id."""
        return int(self.app.configure_task(
            TASK_NAME, queue=task_queue(milestone), lock=f"establishment-{establishment_id}",
            priority=priority).defer(task_id=task_id))

    def cancel(self, job_id: int) -> None:
        """Withdraw a job not started yet (a started one sees the task's cancel flag)."""
        try:
            self.app.job_manager.cancel_job_by_id(job_id)
        except Exception as error:  # noqa: BLE001 - the worker skips a cancelled task anyway
            log.debug("Tâche procrastinate %d non retirée : %s", job_id, error)

    def requeue_stalled(self, seconds_since_heartbeat: float) -> list[int]:
        """Jobs left « doing » by workers silent for that long go back to « todo »; the
        worker that picks one takes the unit's claim over and resumes it."""
        # procrastinate is a PostgreSQL-only dependency (the postgres extra): loaded on use.
        from procrastinate import sql

        connector = self.app.connector.get_sync_connector()
        rows = connector.execute_query_all(
            query=sql.queries["select_stalled_jobs_by_heartbeat"],
            seconds_since_heartbeat=seconds_since_heartbeat, queue=None, task_name=TASK_NAME)
        ids = [int(row["id"]) for row in rows]
        for job_id in ids:
            self.app.job_manager.retry_job_by_id(job_id, retry_at=dt.datetime.now(dt.UTC))
        return ids

    def close(self) -> None:
        self.app.close()
