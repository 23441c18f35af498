"""The fleet: every worker process (host, pid, state, heartbeat, queues, load) and, under
each one, the units it runs (UAI, step, since when); cancel a unit, a worker's units or
every running unit, pause or resume the engine — each through the engine's requests."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.fleet import STALE_LABEL, FleetWorker, RunningUnit
from yearchange_tui.scheduling.fleet_text import (
    ago,
    empty_fleet,
    load_text,
    queues_text,
    running_on,
    since_text,
    unit_step,
    worker_line,
    worker_name,
    worker_state,
)
from yearchange_tui.tui.bindings import bindings_for
from yearchange_tui.tui.grid_model import COLUMN_BY_KEY
from yearchange_tui.tui.screens.base import ConsoleScreen
from yearchange_tui.tui.screens.modals import ConfirmModal, list_uais
from yearchange_tui.tui.widgets.console_footer import ConsoleFooter
from yearchange_tui.tui.widgets.fkey_bar import FKeyBar
from yearchange_tui.workflow.localtime import format_local
from yearchange_tui.workflow.models import UNIT_STATUS_GLYPHS, UnitStatus

NARROW_WIDTH = 100
"""Below this many columns the queues are read on the line under the table and a unit's
step is its grid column's short title."""

Row = tuple[FleetWorker, RunningUnit | None]
"""A table row: a worker, or one unit it runs."""


def row_key(worker: FleetWorker, unit: RunningUnit | None) -> str:
    """A stable key per row, so the cursor stays on its worker or unit across reads."""
    if unit is None:
        return f"w{worker.id}"
    return f"w{worker.id}:{unit.uai}:{unit.step.value}"


