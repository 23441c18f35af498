"""Running units with a bar, a rate and an ETA; redrawn only when a value changed."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.widget import Widget

from yearchange_tui.tui.grid_model import COLUMN_BY_KEY, format_duration, format_rate


def bar(percent: int, width: int) -> tuple[str, str]:
    """The filled and empty parts of a text bar of ``width`` cells."""
    filled = max(0, min(width, round(width * percent / 100)))
    return "█" * filled, "░" * (width - filled)


class ProgressPane(Widget):
    """One line per running unit: UAI, step, bar, percent, items, rate, remaining time."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"progress--title", "progress--done", "progress--todo",
                         "progress--dim"}

    DEFAULT_CSS = """
    ProgressPane { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.units: list[tuple[str, str, Any]] = []
        self.paused = False
        self._key: tuple[Any, ...] = ()

    def set_units(self, units: list[tuple[str, str, Any]], paused: bool = False) -> None:
        """The running units (uai, column key, unit view); repaints when they changed."""
        key = (paused, tuple((uai, column, unit.progress_done, unit.progress_total,
                              unit.rate_per_s, unit.eta_s) for uai, column, unit in units))
        if key == self._key:
            return
        self._key = key
        self.units = units
        self.paused = paused
        self.refresh()

    def render(self) -> Text:
        """Title line then the units that fit."""
        title_style = self.get_component_rich_style("progress--title", partial=True)
        done_style = self.get_component_rich_style("progress--done", partial=True)
        todo_style = self.get_component_rich_style("progress--todo", partial=True)
        dim = self.get_component_rich_style("progress--dim", partial=True)
        width = max(20, self.size.width)
        lines = []
        heading = Text(no_wrap=True, overflow="ellipsis")
        count = len(self.units)
        if count:
            heading.append(f"Progression — {count} unité{'s' if count > 1 else ''} en cours",
                           title_style)
        else:
            heading.append("Progression — aucune unité en cours", title_style)
        if self.paused:
            heading.append("  ‖ moteur en pause : aucune nouvelle unité ne démarre", dim)
        lines.append(heading)
        room = max(0, self.size.height - 1)
        for uai, column_key, unit in self.units[:room]:
            column = COLUMN_BY_KEY.get(column_key)
            label = column.narrow_title if column else column_key
            percent = unit.percent
            tail = f" {percent:3d} %"
            extra = ""
            if unit.progress_total:
                extra += f" {unit.progress_done}/{unit.progress_total}"
            if unit.rate_per_s is not None:
                extra += f" {format_rate(unit.rate_per_s)}"
            if unit.eta_s is not None:
                extra += f" reste {format_duration(unit.eta_s)}"
            head = f"◐ {uai} {label:<7} "
            bar_width = max(5, min(30, width - len(head) - len(tail) - len(extra) - 1))
            filled, empty = bar(percent, bar_width)
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(head)
            line.append(filled, done_style)
            line.append(empty, todo_style)
            line.append(tail)
            line.append(extra, dim)
            lines.append(line)
        hidden = len(self.units) - room
        if hidden > 0 and lines:
            lines[-1] = Text(f"… et {hidden + 1} autres unités en cours", style=dim)
        return Text("\n", no_wrap=True, overflow="ellipsis").join(lines)
