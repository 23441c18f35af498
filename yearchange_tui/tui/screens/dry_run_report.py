"""The académie-wide dry-run report: every warning of the newest dry runs, filterable,
exported as CSV (the console side of ``yearchange dry-run --report``).

Read on a worker thread from the detail source (``dry_run_warnings()``); nothing here
changes data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import Input, OptionList, Static
from textual.worker import Worker, WorkerState

from yearchange_tui.changeover.dry_run import DryRunWarning, write_warnings_csv
from yearchange_tui.tui.bindings import bindings_for
from yearchange_tui.tui.screens.base import ConsoleScreen
from yearchange_tui.tui.widgets.console_footer import ConsoleFooter
from yearchange_tui.tui.widgets.fkey_bar import FKeyBar


def warning_prompt(warning: DryRunWarning) -> Text:
    """One warning as two lines (the second wraps at the width)."""
    text = Text()
    text.append(f"{warning.uai} ", style="bold")
    text.append(f"étape {warning.step.number} · {warning.code} · {warning.name}\n")
    text.append(f"  ⚠ {warning.message}")
    return text


def export_warnings(warnings: list[DryRunWarning], folder: Path, stamp: str) -> Path:
    """Write the warnings as CSV (UTF-8 with BOM, « ; », CRLF) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"avertissements-passage-a-blanc-{stamp}.csv"
    with path.open("w", encoding="utf-8", newline="") as stream:
        write_warnings_csv(warnings, stream)
    return path


class DryRunReportScreen(ConsoleScreen):
    """Every dry-run warning of the académie: / filters by UAI, name, code or text, c
    cycles the codes, x exports the shown list, Esc clears the filters then goes back."""

    HELP_NAME = "dry-run-report"
    BINDINGS = bindings_for("dry-run-report")

    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[DryRunWarning] = []
        self.shown: list[DryRunWarning] = []
        self.text = ""
        self.code = ""
        self.problem = ""

    def compose(self) -> ComposeResult:
        yield Static("Avertissements des passages à blanc : chargement…", id="report-title")
        yield OptionList(id="report-list", compact=True)
        yield Input(id="report-search", compact=True,
                    placeholder="Filtrer : UAI, nom, code, texte — Entrée : garder, "
                                "Échap : effacer")
        yield ConsoleFooter()
        yield FKeyBar()

    def on_mount(self) -> None:
        self.query_one("#report-search").display = False
        self.query_one("#report-list").focus()
        self.load()

    @work(thread=True, exclusive=True, group="report-read", exit_on_error=False,
          description="lecture des avertissements")
    def load(self) -> list[DryRunWarning] | None:
        """Read every warning (worker thread)."""
        read = getattr(self.console.details, "dry_run_warnings", None)
        return None if read is None else list(read())

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Show the warnings, or why they could not be read; say where an export went."""
        if event.worker.group == "report-export":
            if event.state is WorkerState.SUCCESS:
                path, count = event.worker.result
                self.notify(f"{count} avertissement(s) exporté(s) : {path}", timeout=8)
            elif event.state is WorkerState.ERROR:
                self.notify(f"Export impossible : {event.worker.error}", severity="error")
            return
        if event.worker.group != "report-read":
            return
        if event.state is WorkerState.SUCCESS:
            result = event.worker.result
            if result is None:
                self.problem = "aucune source (console sans base de données)"
            self.warnings = result or []
            self.rebuild()
        elif event.state is WorkerState.ERROR:
            self.problem = f"lecture impossible : {event.worker.error}"
            self.rebuild()

    def _keep(self, warning: DryRunWarning) -> bool:
        if self.code and warning.code != self.code:
            return False
        return not self.text or warning.matches(self.text)

    def rebuild(self) -> None:
        """Redraw the list from the filters."""
        self.shown = [warning for warning in self.warnings if self._keep(warning)]
        view = self.query_one("#report-list", OptionList)
        view.clear_options()
        view.add_options([warning_prompt(warning) for warning in self.shown])
        establishments = len({warning.uai for warning in self.shown})
        title = (f"Avertissements des passages à blanc : {len(self.shown)} sur "
                 f"{len(self.warnings)}, {establishments} établissement(s)")
        filters = ([f"code {self.code}"] if self.code else []) + (
            [f"« {self.text} »"] if self.text else [])
        if filters:
            title += f" — filtre : {', '.join(filters)}"
        if self.problem:
            title = f"Avertissements des passages à blanc : {self.problem}"
        elif not self.warnings:
            title += " — aucun (faites un passage à blanc : d sur la grille)"
        self.query_one("#report-title", Static).update(Text(title))

    def action_search(self) -> None:
        """Show the filter box."""
        box = self.query_one("#report-search", Input)
        box.display = True
        box.value = self.text
        box.focus()

    @on(Input.Changed, "#report-search")
    def _typed(self, event: Input.Changed) -> None:
        self.text = event.value.strip()
        self.rebuild()

    @on(Input.Submitted, "#report-search")
    def _kept(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.query_one("#report-list").focus()

    def action_cycle_code(self) -> None:
        """Only one code, the next one, then all codes again."""
        codes = sorted({warning.code for warning in self.warnings})
        if not codes:
            return
        index = codes.index(self.code) + 1 if self.code in codes else 0
        self.code = codes[index] if index < len(codes) else ""
        self.rebuild()
        self.notify(f"Code : {self.code or 'tous'}", timeout=2)

    def action_export_csv(self) -> None:
        """Export the shown warnings as CSV in the data folder."""
        self._export(list(self.shown))

    @work(thread=True, exclusive=True, group="report-export", exit_on_error=False,
          description="export des avertissements")
    def _export(self, warnings: list[DryRunWarning]) -> tuple[str, int]:
        stamp = f"{self.console.now():%Y%m%d-%H%M%S}"
        path = export_warnings(warnings, self.console.exports_dir, stamp)
        return str(path), len(warnings)

    def action_close(self) -> None:
        """Escape: clear the filters, or back to where the report was opened."""
        box = self.query_one("#report-search", Input)
        if box.display or self.text or self.code:
            box.value = ""
            box.display = False
            self.text = ""
            self.code = ""
            self.rebuild()
            self.query_one("#report-list").focus()
            return
        self.dismiss(None)

    def on_engine_events(self, events: list[Any]) -> None:
        """A dry run wrote new warnings: read the report again."""
        if any(event.kind == "dry-run-warning" for event in events):
            self.load()
