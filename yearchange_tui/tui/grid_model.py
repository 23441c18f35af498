"""The calendar grid as data: columns, cell states, French cell text, filter, sort, groups.

Pure Python (no Textual import), so it is unit-tested alone and shared by the grid
widget, the timeline, the header counts and the bench. Runs on the UI thread.

A client reports the pseudo-steps of the grid (``dry-run``, ``warnings``,
``access-block``) as extra entries of :attr:`EstablishmentView.units` under those
string keys, read from the engine's own sources (the plan it schedules from, the access
block's window); a column it leaves out is not planned (the dry run is then derived from
the steps' dry-run reports).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from itertools import chain
from typing import Any

from yearchange_tui.changeover.steps import UNIT_STEPS, StepDefinition
from yearchange_tui.scheduling.api import EstablishmentView
from yearchange_tui.workflow.establishments import KIND_LABELS
from yearchange_tui.workflow.models import UNIT_STATUS_GLYPHS, UNIT_STATUS_LABELS, UnitStatus
from yearchange_tui.workflow.units import (
    QUEUE_STATE_GLYPHS,
    QUEUE_STATE_LABELS,
    QUEUE_STATE_NARROW,
    QUEUE_STATE_SHORT,
    QueueState,
)


class Density(enum.Enum):
    """How much a cell says, chosen from the width of the terminal."""

    NARROW = "narrow"  # 80 columns: glyph + short word, date or percent
    MEDIUM = "medium"  # ~120 columns: glyph + word, date or percent, names shown
    WIDE = "wide"  # 175+ columns: glyph + word + date or percent


@dataclass(frozen=True)
class ColumnDef:
    """One step column of the grid."""

    key: str
    number: str  # "0".."5", or "" for the unnumbered pseudo-steps
    title: str  # wide header
    medium_title: str  # ≤ 10 characters
    narrow_title: str  # ≤ 7 characters
    real_step: bool  # a unit of the engine (steps 1 to 5)


SEED_COLUMNS: tuple[ColumnDef, ...] = (
    ColumnDef("dry-run", "0", "0 Passage à blanc", "0 À blanc", "0 blanc", False),
    ColumnDef("warnings", "", "Avertissements", "Avertiss.", "Avert.", False),
    ColumnDef("purge-trash", "1", "1 Corbeille", "1 Corbeil.", "1 corb.", True),
    ColumnDef("archive", "2", "2 Archivage", "2 Archiv.", "2 arch.", True),
    ColumnDef("delete-obsolete", "3", "3 Suppression", "3 Suppr.", "3 supp.", True),
    ColumnDef("init-directory", "4", "4 Annuaire", "4 Annuaire", "4 ann.", True),
    ColumnDef("access-block", "", "Blocage des accès", "Blocage", "Blocage", False),
    ColumnDef("init-school-life", "5", "5 Vie scolaire", "5 Vie sco.", "5 v.sc.", True),
)


def _declared_step_column(definition: StepDefinition) -> ColumnDef:
    """The column of a step added after the seed's (``declare_step``)."""
    title = f"{definition.number} {definition.label}"
    return ColumnDef(str(definition.key), str(definition.number), title, title[:10],
                     title[:7], True)


_SEED_KEYS = {column.key for column in SEED_COLUMNS}
COLUMNS: tuple[ColumnDef, ...] = SEED_COLUMNS + tuple(
    _declared_step_column(definition) for definition in UNIT_STEPS
    if str(definition.key) not in _SEED_KEYS)
"""The seed's columns, then one per step a module declared after them."""
COLUMN_BY_KEY = {column.key: column for column in COLUMNS}
STEP_COLUMN_KEYS = tuple(column.key for column in COLUMNS if column.real_step)

KIND_SHORT = {"college": "col.", "lycee": "lyc.", "other": "aut."}

