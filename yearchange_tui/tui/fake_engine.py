"""A scripted engine for tests, snapshots, the console bench and offline demos.

:class:`FakeEngine` implements :class:`~yearchange_tui.scheduling.api.EngineClient`
over in-memory state. Tests script it (``set_unit``, ``progress``, ``log``, ``reject``)
from any thread; with ``auto=True`` it also reacts to requests the way the engine
would (a dry run or a step starts its units, ``tick()`` advances them).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import replace
from typing import Any

from yearchange_tui.changeover.dry_run import DryRunWarning
from yearchange_tui.ent.uai import make_uai
from yearchange_tui.scheduling.api import (
    CHANGING_ACTIONS,
    EngineEventView,
    EngineMode,
    EngineStatus,
    EstablishmentView,
    FleetView,
    MaintenanceWindow,
    RequestAction,
    RequestOutcome,
    RequestView,
    TaskView,
    UnitView,
    describe_request,
)
from yearchange_tui.scheduling.fleet import FleetWorker, RunningUnit
from yearchange_tui.scheduling.models import RequestStatus, TaskStatus, WorkerState
from yearchange_tui.tui.detail_source import ArchiveInfo, EstablishmentDetail, StepHistory
from yearchange_tui.tui.rejects_source import MemoryRejectsSource, RejectQuery, RejectRow
from yearchange_tui.workflow.localtime import operator_zone
from yearchange_tui.workflow.models import Step, UnitStatus

FIXED_NOW = dt.datetime(2026, 7, 3, 9, 30)
"""The scripted engine's clock (tests pin the console to it): a wall-clock time of the
operator's zone."""


def stored_time(wall: dt.datetime) -> dt.datetime:
    """A wall-clock time of the operator's zone as the engine stores it (aware UTC)."""
    if wall.tzinfo is None:
        wall = wall.replace(tzinfo=operator_zone())
    return wall.astimezone(dt.UTC)

_PEOPLE = ("Jean Moulin", "Victor Hugo", "Marie Curie", "Jules Ferry", "Louise Michel",
           "Simone Veil", "Albert Camus", "George Sand", "Jean Jaurès", "Émile Zola",
           "Lucie Aubrac", "Paul Éluard", "Olympe de Gouges", "Condorcet", "Jacques Prévert",
           "Colette", "Pierre Brossolette", "Germaine Tillion", "Antoine de Saint-Exupéry",
           "Rosa Parks")
_DEPARTMENTS = ("069", "038", "001", "042", "073", "074", "026", "007")
_PROJECTS = ("ACAD-LYON", "ACAD-GRENOBLE")

_TASK_OF_UNIT = {UnitStatus.PENDING: TaskStatus.QUEUED, UnitStatus.RUNNING: TaskStatus.RUNNING,
                 UnitStatus.DONE: TaskStatus.DONE, UnitStatus.FAILED: TaskStatus.FAILED,
                 UnitStatus.BLOCKED: TaskStatus.BLOCKED, UnitStatus.MISSED: TaskStatus.MISSED,
                 UnitStatus.SKIPPED: TaskStatus.CANCELLED}
"""How a scripted unit's state reads as the state of the task that runs it."""

# Pseudo-steps of the grid reported as units under these keys (see grid_model).
PSEUDO_STEP = {"dry-run": Step.PURGE_TRASH, "warnings": Step.DELETE_OBSOLETE,
               "access-block": Step.INIT_DIRECTORY}


def _planned_dates(kind: str, year: int) -> dict[str, dt.date | None]:
    closing = dt.date(year + 1, 7, 7) if kind == "college" else dt.date(year + 1, 7, 16)
    return {"dry-run": dt.date(year + 1, 6, 25), "warnings": None, "purge-trash": closing,
            "archive": closing, "delete-obsolete": closing,
            "init-directory": dt.date(year + 1, 8, 20), "access-block": dt.date(year + 1, 8, 20),
            "init-school-life": dt.date(year + 1, 8, 28)}


