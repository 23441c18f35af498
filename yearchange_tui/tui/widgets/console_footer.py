"""Textual's key footer, without the leak of one set of keys per screen change.

Textual's ``Footer`` rebuilds its ``FooterKey`` children each time the screen's bindings
change (every screen shown, pushed or popped) and each key binds ``compact`` to the
footer with ``data_bind``. The binding is stored on the footer (the observed node) and
is only pruned when ``compact`` changes — which, in the console, never happens. So the
footer of a screen that stays alive (the grid, the other modes) kept every key it ever
showed, with their styles and rendered lines (Textual issue 6666). This footer drops the
bindings of the keys it removed.
"""

from __future__ import annotations

from textual.widgets import Footer

from yearchange_tui.tui.release import release_closed_watchers


class ConsoleFooter(Footer):
    """The compact key footer of every console screen (see the module's docstring)."""

    def __init__(self) -> None:
        super().__init__(compact=True)

    async def recompose(self) -> None:
        """Rebuild the keys, then release the bindings of the removed ones."""
        await super().recompose()
        release_closed_watchers(self)