class FleetScreen(ConsoleScreen):
    """Worker processes and their units, read again with the console's poll."""

    HELP_NAME = "fleet"
    BINDINGS = bindings_for("fleet")
    DEFAULT_CSS = """
    #fleet-title { height: 1; background: $panel; padding: 0 1; text-style: bold;
                   text-wrap: nowrap; text-overflow: ellipsis; }
    #fleet-table { height: 1fr; }
    #fleet-info { height: auto; max-height: 4; padding: 0 1; background: $panel; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Row] = []
        self.narrow = False

    def compose(self) -> ComposeResult:
        yield Static("Processus de travail", id="fleet-title")
        yield DataTable(id="fleet-table", cursor_type="row", zebra_stripes=True)
        yield Static("Lecture des processus de travail…", id="fleet-info")
        yield ConsoleFooter()
        yield FKeyBar()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        self.narrow = self.app.size.width < NARROW_WIDTH
        columns = ["Hôte / UAI", "Pid", "État / étape", "Signe de vie / depuis"]
        table.add_columns(*columns, "Unités" if self.narrow else "Files",
                          *(() if self.narrow else ("Unités",)))
        table.focus()
        self.show()
        self.console.read_fleet()

    def on_fleet(self) -> None:
        """The fleet was read again."""
        self.show()

    def on_model_changes(self, changes: Any) -> None:
        """The engine was paused or resumed: the title says so."""
        if changes.status_changed:
            self._show_title()

    # -- drawing ---------------------------------------------------------------------------------

    def show(self) -> None:
        """Redraw the table from the app's fleet (the cursor stays on its row)."""
        fleet = self.console.fleet
        table = self.query_one(DataTable)
        kept = ""
        if self.rows and 0 <= table.cursor_row < len(self.rows):
            kept = row_key(*self.rows[table.cursor_row])
        self.rows = []
        table.clear()
        if fleet is not None and fleet.now is not None:
            now = fleet.now
            for worker in fleet.workers:
                self.rows.append((worker, None))
                stale = worker.stale(now)
                state = Text(worker_state(worker, now),
                             style="bold reverse" if stale else "bold")
                cells: list[Any] = [Text(worker.host, style="bold"), str(worker.pid), state,
                                    Text(ago(now, worker.heartbeat_at),
                                         style="bold reverse" if stale else "")]
                if not self.narrow:
                    cells.append(queues_text(worker))
                cells.append(load_text(worker))
                table.add_row(*cells, key=row_key(worker, None))
                for unit in worker.units:
                    self.rows.append((worker, unit))
                    glyph = UNIT_STATUS_GLYPHS[UnitStatus.RUNNING]
                    # At 80 columns: the grid's short step title and the time alone.
                    step = (COLUMN_BY_KEY[unit.step.value].title if self.narrow
                            else unit_step(unit))
                    since = (f"depuis {format_local(unit.since, '%H:%M:%S')}" if self.narrow
                             else since_text(unit, now))
                    unit_cells: list[Any] = [f"  └ {unit.uai}", "", f"{glyph} {step}", since]
                    unit_cells += [""] * (1 if self.narrow else 2)
                    table.add_row(*unit_cells, key=row_key(worker, unit))
        keys = [row_key(*row) for row in self.rows]
        if kept in keys:
            table.move_cursor(row=keys.index(kept))
        self._show_title()
        self._show_info()

    def _show_title(self) -> None:
        fleet = self.console.fleet
        title = Text("Processus de travail")
        if fleet is not None and fleet.now is not None:
            now = fleet.now
            stale = sum(1 for worker in fleet.workers if worker.stale(now))
            units = sum(len(worker.units) for worker in fleet.workers)
            title.append(f" — {len(fleet.workers)} processus, {units} unité(s) en cours")
            if stale:
                title.append(f" · ! {stale} {STALE_LABEL}", "reverse")
        status = self.console.engine_status
        if status is not None and status.paused:
            title.append(" · ‖ moteur en pause : aucune nouvelle unité ne démarre")
        if self.console.read_only:
            title.append(" — mode consultation")
        self.query_one("#fleet-title", Static).update(title)

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, _event: Any) -> None:
        self._show_info()

    def _show_info(self) -> None:
        info = self.query_one("#fleet-info", Static)
        fleet = self.console.fleet
        if self.console.fleet_problem:
            info.update(Text(self.console.fleet_problem, style="bold"))
            return
        if fleet is None or fleet.now is None:
            info.update("Lecture des processus de travail…")
            return
        if not self.rows:
            info.update(empty_fleet(fleet.embedded))
            return
        row = self.selected()
        if row is None:
            return
        worker, unit = row
        if unit is None:
            info.update(Text(worker_line(worker, fleet.now)))
        else:
            info.update(Text(f"{unit.uai} · {unit_step(unit)} · {running_on(worker)} "
                             f"{since_text(unit, fleet.now)} — c : annuler cette unité"))

    def selected(self) -> Row | None:
        """The worker or unit under the cursor."""
        table = self.query_one(DataTable)
        if not self.rows:
            return None
        return self.rows[min(max(table.cursor_row, 0), len(self.rows) - 1)]

    # -- actions ---------------------------------------------------------------------------------

    def action_cancel(self) -> None:
        """c: cancel the unit under the cursor, or every unit of the worker under it."""
        row = self.selected()
        if row is None:
            self.notify("Aucun processus de travail, aucune unité à annuler.",
                        severity="warning")
            return
        worker, unit = row
        if unit is not None:
            self._confirm_cancel(f"Annuler l'unité {unit.uai}",
                                 f"{unit.uai} · {unit_step(unit)}, {running_on(worker)}.",
                                 [unit])
        elif worker.units:
            self._confirm_cancel(f"Annuler les unités de {worker_name(worker)}",
                                 f"{len(worker.units)} unité(s) {running_on(worker)} : "
                                 f"{list_uais([unit.uai for unit in worker.units])}.",
                                 list(worker.units))
        else:
            self.notify(f"{worker_name(worker)} n'exécute aucune unité.", severity="warning")

    def action_cancel_all(self) -> None:
        """Maj+C: cancel every unit running on the fleet."""
        fleet = self.console.fleet
        units = [unit for worker in (fleet.workers if fleet else ()) for unit in worker.units]
        if not units:
            self.notify("Aucune unité en cours sur les processus de travail.",
                        severity="warning")
            return
        hosts = len({worker.host for worker in fleet.workers if worker.units}) if fleet else 0
        self._confirm_cancel("Annuler toutes les unités en cours",
                             f"{len(units)} unité(s) en cours sur {hosts} machine(s) : "
                             f"{list_uais([unit.uai for unit in units])}.", units)

    def _confirm_cancel(self, title: str, what: str, units: list[RunningUnit]) -> None:
        """Confirm, then one cancel request per step (the engine's one cancel path)."""
        by_step: dict[str, list[str]] = {}
        for unit in units:
            by_step.setdefault(unit.step.value, []).append(unit.uai)
        lines = [what, ("Chaque unité s'arrête à son prochain point de reprise, sur la machine "
                        "où elle tourne ; elle pourra être relancée. Les unités en file de ces "
                        "établissements pour la même étape en sont retirées.")]

        def answered(confirmed: bool | None) -> None:
            if not confirmed:
                self.notify("Action annulée : rien n'a été demandé.", timeout=2)
                return
            for step, uais in by_step.items():
                self.console.send_request(RequestAction.CANCEL, {"uais": uais, "step": step},
                                          "Annulation demandée.")

        self.app.push_screen(ConfirmModal(title, lines, None), answered)

    def action_pause_resume(self) -> None:
        """p: pause the engine (no new unit starts on any machine), or resume it."""
        self.console.confirm_pause_resume()

    def action_close(self) -> None:
        """Échap: back to the grid."""
        self.dismiss(None)