# Words of a pending cell: "planifié" when it has a date, "en attente" otherwise.
WORD_PLANNED = "planifié"
WORD_WAITING = "en attente"
WORD_NOT_PLANNED = "non prévu"
GLYPH_NOT_PLANNED = "·"

NARROW_WORDS = {
    UnitStatus.PENDING: "att.",
    UnitStatus.RUNNING: "cours",
    UnitStatus.DONE: "fini",
    UnitStatus.FAILED: "échec",
    UnitStatus.BLOCKED: "bloq.",
    UnitStatus.MISSED: "manq.",
    UnitStatus.SKIPPED: "ign.",
}
MEDIUM_WORDS = {**UNIT_STATUS_LABELS, UnitStatus.PENDING: "attente"}
QUEUE_WIDE_WORDS = {**QUEUE_STATE_SHORT, QueueState.INTERRUPTED: "interrompu"}

CellKey = UnitStatus | QueueState
"""What a cell is counted and filtered as: its place in the engine's queue when it waits
there (en file, prérequis, interrompu), else its unit status (:attr:`CellState.state`)."""

# Most urgent first: the order of the state sort and of the header counts.
STATUS_URGENCY: tuple[CellKey, ...] = (
    UnitStatus.FAILED, UnitStatus.BLOCKED, UnitStatus.MISSED, UnitStatus.RUNNING,
    QueueState.INTERRUPTED, QueueState.WAITING, QueueState.QUEUED, UnitStatus.PENDING,
    UnitStatus.DONE, UnitStatus.SKIPPED)
STATE_FILTERS: tuple[CellKey | None, ...] = (
    None, UnitStatus.RUNNING, UnitStatus.FAILED, UnitStatus.BLOCKED, UnitStatus.MISSED,
    QueueState.QUEUED, QueueState.WAITING, QueueState.INTERRUPTED, UnitStatus.PENDING,
    UnitStatus.DONE, UnitStatus.SKIPPED)


def state_glyph(key: CellKey) -> str:
    """The glyph of a counted state (the cell's own glyph)."""
    if isinstance(key, QueueState):
        return QUEUE_STATE_GLYPHS[key]
    return UNIT_STATUS_GLYPHS[key]


def state_label(key: CellKey) -> str:
    """The French word of a counted state (header counts, state filter)."""
    if isinstance(key, QueueState):
        return QUEUE_WIDE_WORDS[key]
    return UNIT_STATUS_LABELS[key]


def state_style(key: CellKey) -> str:
    """The colour class suffix of a counted state (a waiting unit is still pending)."""
    return UnitStatus.PENDING.value if isinstance(key, QueueState) else key.value
KIND_FILTERS: tuple[str | None, ...] = (None, "college", "lycee", "other")


class SortKey(enum.Enum):
    """Orders of the grid (cycled with one key)."""

    UAI = "UAI"
    NAME = "nom"
    KIND = "type"
    STATE = "état de la colonne"
    DATE = "date de la colonne"


