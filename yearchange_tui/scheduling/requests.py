"""The engine's request table: one handler per action (engine main thread).

Consoles and the CLI write :class:`~yearchange_tui.scheduling.models.EngineRequest` rows;
:meth:`RequestHandlers.process` answers the queued ones in order: it queues tasks (run,
dry run, retry), pauses or resumes, cancels, moves a calendar date, or hands an import to
:class:`~yearchange_tui.scheduling.import_requests.ImportRequests`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yearchange_tui.changeover.runner import ChangeoverRunner
from yearchange_tui.changeover.steps import step_definition
from yearchange_tui.changeover.steps.archive import RedoRefused, reset_archives_for_redo
from yearchange_tui.ent.errors import describe_error
from yearchange_tui.scheduling.api import (
    CHANGING_ACTIONS,
    READ_ONLY_ENGINE_ACTIONS,
    READ_ONLY_REFUSAL,
    RequestAction,
)
from yearchange_tui.scheduling.client import queue_states
from yearchange_tui.scheduling.import_requests import ImportRequests
from yearchange_tui.scheduling.lease import set_paused
from yearchange_tui.scheduling.models import (
    ACTIVE_TASK_STATUSES,
    EngineRequest,
    EngineTask,
    RequestStatus,
    TaskStatus,
)
from yearchange_tui.scheduling.state import EngineState, engine_log
from yearchange_tui.workflow.access_block import (
    own_block_dates,
    set_block_window,
    set_establishment_message,
)
from yearchange_tui.workflow.audit import audit, on_behalf_of
from yearchange_tui.workflow.calendar import (
    CalendarError,
    Milestone,
    milestone_of,
    parse_date,
    parse_milestone,
    parse_time,
    resolve_target,
    set_date,
)
from yearchange_tui.workflow.establishments import EstablishmentRef, UnknownEstablishmentError
from yearchange_tui.workflow.guards import GuardRefused, check_run_window, step_order_missing
from yearchange_tui.workflow.models import (
    Step,
    StepUnit,
    UnitStatus,
)
from yearchange_tui.workflow.project_settings import (
    DATE_SETTINGS,
    apply_changes,
    find_project,
)
from yearchange_tui.workflow.units import current_school_year

log = engine_log()

Answer = tuple[RequestStatus, str]
"""A request's new status and its French answer."""

REQUESTS_PER_PASS = 50



def before_unit_message(cells: list[tuple[str, Step, str]]) -> str:
    """Why a retry finds nothing to run on cells the engine refused or failed before any
    unit began (a step-4 request before any AAF delivery): the reason and the way out."""
    first_uai, step, reason = cells[0]
    more = f" (et {len(cells) - 1} autre(s))" if len(cells) > 1 else ""
    return (f" : {first_uai}{more}, étape {step.number} arrêtée avant de commencer — "
            f"{reason or 'sans motif'} ; levez la cause puis redemandez l'étape "
            f"{step.number} (r) : une relance ne reprend qu'une unité commencée")


def request_uais(params: dict[str, Any]) -> list[str]:
    """The establishments a request names (``uais``, or one ``uai``)."""
    uais = params.get("uais") or params.get("uai") or []
    return [uais] if isinstance(uais, str) else list(uais)


def queued_message(label: str, queued: int, done: int, busy: int) -> str:
    """The answer to a request that queued tasks."""
    parts = [f"{label} : {queued} unité(s) en file"]
    if done:
        parts.append(f"{done} déjà terminée(s)")
    if busy:
        parts.append(f"{busy} déjà en file ou en cours")
    return ", ".join(parts)


def queued_answer(label: str, queued: int, done: int, busy: int) -> Answer:
    """Done when units were queued, else « sans effet » with what the engine found."""
    status = RequestStatus.DONE if queued else RequestStatus.NO_EFFECT
    return status, queued_message(label, queued, done, busy)


def list_for(uais: list[str], limit: int = 5) -> str:
    """``A, B, C`` or ``A, B, C… (+12)`` for a message."""
    shown = ", ".join(uais[:limit])
    return shown + (f"… (+{len(uais) - limit})" if len(uais) > limit else "")