def fake_uai(index: int) -> str:
    """The valid UAI of the ``index``-th fake establishment; distinct for every index.

    The first 9,000 spread over the eight departments with numbers 1000-9999; then the
    numbers 0000-0999 of the same departments; then departments 100 and up (valid UAIs,
    seven digits and their key letter, for a national ENT of any size; issue 16).
    """
    if index < 9000:
        department, number = _DEPARTMENTS[index % len(_DEPARTMENTS)], 1000 + index
    elif index < 9000 + 1000 * len(_DEPARTMENTS):
        rest = index - 9000
        department, number = _DEPARTMENTS[rest % len(_DEPARTMENTS)], rest // len(_DEPARTMENTS)
    else:
        rest = index - 9000 - 1000 * len(_DEPARTMENTS)
        department, number = f"{100 + rest // 10_000:03d}", rest % 10_000
    return make_uai(f"{department}{number:04d}")


def fake_establishments(count: int, year: int = 2025) -> list[EstablishmentView]:
    """``count`` deterministic establishments, every step planned and pending."""
    views = []
    for index in range(count):
        kind = "college" if index % 3 else "lycee"
        uai = fake_uai(index)
        person = _PEOPLE[index % len(_PEOPLE)]
        name = f"{'Collège' if kind == 'college' else 'Lycée'} {person}"
        project = _PROJECTS[index % 2 if count > 4 else 0]
        units: dict[Any, UnitView] = {}
        for key, planned in _planned_dates(kind, year).items():
            if planned is None:
                continue  # not planned: the grid shows "non prévu"
            step = PSEUDO_STEP.get(key) or Step(key)
            units[key if key in PSEUDO_STEP else step] = UnitView(
                uai=uai, step=step, status=UnitStatus.PENDING, planned_on=planned)
        views.append(EstablishmentView(uai=uai, name=name, kind=kind, project_code=project,
                                       units=units))
    return views


