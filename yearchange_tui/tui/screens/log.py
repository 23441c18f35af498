"""The engine journal: every event, filtered by level and text."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.widgets import Footer, Input, RichLog, Static

from yearchange_tui.scheduling.api import EngineEventView
from yearchange_tui.tui.bindings import bindings_for
from yearchange_tui.tui.screens.base import ConsoleScreen
from yearchange_tui.tui.screens.grid import event_line
from yearchange_tui.tui.widgets.fkey_bar import FKeyBar

LEVELS = (("info", "tout"), ("warning", "avertissements et erreurs"), ("error", "erreurs"))
LEVEL_RANK = {"info": 0, "warning": 1, "error": 2}


class LogScreen(ConsoleScreen):
    """All engine events, newest at the bottom."""

    HELP_NAME = "log"
    BINDINGS = bindings_for("log")

    def __init__(self) -> None:
        super().__init__()
        self.level_index = 0
        self.text = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="log-title")
        yield RichLog(id="log-view", max_lines=5000, wrap=False, auto_scroll=True)
        yield Input(id="log-search", compact=True,
                    placeholder="Filtrer le journal — Entrée : garder, Échap : effacer")
        yield Footer(compact=True)
        yield FKeyBar()

    def on_mount(self) -> None:
        self.query_one("#log-search").display = False
        self.rebuild()
        self.query_one("#log-view").focus()

    def on_screen_resume(self) -> None:
        self.rebuild()

    def _keep(self, event: EngineEventView) -> bool:
        if LEVEL_RANK.get(event.level, 0) < self.level_index:
            return False
        if self.text and self.text.casefold() not in (
                f"{event.uai} {event.step} {event.message}".casefold()):
            return False
        return event.kind != "progress"

    def rebuild(self) -> None:
        """Redraw from the app's memory of events."""
        view = self.query_one("#log-view", RichLog)
        view.clear()
        kept = [event for event in self.console.events if self._keep(event)]
        for event in kept:
            view.write(event_line(event))
        title = f"Journal du moteur — niveau : {LEVELS[self.level_index][1]}"
        if self.text:
            title += f" — filtre « {self.text} »"
        if not kept:
            title += " — aucun évènement"
        self.query_one("#log-title", Static).update(title)

    def on_engine_events(self, events: list[EngineEventView]) -> None:
        """Append the new events that pass the filters."""
        view = self.query_one("#log-view", RichLog)
        for event in events:
            if self._keep(event):
                view.write(event_line(event))

    def action_cycle_level(self) -> None:
        """All, warnings and errors, errors only."""
        self.level_index = (self.level_index + 1) % len(LEVELS)
        self.rebuild()

    def action_search(self) -> None:
        """Show the filter box."""
        box = self.query_one("#log-search", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#log-search")
    def _typed(self, event: Input.Changed) -> None:
        self.text = event.value.strip()
        self.rebuild()

    @on(Input.Submitted, "#log-search")
    def _kept(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.query_one("#log-view").focus()

    def action_clear_search(self) -> None:
        """Clear the text filter."""
        box = self.query_one("#log-search", Input)
        box.value = ""
        box.display = False
        self.text = ""
        self.rebuild()
        self.query_one("#log-view").focus()
