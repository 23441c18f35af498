"""Every request sent to the engine: who, when, what, its state and the engine's answer."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from yearchange_tui.scheduling.api import EngineEventView, RequestView
from yearchange_tui.scheduling.models import (
    REQUEST_STATUS_GLYPHS,
    REQUEST_STATUS_LABELS,
    RequestStatus,
)
from yearchange_tui.tui.bindings import bindings_for
from yearchange_tui.tui.screens.base import ConsoleScreen
from yearchange_tui.tui.widgets.console_footer import ConsoleFooter
from yearchange_tui.tui.widgets.fkey_bar import FKeyBar
from yearchange_tui.workflow.localtime import format_local

REFRESH_INTERVAL = 1.0
"""Seconds between two reads of the request table while the screen shows."""

REQUEST_LIMIT = 500
"""The newest requests shown (``yearchange requests --all`` lists every one)."""

STATUS_STYLES = {RequestStatus.REFUSED: "bold", RequestStatus.FAILED: "bold reverse",
                 RequestStatus.NO_EFFECT: "italic"}


def request_state(view: RequestView) -> str:
    """``✓ fait``, ``∅ sans effet``, ``⊘ refusé``…"""
    return f"{REQUEST_STATUS_GLYPHS[view.status]} {REQUEST_STATUS_LABELS[view.status]}"


def local_time(moment: dt.datetime | None) -> str:
    """``07/12 14:02:11`` in the operator's time zone."""
    return format_local(moment, "%d/%m %H:%M:%S")


def request_line(view: RequestView) -> str:
    """The whole request on one line (the info line under the table)."""
    who = f" par {view.requested_by}" if view.requested_by else ""
    consultation = " (mode consultation)" if view.read_only else ""
    answer = f" — {view.message}" if view.message else ""
    return (f"Demande n° {view.id}, {local_time(view.created_at)}{who}{consultation} : "
            f"{view.what} · {request_state(view)}{answer}")


NARROW_WIDTH = 100
"""Below this many columns the table leaves the answer and the sender to the line below."""


class RequestsScreen(ConsoleScreen):
    """The request table, newest first, read again every second while shown."""

    HELP_NAME = "requests"
    BINDINGS = bindings_for("requests")
    DEFAULT_CSS = """
    #requests-title { height: 1; background: $panel; padding: 0 1; text-style: bold;
                      text-wrap: nowrap; text-overflow: ellipsis; }
    #requests-table { height: 1fr; }
    #request-info { height: auto; max-height: 4; padding: 0 1; background: $panel; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.views: list[RequestView] = []
        self.loaded = False
        self.narrow = False
        """At 80 columns the answer and the sender are read on the line below the table
        (whole), not in columns cut after three letters."""

    def compose(self) -> ComposeResult:
        yield Static("Demandes au moteur", id="requests-title")
        yield DataTable(id="requests-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="request-info")
        yield ConsoleFooter()
        yield FKeyBar()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        self.narrow = self.app.size.width < NARROW_WIDTH
        if self.narrow:
            table.add_columns("N°", "Heure", "État", "Demande (réponse en bas)")
        else:
            table.add_columns("N°", "Heure", "État", "Demande", "Réponse du moteur", "Par")
        table.focus()
        self.set_interval(REFRESH_INTERVAL, self.reload, name="requests-refresh")
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def on_engine_events(self, events: list[EngineEventView]) -> None:
        """A request was answered: read the table again."""
        if any(event.kind == "request" for event in events):
            self.reload()

    @work(thread=True, exclusive=True, group="requests-read", exit_on_error=False)
    def reload(self) -> None:
        """Read the requests off the UI thread, then show them."""
        try:
            views = self.console.client.request_list(REQUEST_LIMIT)
        except Exception as error:  # noqa: BLE001 - shown to the operator, never a crash
            self.app.call_from_thread(self._problem, str(error))
            return
        self.app.call_from_thread(self.show_views, views)

    def _problem(self, text: str) -> None:
        self.query_one("#request-info", Static).update(
            Text(f"Demandes illisibles : {text}", style="bold"))

    def show_views(self, views: list[RequestView]) -> None:
        """Redraw the table when something changed (the cursor stays on its request)."""
        if self.loaded and views == self.views:
            return
        self.loaded = True
        self.views = views
        table = self.query_one(DataTable)
        keep = table.cursor_row if table.row_count else 0
        table.clear()
        for view in views:
            style = STATUS_STYLES.get(view.status, "")
            cells: list[Any] = [str(view.id), local_time(view.created_at),
                                Text(request_state(view), style=style), view.what]
            if not self.narrow:
                cells += [Text(view.message or "—", no_wrap=True, overflow="ellipsis"),
                          view.requested_by]
            table.add_row(*cells, key=str(view.id))
        title = self.query_one("#requests-title", Static)
        counts: dict[RequestStatus, int] = {}
        for view in views:
            counts[view.status] = counts.get(view.status, 0) + 1
        summary = ", ".join(f"{REQUEST_STATUS_GLYPHS[status]} {count} "
                            f"{REQUEST_STATUS_LABELS[status]}"
                            for status, count in counts.items())
        title.update(f"Demandes au moteur — {len(views)} demande(s)"
                     + (f" : {summary}" if summary else "")
                     + (" — mode consultation" if self.console.read_only else ""))
        if views:
            table.move_cursor(row=min(keep, len(views) - 1))
        self._show_info()

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, _event: Any) -> None:
        self._show_info()

    def _show_info(self) -> None:
        info = self.query_one("#request-info", Static)
        table = self.query_one(DataTable)
        if not self.views:
            info.update("Aucune demande : les demandes de la console et de "
                        "« yearchange engine-request » s'affichent ici.")
            return
        row = min(max(table.cursor_row, 0), len(self.views) - 1)
        info.update(Text(request_line(self.views[row])))

    def action_close(self) -> None:
        """Échap: back to the grid."""
        self.run_worker(self.console.action_show_mode("grid"), exclusive=True)
