"""The operator console: the Textual app and ``run_console(settings, database)``.

The app owns the shared state (grid model, marks, events, engine status), drains the
bridge's board at 10 Hz on the UI thread and hands each screen only what changed.
Requests to the engine go out on worker threads; answers come back as messages.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from platformdirs import user_config_dir
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from textual import on
from textual.app import App, SystemCommand
from textual.command import CommandPalette
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen

from yearchange_tui.changeover.runner import DRY_RUN_STEPS
from yearchange_tui.changeover.steps import step_definition
from yearchange_tui.config import APP_NAME, Settings
from yearchange_tui.ent.database import Database
from yearchange_tui.resources import themes_dir
from yearchange_tui.scheduling.api import (
    CHANGING_ACTIONS,
    EngineClient,
    EngineEventView,
    EngineStatus,
    EstablishmentView,
    FleetView,
    RequestAction,
    RequestOutcome,
    UnitView,
)
from yearchange_tui.scheduling.client import DatabaseEngineClient, connect
from yearchange_tui.scheduling.models import REQUEST_STATUS_LABELS, RequestStatus
from yearchange_tui.scheduling.spawn import EngineStartError, default_log_file
from yearchange_tui.tui.bindings import (
    CHANGING_ACTION_NAMES,
    SPECS,
    bindings_for,
    display_keys,
    effective_keys,
    keymap_from_settings,
)
from yearchange_tui.tui.bridge import (
    EngineBridge,
    EngineEventsReceived,
    EngineReachability,
    ProgressBoard,
)
from yearchange_tui.tui.detail_source import DatabaseDetailSource, DetailSource
from yearchange_tui.tui.grid_model import GridModel, SortKey
from yearchange_tui.tui.help import help_for
from yearchange_tui.tui.palette import ActionPalette
from yearchange_tui.tui.rejects_source import (
    EmptyRejectsSource,
    RejectsSource,
    open_rejects_source,
)
from yearchange_tui.tui.school_life_source import DatabaseSchoolLifeSource, SchoolLifeSource
from yearchange_tui.tui.screens.base import ConsoleScreen
from yearchange_tui.tui.screens.detail import DetailScreen
from yearchange_tui.tui.screens.fleet import FleetScreen
from yearchange_tui.tui.screens.grid import GridScreen
from yearchange_tui.tui.screens.log import LogScreen
from yearchange_tui.tui.screens.modals import (
    ConfirmModal,
    HelpModal,
    QuitModal,
    TextPromptModal,
    WindowOverrideModal,
    challenge_for,
    list_uais,
    window_lines,
)
from yearchange_tui.tui.screens.rejects import RejectsScreen
from yearchange_tui.tui.screens.requests import RequestsScreen
from yearchange_tui.tui.screens.school_life import SchoolLifeScreen
from yearchange_tui.tui.screens.timeline import TimelineScreen
from yearchange_tui.tui.theming import (
    DEFAULT_THEME,
    FALLBACK_THEME,
    derived_variables,
    load_theme_dirs,
)
from yearchange_tui.tui.widgets.progress_pane import BatchTracker
from yearchange_tui.workflow.localtime import local_now
from yearchange_tui.workflow.models import Step, UnitStatus

log = logging.getLogger(__name__)

DRAIN_INTERVAL = 0.1
"""Seconds between two drains of the board: the console redraws at most 10 times a second."""

EVENT_MEMORY = 5000
SCREEN_SCOPES = frozenset({"grid", "timeline", "rejects", "log", "detail", "school-life",
                           "requests", "fleet",
                           "dry-run-report",
                           "person"})
"""Screens with bindings of their own (a binding's scope is its screen's HELP_NAME)."""


@dataclass
class ModelChanges:
    """One drained batch, as screens see it."""

    cells: dict[str, set[str]] = field(default_factory=dict)
    rows_rebuilt: bool = False
    status_changed: bool = False


def _path_problem(text: str) -> str:
    """A path prompt's check: ``""`` when the path exists, else a French problem."""
    return "" if Path(text.strip()).expanduser().exists() else (
        f"Chemin introuvable : {text.strip()}")


class RequestAnswered(Message):
    """The engine took (or refused) a request; posted from a worker thread."""

    def __init__(self, text: str, severity: str) -> None:
        super().__init__()
        self.text = text
        self.severity = severity


class FleetRead(Message):
    """The fleet as just read (or why it could not be); posted from a worker thread."""

    def __init__(self, view: FleetView | None, problem: str = "") -> None:
        super().__init__()
        self.view = view
        self.problem = problem