@dataclass(frozen=True)
class CellState:
    """What one cell shows: a status (None: not planned), a date or a progress."""

    status: UnitStatus | None
    planned_on: dt.date | None = None
    percent: int | None = None
    word: str | None = None  # replaces the status word (e.g. "actif" for the access block)
    detail: str = ""  # longer French text for the info line (error, rate, ETA)
    queue: QueueState | None = None  # queued, waiting for a prerequisite, interrupted

    @property
    def glyph(self) -> str:
        """The non-colour signal of the status."""
        if self.queue is not None:
            return QUEUE_STATE_GLYPHS[self.queue]
        return GLYPH_NOT_PLANNED if self.status is None else UNIT_STATUS_GLYPHS[self.status]

    @property
    def status_word(self) -> str:
        """The full French word of the state."""
        if self.word:
            return self.word
        if self.queue is not None:
            return QUEUE_STATE_LABELS[self.queue]
        if self.status is None:
            return WORD_NOT_PLANNED
        if self.status is UnitStatus.PENDING:
            return WORD_PLANNED if self.planned_on else WORD_WAITING
        return UNIT_STATUS_LABELS[self.status]

    @property
    def state(self) -> CellKey | None:
        """What the cell counts as: its queue state when it waits, else its status (None:
        not planned). The header counts, the state filter and the state sort read this."""
        return self.queue if self.queue is not None else self.status

    @property
    def style_name(self) -> str:
        """Component class suffix for the colour (``status--done``…)."""
        return "none" if self.status is None else self.status.value

    def text(self, density: Density) -> str:
        """The cell text for ``density`` (fits the column width of that density)."""
        status = self.status
        if status is None:
            return f"{GLYPH_NOT_PLANNED} —"
        if self.queue is not None:
            words = {Density.NARROW: QUEUE_STATE_NARROW, Density.MEDIUM: QUEUE_STATE_SHORT,
                     Density.WIDE: QUEUE_WIDE_WORDS}[density]
            return f"{self.glyph} {words[self.queue]}"
        glyph = UNIT_STATUS_GLYPHS[status]
        date = self.planned_on.strftime("%d/%m") if self.planned_on else ""
        percent = f"{self.percent} %" if self.percent is not None else ""
        if density is Density.WIDE:
            words = self.status_word
            if status is UnitStatus.RUNNING and percent:
                return f"{glyph} {words} {percent}"
            if status is UnitStatus.PENDING and date:
                return f"{glyph} {words} {date}"
            return f"{glyph} {words}"
        if status is UnitStatus.RUNNING and percent:
            return f"{glyph} {percent}"
        if status is UnitStatus.PENDING and date:
            return f"{glyph} {date}"
        if self.word:
            return f"{glyph} {self.word[:5 if density is Density.NARROW else 8]}"
        words_table = NARROW_WORDS if density is Density.NARROW else MEDIUM_WORDS
        return f"{glyph} {words_table[status]}"

    def describe(self) -> str:
        """A full French sentence fragment: glyph, word, date or progress, detail."""
        parts = [f"{self.glyph} {self.status_word}"]
        if self.status is UnitStatus.RUNNING and self.percent is not None:
            parts.append(f"{self.percent} %")
        if self.planned_on and self.queue is None and self.status in (
                UnitStatus.PENDING, UnitStatus.MISSED, None):
            parts.append(f"le {self.planned_on.strftime('%d/%m/%Y')}")
        if self.detail:
            parts.append(f"— {self.detail}")
        return " ".join(parts)


def format_duration(seconds: float | None) -> str:
    """``1:05:09`` or ``4:02`` for a duration; ``?`` when unknown."""
    if seconds is None or seconds < 0:
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def format_rate(rate: float | None) -> str:
    """A rate in French notation (``3,5/s``)."""
    if rate is None:
        return "?/s"
    return f"{rate:.1f}/s".replace(".", ",")


def _unit_cell(unit: Any) -> CellState:
    status = UnitStatus(unit.status)
    percent = None
    detail = ""
    if status is UnitStatus.RUNNING:
        done, total = unit.progress_done, unit.progress_total
        percent = unit.percent if total else None
        bits = [f"{done}/{total}"] if total else []
        if unit.rate_per_s is not None:
            bits.append(format_rate(unit.rate_per_s))
        if unit.eta_s is not None:
            bits.append(f"reste {format_duration(unit.eta_s)}")
        detail = ", ".join(bits)
    elif unit.error:
        detail = unit.error
    word = getattr(unit, "word", None)
    queue_value = getattr(unit, "queue", "")
    queue = QueueState(queue_value) if queue_value and status is UnitStatus.PENDING else None
    return CellState(status, unit.planned_on, percent, word, detail, queue)


