"""Running units with a bar, a rate and an ETA; redrawn only when a value changed.

Above them, the progress of each batch this console asked for (« étape 2 : 12/37,
reste ~1 min »): the establishments of the request whose unit has ended, out of all of
them, and the time left at the pace seen since the request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.text import Text
from textual.widget import Widget

from yearchange_tui.tui.grid_model import COLUMN_BY_KEY, format_duration, format_rate
from yearchange_tui.workflow.models import UnitStatus

# A unit in one of these states has ended (for the batch count).
ENDED = frozenset({UnitStatus.DONE, UnitStatus.FAILED, UnitStatus.BLOCKED, UnitStatus.SKIPPED,
                   UnitStatus.MISSED})
# Requests that start a batch of units, and the grid column their units show in.
BATCH_ACTIONS = {"run": None, "retry": None, "dry-run": "dry-run"}
KEEP_ENDED_S = 60.0


@dataclass
class Batch:
    """The establishments of one request of this console, on one grid column."""

    column: str
    uais: tuple[str, ...]
    started: float
    ended_at_start: int | None = None
    finished: float | None = None  # when its last unit ended
    # A dry run re-does units already ended: one counts once it has been seen running.
    rerun: bool = False
    seen_running: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch stands: ``ended`` of ``total``, ``eta_s`` seconds left (or None)."""

    column: str
    ended: int
    total: int
    eta_s: float | None

    def describe(self) -> str:
        """« étape 2 : 12/37, reste ~1:05 »."""
        column = COLUMN_BY_KEY.get(self.column)
        label = column.medium_title if column else self.column
        text = f"{label} : {self.ended}/{self.total}"
        if self.eta_s is not None and self.ended < self.total:
            text += f", reste ~{format_duration(self.eta_s)}"
        return text


class BatchTracker:
    """The batches this console asked for, and their progress read from the grid.

    Args:
        clock: monotonic seconds (pinned in tests).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.batches: dict[str, Batch] = {}

    def requested(self, action: str, params: Mapping[str, Any]) -> None:
        """A request was sent: a run, a retry or a dry run of named establishments starts
        a batch on its column (replacing the column's previous batch)."""
        if action not in BATCH_ACTIONS:
            return
        column = BATCH_ACTIONS[action] or str(params.get("step") or "")
        uais = tuple(params.get("uais") or ())
        if column and uais:
            self.batches[column] = Batch(column, uais, self.clock(),
                                         rerun=action == "dry-run")

    def progress(self, status_of: Callable[[str, str], UnitStatus | None]
                 ) -> list[BatchProgress]:
        """Each batch's progress (``status_of(uai, column)`` reads the grid); a batch
        whose units have all ended stays shown for ``KEEP_ENDED_S`` seconds."""
        found = []
        for column, batch in list(self.batches.items()):
            states = [status_of(uai, column) for uai in batch.uais]
            batch.seen_running.update(uai for uai, state in zip(batch.uais, states, strict=True)
                                      if state is UnitStatus.RUNNING)
            ended = sum(1 for uai, state in zip(batch.uais, states, strict=True)
                        if state in ENDED and (not batch.rerun or uai in batch.seen_running))
            if batch.ended_at_start is None:
                batch.ended_at_start = ended if ended < len(states) else 0
            eta = None
            progressed = ended - batch.ended_at_start
            if progressed > 0:
                elapsed = self.clock() - batch.started
                eta = elapsed / progressed * (len(states) - ended)
            if ended >= len(states):
                batch.finished = batch.finished or self.clock()
                if self.clock() - batch.finished > KEEP_ENDED_S:
                    del self.batches[column]
                    continue
            else:
                batch.finished = None
            found.append(BatchProgress(column, ended, len(states), eta))
        return found


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
        self.batches: Sequence[BatchProgress] = ()
        self._key: tuple[Any, ...] = ()

    def set_units(self, units: list[tuple[str, str, Any]], paused: bool = False,
                  batches: Sequence[BatchProgress] = ()) -> None:
        """The running units (uai, column key, unit view) and the batches' progress;
        repaints when they changed."""
        key = (paused, tuple(batches),
               tuple((uai, column, unit.progress_done, unit.progress_total,
                      unit.rate_per_s, unit.eta_s) for uai, column, unit in units))
        if key == self._key:
            return
        self._key = key
        self.units = units
        self.paused = paused
        self.batches = tuple(batches)
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
        if self.batches:
            lines.append(Text("Lots : " + " · ".join(batch.describe() for batch in self.batches),
                              style=title_style, no_wrap=True, overflow="ellipsis"))
        room = max(0, self.size.height - len(lines))
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