class YearChangeApp(App[int]):
    """The console for the year change-over.

    Args:
        client: the engine client.
        read_only: support-staff mode (nothing that changes data is offered).
        rejects: where the rejects browser reads (empty when None).
        details: where the establishment detail reads (no detail when None).
        school_life: where the step-5 wizard reads and writes (no wizard when None).
        keys: the config file's ``[keys]`` table (binding id → keys).
        theme: the theme to use (config or command line); None for the default.
        theme_dirs: folders of theme files, later ones overriding earlier ones.
        now: the clock, in the operator's zone (default: now in the project's zone;
            pinned in tests and snapshots).
        poll_interval: seconds between two reads of the engine.
        start_poller: poll on a thread (tests may poll by hand with :meth:`sync`).
        data_dir: the data folder (exports go to ``exports_dir``, default DATA/exports).
        aaf_hint: the path proposed for an AAF import.
        problems: French problems found while starting (shown once).
        engine_notice: why this console runs no engine of its own (shown once), or ``""``.
        engine_notice_severity: the notice's severity (``error`` when the engine failed).
    """

    TITLE = "Changement d'année — console opérateur"
    CSS_PATH = "styles/console.tcss"
    ENABLE_COMMAND_PALETTE = True
    COMMAND_PALETTE_BINDING = "f9"
    BINDINGS = bindings_for("app")
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {"grid": GridScreen, "timeline": TimelineScreen, "rejects": RejectsScreen,
             "log": LogScreen, "requests": RequestsScreen}
    DEFAULT_MODE = "grid"

    def __init__(self, client: EngineClient, *, read_only: bool = False,
                 rejects: RejectsSource | None = None, details: DetailSource | None = None,
                 school_life: SchoolLifeSource | None = None, keys: object = None, theme: str | None = None,
                 theme_dirs: Sequence[Path] = (), now: Callable[[], dt.datetime] | None = None,
                 poll_interval: float = 0.5, start_poller: bool = True,
                 data_dir: Path | None = None, aaf_hint: str = "",
                 problems: Iterable[str] = (), engine_notice: str = "",
                 engine_notice_severity: SeverityLevel = "information",
                 exports_dir: Path | None = None) -> None:
        super().__init__()
        self.client = client
        self.read_only = read_only or client.read_only
        self.rejects = rejects or EmptyRejectsSource()
        self.details = details
        self.school_life = school_life
        self.requested_theme = theme
        self.theme_dirs = list(theme_dirs)
        self._now = now or local_now
        self.data_dir = data_dir or Path.cwd()
        self.exports_dir = exports_dir or self.data_dir / "exports"
        self.aaf_hint = aaf_hint
        self.start_poller = start_poller
        self.board = ProgressBoard()
        self.bridge = EngineBridge(client, self.board, self.post_message, poll_interval)
        self.model = GridModel()
        self.raw_views: dict[str, EstablishmentView] = {}
        self.dry_run_live: dict[str, list[int]] = {}
        self.marked: set[str] = set()
        self.batches = BatchTracker()
        self.cursor_uai = ""
        self.grid_screen: GridScreen | None = None
        self.events: deque[EngineEventView] = deque(maxlen=EVENT_MEMORY)
        self.engine_status: EngineStatus | None = None
        self.engine_problem = ""
        self.redraws = 0
        self.theme_names: list[str] = []
        self.theme_errors: list[str] = []
        keymap, key_problems = keymap_from_settings(keys)
        self.keymap = keymap
        self.startup_problems = [*problems, *key_problems]
        self.engine_notice = engine_notice
        self.engine_notice_severity = engine_notice_severity
        self._last_minute = -1
        self.fleet: FleetView | None = None
        """The fleet as last read (None before the first read)."""
        self.fleet_problem = ""
        self._fleet_reading = False

    # -- start and stop --------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        """The console's clock."""
        return self._now()

    def on_mount(self) -> None:
        self._load_themes()
        if self.keymap:
            self.set_keymap(self.keymap)
        problems = self.theme_errors + self.startup_problems
        if problems:
            self.notify("\n".join(problems), title="Configuration", severity="error",
                        timeout=12)
        if self.engine_notice:
            self.notify(self.engine_notice, title="Moteur",
                        severity=self.engine_notice_severity, timeout=30)
        self.set_interval(DRAIN_INTERVAL, self.drain_board, name="board-drain")
        if self.start_poller:
            self.bridge.start()
            self.set_interval(self.bridge.poll_interval, self._poll_fleet, name="fleet-poll")

    def _load_themes(self) -> None:
        self.register_theme(FALLBACK_THEME)
        loaded = load_theme_dirs(self.theme_dirs)
        for theme in loaded.themes.values():
            self.register_theme(theme)
        self.theme_names = sorted(loaded.themes) or [FALLBACK_THEME.name]
        self.theme_errors = [f"Thème ignoré — {error}" for error in loaded.errors]
        wanted = self.requested_theme
        if wanted and wanted not in self.available_themes:
            self.theme_errors.append(f"Thème « {wanted} » introuvable : thème par défaut.")
            wanted = None
        if wanted is None:
            wanted = DEFAULT_THEME if DEFAULT_THEME in self.available_themes else (
                FALLBACK_THEME.name)
            if self.console.color_system == "standard" and self.requested_theme is None:
                wanted = "ansi-dark"  # 16 colours: the terminal's own red, yellow, green
        self.theme = wanted

    def get_theme_variable_defaults(self) -> dict[str, str]:
        """Our variables for any theme (Textual's too), from its semantic colours."""
        try:
            generated = self.current_theme.to_color_system().generate()
        except Exception:  # noqa: BLE001 - a theme Textual cannot build: fallback colours
            generated = FALLBACK_THEME.to_color_system().generate()
        return derived_variables(generated)

    # -- live data -------------------------------------------------------------------------------

    async def sync(self) -> None:
        """Poll the engine now (off the UI thread) and apply what changed (tests, F5)."""
        await asyncio.to_thread(self.bridge.poll_once)
        self.drain_board()
        self._fleet_read(await asyncio.to_thread(self._read_fleet))

    def drain_board(self) -> None:
        """Apply what the board collected since the last drain (UI thread, 10 Hz)."""
        changes = self.board.drain()
        minute = self.now().minute
        if not changes and minute == self._last_minute:
            return
        self._last_minute = minute
        batch = ModelChanges()
        if changes.status is not None:
            self.engine_status = changes.status
            batch.status_changed = True
        structure = bool(changes.removed) or not self.model.views
        for uai in changes.removed:
            self.raw_views.pop(uai, None)
            self.model.remove(uai)
            self.marked.discard(uai)
        for uai, view in changes.views.items():
            self.raw_views[uai] = view
            keys = self.model.update(self._with_dry_run(view))
            if "*" in keys:
                structure = True
            elif keys:
                batch.cells[uai] = keys
        moving = self.model.filter.status is not None or self.model.sort_key in (
            SortKey.STATE, SortKey.DATE)
        if structure or (batch.cells and moving):
            self.model.rebuild_rows()
            batch.rows_rebuilt = True
        self._publish(batch)

    def _publish(self, batch: ModelChanges) -> None:
        """Hand a batch to every screen of the current stack that shows live data."""
        self.redraws += 1
        for screen in self.screen_stack:
            handler = getattr(screen, "on_model_changes", None)
            if handler is not None and screen.is_mounted:
                handler(batch)

    def _with_dry_run(self, view: EstablishmentView) -> EstablishmentView:
        """The view with a dry run in progress on column 0, when the client does not say."""
        live = self.dry_run_live.get(view.uai)
        reported = view.units.get("dry-run")
        if live is None or (reported is not None and reported.status is UnitStatus.RUNNING):
            return view
        units: dict[Any, UnitView] = dict(view.units)
        units["dry-run"] = UnitView(view.uai, Step.PURGE_TRASH, UnitStatus.RUNNING,
                                    progress_done=live[0], progress_total=live[1])
        return replace(view, units=units)

    def _track_dry_runs(self, events: Sequence[EngineEventView]) -> set[str]:
        """Follow dry runs from unit events (started, then steps 1 to 3 finished)."""
        changed = set()
        for event in events:
            data = event.data or {}
            if event.kind != "unit" or not data.get("dry_run") or not event.uai:
                continue
            what = data.get("event")
            if what == "started":
                if event.step == Step.PURGE_TRASH.value or event.uai not in self.dry_run_live:
                    self.dry_run_live[event.uai] = [0, len(DRY_RUN_STEPS)]
            elif what == "finished":
                live = self.dry_run_live.setdefault(event.uai, [0, len(DRY_RUN_STEPS)])
                live[0] = min(live[1], live[0] + 1)
                if event.step == Step.DELETE_OBSOLETE.value:
                    self.dry_run_live.pop(event.uai, None)
            else:
                self.dry_run_live.pop(event.uai, None)
            changed.add(event.uai)
        return changed

    @on(EngineEventsReceived)
    def _events_received(self, message: EngineEventsReceived) -> None:
        self.events.extend(event for event in message.events if event.kind != "progress")
        if not message.initial:
            batch = ModelChanges()
            for uai in self._track_dry_runs(message.events):
                view = self.raw_views.get(uai)
                if view is not None:
                    keys = self.model.update(self._with_dry_run(view))
                    if keys:
                        batch.cells[uai] = keys
            if batch.cells:
                self._publish(batch)
        alerts = [] if message.initial else [
            event for event in message.events
            if event.level == "error" and event.kind in ("unit", "request")]
        for event in alerts[:5]:
            text = event.message if event.message.startswith(event.uai) else (
                f"{event.uai} {event.message}".strip())
            self.notify(text, severity="error", timeout=8)
        for screen in self.screen_stack:
            handler = getattr(screen, "on_engine_events", None)
            if handler is not None and screen.is_mounted:
                handler(message.events)

    @on(EngineReachability)
    def _reachability(self, message: EngineReachability) -> None:
        self.engine_problem = message.problem
        if message.problem:
            self.notify(message.problem, severity="error", timeout=8)
        self.drain_board()

    # -- the fleet -------------------------------------------------------------------------------

    def fleet_wanted(self) -> bool:
        """True when something on screen shows the fleet: its screen, a detail, or the
        grid while units run (its cell line names a running unit's worker)."""
        return bool(self.model.running_keys) or any(
            isinstance(screen, FleetScreen | DetailScreen) for screen in self.screen_stack)

    def _poll_fleet(self) -> None:
        """Read the fleet with the console's poll, when something shows it."""
        if self.fleet_wanted():
            self.read_fleet()

    def read_fleet(self) -> None:
        """Read the fleet on a worker thread; the answer comes back as :class:`FleetRead`
        (one read at a time: a read asked while one runs is answered by that one)."""
        if self._fleet_reading:
            return
        self._fleet_reading = True
        self.run_worker(self._fleet_worker, thread=True, group="fleet-read",
                        exit_on_error=False, description="lecture de la flotte")

    def _fleet_worker(self) -> None:
        self.post_message(self._read_fleet())

    def _read_fleet(self) -> FleetRead:
        """The fleet from the client (any thread but the UI's)."""
        try:
            return FleetRead(self.client.fleet())
        except Exception as error:  # shown on the fleet screen and logged, never a crash
            log.exception("Flotte illisible")
            return FleetRead(None, f"Processus de travail illisibles : {error}")

    @on(FleetRead)
    def _fleet_read(self, message: FleetRead) -> None:
        self._fleet_reading = False
        if message.view is not None:
            self.fleet = message.view
        self.fleet_problem = message.problem
        for screen in self.screen_stack:
            handler = getattr(screen, "on_fleet", None)
            if handler is not None and screen.is_mounted:
                handler()

    def open_fleet(self) -> None:
        """Show the worker processes and the units each runs."""
        self.push_screen(FleetScreen())

    # -- requests --------------------------------------------------------------------------------

    def send_request(self, action: RequestAction, params: dict[str, Any], success: str) -> None:
        """Ask the engine on a worker thread; the answer comes back as a message."""
        if self.read_only and action in CHANGING_ACTIONS:
            self.notify("Mode consultation : cette action est interdite.", severity="error")
            return
        self.batches.requested(action.value, params)  # the progress pane follows the batch
        self.run_worker(partial(self._request_worker, action, params, success), thread=True,
                        group="engine-request", exit_on_error=False,
                        description=f"demande {action.value}")

    def _request_worker(self, action: RequestAction, params: dict[str, Any],
                        success: str) -> None:
        try:
            request_id = self.bridge.request(action, **params)
        except PermissionError as error:
            self.post_message(RequestAnswered(f"Refusé par le moteur : {error}", "error"))
        except Exception as error:  # noqa: BLE001 - shown to the operator, never a crash
            self.post_message(RequestAnswered(f"Demande refusée : {error}", "error"))
        else:
            self.post_message(answer_message(success, request_id,
                                             self.bridge.answer(request_id)))

    @on(RequestAnswered)
    def _request_answered(self, message: RequestAnswered) -> None:
        self.notify(message.text, severity=message.severity,  # type: ignore[arg-type]
                    timeout=4 if message.severity == "information" else 8)

    def confirm_and_send(self, title: str, lines: Sequence[str], challenge: str | None,
                         action: RequestAction, params: dict[str, Any], success: str) -> None:
        """Show a confirmation; on yes, send the request."""
        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.send_request(action, params, success)
            else:
                self.notify("Action annulée : rien n'a été demandé.", timeout=2)

        self.push_screen(ConfirmModal(title, lines, challenge), answered)

    def confirm_dry_run(self, uais: list[str]) -> None:
        """Confirm a dry run of steps 1 to 3."""
        lines = [f"{len(uais)} établissement(s) : {list_uais(uais)}.",
                 ("Simule les étapes 1 à 3 et enregistre ce que l'exécution réelle fera. "
                  "Aucune donnée de l'ENT n'est modifiée.")]
        self.confirm_and_send("Passage à blanc (étape 0)", lines, None, RequestAction.DRY_RUN,
                              {"uais": uais}, "Passage à blanc demandé.")

    def confirm_run(self, step_key: str, uais: list[str], retry: bool = False) -> None:
        """Confirm a step; steps 1 to 3 need the count (or the UAI) typed, and out of the
        window or before closure a second typed confirmation and a reason."""
        check = getattr(self.bridge.client, "run_window_problems", None)
        if Step(step_key) in DRY_RUN_STEPS and check is not None:  # a retry too
            self.run_worker(partial(self._window_worker, check, step_key, uais, retry),
                            thread=True,
                            group="window-check", exit_on_error=False,
                            description="fenêtre des étapes 1 à 3")
            return
        self._confirm_run(step_key, uais, retry, [])

    def _window_worker(self, check: Callable[[Step, list[str]], list[str]], step_key: str,
                       uais: list[str], retry: bool = False) -> None:
        try:
            problems = check(Step(step_key), uais)
        except Exception:  # noqa: BLE001 - the engine decides anyway; ask as usual
            problems = []
        self.call_from_thread(self._confirm_run, step_key, uais, retry, problems)

    def _confirm_run(self, step_key: str, uais: list[str], retry: bool,
                     problems: list[str]) -> None:
        step = Step(step_key)
        verb = "Relancer les échecs de" if retry else "Lancer"
        title = f"{verb} l'étape {step.number} — {step.label}"
        lines = [f"{len(uais)} établissement(s) : {list_uais(uais)}."]
        challenge = None
        if step in DRY_RUN_STEPS:  # steps 1 to 3 delete data
            lines.append("Étape destructive : les données supprimées ne sont pas récupérables.")
            lines += [f"⚠ {line}" for line in step_definition(step).vigilance]
            challenge = challenge_for(uais)
        lines += window_lines(problems)
        action = RequestAction.RETRY if retry else RequestAction.RUN
        params: dict[str, Any] = {"step": step_key, "uais": uais}
        success = f"Étape {step.number} demandée."
        if not problems:
            self.confirm_and_send(title, lines, challenge, action, params, success)
            return

        def overridden(reason: str | None) -> None:
            if reason:
                self.send_request(action, {**params, "hors_fenetre": True, "reason": reason},
                                  success)
            else:
                self.notify("Action annulée : rien n'a été demandé.", timeout=2)

        def confirmed(answer: bool | None) -> None:
            if answer:
                self.push_screen(WindowOverrideModal(title, problems), overridden)
            else:
                self.notify("Action annulée : rien n'a été demandé.", timeout=2)

        self.push_screen(ConfirmModal(title, lines, challenge), confirmed)

    def confirm_redo_archive(self, uai: str) -> None:
        """Ask the reason, then the UAI typed, then the engine to rebuild the establishment's
        step-2 archives (refused by the engine once step 3 has run)."""
        title = f"Refaire l'archivage (étape 2) — {uai}"

        def reason_given(reason: str | None) -> None:
            if not reason:
                self.notify("Action annulée : rien n'a été demandé.", timeout=2)
                return
            lines = [("Les archives de l'étape 2 de l'établissement sont reconstruites à "
                      "partir des données de l'année N ; impossible une fois l'étape 3 passée."),
                     f"Motif (tracé dans l'audit) : {reason}"]
            self.confirm_and_send(title, lines, uai, RequestAction.RUN,
                                  {"step": Step.ARCHIVE.value, "uais": [uai], "redo": True,
                                   "reason": reason}, "Reconstruction des archives demandée.")

        self.push_screen(TextPromptModal(
            title, ["Motif de la reconstruction (obligatoire, tracé dans l'audit) :"],
            placeholder="archive altérée…",
            validate=lambda text: "" if text.strip() else "Le motif est obligatoire."),
            reason_given)

    def confirm_pause_resume(self) -> None:
        """Pause the engine, or resume it."""
        paused = bool(self.engine_status and self.engine_status.paused)
        if paused:
            self.confirm_and_send("Reprendre le moteur", ["Les unités en attente repartent."],
                                  None, RequestAction.RESUME, {}, "Reprise demandée.")
        else:
            self.confirm_and_send(
                "Mettre le moteur en pause",
                [("Aucune nouvelle unité ne démarre ; les unités en cours vont jusqu'à leur "
                  "prochain point de reprise.")], None, RequestAction.PAUSE, {},
                "Pause demandée.")

    def prompt_import_aaf(self) -> None:
        """Ask for an AAF delivery path, confirm, import."""
        def entered(path: str | None) -> None:
            if not path:
                return
            if self.grid_screen is not None and self.grid_screen.is_mounted:
                self.grid_screen.show_pane("pane-rejects")
            self.confirm_and_send(
                "Importer une livraison AAF", [f"Livraison : {path}",
                                               "Les rejets s'afficheront en direct."],
                None, RequestAction.IMPORT_AAF, {"path": path}, "Import AAF demandé.")

        self.push_screen(TextPromptModal(
            "Import AAF", ["Dossier, archive (.tgz, .zip) ou fichier de la livraison :"],
            value=self.aaf_hint, placeholder="/chemin/vers/la/livraison", validate=_path_problem),
            entered)

    def prompt_import_timetable(self, uai: str) -> None:
        """Ask for a timetable export path, confirm, import for ``uai``."""
        def entered(path: str | None) -> None:
            if path:
                self.confirm_and_send(
                    "Importer un emploi du temps", [f"Établissement : {uai}", f"Fichier : {path}"],
                    None, RequestAction.IMPORT_TIMETABLE, {"path": path, "uai": uai},
                    "Import d'emploi du temps demandé.")

        self.push_screen(TextPromptModal(
            f"Import d'emploi du temps — {uai}", ["Export EDT, UDT ou STS-web :"],
            placeholder="/chemin/vers/export.xml", validate=_path_problem), entered)

    def open_detail(self, uai: str) -> None:
        """Show one establishment's detail."""
        self.push_screen(DetailScreen(uai))

    def open_school_life(self, uai: str) -> None:
        """Open the step-5 wizard of one establishment."""
        if self.school_life is None:
            self.notify("Assistant de la vie scolaire indisponible : la console n'a pas de "
                        "base de données (moteur simulé).", severity="warning")
            return
        self.push_screen(SchoolLifeScreen(uai))

    # -- app actions -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Nothing that changes data in read-only mode (shown greyed, see :meth:`run_action`)."""
        return None if action in CHANGING_ACTION_NAMES and self.read_only else True

    async def run_action(self, action: Any, default_namespace: Any = None,
                         namespaces: Any = None) -> bool:
        """In read-only mode a key that would change data says why instead of doing it."""
        if self.read_only and isinstance(action, str):
            target, name, _params = self._parse_action(
                action, self if default_namespace is None else default_namespace, namespaces)
            if name in CHANGING_ACTION_NAMES and isinstance(target, ConsoleScreen):
                self.notify(read_only_reason(name), severity="warning", timeout=5)
                return True
        return await super().run_action(action, default_namespace, namespaces)

    async def action_show_mode(self, mode: str) -> None:
        """F2, F3, F4, F6: switch screens (closing a detail screen on the way)."""
        if self.current_mode == mode:
            while len(self.screen_stack) > 1 and not isinstance(self.screen, CommandPalette):
                self.pop_screen()
            return
        await self.switch_mode(mode)

    def action_help(self) -> None:
        """F1: help for the current screen."""
        if isinstance(self.screen, HelpModal):
            self.screen.dismiss(None)
            return
        name = getattr(self.screen, "HELP_NAME", None)
        if name is None:
            return
        title, text = help_for(name)
        self.push_screen(HelpModal(title, text, self.keys_for(name)))

    def keys_for(self, screen_name: str) -> list[tuple[str, str]]:
        """(keys, label) of a screen's bindings then the global ones, remaps applied."""
        scope = screen_name if screen_name in SCREEN_SCOPES else "grid"
        rows = []
        for spec_scope in (scope, "app"):
            for spec in SPECS:
                if spec.scope != spec_scope:
                    continue
                label = f"{spec.label}  [{spec.id}]"
                if spec.changes_data and self.read_only:
                    label = f"{spec.label} — indisponible en mode consultation  [{spec.id}]"
                rows.append((display_keys(effective_keys(spec.id, self.keymap)), label))
        if scope == "grid":
            rows.insert(0, ("↑ ↓ ← →, PgPréc, PgSuiv", "Déplacer le curseur"))
        return rows

    def get_key_display(self, binding: Any) -> str:
        """Keys as operators read them: ``F1``, ``Espace``, ``Entrée``, ``Maj+R``."""
        return display_keys(binding.key)

    def action_refresh_data(self) -> None:
        """F5: read the engine now."""
        self.bridge.wake()
        if self.fleet_wanted():
            self.read_fleet()
        self.notify("Actualisation demandée.", timeout=1)

    def action_next_theme(self) -> None:
        """F8: the next console theme."""
        names = self.theme_names
        index = names.index(self.theme) if self.theme in names else -1
        self.set_theme(names[(index + 1) % len(names)])

    def set_theme(self, name: str) -> None:
        """Switch theme and say so."""
        self.theme = name
        self.notify(f"Thème : {name}", timeout=2)

    def action_request_quit(self) -> None:
        """F10, q, Ctrl+Q: quit; when units run, say that they continue in the engine.

        In a dialog, the same keys close the dialog (as Échap does), like mc's F10.
        """
        if isinstance(self.screen, ModalScreen) and not isinstance(self.screen, QuitModal):
            self.screen.dismiss(None)
            return
        running = len(self.model.running())
        if not running:
            self.exit(0)
            return

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.exit(0)

        if isinstance(self.screen, QuitModal):
            return
        self.push_screen(QuitModal(running, engine_stop_command(self.bridge.client)), answered)

    async def action_quit(self) -> None:
        """Textual's own Ctrl+Q goes through the same question."""
        self.action_request_quit()

    def action_help_quit(self) -> None:
        """Ctrl+C: say how to quit."""
        self.notify("Pour quitter : F10, q ou Ctrl+Q.", timeout=3)

    def action_command_palette(self) -> None:
        """F9 or Ctrl+P: every action, searchable, in French."""
        if not CommandPalette.is_open(self):
            self.push_screen(ActionPalette())

    # -- command palette -------------------------------------------------------------------------

    def _screen_action(self, mode: str, action: str) -> Callable[[], Any]:
        async def run() -> None:
            await self.action_show_mode(mode)
            screen = self.screen
            method = getattr(screen, f"action_{action}", None)
            if method is not None:
                result = method()
                if hasattr(result, "__await__"):
                    await result

        return run

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every console action, in French (changing ones hidden in read-only mode)."""
        def keys(binding_id: str) -> str:
            return f" ({display_keys(effective_keys(binding_id, self.keymap))})"

        commands: list[tuple[str, str, str, Callable[[], Any], bool]] = [
            ("Aide de l'écran", "Touches et explications", "help",
             self.action_help, False),
            ("Aller à la grille", "Établissements × étapes", "show-grid",
             partial(self.action_show_mode, "grid"), False),
            ("Aller au calendrier", "De juin à septembre", "show-timeline",
             partial(self.action_show_mode, "timeline"), False),
            ("Aller aux rejets AAF", "Navigateur des rejets", "show-rejects",
             partial(self.action_show_mode, "rejects"), False),
            ("Aller au journal", "Évènements du moteur", "show-log",
             partial(self.action_show_mode, "log"), False),
            ("Aller aux demandes", "Demandes au moteur : état et réponse", "show-requests",
             partial(self.action_show_mode, "requests"), False),
            ("Processus de travail", "Hôtes, signes de vie, unités en cours", "show-fleet",
             self._screen_action("grid", "show_fleet"), False),
            ("Actualiser", "Relire le moteur maintenant", "refresh", self.action_refresh_data,
             False),
            ("Quitter", "Fermer la console", "quit", self.action_request_quit, False),
        ]
        grid_actions = [
            ("Passage à blanc de la sélection", "Simuler les étapes 1 à 3", "dry-run",
             "dry_run"),
            ("Lancer une étape sur la sélection", "L'étape de la colonne du curseur",
             "run-step", "run_step"),
            ("Suspendre ou reprendre le moteur", "Pause / reprise", "pause-resume",
             "pause_resume"),
            ("Annuler les unités en cours ou en file",
             "Établissements marqués, sinon celui du curseur", "cancel", "cancel"),
            ("Relancer les échecs", "Unités en échec de la sélection", "retry-failed",
             "retry_failed"),
            ("Modifier une date planifiée", "Colonne du curseur, sélection", "edit-dates",
             "edit_dates"),
            ("Importer une livraison AAF", "Dossier, archive ou fichiers", "import-aaf",
             "import_aaf"),
            ("Importer un emploi du temps", "EDT, UDT ou STS-web", "import-timetable",
             "import_timetable"),
            ("Filtrer la grille par texte", "UAI, nom, projet", "filter-text", "filter_text"),
            ("Filtrer la grille par état", "Cycle des états", "filter-state", "filter_state"),
            ("Filtrer la grille par type", "Collèges, lycées", "filter-kind", "filter_kind"),
            ("Changer l'ordre de la grille", "UAI, nom, type, état, date", "sort", "sort"),
            ("Regrouper par projet", "Oui / non", "group-by-project", "group"),
            ("Tout marquer", "Les établissements visibles", "mark-all", "mark_all"),
            ("Tout démarquer", "Vider la sélection", "unmark-all", "unmark_all"),
            ("Ouvrir le détail de l'établissement", "Historique, archives, rejets",
             "open-detail", "open_detail"),
            ("Assistant de la vie scolaire (étape 5)", "Périodes, dates, ce qui manque",
             "school-life", "school_life"),
            ("Paramètres du projet", "Blocage des accès, avertissements, lien",
             "project-settings", "project_settings"),
            ("Volet du bas suivant", "Progression, rejets, journal", "bottom-pane",
             "cycle_pane"),
            ("Avertissements des passages à blanc", "Rapport académique, filtre, export CSV",
             "dry-run-report", "dry_run_report"),
        ]
        for title, help_text, binding_id, action in grid_actions:
            commands.append((title, help_text, binding_id, self._screen_action("grid", action),
                             binding_id in _CHANGING_IDS))
        for title, help_text, binding_id, action in (
                ("Exporter les rejets en CSV", "La liste filtrée", "rejects-export",
                 "export_csv"),
                ("Marquer le rejet traité", "Annotation du support", "rejects-handled",
                 "mark_handled"),
                ("Masquer les rejets traités", "Oui / non", "rejects-hide-handled",
                 "hide_handled"),
                ("Changer le niveau du journal", "Erreurs, avertissements, tout", "log-level",
                 "cycle_level")):
            mode = "log" if binding_id.startswith("log") else "rejects"
            commands.append((title, help_text, binding_id, self._screen_action(mode, action),
                             False))
        for title, help_text, binding_id, callback, changes in commands:
            if changes and self.read_only:
                continue
            yield SystemCommand(title + keys(binding_id), help_text, callback)
        for name in [*self.theme_names, "ansi-dark"]:
            yield SystemCommand(f"Thème : {name}", "Changer les couleurs de la console",
                                partial(self.set_theme, name))


def answer_message(success: str, request_id: int,
                   outcome: RequestOutcome | None) -> RequestAnswered:
    """What the operator reads after a request: the engine's own answer, never a guess."""
    asked = f"{success} (demande n° {request_id})"
    if outcome is None:
        return RequestAnswered(f"{asked} : en file, aucun moteur ne l'a encore prise.",
                               "information")
    said = outcome.message or REQUEST_STATUS_LABELS[outcome.status]
    if outcome.status is RequestStatus.REFUSED:
        return RequestAnswered(f"Refusé par le moteur (demande n° {request_id}) : {said}",
                               "error")
    if outcome.status is RequestStatus.FAILED:
        return RequestAnswered(f"Demande n° {request_id} en échec : {said}", "error")
    if outcome.status is RequestStatus.NO_EFFECT:
        return RequestAnswered(f"Sans effet (demande n° {request_id}) : {said}", "warning")
    return RequestAnswered(f"Moteur (demande n° {request_id}) : {said}", "information")


