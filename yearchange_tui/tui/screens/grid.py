"""The main screen: header, live calendar grid, cell line, bottom pane, footer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ContentSwitcher, Input, RichLog, Static

from yearchange_tui.scheduling.api import EngineEventView, RequestAction
from yearchange_tui.scheduling.fleet_text import running_on
from yearchange_tui.tui.bindings import bindings_for
from yearchange_tui.tui.grid_model import (
    COLUMN_BY_KEY,
    KIND_FILTERS,
    KIND_LABELS,
    STATE_FILTERS,
    STEP_COLUMN_KEYS,
    GridModel,
    SortKey,
    state_glyph,
    state_label,
)
from yearchange_tui.tui.screens.base import ConsoleScreen
from yearchange_tui.tui.screens.modals import (
    StepChoiceModal,
    TextPromptModal,
    challenge_for,
    list_uais,
    parse_french_date,
)
from yearchange_tui.tui.screens.project import edit_access_block, edit_project
from yearchange_tui.tui.widgets.calendar_grid import CalendarGrid
from yearchange_tui.tui.widgets.console_footer import ConsoleFooter
from yearchange_tui.tui.widgets.engine_header import EngineHeader
from yearchange_tui.tui.widgets.fkey_bar import FKeyBar
from yearchange_tui.tui.widgets.progress_pane import ProgressPane
from yearchange_tui.workflow.localtime import to_local
from yearchange_tui.workflow.models import (
    Step,
    UnitStatus,
)
from yearchange_tui.workflow.units import QueueState

if TYPE_CHECKING:
    from yearchange_tui.tui.app import ModelChanges

PANES = ("pane-progress", "pane-rejects", "pane-log")
PANE_NAMES = {"pane-progress": "progression", "pane-rejects": "rejets en direct",
              "pane-log": "journal"}
LEVEL_GLYPHS = {"error": "✗", "warning": "!", "info": "i"}
# The engine's calendar milestone behind each column (dates are set per milestone).
MILESTONES = {"warnings": "warning", "access-block": "access-block-start"}


def step_choices() -> list[tuple[str, str]]:
    """(key, label) of the engine's steps."""
    return [(step.value, f"{step.number} — {step.label}") for step in Step]


def cancellable_units(model: GridModel, uais: list[str]) -> tuple[int, int]:
    """(running, queued or waiting) units of ``uais`` that a cancel would stop."""
    running = queued = 0
    for uai in uais:
        for key, cell in model.cells.get(uai, {}).items():
            if key == "access-block":
                continue  # a block in force is not work
            if cell.status is UnitStatus.RUNNING:
                running += 1
            elif cell.queue in (QueueState.QUEUED, QueueState.WAITING):
                queued += 1
    return running, queued


def event_line(event: EngineEventView) -> Text:
    """One journal line: glyph, time, UAI, message."""
    glyph = LEVEL_GLYPHS.get(event.level, "i")
    style = {"error": "bold", "warning": ""}.get(event.level, "")
    at = to_local(event.at)
    where = f" {event.uai}" if event.uai and not event.message.startswith(event.uai) else ""
    return Text(f"{glyph} {at:%H:%M:%S}{where} {event.message}", style=style,
                no_wrap=True, overflow="ellipsis")


