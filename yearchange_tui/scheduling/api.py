"""What a console sees of the engine: read models and the client interface.

The console never imports the engine's internals: it talks to an :class:`EngineClient`
(the real one reads and writes the shared database; tests use a scripted fake). Every
type here is a plain frozen dataclass, safe to hand from any thread to any other.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from yearchange_tui.scheduling.fleet import FleetWorker
from yearchange_tui.scheduling.models import (
    ACTIVE_TASK_STATUSES,
    RequestStatus,
    TaskStatus,
)
from yearchange_tui.workflow.calendar import CalendarError, parse_milestone
from yearchange_tui.workflow.models import Step, UnitStatus


class EngineMode(enum.StrEnum):
    """How this console relates to the engine (shown in the header)."""

    ATTACHED = "attaché"  # this console started the engine process
    OBSERVER = "observateur"  # another process holds the engine lease
    NONE = "aucun moteur"  # no live engine


class RequestAction(enum.StrEnum):
    """What a console may ask the engine to do."""

    RUN = "run"  # params: step, uais
    DRY_RUN = "dry-run"  # params: uais
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"  # params: uais (empty = every queued or running unit; the console
    # always names the establishments it shows)
    RETRY = "retry"  # failed units only; params: step, uais
    IMPORT_AAF = "import-aaf"  # params: path
    IMPORT_TIMETABLE = "import-timetable"  # params: path, uai
    SET_DATE = "set-date"  # params: step, uais or kind, date
    SET_ACCESS_BLOCK = "set-access-block"  # params: uais, starts_on, ends_on, message
    SET_PROJECT = "set-project"  # params: project, changes, uais


CHANGING_ACTIONS = frozenset({RequestAction.RUN, RequestAction.DRY_RUN, RequestAction.CANCEL,
                              RequestAction.RETRY, RequestAction.IMPORT_AAF,
                              RequestAction.IMPORT_TIMETABLE, RequestAction.SET_DATE,
                              RequestAction.PAUSE, RequestAction.RESUME,
                              RequestAction.SET_ACCESS_BLOCK, RequestAction.SET_PROJECT})
"""Refused when a read-only client (support staff) asks: each writes something — a dry run
stores its report, the one the real run is compared with."""

READ_ONLY_ENGINE_ACTIONS = frozenset({RequestAction.DRY_RUN})
"""What a read-only engine still does when a writing client asks: a dry run, whose report
a read-only engine does not store."""

READ_ONLY_REFUSAL = ("mode consultation : cette demande modifierait les données (un passage à "
                     "blanc enregistre son rapport), elle est refusée")
"""The engine's answer to a changing request from a read-only client."""