_CHANGING_IDS = frozenset(spec.id for spec in SPECS if spec.changes_data)
_LABEL_OF_ACTION = {spec.action: spec.label for spec in SPECS if spec.changes_data}


def read_only_reason(action_name: str) -> str:
    """Why a key does nothing in read-only mode (French, shown instead of the action)."""
    label = _LABEL_OF_ACTION.get(action_name, "Cette action")
    why = ("un passage à blanc enregistre son rapport, celui auquel l'exécution réelle est "
           "comparée" if action_name == "dry_run" else "elle modifierait les données")
    return (f"Mode consultation : « {label} » est indisponible — {why} ; le moteur refuserait "
            "la demande. Rien n'a été envoyé.")


# -- building the console from the command line ----------------------------------------------


@dataclass(frozen=True)
class ConsoleEngine:
    """The console's engine client and, when it runs no engine of its own, why.

    Attributes:
        client: the database client (attached, observer, or with no engine at all).
        notice: French text shown once when the console does not run the engine itself.
        severity: ``error`` when the engine could not start, else ``information``.
    """

    client: DatabaseEngineClient
    notice: str = ""
    severity: SeverityLevel = "information"


def connect_engine(settings: Settings, database: Database, config_file: str | None = None,
                   *, log_file: Path | None = None, wait: float = 20.0) -> ConsoleEngine:
    """The console's client on ``database``, starting a detached engine when none runs.

    When the engine cannot start (spawn failed, it stopped at once, the database refused),
    the failure is logged with its traceback and the console opens as an observer: its
    requests wait in the database for the next engine.

    Args:
        settings: the console's settings (storage, read-only).
        database: the database the console opened.
        config_file: passed to the engine process.
        log_file: the engine's log (default: the data folder's ``logs/engine.log``).
        wait: seconds to wait for a started engine to take the lease.
    """
    try:
        client = connect(database, settings.storage_dir, read_only=settings.read_only,
                         config_file=Path(config_file) if config_file else None,
                         log_file=log_file, wait=wait)
    except (EngineStartError, SQLAlchemyError) as error:
        log.exception("Moteur non démarré ; la console s'ouvre en observatrice.")
        cause = str(error.orig if isinstance(error, DBAPIError) else error).strip()
        return ConsoleEngine(
            DatabaseEngineClient(database, read_only=settings.read_only),
            f"Moteur non démarré : {cause}\nLa console observe la base : vos demandes "
            "attendent en file le démarrage d'un moteur (yearchange engine).", "error")
    lease = client.lease()
    if client.spawned_pid is None and lease is not None and client.engine_live():
        return ConsoleEngine(client, f"Un moteur tourne déjà ({lease.holder}) : cette console "
                                     "l'observe et lui envoie ses demandes.")
    return ConsoleEngine(client)


