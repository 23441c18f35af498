"""The engine journal: every event, filtered by level and text; Enter shows a line whole."""

from __future__ import annotations

import json
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static

from yearchange_tui.scheduling.api import EngineEventView
from yearchange_tui.tui.bindings import bindings_for
from yearchange_tui.tui.screens.base import ConsoleScreen
from yearchange_tui.tui.screens.grid import event_line
from yearchange_tui.tui.widgets.console_footer import ConsoleFooter
from yearchange_tui.tui.widgets.fkey_bar import FKeyBar
from yearchange_tui.workflow.localtime import to_local

LEVELS = (("info", "tout"), ("warning", "avertissements et erreurs"), ("error", "erreurs"))
LEVEL_RANK = {"info": 0, "warning": 1, "error": 2}
LEVEL_WORDS = {"info": "information", "warning": "avertissement", "error": "erreur"}
KIND_WORDS = {"unit": "unité", "request": "demande", "reject": "rejet", "log": "moteur",
              "dry-run-warning": "avertissement de passage à blanc", "progress": "progression"}
MAX_LINES = 5000


def event_text(event: EngineEventView) -> str:
    """A journal event whole, in French: when, level, where, message, then its data."""
    at = to_local(event.at)  # the journal's lines read the same
    lines = [(f"Le {at:%d/%m/%Y à %H:%M:%S} — "
             f"{LEVEL_WORDS.get(event.level, event.level)} "
             f"({KIND_WORDS.get(event.kind, event.kind)})")]
    if event.uai:
        lines.append(f"Établissement : {event.uai}")
    if event.step:
        lines.append(f"Étape : {event.step}")
    lines.extend(["", event.message])
    if event.data:
        lines.extend(["", "Données :", json.dumps(event.data, ensure_ascii=False, indent=2,
                                                   default=str)])
    return "\n".join(lines)


class LineModal(ModalScreen[None]):
    """One journal line, whole (wrapped, scrollable)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,f10,q", "dismiss(None)", "Fermer", id="log-line-close"),
    ]

    def __init__(self, text: str) -> None:
        super().__init__(classes="dialog")
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box", classes="help-box"):
            yield Label("Ligne du journal", id="dialog-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(Text(self.text), classes="dialog-line")
            yield Static("Échap ou Entrée : fermer · ↑↓ : défiler", classes="dialog-keys")


class LogScreen(ConsoleScreen):
    """All engine events, newest at the bottom; Enter opens the line under the cursor."""

    HELP_NAME = "log"
    BINDINGS = bindings_for("log")

    def __init__(self) -> None:
        super().__init__()
        self.level_index = 0
        self.text = ""
        self.shown: list[EngineEventView] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="log-title")
        yield OptionList(id="log-view", compact=True)
        yield Input(id="log-search", compact=True,
                    placeholder="Filtrer le journal — Entrée : garder, Échap : effacer")
        yield ConsoleFooter()
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

    def _follow(self, view: OptionList, at_end: bool) -> None:
        if at_end and view.option_count:
            view.highlighted = view.option_count - 1
            view.scroll_end(animate=False, immediate=True)

    def rebuild(self) -> None:
        """Redraw from the app's memory of events."""
        view = self.query_one("#log-view", OptionList)
        self.shown = [event for event in self.console.events if self._keep(event)][-MAX_LINES:]
        view.clear_options()
        view.add_options([event_line(event) for event in self.shown])
        self._follow(view, True)
        title = f"Journal du moteur — niveau : {LEVELS[self.level_index][1]}"
        if self.text:
            title += f" — filtre « {self.text} »"
        if not self.shown:
            title += " — aucun évènement"
        else:
            title += " — Entrée : ligne entière"
        self.query_one("#log-title", Static).update(title)

    def on_engine_events(self, events: list[EngineEventView]) -> None:
        """Append the new events that pass the filters (following the end if the cursor
        was on the last line)."""
        view = self.query_one("#log-view", OptionList)
        at_end = view.highlighted is None or view.highlighted >= view.option_count - 1
        new = [event for event in events if self._keep(event)]
        if not new:
            return
        if len(self.shown) + len(new) > MAX_LINES:
            self.rebuild()
            return
        self.shown.extend(new)
        view.add_options([event_line(event) for event in new])
        self._follow(view, at_end)

    @on(OptionList.OptionSelected, "#log-view")
    def _open_line(self, event: OptionList.OptionSelected) -> None:
        """Enter: the whole line in a dialog."""
        if 0 <= event.option_index < len(self.shown):
            self.app.push_screen(LineModal(event_text(self.shown[event.option_index])))

    def action_open_line(self) -> None:
        """The line under the cursor, whole."""
        index = self.query_one("#log-view", OptionList).highlighted
        if index is not None and 0 <= index < len(self.shown):
            self.app.push_screen(LineModal(event_text(self.shown[index])))

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

    async def action_clear_search(self) -> None:
        """Escape: clear the text filter, or back to the grid when there is none."""
        box = self.query_one("#log-search", Input)
        if not box.display and not self.text:
            await self.console.action_show_mode("grid")
            return
        box.value = ""
        box.display = False
        self.text = ""
        self.rebuild()
        self.query_one("#log-view").focus()