@dataclass(frozen=True)
class UnitView:
    """One cell of the calendar grid: an establishment's step."""

    uai: str
    step: Step
    status: UnitStatus
    planned_on: dt.date | None = None
    progress_done: int = 0
    progress_total: int = 0
    rate_per_s: float | None = None
    eta_s: float | None = None
    error: str = ""
    dry_run_done: bool = False
    queue: str = ""  # a QueueState value (workflow/units.py) when the unit waits, else ""
    word: str = ""  # replaces the state's word in the grid ("prévu", "en cours", "levé")
    ends_on: dt.date | None = None  # last day of a milestone that spans days (access block)

    @property
    def percent(self) -> int:
        """Progress in percent (0 when unknown)."""
        if not self.progress_total:
            return 0
        return min(100, 100 * self.progress_done // self.progress_total)


@dataclass(frozen=True)
class EstablishmentView:
    """One row of the calendar grid."""

    uai: str
    name: str
    kind: str  # college, lycee, other
    project_code: str
    units: dict[Step, UnitView] = field(default_factory=dict)
    reject_count: int = 0
    access_blocked: bool = False


@dataclass(frozen=True)
class MaintenanceWindow:
    """A planned service interruption."""

    starts_at: dt.datetime
    ends_at: dt.datetime
    label: str  # "étapes 1 à 3", "étape 4"


@dataclass(frozen=True)
class EngineStatus:
    """The engine as the header shows it."""

    mode: EngineMode
    holder: str = ""  # host:pid of the engine process
    paused: bool = False
    read_only: bool = False
    next_window: MaintenanceWindow | None = None
    heartbeat_at: dt.datetime | None = None


@dataclass(frozen=True)
class EngineEventView:
    """A persisted engine event (unit state change, progress, reject, log line)."""

    id: int
    at: dt.datetime
    kind: str  # unit, progress, reject, log
    uai: str = ""
    step: str = ""
    level: str = "info"  # info, warning, error
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskView:
    """One unit of work a request queued: an establishment and a milestone."""

    uai: str
    milestone: str  # a step value, or "dry-run"
    status: TaskStatus
    reason: str = ""


@dataclass(frozen=True)
class RequestOutcome:
    """Where one request stands: the engine's answer and the units it queued."""

    id: int
    action: str
    status: RequestStatus
    message: str = ""
    tasks: tuple[TaskView, ...] = ()

    @property
    def handled(self) -> bool:
        """True once the engine took the request (done, refused or failed)."""
        return self.status not in (RequestStatus.QUEUED, RequestStatus.RUNNING)

    @property
    def settled(self) -> bool:
        """True once the request is handled and none of its units is queued or running."""
        return self.handled and not any(task.status in ACTIVE_TASK_STATUSES
                                        for task in self.tasks)


@dataclass(frozen=True)
class RequestView:
    """One request as the requests screen and ``yearchange requests`` list it."""

    id: int
    created_at: dt.datetime
    requested_by: str
    action: str
    what: str  # French: "Étape 2 — Archivage de fin d'année N · 3 établissement(s)"
    status: RequestStatus
    message: str = ""
    finished_at: dt.datetime | None = None
    read_only: bool = False  # sent by a read-only client (support staff)


@dataclass(frozen=True)
class FleetView:
    """The fleet as the console shows it: every worker process and the units it runs
    (:func:`yearchange_tui.scheduling.fleet.fleet`), read at ``now``."""

    workers: tuple[FleetWorker, ...] = ()
    now: dt.datetime | None = None  # real time (UTC) liveness is judged against
    embedded: bool = True  # SQLite: the engine runs the units itself (no ``yearchange worker``)

    def holder(self, uai: str, step_key: str) -> FleetWorker | None:
        """The worker that runs ``uai``'s step (a :class:`Step` value), if any."""
        for worker in self.workers:
            for unit in worker.units:
                if unit.uai == uai and unit.step.value == step_key:
                    return worker
        return None


ACTION_LABELS = {
    RequestAction.RUN: "Lancer",
    RequestAction.DRY_RUN: "Passage à blanc",
    RequestAction.PAUSE: "Pause",
    RequestAction.RESUME: "Reprise",
    RequestAction.CANCEL: "Annuler",
    RequestAction.RETRY: "Relancer les échecs",
    RequestAction.IMPORT_AAF: "Import AAF",
    RequestAction.IMPORT_TIMETABLE: "Import d'emploi du temps",
    RequestAction.SET_DATE: "Date planifiée",
}


def describe_request(action: str, params: dict[str, Any]) -> str:
    """What a request asks, in French: action, step, establishments, path or date."""
    try:
        label = ACTION_LABELS[RequestAction(action)]
    except ValueError:
        label = action
    parts = [label]
    step = params.get("step")
    if step:
        try:
            milestone = parse_milestone(str(step))
        except CalendarError:
            parts.append(str(step))
        else:
            parts.append(f"étape {milestone.step.number}" if milestone.step is not None
                         else milestone.label)
    uais = params.get("uais") or params.get("uai") or []
    uais = [uais] if isinstance(uais, str) else list(uais)
    if len(uais) == 1:
        parts.append(uais[0])
    elif uais:
        parts.append(f"{len(uais)} établissement(s)")
    elif action in (RequestAction.RUN, RequestAction.DRY_RUN, RequestAction.CANCEL,
                    RequestAction.RETRY):
        parts.append("tous les établissements")
    if params.get("path"):
        parts.append(str(params["path"]))
    if params.get("date"):
        try:
            parts.append(f"{dt.date.fromisoformat(str(params['date'])):%d/%m/%Y}")
        except ValueError:
            parts.append(str(params["date"]))
    return " · ".join(parts)


@runtime_checkable
class EngineClient(Protocol):
    """The console's only door to the engine (the database client, the scripted one)."""

    @property
    def read_only(self) -> bool:
        """True for a support-staff client: every changing request is refused."""

    def status(self) -> EngineStatus:
        """Engine mode, lease holder, pause state, next window."""

    def establishments(self) -> list[EstablishmentView]:
        """Every establishment with the state of each step."""

    def events_after(self, last_id: int, limit: int = 500) -> list[EngineEventView]:
        """Events newer than ``last_id``, oldest first."""

    def last_event_id(self) -> int:
        """Id of the newest event (0 when none): a console shows recent history from here."""

    def request(self, action: RequestAction, **params: Any) -> int:
        """Queue a request for the engine; returns its id.

        Raises:
            PermissionError: when read-only and the action changes data (French message).
        """

    def request_outcome(self, request_id: int) -> RequestOutcome | None:
        """Where a request stands (None for an unknown id)."""

    def request_list(self, limit: int | None = 200) -> list[RequestView]:
        """The requests, newest first (every one when ``limit`` is None)."""

    def fleet(self) -> FleetView:
        """The worker processes and the units each runs right now."""