def cells_for(view: EstablishmentView) -> dict[str, CellState]:
    """The state of every column of one establishment's row."""
    units: Mapping[Any, Any] = view.units
    cells: dict[str, CellState] = {}
    for column in COLUMNS:
        unit = units.get(column.key)
        if unit is not None:
            cell = _unit_cell(unit)
            if column.key == "access-block" and cell.status is UnitStatus.RUNNING:
                cell = replace(cell, word="actif", percent=None, detail=unit.error)
            cells[column.key] = cell
        elif column.real_step:
            cells[column.key] = CellState(UnitStatus.PENDING)
        else:
            cells[column.key] = _derived_cell(column.key, view)
    return cells


def _derived_cell(key: str, view: EstablishmentView) -> CellState:
    """Pseudo-step cells when the client does not report them."""
    steps = [view.units.get(step_key) for step_key in STEP_COLUMN_KEYS[:3]]
    if key == "dry-run":
        if steps and all(unit is not None and unit.dry_run_done for unit in steps):
            return CellState(UnitStatus.DONE)
        started = (UnitStatus.RUNNING, UnitStatus.DONE, UnitStatus.FAILED, UnitStatus.BLOCKED)
        if any(unit is not None and unit.status in started for unit in steps):
            return CellState(UnitStatus.SKIPPED, detail="étapes 1 à 3 déjà lancées")
        return CellState(UnitStatus.PENDING)
    if key == "access-block":
        # Whether a block is planned, in force or lifted is the access block's own
        # decision (workflow/access_block.py), reported by the client; a finished step 4
        # says nothing about it.
        if view.access_blocked:
            return CellState(UnitStatus.RUNNING, word="actif",
                             detail="accès élèves et parents bloqués")
        return CellState(None)
    return CellState(None)


@dataclass(frozen=True)
class GridRow:
    """One line of the grid body: a project heading or an establishment."""

    uai: str  # "" for a heading
    heading: str = ""

    @property
    def is_heading(self) -> bool:
        """True for a project heading line."""
        return not self.uai


@dataclass
class GridFilter:
    """What the operator narrowed the grid to."""

    text: str = ""
    status: CellKey | None = None
    kind: str | None = None

    def describe(self) -> str:
        """French summary, empty when nothing is filtered."""
        parts = []
        if self.text:
            parts.append(f"« {self.text} »")
        if self.status is not None:
            parts.append(f"état {state_glyph(self.status)} {state_label(self.status)}")
        if self.kind is not None:
            parts.append(KIND_LABELS.get(self.kind, self.kind))
        return ", ".join(parts)