@dataclass
class RequestHandlers:
    """Answers the request table, one handler per :class:`RequestAction`."""

    state: EngineState
    imports: ImportRequests

    def process(self) -> None:
        """Answer the queued requests, oldest first, then start the accepted imports."""
        with self.state.database.session() as session:
            rows = [(row.id, row.action, row.params, row.requester_read_only, row.requested_by)
                    for row in session.scalars(select(EngineRequest).where(
                        EngineRequest.status == RequestStatus.QUEUED)
                        .order_by(EngineRequest.id).limit(REQUESTS_PER_PASS))]
        for request_id, action, params, requester_read_only, requested_by in rows:
            try:
                decoded = json.loads(params or "{}")
                with on_behalf_of(requested_by):
                    status, message = self.handle(request_id, action, decoded,
                                                  requester_read_only)
            except (ValueError, CalendarError, UnknownEstablishmentError) as error:
                status, message = RequestStatus.REFUSED, str(error)
            except Exception as error:
                log.exception("Demande n°%d (%s) en échec.", request_id, action)
                status, message = RequestStatus.FAILED, describe_error(error)
            self._answer(request_id, action, requested_by, status, message)
        # After the answers: an import thread writes its own answer over "running".
        self.imports.start_pending()

    def _answer(self, request_id: int, action: str, requested_by: str,
                status: RequestStatus, message: str) -> None:
        with self.state.database.session() as session:
            row = session.get(EngineRequest, request_id)
            if row is None:
                return
            row.picked_at = row.picked_at or self.state.clock()
            row.status = status
            row.message = message
            if status is not RequestStatus.RUNNING:
                row.finished_at = self.state.clock()
            if status is RequestStatus.REFUSED:
                audit(session, f"request:{action}", "refused", details={
                    "request_id": request_id, "requested_by": requested_by,
                    "read_only_client": bool(row.requester_read_only), "reason": message})
        level = {RequestStatus.REFUSED: "warning", RequestStatus.FAILED: "error"}.get(
            status, "info")
        self.state.events.record("request", f"Demande n°{request_id} ({action}) : {message}",
                                 level=level, data={"request_id": request_id, "action": action,
                                                    "status": status.value,
                                                    "requested_by": requested_by})

    def handle(self, request_id: int, action_value: str, params: dict[str, Any],
               requester_read_only: bool) -> Answer:
        """Answer one request.

        Raises:
            ValueError, CalendarError, UnknownEstablishmentError: a bad request (refused).
        """
        try:
            action = RequestAction(action_value)
        except ValueError:
            return RequestStatus.REFUSED, f"action inconnue « {action_value} »"
        if action in CHANGING_ACTIONS and (requester_read_only or (
                self.state.config.read_only and action not in READ_ONLY_ENGINE_ACTIONS)):
            return RequestStatus.REFUSED, READ_ONLY_REFUSAL
        handlers: dict[RequestAction, Callable[[int, RequestAction, dict[str, Any]], Answer]] = {
            RequestAction.RUN: self.run,
            RequestAction.DRY_RUN: self.dry_run,
            RequestAction.PAUSE: self.pause,
            RequestAction.RESUME: self.resume,
            RequestAction.CANCEL: self.cancel,
            RequestAction.RETRY: self.retry,
            RequestAction.SET_DATE: self.set_date,
            RequestAction.SET_ACCESS_BLOCK: self.set_access_block,
            RequestAction.SET_PROJECT: self.set_project,
            RequestAction.IMPORT_AAF: self.import_,
            RequestAction.IMPORT_TIMETABLE: self.import_,
        }
        return handlers[action](request_id, action, params)

    # -- helpers ---------------------------------------------------------------------------

    def refs(self, params: dict[str, Any]) -> list[EstablishmentRef]:
        """The establishments a request names (all of them when it names none).

        Raises:
            ValueError: when the database holds no establishment.
            UnknownEstablishmentError: for a UAI not in the database.
        """
        runner = ChangeoverRunner(self.state.database, self.state.storage_root, read_only=True)
        refs = runner.establishments(request_uais(params) or None)
        if not refs:
            raise ValueError("aucun établissement dans la base")
        return refs

    def queue_tasks(self, request_id: int, origin: str, milestone: Milestone,
                    refs: list[EstablishmentRef]) -> tuple[int, int, int]:
        """Queue one task per establishment; returns (queued, already done, already queued)."""
        now = self.state.clock()
        step = milestone.step
        ids = [ref.id for ref in refs]
        with self.state.database.session() as session:
            year = current_school_year(session)
            done_ids: set[int] = set()
            if step is not None:
                done_ids = set(session.scalars(select(StepUnit.establishment_id).where(
                    StepUnit.establishment_id.in_(ids), StepUnit.school_year_id == year.id,
                    StepUnit.step == step, StepUnit.status == UnitStatus.DONE)))
            busy_ids = set(session.scalars(select(EngineTask.establishment_id).where(
                EngineTask.establishment_id.in_(ids), EngineTask.school_year_id == year.id,
                EngineTask.milestone == milestone.value,
                EngineTask.status.in_(ACTIVE_TASK_STATUSES)))) - done_ids
            skipped = done_ids | busy_ids
            to_queue = [ref.id for ref in refs if ref.id not in skipped]
            session.add_all(EngineTask(request_id=request_id, origin=origin,
                                       milestone=milestone.value, establishment_id=ref_id,
                                       school_year_id=year.id, status=TaskStatus.QUEUED,
                                       due_at=now, not_after=None, reason="", created_at=now)
                            for ref_id in to_queue)
        self.state.wake.set()
        return len(to_queue), len(done_ids), len(busy_ids)

    def matching_tasks(self, session: Session, params: dict[str, Any],
                       statuses: tuple[TaskStatus, ...]) -> list[EngineTask]:
        """The tasks in ``statuses`` a request names (by ``uais`` and ``step``)."""
        query = select(EngineTask).where(EngineTask.status.in_(statuses))
        if request_uais(params):
            ids = [ref.id for ref in self.refs(params)]
            query = query.where(EngineTask.establishment_id.in_(ids))
        if params.get("step"):
            query = query.where(EngineTask.milestone == parse_milestone(str(params["step"])).value)
        return list(session.scalars(query))

    # -- one handler per action ------------------------------------------------------------

    def run(self, request_id: int, _action: RequestAction, params: dict[str, Any]) -> Answer:
        """``run``: queue a step's (or a notice's) units."""
        if not params.get("step"):
            raise ValueError("précisez l'étape (step)")
        milestone = parse_milestone(str(params["step"]))
        if not milestone.runs_units:
            raise ValueError(f"« {milestone.label} » n'est pas une opération exécutable")
        refs = self.refs(params)
        # A redo repairs archives of a step 2 already run (its window was decided then) and
        # deletes nothing of year N: the window guard is for the first run of steps 1 to 3.
        if milestone.step is not None and not params.get("redo"):
            refusal = self.window_refusal(milestone.step, refs, params)
            if refusal:
                return RequestStatus.REFUSED, refusal
        if milestone.step is not None and step_definition(milestone.step).confirm:
            refusal = self.unmet_prerequisites(milestone.step, refs)
            if refusal:
                return RequestStatus.REFUSED, refusal
        if params.get("redo"):
            refusal = self.reset_for_redo(milestone.step, refs, str(params.get("reason") or ""))
            if refusal:
                return RequestStatus.REFUSED, refusal
        return queued_answer(milestone.label,
                             *self.queue_tasks(request_id, "request", milestone, refs))

    def unmet_prerequisites(self, step: Step, refs: list[EstablishmentRef]) -> str:
        """Why a destructive step may not be queued for ``refs`` (empty: it may).

        A destructive step is never held until its prerequisite is done: it would then run
        later with nobody watching. The whole request is refused with the establishments
        whose prerequisite is not done (an MOE override of the step order lifts it).
        """
        with self.state.database.session() as session:
            year = current_school_year(session)
            missing = step_order_missing(session, refs, year.id, step)
        lines = [f"l'étape {prerequisite.number} ({prerequisite.label}) n'est pas terminée pour "
                 f"{len(uais)} établissement(s) : {list_for(uais)}"
                 for prerequisite, uais in missing.items()]
        if not lines:
            return ""
        return (f"étape {step.number} refusée : " + " ; ".join(lines)
                + f". Lancez d'abord l'étape préalable, puis redemandez l'étape {step.number}")

    def reset_for_redo(self, step: Step | None, refs: list[EstablishmentRef],
                       reason: str) -> str:
        """``run`` with ``redo`` (step 2): forget the archives so the units write them again
        (all establishments or none); the refusal, or '' when done."""
        if step is not Step.ARCHIVE:
            return "seule l'étape 2 (archivage) se refait (redo)"
        try:
            with self.state.database.session() as session:
                year = current_school_year(session)
                for ref in refs:
                    reset_archives_for_redo(session, ref.id, ref.uai, year.id, reason)
        except RedoRefused as refusal:
            return refusal.message
        return ""

    def window_refusal(self, step: Step, refs: list[EstablishmentRef],
                       params: dict[str, Any]) -> str:
        """Steps 1 to 3 outside the window or before closure: the refusal, unless the
        request carries ``hors_fenetre`` and a ``reason`` (then audited); '' when let through."""
        reason = str(params.get("reason") or "") if params.get("hors_fenetre") else None
        with self.state.database.session() as session:
            try:
                check_run_window(session, refs, step, self.state.clock(), reason=reason,
                                 timezone_name=self.state.config.timezone)
            except GuardRefused as refusal:
                return refusal.message
        return ""

    def dry_run(self, request_id: int, _action: RequestAction,
                params: dict[str, Any]) -> Answer:
        """``dry-run``: queue the dry run of the named establishments."""
        return queued_answer(Milestone.DRY_RUN.label, *self.queue_tasks(
            request_id, "request", Milestone.DRY_RUN, self.refs(params)))

    def pause(self, _request_id: int, _action: RequestAction,
              _params: dict[str, Any]) -> Answer:
        """``pause``: no new unit starts (kept across restarts)."""
        set_paused(self.state.database, True)
        log.info("Moteur en pause : aucune nouvelle unité ne démarre.")
        return RequestStatus.DONE, ("moteur en pause : aucune nouvelle unité ne démarre, celles "
                                    "en cours se terminent")

    def resume(self, _request_id: int, _action: RequestAction,
               _params: dict[str, Any]) -> Answer:
        """``resume``: units start again."""
        set_paused(self.state.database, False)
        log.info("Moteur relancé.")
        self.state.wake.set()
        return RequestStatus.DONE, "moteur relancé"

    def cancel(self, request_id: int, _action: RequestAction,
               params: dict[str, Any]) -> Answer:
        """``cancel``: queued tasks leave the queue, running ones stop at their checkpoint."""
        removed = stopping = 0
        with self.state.database.session() as session:
            for task in self.matching_tasks(session, params, ACTIVE_TASK_STATUSES):
                if task.status is TaskStatus.RUNNING:
                    # Read by the unit's process, wherever it runs, at its next checkpoint.
                    task.cancel_requested_at = self.state.clock()
                    stopping += 1
                else:
                    task.status = TaskStatus.CANCELLED
                    task.reason = f"annulée par l'opérateur (demande n°{request_id})"
                    task.finished_at = self.state.clock()
                    removed += 1
        message = (f"{removed} unité(s) retirée(s) de la file, {stopping} en cours "
                   "s'arrête(nt) à leur prochain point de reprise")
        if not removed and not stopping:
            return RequestStatus.NO_EFFECT, "aucune unité en file ni en cours à annuler"
        return RequestStatus.DONE, message

    def retry(self, request_id: int, _action: RequestAction,
              params: dict[str, Any]) -> Answer:
        """``retry``: queue the failed units again.

        Steps 1 to 3 pass the same window guard as a first run (``hors_fenetre`` and a
        ``reason`` to override it). A cell refused or failed before any unit existed has
        nothing to retry: the answer says so, with the engine's reason and what to do.
        """
        with self.state.database.session() as session:
            year = current_school_year(session)
            query = select(StepUnit.establishment_id, StepUnit.step).where(
                StepUnit.school_year_id == year.id, StepUnit.status == UnitStatus.FAILED)
            wanted: Step | None = None
            if params.get("step"):
                wanted = parse_milestone(str(params["step"])).step
                if wanted is None:
                    raise ValueError("seules les étapes 1 à 5 se relancent")
                query = query.where(StepUnit.step == wanted)
            named = {ref.id for ref in self.refs(params)} if request_uais(params) else None
            if named is not None:
                query = query.where(StepUnit.establishment_id.in_(named))
            failed = session.execute(query).all()
            refs = {ref.id: ref for ref in self.refs({})}
            before_unit = [
                (refs[establishment_id].uai, Step(key), reason)
                for (establishment_id, key), (status, _queue, reason)
                in sorted(queue_states(session, year.id).items())
                if status in (UnitStatus.FAILED, UnitStatus.BLOCKED)
                and (named is None or establishment_id in named)
                and (wanted is None or key == wanted.value)
                and (establishment_id, key) not in {(e, Step(k).value) for e, k in failed}
                and establishment_id in refs]
        by_step: dict[Step, list[EstablishmentRef]] = {}
        for establishment_id, step in failed:
            by_step.setdefault(Step(step), []).append(refs[establishment_id])
        for step, step_refs in by_step.items():
            refusal = self.window_refusal(step, step_refs, params)
            if refusal:
                return RequestStatus.REFUSED, refusal
        queued = busy = 0
        for step, step_refs in by_step.items():
            milestone = milestone_of(step)
            if milestone is None:  # a step the calendar does not plan: `yearchange run` only
                continue
            q, _done, b = self.queue_tasks(request_id, "retry", milestone, step_refs)
            queued += q
            busy += b
        if not failed:
            return RequestStatus.NO_EFFECT, "aucune unité en échec à relancer" + (
                before_unit_message(before_unit) if before_unit else "")
        return (RequestStatus.DONE if queued else RequestStatus.NO_EFFECT), (
            f"{queued} unité(s) en échec relancée(s)" + (f", {busy} déjà en file" if busy else ""))

    def set_date(self, _request_id: int, _action: RequestAction,
                 params: dict[str, Any]) -> Answer:
        """``set-date``: move a milestone for establishments, a kind or a project."""
        if not params.get("step") or "date" not in params:
            raise ValueError("précisez le jalon (step) et la date (date)")
        milestone = parse_milestone(str(params["step"]))
        on_date = parse_date(str(params["date"])) if params["date"] is not None else None
        at_time = parse_time(params.get("time"))
        uais = request_uais(params)
        with self.state.database.session() as session:
            year = current_school_year(session)
            targets = ([resolve_target(session, uai=uai) for uai in uais] if uais else
                       [resolve_target(session, kind=params.get("kind"),
                                       project=params.get("project"))])
            actor = "moteur (demande)"
            for target in targets:
                set_date(session, year.start_year, milestone, on_date, at_time, target=target,
                         actor=actor)
            audit(session, "plan", "set", details={
                "milestone": milestone.value, "date": str(on_date), "time": str(at_time),
                "uais": uais, "kind": params.get("kind"), "project": params.get("project")})
        self.state.plan_dirty = True
        self.state.wake.set()
        when = f"{on_date:%d/%m/%Y}" if on_date else "sans date"
        return RequestStatus.DONE, f"{milestone.label} : {when} ({len(targets)} cible(s))"

    def set_access_block(self, _request_id: int, _action: RequestAction,
                         params: dict[str, Any]) -> Answer:
        """``set-access-block``: establishments' own block dates and message, through the
        access block's one owner (the project's permission and limits)."""
        uais = request_uais(params)
        if not uais:
            raise ValueError("précisez les établissements (uais)")
        starts = _iso_date(params.get("starts_on"))
        ends = _iso_date(params.get("ends_on"))
        with self.state.database.session() as session:
            year = current_school_year(session).start_year
            for uai in uais:
                target = resolve_target(session, uai=uai)
                assert target.establishment_id is not None
                if "starts_on" in params or "ends_on" in params:
                    # A date the request does not name keeps the establishment's own.
                    own_start, own_end = own_block_dates(session, target.establishment_id,
                                                         year)
                    set_block_window(session, year, target,
                                     starts if "starts_on" in params else own_start,
                                     ends if "ends_on" in params else own_end,
                                     actor="moteur (demande)")
                if "message" in params:
                    set_establishment_message(session, target.establishment_id,
                                              params["message"] or None,
                                              school_year_start=year)
                audit(session, "access-block", "set", establishment_id=target.establishment_id,
                      details={"uai": uai, "year": year, "debut": str(starts),
                               "fin": str(ends), "message": params.get("message")})
        self.state.plan_dirty = True
        self.state.wake.set()
        when = (f"du {starts:%d/%m/%Y} au {ends:%d/%m/%Y}" if starts and ends
                else "dates du projet")
        return RequestStatus.DONE, f"blocage des accès {when} ({len(uais)} établissement(s))"

    def set_project(self, _request_id: int, _action: RequestAction,
                    params: dict[str, Any]) -> Answer:
        """``set-project``: the project's settings (:func:`project_settings.apply_changes`)."""
        changes = dict(params.get("changes") or {})
        for key in DATE_SETTINGS & set(changes):
            changes[key] = _iso_date(changes[key])
        with self.state.database.session() as session:
            project = find_project(session, params.get("project"))
            year = current_school_year(session).start_year
            lines = apply_changes(session, project, year, changes,
                                  uais=params.get("uais") or None, actor="moteur (demande)")
            audit(session, "project", "set", details={
                "project": project.code, "year": year, "uais": params.get("uais") or [],
                "changes": params.get("changes") or {}})
        self.state.plan_dirty = True
        self.state.wake.set()
        return RequestStatus.DONE, "; ".join(lines) or "rien à modifier"

    def import_(self, request_id: int, action: RequestAction,
                params: dict[str, Any]) -> Answer:
        """``import-aaf`` / ``import-timetable``: start the import in a child process."""
        path = params.get("path")
        if not path:
            raise ValueError("précisez le chemin (path)")
        if action is RequestAction.IMPORT_TIMETABLE and not params.get("uai"):
            raise ValueError("précisez l'établissement (uai)")
        self.imports.submit(request_id, action, params)
        return RequestStatus.RUNNING, f"import lancé : {path}"


def _iso_date(value: Any) -> dt.date | None:
    """A date sent as ``AAAA-MM-JJ`` (None or "" for none)."""
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as error:
        raise ValueError(f"date invalide « {value} » (attendu AAAA-MM-JJ)") from error
