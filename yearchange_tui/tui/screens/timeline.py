"""The summer at a glance: windows, planned and done steps and milestones from June to
September, today marked (the operator's date)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from itertools import chain
from typing import TYPE_CHECKING

from textual.app import ComposeResult

from yearchange_tui.tui.bindings import bindings_for
from yearchange_tui.tui.grid_model import COLUMNS
from yearchange_tui.tui.screens.base import ConsoleScreen
from yearchange_tui.tui.widgets.console_footer import ConsoleFooter
from yearchange_tui.tui.widgets.engine_header import EngineHeader
from yearchange_tui.tui.widgets.fkey_bar import FKeyBar
from yearchange_tui.tui.widgets.timeline_chart import TimelineChart, TimelineData, season
from yearchange_tui.workflow.localtime import to_local, wall_clock
from yearchange_tui.workflow.models import UnitStatus

_LONGEST_SPAN = 60  # days: a milestone spanning more is drawn on its first day only


def _days(first: dt.date, last: dt.date | None) -> list[dt.date]:
    """Each day from ``first`` to ``last`` (``first`` alone without an end)."""
    if last is None or last < first or (last - first).days > _LONGEST_SPAN:
        return [first]
    return [first + dt.timedelta(days=offset) for offset in range((last - first).days + 1)]


if TYPE_CHECKING:
    from yearchange_tui.tui.app import ModelChanges
    from yearchange_tui.tui.grid_model import CellState, GridModel

_Span = tuple[bool, str, dt.date, "dt.date | None"]
"""What one cell puts on the chart: (done, column key, first day, last day or None)."""


class TimelineTally:
    """Units per day and column over the grid's visible establishments, counted from what
    changed: each establishment's spans are kept until its cells change (the model
    replaces an establishment's cells dictionary when its view changes), and the chart's
    days come from the distinct spans (a few dozen dates), not from every cell."""

    def __init__(self) -> None:
        self._rows: object = None
        self._spans: dict[str, tuple[dict[str, CellState], tuple[_Span, ...]]] = {}
        self._counted: dict[str, tuple[_Span, ...]] = {}
        self.spans: Counter[_Span] = Counter()
        """Visible establishments per span."""

    def _spans_of(self, model: GridModel, uai: str) -> tuple[_Span, ...]:
        cells = model.cells[uai]
        kept = self._spans.get(uai)
        if kept is not None and kept[0] is cells:
            return kept[1]
        units = model.views[uai].units
        spans = tuple(
            (cell.status is UnitStatus.DONE, key, cell.planned_on,
             getattr(units.get(key), "ends_on", None))
            for key, cell in cells.items()
            if cell.planned_on is not None and cell.status not in (None, UnitStatus.SKIPPED))
        self._spans[uai] = (cells, spans)
        return spans

    def sync(self, model: GridModel) -> None:
        """Bring the counts to the model's visible rows and cells."""
        visible = model.row_index
        if model.rows is not self._rows:
            self._rows = model.rows
            self._counted = {uai: self._spans_of(model, uai) for uai in visible}
            self.spans = Counter(chain.from_iterable(self._counted.values()))
            for uai in [uai for uai in self._spans if uai not in model.cells]:
                del self._spans[uai]
            return
        cells = model.cells
        for uai, counted in self._counted.items():
            kept = self._spans.get(uai)
            if kept is not None and kept[0] is cells.get(uai):
                continue
            self.spans.subtract(counted)
            now = self._spans_of(model, uai) if uai in cells else ()
            self.spans.update(now)
            self._counted[uai] = now
        self.spans = +self.spans

    def days(self) -> tuple[dict[str, Counter[dt.date]], dict[str, Counter[dt.date]],
                            list[int]]:
        """Planned and done units per column and day, and the years they fall in."""
        planned: dict[str, Counter[dt.date]] = {column.key: Counter() for column in COLUMNS}
        done: dict[str, Counter[dt.date]] = {column.key: Counter() for column in COLUMNS}
        years = set()
        for (is_done, key, first, last), count in self.spans.items():
            target = (done if is_done else planned).setdefault(key, Counter())
            for day in _days(first, last):
                target[day] += count
            years.add(first.year)
        return planned, done, sorted(years)


class TimelineScreen(ConsoleScreen):
    """June to September, days across."""

    HELP_NAME = "timeline"
    BINDINGS = bindings_for("timeline")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.tally = TimelineTally()
        """The chart's counts, kept up to date from what changed."""

    def compose(self) -> ComposeResult:
        yield EngineHeader(id="header")
        yield TimelineChart(id="timeline")
        yield ConsoleFooter()
        yield FKeyBar()

    def on_mount(self) -> None:
        self.refresh_all()
        self.query_one(TimelineChart).focus()

    def on_screen_resume(self) -> None:
        self.refresh_all()

    def on_model_changes(self, changes: ModelChanges) -> None:
        """Planned dates or states moved: redraw (the chart is small)."""
        self.refresh_all()

    def build_data(self) -> TimelineData:
        """Units per day and column for the visible establishments, planned and done apart.

        Every column is read from the grid's cells, which the client builds from the
        engine's own sources (the plan, the access block's window), so the chart, the grid
        and ``plan`` agree; a milestone that spans days (the access block) covers each of
        its days.
        """
        app = self.console
        model = app.model
        today = wall_clock(app.now()).date()
        self.tally.sync(model)
        planned, done, years = self.tally.days()
        first, last = season(today, (min(years) - 1) if years else None)
        windows: list[tuple[dt.date, dt.date, str]] = []
        status = app.engine_status
        if status is not None and status.next_window is not None:
            window = status.next_window
            windows.append((to_local(window.starts_at).date(), to_local(window.ends_at).date(),
                            window.label))
        steps = Counter(planned["purge-trash"]) + Counter(done["purge-trash"])
        for day in sorted(steps):
            windows.append((day, day, f"étapes 1 à 3 ({steps[day]} étab.)"))
        directory = Counter(planned["init-directory"]) + Counter(done["init-directory"])
        for day in sorted(directory):
            windows.append((day, day, f"étape 4 ({directory[day]} étab.)"))
        seen = set()
        unique = []
        for window in windows:
            if window[:2] not in seen:
                seen.add(window[:2])
                unique.append(window)
        selected = app.cursor_uai if app.cursor_uai in model.cells else ""
        selected_dates = {key: cell.planned_on for key, cell in model.cells[selected].items()
                          if cell.planned_on} if selected else {}
        return TimelineData(today=today, first_day=first, last_day=last, windows=unique,
                            planned=planned, done=done, selected_uai=selected,
                            selected_dates=selected_dates)

    def refresh_all(self) -> None:
        """Redraw the header and the chart."""
        self.update_grid_header()
        self.query_one(TimelineChart).set_data(self.build_data())

    def action_shift(self, days: int) -> None:
        """Move a week earlier or later (zoomed), or back to today."""
        chart = self.query_one(TimelineChart)
        if chart.data is None:
            return
        if not chart.zoomed:
            chart.zoomed = True
        if days == 0:
            chart.start_offset = max(0, (chart.data.today - chart.data.first_day).days - 7)
        else:
            span = (chart.data.last_day - chart.data.first_day).days
            chart.start_offset = min(max(0, chart.start_offset + days), span)
        chart.refresh()

    async def action_back(self) -> None:
        """Escape: back to the grid."""
        await self.console.action_show_mode("grid")

    def action_zoom(self) -> None:
        """One day per column, or the whole summer in the width."""
        chart = self.query_one(TimelineChart)
        chart.zoomed = not chart.zoomed
        chart.refresh()