@dataclass
class GridModel:
    """Every establishment, its cells, and the visible ordered rows."""

    views: dict[str, EstablishmentView] = field(default_factory=dict)
    cells: dict[str, dict[str, CellState]] = field(default_factory=dict)
    filter: GridFilter = field(default_factory=GridFilter)
    sort_key: SortKey = SortKey.UAI
    sort_column: str = "purge-trash"
    grouped: bool = False
    rows: list[GridRow] = field(default_factory=list)
    row_index: dict[str, int] = field(default_factory=dict)
    visible_counts: Counter[CellKey] = field(default_factory=Counter)
    """Cells per state over the visible rows, kept up to date by :meth:`update`."""
    running_keys: set[tuple[str, str]] = field(default_factory=set)
    """(uai, column key) of the units running now."""
    search_text: dict[str, str] = field(default_factory=dict)
    """The folded text the filter searches, per UAI (built when a view changes, not per
    keystroke)."""
    cell_states: dict[str, tuple[CellKey, ...]] = field(default_factory=dict)
    """The counted states of each establishment's cells (:meth:`counts`), per UAI."""
    _uai_order: list[str] | None = None
    _rows_by_uai: dict[str, GridRow] = field(default_factory=dict)

    # -- data --------------------------------------------------------------------------------

    def replace_all(self, views: Iterable[EstablishmentView]) -> None:
        """Load a full set of establishments (first load, or establishments added/removed)."""
        self.views = {view.uai: view for view in views}
        self.cells = {uai: cells_for(view) for uai, view in self.views.items()}
        self.search_text = {uai: _search_text(view) for uai, view in self.views.items()}
        self.cell_states = {uai: _counted_states(cells) for uai, cells in self.cells.items()}
        self._uai_order = None
        self._rows_by_uai = {}
        self.running_keys = {(uai, key) for uai, view in self.views.items()
                             for key in _running_keys(view)}
        self.rebuild_rows()

    def update(self, view: EstablishmentView) -> set[str]:
        """Take a newer view of one establishment; return the column keys whose cell changed.

        A new UAI is added (the caller rebuilds the rows when it gets ``{"*"}``).
        """
        uai = view.uai
        old_cells = self.cells.get(uai)
        old_view = self.views.get(uai)
        self.views[uai] = view
        new_cells = cells_for(view)
        self.cells[uai] = new_cells
        self.cell_states[uai] = _counted_states(new_cells)
        if old_view is None or (old_view.name, old_view.project_code, old_view.kind) != (
                view.name, view.project_code, view.kind):
            self.search_text[uai] = _search_text(view)
        if old_view is None:
            self._uai_order = None
        if old_view is not None:
            self.running_keys.difference_update((uai, key) for key in _running_keys(old_view))
        self.running_keys.update((uai, key) for key in _running_keys(view))
        if old_cells is None:
            return {"*"}
        changed = {key for key, cell in new_cells.items() if old_cells.get(key) != cell}
        if changed and uai in self.row_index:
            for key in changed - {"access-block"}:
                before, after = old_cells[key].state, new_cells[key].state
                if before is not None:
                    self.visible_counts[before] -= 1
                if after is not None:
                    self.visible_counts[after] += 1
        return changed

    def remove(self, uai: str) -> None:
        """Forget an establishment (the caller rebuilds the rows)."""
        view = self.views.pop(uai, None)
        self.cells.pop(uai, None)
        self.search_text.pop(uai, None)
        self.cell_states.pop(uai, None)
        self._rows_by_uai.pop(uai, None)
        self._uai_order = None
        if view is not None:
            self.running_keys.difference_update((uai, key) for key in _running_keys(view))

    # -- visible rows ------------------------------------------------------------------------

    def matches(self, view: EstablishmentView) -> bool:
        """True when ``view`` passes the filter."""
        wanted = self.filter
        if wanted.kind is not None and view.kind != wanted.kind:
            return False
        if wanted.status is not None and all(
                cell.state is not wanted.status for cell in self.cells[view.uai].values()):
            return False
        return not wanted.text or wanted.text.casefold() in self.search_text[view.uai]

    def _sort_value(self, view: EstablishmentView) -> tuple[Any, ...]:
        if self.sort_key is SortKey.NAME:
            return (view.name.casefold(), view.uai)
        if self.sort_key is SortKey.KIND:
            return (view.kind, view.uai)
        cell = self.cells[view.uai].get(self.sort_column, CellState(None))
        if self.sort_key is SortKey.STATE:
            rank = (STATUS_URGENCY.index(cell.state) if cell.state is not None
                    else len(STATUS_URGENCY))
            return (rank, -(cell.percent or 0), view.uai)
        if self.sort_key is SortKey.DATE:
            return (cell.planned_on or dt.date.max, view.uai)
        return (view.uai,)

    def rebuild_rows(self) -> None:
        """Recompute the visible rows after a filter, sort, grouping or membership change."""
        if self.sort_key is SortKey.UAI:
            # UAI order is kept between rebuilds: a keystroke of the filter only filters.
            if self._uai_order is None:
                self._uai_order = sorted(self.views)
            views = self.views
            visible = [views[uai] for uai in self._uai_order]
        else:
            visible = sorted(self.views.values(), key=self._sort_value)
        wanted = self.filter
        if wanted.kind is None and wanted.status is None and wanted.text:
            # A keystroke in the filter box: one substring test per establishment.
            needle, text = wanted.text.casefold(), self.search_text
            visible = [view for view in visible if needle in text[view.uai]]
        elif wanted != GridFilter():
            visible = [view for view in visible if self.matches(view)]
        rows: list[GridRow] = []
        if self.grouped:
            by_project: dict[str, list[EstablishmentView]] = {}
            for view in visible:
                by_project.setdefault(view.project_code or "—", []).append(view)
            for project in sorted(by_project):
                members = by_project[project]
                rows.append(GridRow("", f"Projet {project} — {len(members)} établissement(s)"))
                rows.extend(GridRow(view.uai) for view in members)
        else:
            known = self._rows_by_uai
            rows = [known.get(view.uai) or known.setdefault(view.uai, GridRow(view.uai))
                    for view in visible]
        self.rows = rows
        self.row_index = {row.uai: index for index, row in enumerate(rows) if row.uai}
        self.visible_counts = self.counts(self.row_index)

    @property
    def visible_uais(self) -> list[str]:
        """UAIs of the visible establishments, in grid order."""
        return [row.uai for row in self.rows if row.uai]

    def counts(self, uais: Iterable[str] | None = None) -> Counter[CellKey]:
        """Cells per state over the columns of ``uais`` (all when None); a unit waiting
        in the engine's queue counts under its queue state, never as « planifié », and an
        access block in force is not work « en cours » (as :func:`_running_keys`)."""
        states = self.cell_states
        return Counter(chain.from_iterable(
            states[uai] for uai in (self.views if uais is None else uais)))

    def running(self) -> list[tuple[str, str, Any]]:
        """(uai, column key, unit) of every running unit that reports progress."""
        found = [(uai, key, self.views[uai].units[key]) for uai, key in self.running_keys]
        found.sort(key=lambda item: (item[1], item[0]))
        return found


