"""The live calendar grid: one line per establishment, one column per step.

A line-API scroll view: only visible lines are drawn, each line's strip is cached, and a
changed cell repaints only its own region, so 1,000 establishments with units running
stay fluid. The column layout follows the width (80 columns: glyph and short word;
wider: names and full words). Runs on the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from yearchange_tui.tui.grid_model import (
    COLUMNS,
    KIND_LABELS,
    KIND_SHORT,
    CellState,
    Density,
    GridModel,
)

MARK_WIDTH = 1
UAI_WIDTH = 9  # 8 characters and a space
STEP_WIDTH = {Density.NARROW: 8, Density.MEDIUM: 11, Density.WIDE: 17}
KIND_WIDTH = {Density.NARROW: 5, Density.MEDIUM: 8, Density.WIDE: 8}
MIN_NAME = 8
FROZEN_WIDTH = MARK_WIDTH + UAI_WIDTH  # what stays when the grid scrolls sideways


@dataclass(frozen=True)
class GridLayout:
    """Where each part of a line goes, for one width."""

    density: Density
    name_width: int  # 0 when names do not fit
    kind_width: int
    step_width: int
    step_x: tuple[int, ...]

    @property
    def width(self) -> int:
        """Total width of a line."""
        return self.step_x[-1] + self.step_width if self.step_x else 0


def compute_layout(width: int) -> GridLayout:
    """The densest readable layout for ``width`` columns."""
    fixed = MARK_WIDTH + UAI_WIDTH
    for density in (Density.WIDE, Density.MEDIUM):
        used = fixed + KIND_WIDTH[density] + len(COLUMNS) * STEP_WIDTH[density]
        min_name = 20 if density is Density.WIDE else 12
        if width - used - 1 >= min_name:
            return _layout(density, min(width - used - 1, 40), fixed)
    density = Density.NARROW
    used = fixed + KIND_WIDTH[density] + len(COLUMNS) * STEP_WIDTH[density]
    spare = width - used - 1
    return _layout(density, spare if spare >= MIN_NAME else 0, fixed)


def _layout(density: Density, name_width: int, fixed: int) -> GridLayout:
    x = fixed + (name_width + 1 if name_width else 0) + KIND_WIDTH[density]
    step_width = STEP_WIDTH[density]
    return GridLayout(density, name_width, KIND_WIDTH[density], step_width,
                      tuple(x + index * step_width for index in range(len(COLUMNS))))


def _fit(text: str, width: int) -> str:
    """``text`` cut or padded to exactly ``width`` cells (with an ellipsis when cut)."""
    if width <= 0:
        return ""
    if len(text) > width:
        return text[:width - 1] + "…"
    return text.ljust(width)


class CalendarGrid(ScrollView, can_focus=True):
    """Establishments × steps, live.

    Args:
        model: the grid model (shared with the screen).
        marked: UAIs the operator marked (shared with the screen).
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "grid--header", "grid--heading", "grid--cursor", "grid--cursor-row", "grid--marked",
        "grid--uai", "grid--dim",
        "status--pending", "status--running", "status--done", "status--failed",
        "status--blocked", "status--missed", "status--skipped", "status--none",
    }

    DEFAULT_CSS = """
    CalendarGrid {
        height: 1fr;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1, 0)", "Haut", show=False, id="grid-up"),
        Binding("down", "cursor(1, 0)", "Bas", show=False, id="grid-down"),
        Binding("left", "cursor(0, -1)", "Gauche", show=False, id="grid-left"),
        Binding("right", "cursor(0, 1)", "Droite", show=False, id="grid-right"),
        Binding("pageup", "page(-1)", "Page précédente", show=False, id="grid-page-up"),
        Binding("pagedown", "page(1)", "Page suivante", show=False, id="grid-page-down"),
        Binding("home", "edge(-1)", "Début", show=False, id="grid-home"),
        Binding("end", "edge(1)", "Fin", show=False, id="grid-end"),
    ]

    cursor_row: reactive[int] = reactive(0, init=False, repaint=False)
    cursor_column: reactive[int] = reactive(2, init=False, repaint=False)

    class CursorMoved(Message):
        """The cursor moved to another establishment or column."""

        def __init__(self, uai: str, column_key: str) -> None:
            super().__init__()
            self.uai = uai
            self.column_key = column_key

    def __init__(self, model: GridModel, marked: set[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self.marked = marked
        self.layout_spec = compute_layout(80)
        self._strips: dict[int, Strip] = {}
        self._styles: dict[str, Style] = {}
        # Cells scrolled off to the left when the steps do not fit (the UAI stays put).
        self.h_offset = 0
        self.cell_refreshes = 0
        self.full_refreshes = 0

    # -- data changes ------------------------------------------------------------------------

    def rows_changed(self, keep_uai: str | None = None) -> None:
        """The visible rows were rebuilt (filter, sort, grouping, membership)."""
        self._strips.clear()
        self.virtual_size = Size(self.size.width, len(self.model.rows) + 1)
        if keep_uai and keep_uai in self.model.row_index:
            self.set_reactive(CalendarGrid.cursor_row, self.model.row_index[keep_uai])
        self._clamp_cursor()
        self._scroll_to_cursor()
        self.full_refreshes += 1
        self.refresh()
        self._announce()

    def cells_changed(self, uai: str, column_keys: set[str]) -> None:
        """Repaint the changed cells of one establishment, if visible."""
        row_index = self.model.row_index.get(uai)
        if row_index is None:
            return
        self._strips.pop(row_index, None)
        y = self._line_of(row_index)
        if not 1 <= y < self.size.height:
            return
        layout = self.layout_spec
        for index, column in enumerate(COLUMNS):
            if column.key in column_keys or "*" in column_keys:
                self.cell_refreshes += 1
                x = layout.step_x[index] - self.h_offset
                self.refresh(Region(x, y, layout.step_width, 1) if x >= FROZEN_WIDTH else
                             Region(0, y, self.size.width, 1))
        if row_index == self.cursor_row:
            self._announce()

    def mark_changed(self, uais: set[str] | None = None) -> None:
        """Repaint the mark column for ``uais`` (all when None)."""
        if uais is None:
            self._strips.clear()
            self.refresh()
            return
        for uai in uais:
            row_index = self.model.row_index.get(uai)
            if row_index is None:
                continue
            self._strips.pop(row_index, None)
            y = self._line_of(row_index)
            if 1 <= y < self.size.height:
                self.refresh(Region(0, y, MARK_WIDTH, 1))

    # -- cursor --------------------------------------------------------------------------------

    @property
    def cursor_uai(self) -> str:
        """UAI under the cursor ('' on a heading or an empty grid)."""
        rows = self.model.rows
        if not rows or self.cursor_row >= len(rows):
            return ""
        return rows[self.cursor_row].uai

    @property
    def cursor_column_key(self) -> str:
        """Key of the column under the cursor."""
        return COLUMNS[self.cursor_column].key

    def _clamp_cursor(self) -> None:
        last = max(0, len(self.model.rows) - 1)
        self.set_reactive(CalendarGrid.cursor_row, min(max(0, self.cursor_row), last))

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.size.height - 1)
        top = int(self.scroll_offset.y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False, immediate=True)

    def _line_of(self, row_index: int) -> int:
        return row_index - int(self.scroll_offset.y) + 1

    def _refresh_row(self, row_index: int) -> None:
        self._strips.pop(row_index, None)
        y = self._line_of(row_index)
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def watch_cursor_row(self, old: int, new: int) -> None:
        self._refresh_row(old)
        self._scroll_to_cursor()
        self._refresh_row(new)
        self._announce()

    def watch_cursor_column(self, old: int, new: int) -> None:
        if self._follow_cursor_column():
            self.refresh()
        else:
            self._refresh_row(self.cursor_row)
            self.refresh(Region(0, 0, self.size.width, 1))
        self._announce()

    def _follow_cursor_column(self) -> bool:
        """Scroll sideways so the cursor's column shows when the steps do not fit;
        True when the offset changed."""
        layout = self.layout_spec
        shown = self.size.width - FROZEN_WIDTH
        before = self.h_offset
        if layout.width <= self.size.width or shown <= layout.step_width:
            self.h_offset = 0
        else:
            start = layout.step_x[self.cursor_column] - FROZEN_WIDTH
            end = start + layout.step_width
            if self.cursor_column == 0:
                start = 0  # back to the first step: show the name and type again
            if start < self.h_offset:
                self.h_offset = start
            elif end > self.h_offset + shown:
                self.h_offset = end - shown
            self.h_offset = max(0, min(self.h_offset, layout.width - FROZEN_WIDTH - shown))
        return self.h_offset != before

    def _announce(self) -> None:
        self.post_message(self.CursorMoved(self.cursor_uai, self.cursor_column_key))

    def action_cursor(self, rows: int, columns: int) -> None:
        """Move the cursor."""
        if rows:
            self.cursor_row = min(max(0, self.cursor_row + rows), max(0, len(self.model.rows) - 1))
        if columns:
            self.cursor_column = min(max(0, self.cursor_column + columns), len(COLUMNS) - 1)

    def action_page(self, direction: int) -> None:
        """Move the cursor one page."""
        self.action_cursor(direction * max(1, self.size.height - 2), 0)

    def action_edge(self, direction: int) -> None:
        """Go to the first or last line."""
        self.cursor_row = 0 if direction < 0 else max(0, len(self.model.rows) - 1)

    def on_click(self, event: events.Click) -> None:
        """A click moves the cursor (the mouse is never required)."""
        if event.y == 0:
            return
        row_index = int(self.scroll_offset.y) + event.y - 1
        if 0 <= row_index < len(self.model.rows):
            self.cursor_row = row_index
        x_in_line = event.x + (self.h_offset if event.x >= FROZEN_WIDTH else 0)
        for index, x in enumerate(self.layout_spec.step_x):
            if x <= x_in_line < x + self.layout_spec.step_width:
                self.cursor_column = index

    # -- rendering -----------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        """Choose the layout for the new width."""
        self.layout_spec = compute_layout(event.size.width - 1)
        self._strips.clear()
        self.virtual_size = Size(event.size.width, len(self.model.rows) + 1)
        self._scroll_to_cursor()
        self._follow_cursor_column()

    def notify_style_update(self) -> None:
        """Theme or CSS changed: forget cached styles and strips."""
        super().notify_style_update()
        self._styles.clear()
        self._strips.clear()

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self.get_component_rich_style(name, partial=True)
            self._styles[name] = style
        return style

    def _header_strip(self, width: int) -> Strip:
        layout = self.layout_spec
        style = self.rich_style + self._style("grid--header")
        parts = [" " * MARK_WIDTH, _fit("UAI", UAI_WIDTH)]
        if layout.name_width:
            parts.append(_fit("Nom", layout.name_width + 1))
        parts.append(_fit("Type", layout.kind_width))
        segments = [Segment("".join(parts), style)]
        for index, column in enumerate(COLUMNS):
            title = {Density.NARROW: column.narrow_title, Density.MEDIUM: column.medium_title,
                     Density.WIDE: column.title}[layout.density]
            text = _fit(title, layout.step_width - 1) + " "
            column_style = style + self._style("grid--cursor-row") if (
                index == self.cursor_column) else style
            segments.append(Segment(text, column_style))
        used = layout.width
        if width > used:
            segments.append(Segment(" " * (width - used), style))
        return Strip(segments).crop(0, width)

    def _row_strip(self, row_index: int, width: int) -> Strip:
        cached = self._strips.get(row_index)
        if cached is not None:
            return cached
        row = self.model.rows[row_index]
        base = self.rich_style
        is_cursor_row = row_index == self.cursor_row
        row_style = base + self._style("grid--cursor-row") if is_cursor_row else base
        if row.is_heading:
            style = base + self._style("grid--heading")
            if is_cursor_row:
                style += self._style("grid--cursor")
            strip = Strip([Segment(_fit(f" {row.heading}", width), style)])
            self._strips[row_index] = strip
            return strip
        view = self.model.views[row.uai]
        cells = self.model.cells[row.uai]
        layout = self.layout_spec
        marked = row.uai in self.marked
        segments = [
            Segment("●" if marked else " ", row_style + self._style("grid--marked")),
            Segment(_fit(view.uai, UAI_WIDTH), row_style + self._style("grid--uai")),
        ]
        if layout.name_width:
            segments.append(Segment(_fit(view.name, layout.name_width) + " ", row_style))
        kind = (KIND_SHORT if layout.density is Density.NARROW else KIND_LABELS).get(
            view.kind, view.kind)
        segments.append(Segment(_fit(kind, layout.kind_width - 1) + " ",
                                 row_style + self._style("grid--dim")))
        for index, column in enumerate(COLUMNS):
            cell = cells.get(column.key, CellState(None))
            style = row_style + self._style(f"status--{cell.style_name}")
            if is_cursor_row and index == self.cursor_column:
                style += self._style("grid--cursor")
            segments.append(Segment(_fit(cell.text(layout.density), layout.step_width - 1),
                                     style))
            segments.append(Segment(" ", row_style))
        used = layout.width
        if width > used:
            segments.append(Segment(" " * (width - used), row_style))
        strip = Strip(segments).crop(0, width)
        self._strips[row_index] = strip
        return strip

    def render_line(self, y: int) -> Strip:
        """One screen line: the header on line 0, then the rows from the scroll offset;
        scrolled sideways past the UAI when the steps do not fit."""
        width = self.size.width
        full = max(width, self.layout_spec.width)
        if y == 0:
            return self._scrolled(self._header_strip(full), width, header=True)
        row_index = int(self.scroll_offset.y) + y - 1
        if row_index >= len(self.model.rows):
            return Strip.blank(width, self.rich_style)
        return self._scrolled(self._row_strip(row_index, full), width)

    def _scrolled(self, strip: Strip, width: int, header: bool = False) -> Strip:
        if not self.h_offset:
            return strip.crop(0, width)
        start = FROZEN_WIDTH + self.h_offset
        shown = Strip.join([strip.crop(0, FROZEN_WIDTH), strip.crop(start, start + width
                                                                    - FROZEN_WIDTH)])
        if header:  # say that columns are hidden on the left
            shown = Strip.join([shown.crop(0, FROZEN_WIDTH - 1),
                                Strip([Segment("◂", self.rich_style + self._style("grid--header"))]),
                                shown.crop(FROZEN_WIDTH, width)])
        return shown
