"""The command palette in French (the actions themselves come from the app).

A search matches an action's title, its help line and the names of its keys, so
« pause » finds « Suspendre ou reprendre le moteur (p) » (help « Pause / reprise »)
and « f4 » finds « Aller aux rejets AAF (F4) ».
"""

from __future__ import annotations

from rich.align import Align
from rich.text import Text
from textual.command import CommandList, CommandPalette, Hit, Hits
from textual.system_commands import SystemCommandsProvider
from textual.widgets.option_list import Option

# A hit found only in the help line ranks a little below one found in the title.
HELP_MATCH_WEIGHT = 0.8


class ActionCommands(SystemCommandsProvider):
    """The app's actions, searched by title, help line and key names."""

    async def search(self, query: str) -> Hits:
        """Every action whose title, help or keys match ``query`` (best first)."""
        matcher = self.matcher(query)
        for name, help_text, callback, *_ in self.app.get_system_commands(self.screen):
            on_title = matcher.match(name)
            on_help = matcher.match(help_text) * HELP_MATCH_WEIGHT
            if on_title <= 0 and on_help <= 0:
                continue
            title = matcher.highlight(name) if on_title >= on_help else Text(name)
            yield Hit(max(on_title, on_help), title, callback, help=help_text)


class ActionPalette(CommandPalette):
    """Textual's palette with a French prompt, a French "no match" line, and a search
    that also reads each action's help and keys."""

    def __init__(self) -> None:
        super().__init__(providers=[ActionCommands], placeholder="Rechercher une action…",
                         id="--command-palette")

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
