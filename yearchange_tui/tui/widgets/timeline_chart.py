"""June to September, days across: maintenance windows, planned and done steps and
milestones, today."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from yearchange_tui.tui.grid_model import COLUMNS

MONTHS = {6: "juin", 7: "juillet", 8: "août", 9: "septembre"}
LABEL_WIDTH = 15


@dataclass
class TimelineData:
    """What the chart draws."""

    today: dt.date
    first_day: dt.date
    last_day: dt.date
    windows: list[tuple[dt.date, dt.date, str]] = field(default_factory=list)
    planned: dict[str, Counter[dt.date]] = field(default_factory=dict)
    done: dict[str, Counter[dt.date]] = field(default_factory=dict)
    selected_uai: str = ""
    selected_dates: dict[str, dt.date] = field(default_factory=dict)


def _has_monday(span: tuple[dt.date, dt.date]) -> bool:
    length = (span[1] - span[0]).days + 1
    return any((span[0] + dt.timedelta(days=offset)).weekday() == 0 for offset in range(length))


def season(today: dt.date, year_n: int | None = None) -> tuple[dt.date, dt.date]:
    """June 1st to September 30th of the change-over summer."""
    year = (year_n + 1) if year_n is not None else today.year
    return dt.date(year, 6, 1), dt.date(year, 9, 30)


class TimelineChart(Widget):
    """The change-over summer as a chart, scaled to the width or one day per column."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"timeline--today", "timeline--window", "timeline--planned", "timeline--done",
                         "timeline--month", "timeline--label", "timeline--dim",
                         "timeline--selected"}

    DEFAULT_CSS = """
    TimelineChart { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: TimelineData | None = None
        self.start_offset = 0  # days from the first day, when one day per column
        self.zoomed = False

    def set_data(self, data: TimelineData) -> None:
        """New data to draw."""
        self.data = data
        self.refresh()

    def days_per_column(self) -> float:
        """1 when zoomed, else the summer spread over the width."""
        if self.data is None:
            return 1.0
        columns = self._columns()
        if not columns:
            return 1.0
        return ((columns[-1][1] - columns[0][0]).days + 1) / len(columns)

    def _columns(self) -> list[tuple[dt.date, dt.date]]:
        """The day span of each chart column."""
        assert self.data is not None
        room = max(10, self.size.width - LABEL_WIDTH)
        days = (self.data.last_day - self.data.first_day).days + 1
        if self.zoomed or room >= days:
            start = self.start_offset if self.zoomed else 0
            return [(self.data.first_day + dt.timedelta(days=day),) * 2
                    for day in range(start, min(days, start + room))]
        count = min(room, days)
        return [(self.data.first_day + dt.timedelta(days=index * days // count),
                 self.data.first_day + dt.timedelta(days=(index + 1) * days // count - 1))
                for index in range(count)]

    def render(self) -> Text:
        """Month line, windows line, one line per step, the selected establishment, legend."""
        if self.data is None:
            return Text("Calendrier : chargement…")
        data = self.data
        style = self.get_component_rich_style
        today_style = style("timeline--today", partial=True)
        window_style = style("timeline--window", partial=True)
        planned_style = style("timeline--planned", partial=True)
        done_style = style("timeline--done", partial=True)
        month_style = style("timeline--month", partial=True)
        label_style = style("timeline--label", partial=True)
        dim = style("timeline--dim", partial=True)
        selected_style = style("timeline--selected", partial=True)
        columns = self._columns()

        def has_today(span: tuple[dt.date, dt.date]) -> bool:
            return span[0] <= data.today <= span[1]

        lines: list[Text] = []
        month_chars = [" "] * len(columns)
        previous_month = None
        for index, (start, end) in enumerate(columns):
            month = end.month if end.day < start.day or end.month != start.month else start.month
            if index == 0:
                month = start.month
            if month != previous_month:
                previous_month = month
                for offset, char in enumerate("│" + MONTHS.get(month, "")):
                    if index + offset < len(month_chars):
                        month_chars[index + offset] = char
        month_line = Text(" " * LABEL_WIDTH + "".join(month_chars), style=month_style,
                          no_wrap=True)
        lines.append(month_line)

        def row(label: str, cell, label_style_: object = label_style) -> Text:  # type: ignore[no-untyped-def]
            line = Text(no_wrap=True)
            line.append(f"{label[:LABEL_WIDTH - 1]:<{LABEL_WIDTH}}", label_style_)  # type: ignore[arg-type]
            for span in columns:
                char, char_style = cell(span)
                if has_today(span) and char in (" ", "·"):
                    line.append("┃", today_style)
                else:
                    line.append(char, today_style + char_style if has_today(span) and
                                char_style else char_style)
            return line

        def window_cell(span: tuple[dt.date, dt.date]) -> tuple[str, object]:
            for start, end, _label in data.windows:
                if start <= span[1] and span[0] <= end:
                    return "▒", window_style
            return ("·" if _has_monday(span) else " "), dim

        lines.append(row("Fenêtres", window_cell))
        for column in COLUMNS:
            counts = data.planned.get(column.key, Counter())
            finished = data.done.get(column.key, Counter())

            def planned_cell(span: tuple[dt.date, dt.date], counts: Counter[dt.date] = counts,
                             finished: Counter[dt.date] = finished) -> tuple[str, object]:
                if any(span[0] <= day <= span[1] for day in counts):
                    return "█", planned_style
                if any(span[0] <= day <= span[1] for day in finished):
                    return "✓", done_style
                return ("·" if _has_monday(span) else " "), dim

            label = column.title if len(column.title) < LABEL_WIDTH else column.medium_title
            lines.append(row(label, planned_cell))
        if data.selected_uai:
            def selected_cell(span: tuple[dt.date, dt.date]) -> tuple[str, object]:
                for column in COLUMNS:
                    day = data.selected_dates.get(column.key)
                    if day is not None and span[0] <= day <= span[1]:
                        return (column.number or "•"), selected_style
                return ("·" if _has_monday(span) else " "), dim

            lines.append(row(data.selected_uai, selected_cell, selected_style))
        step = self.days_per_column()
        first, last = (columns[0][0], columns[-1][1]) if columns else (data.first_day,
                                                                         data.last_day)
        legend = Text(no_wrap=True, overflow="ellipsis")
        legend.append("█ planifié  ", planned_style)
        legend.append("✓ fait  ", done_style)
        legend.append("▒ fenêtre  ", window_style)
        legend.append(f"┃ aujourd'hui {data.today:%d/%m}  ", today_style)
        legend.append("· lundi", dim)
        per_column = "1 jour" if step <= 1 else f"{step:.1f} jours".replace(".", ",")
        scale = Text(f"{per_column} par colonne, du {first:%d/%m} au {last:%d/%m}", style=dim,
                     no_wrap=True, overflow="ellipsis")  # its own line: whole at 80 columns
        lines.append(Text(""))
        lines.append(legend)
        lines.append(scale)
        for start, end, label in data.windows[:3]:
            lines.append(Text(f"▒ {start:%d/%m}–{end:%d/%m} : {label}", style=dim,
                              no_wrap=True, overflow="ellipsis"))
        return Text("\n", no_wrap=True, overflow="ellipsis").join(lines)
