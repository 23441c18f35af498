"""The command palette in French (the actions themselves come from the app)."""

from __future__ import annotations

from rich.align import Align
from rich.text import Text
from textual.command import CommandList, CommandPalette
from textual.widgets.option_list import Option


class ActionPalette(CommandPalette):
    """Textual's palette with a French prompt and a French "no match" line."""

    def __init__(self) -> None:
        super().__init__(placeholder="Rechercher une action…", id="--command-palette")

    def _start_no_matches_countdown(self, search_value: str) -> None:
        """Say "Aucune action ne correspond" after a short wait (Textual's says it in English)."""
        self._stop_no_matches_countdown()

        def show_no_matches() -> None:
            if search_value:
                self.query_one(CommandList).add_option(Option(
                    Align.center(Text("Aucune action ne correspond.", style="not bold")),
                    disabled=True, id=self._NO_MATCHES))
                self._list_visible = True
            else:
                self._list_visible = False

        self._no_matches_timer = self.set_timer(self._NO_MATCHES_COUNTDOWN, show_no_matches)
