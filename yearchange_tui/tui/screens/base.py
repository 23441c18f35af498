"""What the console's screens share: the app typed, the read-only guard, the grid header."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events, on
from textual.screen import Screen

from yearchange_tui.tui.bindings import CHANGING_ACTION_NAMES
from yearchange_tui.tui.release import release_query_caches, release_render_caches
from yearchange_tui.tui.widgets.engine_header import EngineHeader

if TYPE_CHECKING:
    from yearchange_tui.tui.app import YearChangeApp


class ConsoleScreen(Screen[None]):
    """A screen of the console app."""

    @property
    def console(self) -> YearChangeApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    @on(events.ScreenResume)
    def _release_closed_screens(self) -> None:
        """A screen shows again, so another one was closed or left (a dialog, a detail, a
        mode): let go of what the widgets removed on the way rendered (issue 14, item 15).
        Subclasses' own ``on_screen_resume`` still runs."""
        release_query_caches(self, self.app)
        self.call_after_refresh(release_render_caches)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Nothing that changes data in read-only mode: the key shows greyed (None), and
        pressing it says why (``YearChangeApp.run_action``)."""
        return None if action in CHANGING_ACTION_NAMES and self.console.read_only else True

    def update_grid_header(self) -> None:
        """The engine header over the grid's visible establishments and filter."""
        app = self.console
        model = app.model
        headers = self.query(EngineHeader)
        if not headers:  # the screen is not composed yet, or is being torn down
            return
        headers.first().update_state(
            status=app.engine_status, read_only=app.read_only, now=app.now(),
            counts=model.visible_counts, shown=len(model.row_index),
            total=len(model.views), filter_text=model.filter.describe(),
            problem=app.engine_problem)