class FakeEngine:
    """An in-memory, thread-safe, scriptable :class:`EngineClient`.

    Args:
        establishments: how many establishments to invent.
        read_only: refuse changing requests with ``PermissionError`` (as the engine does).
        mode: the engine mode shown in the header.
        auto: react to requests (units start; :meth:`tick` advances them).
        step_total: items per unit when ``auto`` starts one.
        workers: simulated worker processes that share the running units (none: the fleet
            is empty, as on SQLite where the engine runs the units itself).
    """

    def __init__(self, establishments: int = 12, *, read_only: bool = False,
                 mode: EngineMode = EngineMode.ATTACHED, auto: bool = False,
                 step_total: int = 4, year: int = 2025, workers: int = 0) -> None:
        self._lock = threading.RLock()
        self._views = {view.uai: view for view in fake_establishments(establishments, year)}
        self._events: list[EngineEventView] = []
        self._status = EngineStatus(
            mode=mode, holder="moteur-test:4242", read_only=read_only,
            # Stored times are UTC: 06:00 and 18:00 UTC are 08:00 and 20:00 in Paris.
            next_window=MaintenanceWindow(dt.datetime(year + 1, 7, 7, 6, 0, tzinfo=dt.UTC),
                                          dt.datetime(year + 1, 7, 7, 18, 0, tzinfo=dt.UTC),
                                          "étapes 1 à 3"),
            heartbeat_at=FIXED_NOW)
        self.read_only = read_only
        self.auto = auto
        self.step_total = step_total
        self.requests: list[tuple[RequestAction, dict[str, Any]]] = []
        self.answers: dict[int, tuple[RequestStatus, str]] = {}
        """The engine's answer to each request, by id, when ``auto`` gave one."""
        self.rejects = MemoryRejectsSource(self._initial_rejects())
        self.now = FIXED_NOW
        self.workers = workers
        self.stale_workers: set[int] = set()
        """Indexes of simulated workers whose heartbeat stopped (« sans nouvelles »)."""
        self._running: set[tuple[str, str]] = set()
        self._script: threading.Thread | None = None
        self._script_stop = threading.Event()

    # -- EngineClient ------------------------------------------------------------------------

    def status(self) -> EngineStatus:
        """The engine status."""
        with self._lock:
            return self._status

    def establishments(self) -> list[EstablishmentView]:
        """Every establishment."""
        with self._lock:
            return list(self._views.values())

    def events_after(self, last_id: int, limit: int = 500) -> list[EngineEventView]:
        """Events newer than ``last_id``."""
        with self._lock:
            return [event for event in self._events if event.id > last_id][:limit]

    def last_event_id(self) -> int:
        """Id of the newest event (0 when none)."""
        with self._lock:
            return self._events[-1].id if self._events else 0

    def request_outcome(self, request_id: int) -> RequestOutcome | None:
        """A recorded request: handled at once when ``auto`` (else still queued), with one
        task per establishment of a run, retry or dry run, in its unit's current state."""
        with self._lock:
            if not 1 <= request_id <= len(self.requests):
                return None
            action, params = self.requests[request_id - 1]
            key = "dry-run" if action is RequestAction.DRY_RUN else str(params.get("step", ""))
            tasks = []
            if action in (RequestAction.RUN, RequestAction.RETRY, RequestAction.DRY_RUN):
                for uai in params.get("uais") or []:
                    view = self._views.get(uai)
                    unit = view.units.get(key if key in PSEUDO_STEP else Step(key)) if (
                        view is not None) else None
                    status = unit.status if unit is not None else UnitStatus.PENDING
                    tasks.append(TaskView(uai, key, _TASK_OF_UNIT[status],
                                          unit.error if unit is not None else ""))
            status, message = self.answers.get(request_id, (
                RequestStatus.DONE if self.auto else RequestStatus.QUEUED, ""))
            return RequestOutcome(request_id, action.value, status, message,
                                  tasks=tuple(tasks))

    def request_list(self, limit: int | None = 200) -> list[RequestView]:
        """The recorded requests, newest first (done at once when ``auto``)."""
        with self._lock:
            views = [RequestView(
                id=index + 1, created_at=stored_time(self.now),
                requested_by="console-test:4242",
                action=action.value, what=describe_request(action.value, params),
                status=self.answers.get(index + 1, (
                    RequestStatus.DONE if self.auto else RequestStatus.QUEUED, ""))[0],
                message=self.answers.get(index + 1, (RequestStatus.DONE, ""))[1])
                for index, (action, params) in enumerate(self.requests)]
        views.reverse()
        return views if limit is None else views[:limit]

    def request(self, action: RequestAction, **params: Any) -> int:
        """Record a request; refuse changing ones when read-only; react when ``auto``."""
        action = RequestAction(action)
        if self.read_only and action in CHANGING_ACTIONS:
            raise PermissionError("Mode consultation : le moteur refuse cette demande.")
        with self._lock:
            self.requests.append((action, dict(params)))
            request_id = len(self.requests)
            if self.auto:
                answer = self._react(action, params)
                if answer is not None:
                    self.answers[request_id] = answer
        return request_id

    def fleet(self) -> FleetView:
        """``workers`` simulated processes on hosts ``calcul-01``…, the running units of the
        steps dealt to them in turn (a stale one last beat five minutes ago); each is sized
        for its share (at least 4 at a time), as the scripted engine runs every unit asked."""
        now = stored_time(self.now)
        with self._lock:
            running = sorted((uai, key) for uai, key in self._running if key not in PSEUDO_STEP)
            stale = set(self.stale_workers)
        concurrency = max(4, -(-len(running) // max(1, self.workers)))
        workers = [FleetWorker(
            id=index + 1, host=f"calcul-{index + 1:02d}", pid=4301 + index, queues="",
            concurrency=concurrency, state=WorkerState.RUNNING,
            started_at=now - dt.timedelta(hours=1),
            heartbeat_at=now - (dt.timedelta(minutes=5) if index in stale
                                else dt.timedelta(seconds=3 + 4 * index)))
            for index in range(self.workers)]
        for index, (uai, key) in enumerate(running):
            if workers:
                workers[index % len(workers)].units.append(
                    RunningUnit(uai, Step(key), now - dt.timedelta(minutes=2 + index % 7)))
        return FleetView(tuple(workers), now, embedded=not workers)

    # -- scripting -----------------------------------------------------------------------------

    @property
    def uais(self) -> list[str]:
        """UAIs in order."""
        with self._lock:
            return sorted(self._views)

    def set_unit(self, uai: str, key: str, **changes: Any) -> None:
        """Change fields of one unit (``status``, ``progress_done``…)."""
        with self._lock:
            view = self._views[uai]
            unit_key: Any = key if key in PSEUDO_STEP else Step(key)
            unit = view.units.get(unit_key) or UnitView(uai, PSEUDO_STEP.get(key) or Step(key),
                                                        UnitStatus.PENDING)
            units = dict(view.units)
            units[unit_key] = new_unit = replace(unit, **changes)
            self._views[uai] = replace(view, units=units)
            if new_unit.status is UnitStatus.RUNNING:
                self._running.add((uai, key))
            else:
                self._running.discard((uai, key))

    def set_view(self, uai: str, **changes: Any) -> None:
        """Change fields of one establishment (``access_blocked``, ``reject_count``…)."""
        with self._lock:
            self._views[uai] = replace(self._views[uai], **changes)

    def progress(self, uai: str, key: str, done: int, total: int, rate: float | None = None,
                 eta: float | None = None) -> None:
        """Report a running unit's progress."""
        self.set_unit(uai, key, status=UnitStatus.RUNNING, progress_done=done,
                      progress_total=total, rate_per_s=rate, eta_s=eta)

    def set_status(self, **changes: Any) -> None:
        """Change the engine status (``paused``, ``mode``…)."""
        with self._lock:
            self._status = replace(self._status, **changes)

    def log(self, message: str, level: str = "info", *, uai: str = "", step: str = "",
            kind: str = "log", data: dict[str, Any] | None = None) -> None:
        """Append an engine event."""
        with self._lock:
            self._events.append(EngineEventView(
                id=len(self._events) + 1, at=stored_time(self.now), kind=kind, uai=uai, step=step,
                level=level, message=message, data=dict(data or {})))

    def reject(self, uai: str, code: str, message: str, severity: str = "erreur") -> RejectRow:
        """Stream one reject (an event and a row of the rejects browser)."""
        with self._lock:
            row = RejectRow(id=1000 + len(self._events), import_id=2, uai=uai, code=code,
                            severity=severity, kind="Eleve", file_name="ENT_Eleve_0000.xml",
                            line=100 + len(self._events), record_id="E123", attribute="",
                            raw_value="", message=message, action="Corriger dans SIECLE.",
                            raw_xml="<addRequest/>")
            self.rejects.add([row])
            self.log(f"{code} : {message}", "error" if severity == "erreur" else "warning",
                     uai=uai, kind="reject", data={"code": code, "severity": severity})
            return row

    def tick(self, steps: int = 1) -> None:
        """Advance every running unit by ``steps`` items; finished ones become done."""
        with self._lock:
            for uai, name in sorted(self._running):
                unit = self._views[uai].units[name]
                done = min(unit.progress_total, unit.progress_done + steps)
                if done < unit.progress_total:
                    self.set_unit(uai, name, progress_done=done, rate_per_s=2.0,
                                  eta_s=(unit.progress_total - done) / 2.0)
                    continue
                dry = name == "dry-run"
                self.set_unit(uai, name, status=UnitStatus.DONE, progress_done=done,
                              rate_per_s=None, eta_s=None)
                if dry:
                    for step_key in ("purge-trash", "archive", "delete-obsolete"):
                        self.set_unit(uai, step_key, dry_run_done=True)
                self.log(f"{uai} : {'passage à blanc' if dry else name} terminé", uai=uai,
                         step=name, kind="unit")

    def running_units(self) -> int:
        """How many units are running."""
        with self._lock:
            return len(self._running)

    def start_script(self, interval: float = 0.2) -> None:
        """Tick on a thread every ``interval`` seconds (demos, the bench)."""
        def loop() -> None:
            while not self._script_stop.wait(interval):
                self.tick()

        self._script_stop.clear()
        self._script = threading.Thread(target=loop, name="fake-engine", daemon=True)
        self._script.start()

    def close(self, wait: bool = False) -> None:
        """Stop the script thread."""
        self._script_stop.set()
        if self._script is not None:
            self._script.join(2)

    # -- reactions -----------------------------------------------------------------------------

    def _start(self, uai: str, key: str) -> None:
        """Start a unit, or queue it while the engine is paused."""
        if self._status.paused:
            self.set_unit(uai, key, status=UnitStatus.PENDING, queue="queued", error="")
        else:
            self.set_unit(uai, key, status=UnitStatus.RUNNING, progress_done=0,
                          progress_total=self.step_total, error="", queue="")

    def _react(self, action: RequestAction,
               params: dict[str, Any]) -> tuple[RequestStatus, str] | None:
        uais = list(params.get("uais") or [])
        if action is RequestAction.DRY_RUN:
            for uai in uais:
                self._start(uai, "dry-run")
            self.log(f"Passage à blanc demandé pour {len(uais)} établissement(s).")
        elif action in (RequestAction.RUN, RequestAction.RETRY):
            step = str(params["step"])
            for uai in uais:
                unit = self._views[uai].units.get(Step(step))
                if action is RequestAction.RETRY and (unit is None or unit.status not in (
                        UnitStatus.FAILED, UnitStatus.BLOCKED)):
                    continue
                self._start(uai, step)
            self.log(f"Étape {Step(step).number} demandée pour {len(uais)} établissement(s).")
        elif action is RequestAction.PAUSE:
            self.set_status(paused=True)
            self.log("Moteur en pause : aucune nouvelle unité ne démarre.")
        elif action is RequestAction.RESUME:
            self.set_status(paused=False)
            for uai, view in list(self._views.items()):
                for key, unit in view.units.items():
                    if unit.queue == "queued":
                        self._start(uai, str(key))
            self.log("Moteur relancé.")
        elif action is RequestAction.CANCEL:
            removed = stopping = 0
            step = str(params.get("step") or "")
            for uai, view in list(self._views.items()):
                if uais and uai not in uais:
                    continue
                for key, unit in view.units.items():
                    if step and str(key) != step:
                        continue
                    if unit.status is UnitStatus.RUNNING and str(key) != "access-block":
                        self.set_unit(uai, str(key), status=UnitStatus.PENDING, progress_done=0,
                                      queue="interrupted")
                        stopping += 1
                    elif unit.queue in ("queued", "waiting"):
                        self.set_unit(uai, str(key), queue="")
                        removed += 1
            self.log("Unités annulées.", "warning")
            if not removed and not stopping:
                return RequestStatus.NO_EFFECT, "aucune unité en file ni en cours à annuler"
            return RequestStatus.DONE, (f"{removed} unité(s) retirée(s) de la file, {stopping} "
                                        "en cours s'arrête(nt) à leur prochain point de reprise")
        elif action is RequestAction.SET_DATE:
            day = params["date"]
            column = {"warning": "warnings", "access-block-start": "access-block"}.get(
                str(params["step"]), str(params["step"]))
            for uai in uais:
                self.set_unit(uai, column, planned_on=day)
            self.log(f"Date du {day:%d/%m/%Y} fixée pour {len(uais)} établissement(s).")
        elif action is RequestAction.IMPORT_AAF:
            self.log(f"Import AAF : {params.get('path')}", kind="log")
            first = self.uais[0]
            self.reject(first, "ELEVE_SANS_CLASSE", "Élève sans classe dans la livraison.")
        elif action is RequestAction.IMPORT_TIMETABLE:
            self.log(f"Import d'emploi du temps : {params.get('path')} ({params.get('uai')})")
        return None

    def _initial_rejects(self) -> list[RejectRow]:
        rows = []
        codes = (("ELEVE_SANS_CLASSE", "erreur", "Eleve",
                  "L'élève n'a aucune classe dans la livraison : il n'est pas importé.",
                  ("Affecter l'élève à une division dans SIECLE puis attendre le prochain "
                   "complet.")),
                 ("INE_DOUBLON", "erreur", "Eleve",
                  "Cet INE est déjà porté par un autre élève.",
                  "Signaler le doublon au rectorat (cellule SIECLE)."),
                 ("DATE_NAISSANCE_INVALIDE", "avertissement", "Eleve",
                  "Date de naissance illisible : la date n'est pas mise à jour.",
                  "Corriger la date dans SIECLE."),
                 ("ATTRIBUT_INCONNU", "information", "PersEducNat",
                  "Attribut non prévu par le format : ignoré.", "Aucune action."))
        for index, uai in enumerate(sorted(self._views)[:6]):
            code, severity, kind, message, action = codes[index % len(codes)]
            rows.append(RejectRow(
                id=index + 1, import_id=1, uai=uai, code=code, severity=severity, kind=kind,
                file_name=f"ENT_{kind}_0000.xml", line=40 + 17 * index,
                record_id=f"{kind[:1]}{9000 + index}", attribute="ENTEleveClasses",
                raw_value="", message=message, action=action,
                raw_xml=(f'<addRequest>\n  <identifier><id>{kind[:1]}{9000 + index}</id>'
                         '</identifier>\n  <attributes/>\n</addRequest>')))
        return rows

    # -- dry-run report --------------------------------------------------------------------------

    def dry_run_warnings(self) -> list[DryRunWarning]:
        """Scripted dry-run warnings: every third establishment has two."""
        with self._lock:
            views = sorted(self._views.values(), key=lambda view: view.uai)
        made_at = FIXED_NOW.replace(tzinfo=dt.UTC)
        warnings = []
        for index, view in enumerate(views):
            if index % 3:
                continue
            warnings.append(DryRunWarning(
                view.uai, view.name, Step.PURGE_TRASH, "CORBEILLE-SUPPRESSION-RECENTE",
                "« Sorties 2026 » mise à la corbeille le 28/06/2026 : elle sera supprimée "
                "sans possibilité de récupération.", made_at))
            warnings.append(DryRunWarning(
                view.uai, view.name, Step.ARCHIVE, "ARCHIVE-CAHIER-VIDE",
                "Cahier de textes de la classe 6B vide : l'archive ne contiendra que son "
                "sommaire.", made_at))
        return warnings

    # -- detail ----------------------------------------------------------------------------------

    def detail(self, uai: str) -> EstablishmentDetail | None:
        """A detail built from the view (the scripted engine's detail source)."""
        with self._lock:
            view = self._views.get(uai)
        if view is None:
            return None
        steps = []
        for step in Step:
            unit = view.units.get(step)
            dry = {"rubriques supprimées": 12, "documents supprimés": 30} if (
                unit is not None and unit.dry_run_done) else {}
            real = dict(dry) if unit is not None and unit.status is UnitStatus.DONE else {}
            steps.append(StepHistory(step.value, f"{step.number} {step.label}",
                                     unit.status.value if unit else "pending",
                                     real_counts=real, dry_run_counts=dry,
                                     dry_run_at=FIXED_NOW - dt.timedelta(days=3) if dry
                                     else None,
                                     error=unit.error if unit else ""))
        archives = (ArchiveInfo("textbook:6A", "cahier de textes", f"{uai}/archives/6A.zip",
                                48213, "9f2c" + "0" * 60, 31),)
        page = self.rejects.query(RejectQuery(uai=uai))
        counts: dict[str, int] = {}
        for row in page.rows:
            counts[row.severity] = counts.get(row.severity, 0) + 1
        return EstablishmentDetail(
            uai=uai, name=view.name, kind=view.kind, project=view.project_code,
            closing_date=dt.date(2026, 7, 6), steps=tuple(steps), archives=archives,
            reject_counts=counts, rejects=tuple(page.rows),
            previous_year_classes=("3B (2 élèves) : très peu d'élèves",),
            access_block="Du 20/08/2026 au 31/08/2026 (dates du projet).")