def _search_text(view: EstablishmentView) -> str:
    """What the text filter searches in: UAI, name, project and kind, folded."""
    return " ".join((view.uai, view.name, view.project_code,
                     KIND_LABELS.get(view.kind, view.kind))).casefold()


def _counted_states(cells: Mapping[str, CellState]) -> tuple[CellKey, ...]:
    """The states :meth:`GridModel.counts` counts for one establishment's cells (the
    access block in force is not work « en cours »)."""
    return tuple(cell.state for key, cell in cells.items()
                 if cell.state is not None and key != "access-block")


def _running_keys(view: EstablishmentView) -> list[str]:
    """Column keys of the running units of one view (a block in force is not work)."""
    return [str(key) for key, unit in view.units.items()
            if unit is not None and str(key) != "access-block"
            and UnitStatus(unit.status) is UnitStatus.RUNNING]


HEADER_NARROW_WORDS: dict[CellKey, str] = {
    **NARROW_WORDS, **QUEUE_STATE_NARROW,
    UnitStatus.PENDING: "", UnitStatus.DONE: "", UnitStatus.SKIPPED: ""}
"""The header's words at 80 columns: the grid's narrow cell words for what needs the
operator (échec, file, int.…); ○ ✓ – alone for the calm states."""


def counts_line(counts: Counter[CellKey], density: Density = Density.WIDE
                ) -> list[tuple[str, str]]:
    """Header fragments ``("failed", "✗ 3 échec")`` (colour class suffix, text) for each
    state present, most urgent first; queued, waiting and interrupted units apart.
    ``NARROW`` uses the grid's short words (``✗ 3 échec``, ``‖ 1 int.``); ``MEDIUM`` drops
    the words (``✗ 3``) when even those would not fit: the glyphs are those of the cells,
    explained in the help (F1)."""
    def word(key: CellKey) -> str:
        if density is Density.NARROW:
            return f" {HEADER_NARROW_WORDS[key]}" if HEADER_NARROW_WORDS[key] else ""
        return "" if density is Density.MEDIUM else f" {state_label(key)}"

    return [(state_style(key), f"{state_glyph(key)} {counts[key]}{word(key)}")
            for key in STATUS_URGENCY if counts.get(key)]
