"""The two header lines: engine state, next window, clock; counts per state and filter.

Every time is shown in the operator's zone (:mod:`yearchange_tui.workflow.localtime`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from yearchange_tui.scheduling.api import EngineMode, EngineStatus
from yearchange_tui.tui.grid_model import CellKey, Density, counts_line
from yearchange_tui.workflow.localtime import format_local, to_local, wall_clock

MODE_GLYPHS = {EngineMode.ATTACHED: "●", EngineMode.OBSERVER: "◎", EngineMode.NONE: "✗"}
WEEKDAYS = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")


def engine_text(status: EngineStatus | None) -> str:
    """``moteur ● attaché``, ``✗ aucun moteur — demandes en file`` and the pause flag, in
    French."""
    if status is None:
        return "moteur : connexion…"
    mode = EngineMode(status.mode)
    if mode is EngineMode.NONE:
        parts = [f"{MODE_GLYPHS[mode]} {mode.value} — demandes en file"]
    else:
        parts = [f"moteur {MODE_GLYPHS[mode]} {mode.value}"]
    if status.paused:
        parts.append("‖ EN PAUSE")
    return " ".join(parts)


def window_text(status: EngineStatus | None) -> str:
    """The next maintenance window, or that there is none."""
    if status is None or status.next_window is None:
        return "aucune fenêtre prévue"
    window = status.next_window
    starts, ends = to_local(window.starts_at), to_local(window.ends_at)
    end = (format_local(ends, "%H:%M") if ends.date() == starts.date()
           else format_local(ends, "%d/%m %H:%M"))
    return f"fenêtre {format_local(starts, '%d/%m %H:%M')}–{end} ({window.label})"


class EngineHeader(Widget):
    """Engine, next window, clock; then counts per state, establishments shown, filter."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"header--title", "header--alert", "header--dim",
                         "status--pending", "status--running", "status--done",
                         "status--failed", "status--blocked", "status--missed",
                         "status--skipped"}

    DEFAULT_CSS = """
    EngineHeader { height: 2; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.status: EngineStatus | None = None
        self.read_only = False
        self.now = dt.datetime(2000, 1, 1)
        self.counts: Counter[CellKey] = Counter()
        self.shown = 0
        self.total = 0
        self.filter_text = ""
        self.problem = ""
        self._last: tuple[object, ...] = ()

    def update_state(self, *, status: EngineStatus | None, read_only: bool, now: dt.datetime,
                     counts: Counter[CellKey], shown: int, total: int, filter_text: str,
                     problem: str = "") -> None:
        """New values; repaints only when something visible changed."""
        now = now.replace(second=0, microsecond=0)
        key = (status, read_only, now, tuple(sorted(counts.items())), shown, total,
               filter_text, problem)
        if key == self._last:
            return
        self._last = key
        (self.status, self.read_only, self.now, self.counts, self.shown, self.total,
         self.filter_text, self.problem) = (status, read_only, now, counts, shown, total,
                                            filter_text, problem)
        self.refresh()

    def render(self) -> Text:
        """Two lines of plain words, each state with its glyph."""
        title = self.get_component_rich_style("header--title", partial=True)
        alert = self.get_component_rich_style("header--alert", partial=True)
        dim = self.get_component_rich_style("header--dim", partial=True)
        first = Text(no_wrap=True, overflow="ellipsis")
        if self.read_only:
            first.append(" CONSULTATION ", alert)
            first.append(" ")
        if self.problem:
            first.append(f"✗ {self.problem}", alert)
        else:
            first.append(engine_text(self.status), title)
        first.append(" · ", dim)
        first.append(window_text(self.status))
        first.append(" · ", dim)
        clock = wall_clock(self.now)
        first.append(f"{WEEKDAYS[clock.weekday()]} {clock:%d/%m %H:%M}")
        second = Text(no_wrap=True, overflow="ellipsis")
        shown = (f"{self.shown}/{self.total} étab." if self.shown != self.total
                 else f"{self.total} étab.")
        room = (self.content_size.width or 80) - len(shown) - 3
        for density in (Density.WIDE, Density.NARROW, Density.MEDIUM):
            # Shorter words, then none, so that every count shows (80 columns).
            pieces = counts_line(self.counts, density)
            if sum(len(piece) + 1 for _style, piece in pieces) <= room:
                break
        for index, (style, piece) in enumerate(pieces):
            if index:
                second.append(" ")
            second.append(piece, self.get_component_rich_style(f"status--{style}",
                                                               partial=True))
        if not pieces:
            second.append("aucune unité", dim)
        second.append(" │ ", dim)
        second.append(shown)
        if self.filter_text:
            second.append(f" │ filtre : {self.filter_text}", dim)
        return Text("\n", no_wrap=True, overflow="ellipsis").join([first, second])