class GridScreen(ConsoleScreen):
    """Establishments × steps, live, with every action on the selection."""

    HELP_NAME = "grid"
    BINDINGS = bindings_for("grid")

    def compose(self) -> ComposeResult:
        app = self.console
        yield EngineHeader(id="header")
        with Vertical(id="grid-area"):
            yield CalendarGrid(app.model, app.marked, id="grid")
            yield Input(id="filter-input", compact=True,
                        placeholder="Filtrer : UAI, nom, projet, type — Entrée : garder, "
                                    "Échap : effacer")
        yield Static("", id="cell-info")
        with ContentSwitcher(initial="pane-progress", id="bottom"):
            yield ProgressPane(id="pane-progress")
            yield RichLog(id="pane-rejects", max_lines=1000, wrap=False, auto_scroll=True)
            yield RichLog(id="pane-log", max_lines=1000, wrap=False, auto_scroll=True)
        yield ConsoleFooter()
        yield FKeyBar()

    @property
    def grid(self) -> CalendarGrid:
        """The calendar grid."""
        return self.query_one(CalendarGrid)

    def on_mount(self) -> None:
        self.console.grid_screen = self
        self.query_one("#filter-input").display = False
        self.query_one("#pane-rejects", RichLog).write(
            Text("Rejets en direct : ils s'affichent ici pendant un import AAF."))
        self.refresh_all()
        self.grid.focus()

    def on_screen_resume(self) -> None:
        self.refresh_all()

    # -- live data -------------------------------------------------------------------------------

    def refresh_all(self) -> None:
        """Redraw everything from the app's model (first show, return to this screen)."""
        self.grid.rows_changed(keep_uai=self.grid.cursor_uai or None)
        self.update_grid_header()
        self._update_progress()
        self._update_cell_info()

    def on_model_changes(self, changes: ModelChanges) -> None:
        """Apply a drained batch: changed cells only, or the rows when they moved."""
        if not self.query(CalendarGrid):
            return  # the app is closing: its widgets are already gone
        if changes.rows_rebuilt:
            self.grid.rows_changed(keep_uai=self.grid.cursor_uai or None)
        else:
            for uai, keys in changes.cells.items():
                self.grid.cells_changed(uai, keys)
        self.update_grid_header()
        if changes.cells or changes.status_changed or changes.rows_rebuilt:
            self._update_progress()
        if self.grid.cursor_uai in changes.cells or changes.rows_rebuilt or (
                changes.status_changed and not self.grid.cursor_uai):
            self._update_cell_info()

    def on_engine_events(self, events: list[EngineEventView]) -> None:
        """New engine events: the reject stream and the journal pane."""
        rejects = self.query_one("#pane-rejects", RichLog)
        log = self.query_one("#pane-log", RichLog)
        for event in events:
            if event.kind in ("reject", "import"):  # an import's progress beside its rejects
                rejects.write(event_line(event))
            elif event.kind != "progress":
                log.write(event_line(event))

    def _update_progress(self) -> None:
        app = self.console
        cells = app.model.cells

        def status_of(uai: str, column: str) -> UnitStatus | None:
            cell = cells.get(uai, {}).get(column)
            return cell.status if cell is not None else None

        self.query_one(ProgressPane).set_units(
            app.model.running(), paused=bool(app.engine_status and app.engine_status.paused),
            batches=app.batches.progress(status_of))

    def _update_cell_info(self) -> None:
        grid = self.grid
        uai = grid.cursor_uai
        info = Text(no_wrap=True, overflow="ellipsis")
        marked = len(self.console.marked)
        if marked:
            info.append(f"● {marked} marqué{'s' if marked > 1 else ''} │ ", "bold")
        if not uai:
            if self.console.engine_status is None and not self.console.model.views:
                info.append("Chargement… (lecture du moteur)")
            elif not self.console.model.rows:
                info.append("Aucun établissement ne correspond au filtre.")
        else:
            view = self.console.model.views[uai]
            column = COLUMN_BY_KEY[grid.cursor_column_key]
            cell = self.console.model.cells[uai][column.key]
            info.append(f"{uai} · {column.title} : ", "bold")
            info.append(cell.describe())
            if cell.status is UnitStatus.RUNNING and self.console.fleet is not None and (
                    worker := self.console.fleet.holder(uai, column.key)):
                info.append(f" · {running_on(worker)}")
            info.append(f" · {view.name} ({KIND_LABELS.get(view.kind, view.kind)}, "
                        f"{view.project_code})")
        self.query_one("#cell-info", Static).update(info)

    def on_fleet(self) -> None:
        """The fleet was read again: the cell line names a running unit's worker."""
        self._update_cell_info()

    @on(CalendarGrid.CursorMoved)
    def _cursor_moved(self, event: CalendarGrid.CursorMoved) -> None:
        self.console.cursor_uai = event.uai
        self._update_cell_info()

    # -- selection -------------------------------------------------------------------------------

    def targets(self) -> list[str]:
        """Marked establishments in grid order, else the one under the cursor."""
        model = self.console.model
        marked = [uai for uai in model.visible_uais if uai in self.console.marked]
        marked += sorted(uai for uai in self.console.marked if uai not in model.row_index)
        if marked:
            return marked
        return [self.grid.cursor_uai] if self.grid.cursor_uai else []

    def action_mark(self) -> None:
        """Mark or unmark the establishment under the cursor, then go down."""
        uai = self.grid.cursor_uai
        if not uai:
            return
        self.console.marked.symmetric_difference_update({uai})
        self.grid.mark_changed({uai})
        self.grid.action_cursor(1, 0)
        self._update_cell_info()

    def action_mark_all(self) -> None:
        """Mark every visible establishment."""
        self.console.marked.update(self.console.model.visible_uais)
        self.grid.mark_changed()
        self._update_cell_info()

    def action_unmark_all(self) -> None:
        """Unmark everything."""
        self.console.marked.clear()
        self.grid.mark_changed()
        self._update_cell_info()

    # -- filter, sort, groups --------------------------------------------------------------------

    def _rows_changed(self) -> None:
        self.console.model.rebuild_rows()
        self.grid.rows_changed(keep_uai=self.grid.cursor_uai or None)
        self.update_grid_header()
        self._update_cell_info()

    def action_filter_text(self) -> None:
        """Show the filter box."""
        box = self.query_one("#filter-input", Input)
        box.display = True
        box.value = self.console.model.filter.text
        box.focus()

    @on(Input.Changed, "#filter-input")
    def _filter_typed(self, event: Input.Changed) -> None:
        self.console.model.filter.text = event.value.strip()
        self._rows_changed()

    @on(Input.Submitted, "#filter-input")
    def _filter_kept(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.grid.focus()

    def action_clear_filter(self) -> None:
        """Escape: close the filter box and clear every filter (text, state, type)."""
        box = self.query_one("#filter-input", Input)
        grid_filter = self.console.model.filter
        if box.display or grid_filter.text or grid_filter.status is not None or (
                grid_filter.kind is not None):
            box.value = ""
            box.display = False
            grid_filter.text = ""
            grid_filter.status = None
            grid_filter.kind = None
            self._rows_changed()
            self.grid.focus()
            self.notify("Filtres effacés : tous les établissements.", timeout=2)

    def action_filter_state(self) -> None:
        """Cycle the state filter: all, running, failed, blocked…"""
        model = self.console.model
        index = STATE_FILTERS.index(model.filter.status)
        model.filter.status = STATE_FILTERS[(index + 1) % len(STATE_FILTERS)]
        self._rows_changed()
        status = model.filter.status
        self.notify("Filtre d'état : " + ("tous" if status is None else
                    f"{state_glyph(status)} {state_label(status)}"), timeout=2)

    def action_filter_kind(self) -> None:
        """Cycle the kind filter: all, collèges, lycées, others."""
        model = self.console.model
        index = KIND_FILTERS.index(model.filter.kind)
        model.filter.kind = KIND_FILTERS[(index + 1) % len(KIND_FILTERS)]
        self._rows_changed()
        kind = model.filter.kind
        self.notify("Filtre de type : " + ("tous" if kind is None else KIND_LABELS[kind]),
                    timeout=2)

    def action_sort(self) -> None:
        """Cycle the order: UAI, name, kind, state of the cursor column, its date."""
        model = self.console.model
        orders = list(SortKey)
        model.sort_key = orders[(orders.index(model.sort_key) + 1) % len(orders)]
        model.sort_column = self.grid.cursor_column_key
        self._rows_changed()
        suffix = (f" ({COLUMN_BY_KEY[model.sort_column].title})"
                  if model.sort_key in (SortKey.STATE, SortKey.DATE) else "")
        self.notify(f"Ordre : {model.sort_key.value}{suffix}", timeout=2)

    def action_group(self) -> None:
        """Group the rows by project, or not."""
        model = self.console.model
        model.grouped = not model.grouped
        self._rows_changed()
        self.notify("Regroupement par projet : " + ("oui" if model.grouped else "non"),
                    timeout=2)

    def action_cycle_pane(self) -> None:
        """Bottom pane: progress, live rejects, journal."""
        switcher = self.query_one("#bottom", ContentSwitcher)
        current = switcher.current or PANES[0]
        switcher.current = PANES[(PANES.index(current) + 1) % len(PANES)]
        self.notify(f"Volet : {PANE_NAMES[switcher.current]}", timeout=2)

    def show_pane(self, pane_id: str) -> None:
        """Show one bottom pane."""
        self.query_one("#bottom", ContentSwitcher).current = pane_id

    def action_open_detail(self) -> None:
        """Open the establishment under the cursor."""
        if self.grid.cursor_uai:
            self.console.open_detail(self.grid.cursor_uai)

    def _cursor_target(self) -> str:
        """The UAI under the cursor, or ``""`` after asking the operator to place it."""
        uai = self.grid.cursor_uai
        if not uai:
            self.notify("Placez le curseur sur un établissement.", severity="warning")
        return uai

    async def action_show_requests(self) -> None:
        """Maj+D: every request sent to the engine, with its state and the engine's answer."""
        await self.console.action_show_mode("requests")

    def action_show_fleet(self) -> None:
        """t: the worker processes and the units each runs."""
        self.console.open_fleet()

    def action_school_life(self) -> None:
        """Open the step-5 wizard of the establishment under the cursor."""
        if uai := self._cursor_target():
            self.console.open_school_life(uai)

    def action_redo_archive(self) -> None:
        """Rebuild the step-2 archives of the establishment under the cursor."""
        if uai := self._cursor_target():
            self.console.confirm_redo_archive(uai)

    # -- actions on the selection ----------------------------------------------------------------

    def _need_targets(self) -> list[str] | None:
        targets = self.targets()
        if not targets:
            self.notify("Aucun établissement sélectionné.", severity="warning")
            return None
        return targets

    def _step_then(self, title: str, then: Any) -> None:
        """Use the cursor column when it is a step, else ask which step."""
        key = self.grid.cursor_column_key
        if key in STEP_COLUMN_KEYS:
            then(key)
            return

        def chosen(step_key: str | None) -> None:
            if step_key:
                then(step_key)

        self.app.push_screen(StepChoiceModal(title, step_choices()), chosen)

    def action_dry_run(self) -> None:
        """Dry run of steps 1 to 3 for the selection."""
        targets = self._need_targets()
        if targets:
            self.console.confirm_dry_run(targets)

    def action_run_step(self) -> None:
        """Run the cursor column's step for the selection."""
        targets = self._need_targets()
        if targets:
            self._step_then("Quelle étape lancer ?",
                            lambda step: self.console.confirm_run(step, targets))

    def action_retry_failed(self) -> None:
        """Run again the failed units of a step in the selection."""
        targets = self._need_targets()
        if not targets:
            return

        def then(step_key: str) -> None:
            model = self.console.model
            failed = [uai for uai in targets if model.cells[uai][step_key].status in (
                UnitStatus.FAILED, UnitStatus.BLOCKED)]
            if not failed:
                self.notify(f"Aucun échec à l'étape {Step(step_key).number} dans la sélection.",
                            severity="warning")
                return
            self.console.confirm_run(step_key, failed, retry=True)

        self._step_then("Relancer les échecs de quelle étape ?", then)

    def action_pause_resume(self) -> None:
        """Pause the engine, or resume it."""
        self.console.confirm_pause_resume()

    def action_cancel(self) -> None:
        """Cancel what runs or waits on the marked establishments, else the cursor row.

        The engine stops what is running or queued on those establishments when it takes
        the request (after Entrée), not what was running when the dialog opened.
        """
        targets = self._need_targets()
        if not targets:
            return
        running, queued = cancellable_units(self.console.model, targets)
        where = (f"{len(targets)} établissement(s) marqué(s)" if self.console.marked
                 else f"l'établissement {targets[0]}")
        if not running and not queued:
            self.notify(f"Aucune unité en cours ni en file pour {where}.", severity="warning")
            return
        lines = [f"{where[0].upper()}{where[1:]} : {list_uais(targets)}.",
                 (f"{running} unité(s) en cours s'arrêteront à leur prochain point de reprise ; "
                  f"{queued} unité(s) en file en seront retirées."),
                 ("Le moteur annule ce qui est en cours ou en file sur ces établissements au "
                  "moment où il reçoit la demande ; une unité annulée pourra être relancée.")]
        self.console.confirm_and_send("Annuler des unités", lines, None, RequestAction.CANCEL,
                                      {"uais": targets}, "Annulation demandée.")

    def action_edit_dates(self) -> None:
        """Set the planned date of the cursor column for the selection."""
        targets = self._need_targets()
        if not targets:
            return
        column = COLUMN_BY_KEY[self.grid.cursor_column_key]
        if column.key == "access-block":
            # The block's dates and message go to its one owner, through the engine.
            edit_access_block(self.console, targets)
            return
        current = self.console.model.cells[targets[0]][column.key].planned_on

        def validate(text: str) -> str:
            try:
                parse_french_date(text)
            except ValueError as error:
                return str(error)
            return ""

        def entered(text: str | None) -> None:
            if not text:
                return
            day = parse_french_date(text)
            lines = [(f"{column.title} : le {day:%d/%m/%Y} pour {len(targets)} "
                      f"établissement(s) : {list_uais(targets)}.")]
            self.console.confirm_and_send(
                "Modifier une date planifiée", lines, None, RequestAction.SET_DATE,
                {"step": MILESTONES.get(column.key, column.key), "uais": targets, "date": day},
                f"Date du {day:%d/%m/%Y} demandée.")

        self.app.push_screen(TextPromptModal(
            f"Date planifiée — {column.title}",
            [f"{len(targets)} établissement(s) : {list_uais(targets)}.",
             "Date au format JJ/MM/AAAA :"],
            value=current.strftime("%d/%m/%Y") if current else "",
            placeholder="JJ/MM/AAAA", validate=validate), entered)

    def action_dry_run_report(self) -> None:
        """The académie-wide report of the dry-run warnings."""
        # The report screen imports the engine's report rows: loaded when first opened.
        from yearchange_tui.tui.screens.dry_run_report import DryRunReportScreen

        self.app.push_screen(DryRunReportScreen())

    def action_project_settings(self) -> None:
        """The project's settings (block, warnings, link), asked of the engine."""
        edit_project(self.console)

    def action_import_aaf(self) -> None:
        """Import an AAF delivery (folder, archive or file)."""
        self.console.prompt_import_aaf()

    def action_import_timetable(self) -> None:
        """Import a timetable for the establishment under the cursor."""
        if uai := self._cursor_target():
            self.console.prompt_import_timetable(uai)


__all__ = ["GridScreen", "challenge_for", "event_line"]