def console_log_file() -> Path:
    """``<data folder>/logs/console.log``, next to the engine's log."""
    return default_log_file().with_name("console.log")


@contextmanager
def console_log(path: Path) -> Iterator[Path]:
    """Send the package's log records (tracebacks included) to ``path`` while inside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s : %(message)s"))
    package = logging.getLogger("yearchange_tui")
    package.addHandler(handler)
    if package.level == logging.NOTSET or package.level > logging.INFO:
        package.setLevel(logging.INFO)
    try:
        yield path
    finally:
        package.removeHandler(handler)
        handler.close()


def _theme_setting(raw: object) -> tuple[str | None, list[Path]]:
    """``theme = "nom"`` or ``[theme] name = "…", dir = "…"`` from the config file."""
    if isinstance(raw, str):
        return raw, []
    if isinstance(raw, dict):
        folder = raw.get("dir")
        return raw.get("name"), [Path(str(folder)).expanduser()] if folder else []
    return None, []


def theme_dirs_for(extra: Sequence[Path] = ()) -> list[Path]:
    """Shipped themes, then the user theme folder, then the configured folder."""

    folders: list[Path] = []
    try:
        folders.append(themes_dir())
    except FileNotFoundError:
        pass
    folders.append(Path(user_config_dir(APP_NAME)) / "themes")
    env = os.environ.get("YEARCHANGE_THEMES_DIR")
    if env:
        folders.append(Path(env).expanduser())
    folders.extend(extra)
    return folders


def _aaf_hint(database: Database) -> str:
    """The sample académie's AAF folder next to an SQLite database, if there is one."""
    url = database.url
    if url.startswith("sqlite:///"):
        candidate = Path(url[len("sqlite:///"):]).parent / "aaf"
        if candidate.is_dir():
            return str(candidate)
    return ""


