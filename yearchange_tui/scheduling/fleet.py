"""The fleet: every worker process and the units each runs right now.

One read for every screen and command (``yearchange workers``, the console's fleet view):
workers come from the ``workers`` table, the units a worker runs are the claims
(``unit_claims``) held under the same host and pid. A worker whose heartbeat is older than
the claims' time-to-live is shown « sans nouvelles » (its units are taken over by others).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from yearchange_tui.ent.models import Establishment
from yearchange_tui.scheduling.models import WORKER_STATE_LABELS, WorkerRow, WorkerState
from yearchange_tui.workflow.calendar import as_utc
from yearchange_tui.workflow.claims import claim_ttl, wall_now
from yearchange_tui.workflow.models import Step, StepUnit, UnitClaim


@dataclass(frozen=True)
class RunningUnit:
    """A unit a worker holds: establishment, step and since when."""

    uai: str
    step: Step
    since: dt.datetime


STALE_LABEL = "sans nouvelles"
"""The state shown for a worker that should run but gave no heartbeat within the time-to-live."""


@dataclass
class FleetWorker:
    """One worker as the operator sees it."""

    id: int
    host: str
    pid: int
    queues: str
    concurrency: int
    state: WorkerState
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    units: list[RunningUnit] = field(default_factory=list)

    def alive(self, now: dt.datetime, ttl: dt.timedelta | None = None) -> bool:
        """True when its last heartbeat is within the time-to-live (the claims')."""
        return (self.state is not WorkerState.STOPPED
                and now - self.heartbeat_at <= (ttl if ttl is not None else claim_ttl()))

    def stale(self, now: dt.datetime, ttl: dt.timedelta | None = None) -> bool:
        """True when it should be running but its heartbeat is past the time-to-live."""
        return self.state is not WorkerState.STOPPED and not self.alive(now, ttl)

    def state_label(self, now: dt.datetime, ttl: dt.timedelta | None = None) -> str:
        """« actif », « s'arrête », « arrêté » or « sans nouvelles » (:data:`STALE_LABEL`)."""
        return STALE_LABEL if self.stale(now, ttl) else WORKER_STATE_LABELS[self.state]


def fleet(session: Session, include_stopped: bool = False) -> list[FleetWorker]:
    """The workers (newest first within a host) and the units each runs, in two queries."""
    query = select(WorkerRow).order_by(WorkerRow.host, WorkerRow.pid)
    if not include_stopped:
        query = query.where(WorkerRow.state != WorkerState.STOPPED)
    workers = [FleetWorker(row.id, row.host, row.pid, row.queues, row.concurrency,
                           WorkerState(row.state), as_utc(row.started_at),
                           as_utc(row.heartbeat_at))
               for row in session.scalars(query)]
    by_process = {(worker.host, worker.pid): worker for worker in workers}
    if by_process:
        rows = session.execute(
            select(UnitClaim.host, UnitClaim.pid, Establishment.uai, StepUnit.step,
                   UnitClaim.claimed_at)
            .join(StepUnit, StepUnit.id == UnitClaim.unit_id)
            .join(Establishment, Establishment.id == StepUnit.establishment_id)
            .order_by(UnitClaim.claimed_at))
        for host, pid, uai, step, since in rows:
            worker = by_process.get((host, pid))
            if worker is not None:
                worker.units.append(RunningUnit(uai, Step(step), as_utc(since)))
    return workers


def fleet_now() -> dt.datetime:
    """The time liveness is judged against (real time, like the claims)."""
    return wall_now()
