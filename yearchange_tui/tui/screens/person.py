"""One person, for support staff: why can't they log in (record, account, class, access
block, rejects, what to tell the school). Read from the rejects source
(:func:`yearchange_tui.aaf.support.person_facts`, as ``yearchange person``)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from yearchange_tui.aaf.support import PersonFacts, facts_lines
from yearchange_tui.tui.bindings import bindings_for
from yearchange_tui.tui.screens.base import ConsoleScreen
from yearchange_tui.tui.widgets.console_footer import ConsoleFooter
from yearchange_tui.tui.widgets.fkey_bar import FKeyBar
from yearchange_tui.workflow.localtime import wall_clock


def person_body(facts: PersonFacts) -> Group:
    """The facts as lines: « Label : text », rejects indented, the raw XML last."""
    lines: list[Any] = []
    for label, value in facts_lines(facts):
        if not label:
            lines.append(Text(f"    {value}"))
        elif label == "À dire à l'établissement":
            line = Text(f"{label} : ", style="bold")
            line.append(value, style="bold")
            lines.append(line)
        else:
            line = Text(f"{label} : ", style="bold")
            line.append(value)
            lines.append(line)
    if facts.raw_xml:
        lines.append(Text("Dernier enregistrement XML :", style="bold"))
        lines.append(Text(facts.raw_xml, no_wrap=True, overflow="ellipsis"))
    return Group(*lines)


class PersonScreen(ConsoleScreen):
    """The facts of one person (by AAF jointure), for the console's day."""

    HELP_NAME = "person"
    BINDINGS = bindings_for("person")
    DEFAULT_CSS = """
    #person-title { height: 1; background: $panel; padding: 0 1; text-style: bold;
                    text-wrap: nowrap; text-overflow: ellipsis; }
    #person-scroll { height: 1fr; padding: 0 1; }
    """

    def __init__(self, jointure: str) -> None:
        super().__init__()
        self.jointure = jointure
        self.facts: PersonFacts | None = None

    def compose(self) -> ComposeResult:
        yield Static(f"Personne {self.jointure} : lecture…", id="person-title")
        with VerticalScroll(id="person-scroll"):
            yield Static("", id="person-body")
        yield ConsoleFooter()
        yield FKeyBar()

    def on_mount(self) -> None:
        self._read(self.jointure)
        self.query_one("#person-scroll").focus()

    @work(thread=True, exclusive=True, group="person-read", exit_on_error=False,
          description="lecture de la personne")
    def _read(self, jointure: str) -> PersonFacts | None:
        return self.console.rejects.person(jointure, wall_clock(self.console.now()).date())

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Show the facts, or why they could not be read."""
        if event.worker.group != "person-read":
            return
        title = self.query_one("#person-title", Static)
        body = self.query_one("#person-body", Static)
        if event.state is WorkerState.SUCCESS:
            facts = event.worker.result
            self.facts = facts
            if facts is None:
                title.update(f"Personne {self.jointure}")
                body.update(Text("Aucune personne ni aucun rejet pour cet identifiant."))
                return
            title.update(Text(f"Personne — {facts.hit.label} · Échap : retour",
                              no_wrap=True, overflow="ellipsis"))
            body.update(person_body(facts))
        elif event.state is WorkerState.ERROR:
            title.update(Text(f"✗ Lecture impossible : {event.worker.error}"))

    def action_close(self) -> None:
        """Back to the rejects."""
        self.dismiss()