def engine_stop_command(client: object) -> str:
    """``yearchange engine-stop --db URL`` for the console's database (password hidden)."""
    database = getattr(client, "database", None)
    if database is None:
        return "yearchange engine-stop"
    url = make_url(database.url).render_as_string(hide_password=True)
    return f"yearchange engine-stop --db {url}"


def quit_summary(client: DatabaseEngineClient) -> str:
    """What the console says as it quits: does the engine keep running, how to stop it."""
    info = client.lease()
    if info is None or not client.engine_live():
        return "Console fermée. Aucun moteur ne tourne sur cette base."
    if client.read_only:  # support staff cannot stop it: no command to offer
        return (f"Console fermée. Le moteur {info.holder} continue de tourner (calendrier et "
                "demandes).")
    return (f"Console fermée. Le moteur {info.holder} continue de tourner (calendrier et "
            f"demandes) ; pour l'arrêter : {engine_stop_command(client)}")


def build_console(settings: Settings, database: Database, *, config_file: str | None = None,
                  theme: str | None = None) -> tuple[YearChangeApp, ConsoleEngine]:
    """The console app on ``database`` and its engine client (starting a detached engine
    when none runs and the run may write), not yet running: :func:`run_console` runs it,
    tests drive it with a pilot."""
    engine = connect_engine(settings, database, config_file)
    if settings.read_only_by_database:
        # The database refuses this account's writes: say why the console only reads.
        why = (f"{settings.read_only_reason}. La console s'ouvre en mode consultation "
               "(aucune modification possible, aucun moteur lancé).")
        engine = ConsoleEngine(engine.client, "\n".join(
            line for line in (why, engine.notice) if line), engine.severity)
    rejects = open_rejects_source(database, settings.data_dir)
    values = settings.values
    configured_theme, extra_dirs = _theme_setting(
        values["theme"].value if "theme" in values else None)
    app = YearChangeApp(
        engine.client, read_only=settings.read_only, rejects=rejects,
        details=DatabaseDetailSource(database, rejects),
        school_life=DatabaseSchoolLifeSource(database, read_only=settings.read_only),
        keys=values["keys"].value if "keys" in values else None,
        theme=theme or configured_theme, theme_dirs=theme_dirs_for(extra_dirs),
        data_dir=settings.data_dir, aaf_hint=_aaf_hint(database),
        engine_notice=engine.notice, engine_notice_severity=engine.severity,
        exports_dir=settings.exports_dir)
    return app, engine


def run_console(settings: Settings, database: Database, *, config_file: str | None = None,
                theme: str | None = None) -> int:
    """Open the console on ``database`` (``yearchange``, ``demo``).

    The one open database serves the engine client, the grid, the detail, the rejects
    and the step-5 wizard. The console logs to ``<data folder>/logs/console.log``. The
    app runs on the main thread; the poller stops and the database closes only after
    ``App.run()`` returns, never from a Textual handler.
    """
    with console_log(console_log_file()):
        try:
            app, engine = build_console(settings, database, config_file=config_file,
                                        theme=theme)
            try:
                status = app.run()
            finally:
                app.bridge.stop()
            print(quit_summary(engine.client))
            return int(status or 0)
        finally:
            database.dispose()
