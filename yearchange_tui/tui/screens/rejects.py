"""The rejects browser for support staff: filters, search, detail, CSV export, handled marks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Input, Select, Static
from textual.worker import Worker, WorkerState

from yearchange_tui.aaf.run import PERSON_KINDS
from yearchange_tui.french import os_error_text, plural
from yearchange_tui.importing.rules import SEVERITY_LABELS
from yearchange_tui.scheduling.api import EngineEventView
from yearchange_tui.tui.bindings import bindings_for
from yearchange_tui.tui.rejects_source import (
    RejectPage,
    RejectQuery,
    RejectRow,
    export_csv,
    handler_label,
)
from yearchange_tui.tui.screens.base import ConsoleScreen
from yearchange_tui.tui.screens.modals import TextPromptModal
from yearchange_tui.tui.screens.person import PersonScreen
from yearchange_tui.tui.widgets.console_footer import ConsoleFooter
from yearchange_tui.tui.widgets.fkey_bar import FKeyBar

SHORT_SEVERITY = {"erreur": "✗ erreur", "avertissement": "! avert.", "information": "i info"}


def reject_detail(row: RejectRow) -> Group:
    """The French explanation, the suggested action and the raw XML record."""
    where = row.where or "—"
    header = Text(f"{SEVERITY_LABELS.get(row.severity, row.severity)} · {row.code} · "
                  f"{row.uai or 'sans établissement'} · {where}", style="bold")
    lines: list[Any] = [header]
    if row.handled:
        lines.append(Text(row.handled_note))
    if row.record_id or row.kind:
        lines.append(Text(" ".join(part for part in ("Enregistrement", row.kind, row.record_id)
                                   if part)))
    if row.attribute:
        value = f"« {row.raw_value} »" if row.raw_value else "(valeur vide)"
        lines.append(Text(f"Attribut {row.attribute} : {value}"))
    lines.append(Text(f"Explication : {row.message}"))
    lines.append(Text(f"Action suggérée : {row.action or '—'}"))
    if row.raw_xml:
        lines.append(Text("Enregistrement XML brut :", style="bold"))
        lines.append(Text(row.raw_xml, no_wrap=True, overflow="ellipsis"))
    return Group(*lines)


class RejectsScreen(ConsoleScreen):
    """Every AAF reject, filtered by establishment, code, severity, kind and text."""

    HELP_NAME = "rejects"
    BINDINGS = bindings_for("rejects")

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, RejectRow] = {}
        self.total = 0
        self.hide_handled = True  # handled rejects are hidden by default, and counted
        self._last_stream_reload = 0.0
        self._facets_loaded = False

    def compose(self) -> ComposeResult:
        yield Static("Rejets AAF : chargement…", id="rejects-title")
        with Horizontal(id="rejects-filters"):
            yield Input(id="filter-uai", placeholder="u UAI", compact=True, max_length=8)
            yield Select([], prompt="code", id="filter-code", compact=True)
            yield Select([(label, key) for key, label in SEVERITY_LABELS.items()],
                         prompt="gravité", id="filter-severity", compact=True)
            yield Select([], prompt="type", id="filter-kind", compact=True)
            yield Input(id="filter-text", placeholder="/ recherche", compact=True)
        table: DataTable[Any] = DataTable(id="rejects-table", cursor_type="row", zebra_stripes=True)
        yield table
        with VerticalScroll(id="rejects-detail"):
            yield Static("", id="rejects-detail-body")
        yield ConsoleFooter()
        yield FKeyBar()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("✓", key="handled", width=1)
        table.add_column("Gravité", key="severity", width=8)
        table.add_column("UAI", key="uai", width=8)
        table.add_column("Code", key="code", width=25)
        table.add_column("Ligne", key="line", width=6)
        table.add_column("Explication", key="message", width=60)
        self.reload()
        table.focus()

    def on_screen_resume(self) -> None:
        self.reload()

    # -- reading ---------------------------------------------------------------------------------

    def current_query(self, limit: int = 2000) -> RejectQuery:
        """The query of the filter bar."""
        def selected(widget_id: str) -> str:
            value = self.query_one(widget_id, Select).value
            return value if isinstance(value, str) else ""

        return RejectQuery(uai=self.query_one("#filter-uai", Input).value.strip(),
                           code=selected("#filter-code"), severity=selected("#filter-severity"),
                           kind=selected("#filter-kind"),
                           text=self.query_one("#filter-text", Input).value.strip(),
                           hide_handled=self.hide_handled, limit=limit)

    def reload(self) -> None:
        """Read the rejects again (worker thread)."""
        self._read(self.current_query(), not self._facets_loaded)

    @work(thread=True, exclusive=True, group="rejects-read", exit_on_error=False,
          description="lecture des rejets")
    def _read(self, query: RejectQuery, with_facets: bool) -> tuple[RejectPage, Any]:
        source = self.console.rejects
        facets = source.facets() if with_facets else None
        return source.query(query), facets

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Show what was read, or why it failed."""
        if event.worker.group == "rejects-read":
            if event.state is WorkerState.SUCCESS:
                page, facets = event.worker.result
                if facets is not None:
                    self._set_facets(facets)
                self._show(page)
            elif event.state is WorkerState.ERROR:
                self.query_one("#rejects-title", Static).update(
                    Text(f"✗ Lecture des rejets impossible : {event.worker.error}"))
        elif event.worker.group == "rejects-export":
            if event.state is WorkerState.SUCCESS:
                path, count = event.worker.result
                self.notify(f"{count} rejet(s) exporté(s) : {path}", timeout=10)
            elif event.state is WorkerState.ERROR:
                error = event.worker.error
                reason = os_error_text(error) if isinstance(error, OSError) else str(error)
                self.notify(f"Export impossible : {reason}", severity="error")

    def _set_facets(self, facets: dict[str, list[str]]) -> None:
        self._facets_loaded = True
        with self.prevent(Select.Changed):
            self.query_one("#filter-code", Select).set_options(
                [(code, code) for code in facets.get("code", [])])
            self.query_one("#filter-kind", Select).set_options(
                [(kind, kind) for kind in facets.get("kind", [])])

    def _show(self, page: RejectPage) -> None:
        table = self.query_one(DataTable)
        keep = None
        if table.row_count and table.cursor_row < table.row_count:
            keep = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        table.clear()
        self.rows = {}
        variables = self.app.theme_variables
        colours = {"erreur": variables.get("reject-error"),
                   "avertissement": variables.get("reject-warning"),
                   "information": variables.get("reject-info")}
        for row in page.rows:
            key = str(row.id)
            self.rows[key] = row
            severity = Text(SHORT_SEVERITY.get(row.severity, row.severity),
                            style=colours.get(row.severity) or "")
            table.add_row("✓" if row.handled else " ", severity, row.uai or "—",
                          row.code, str(row.line or ""), row.message, key=key)
        if keep is not None and keep in self.rows:
            table.move_cursor(row=table.get_row_index(keep))
        self.total = page.total
        source = self.console.rejects
        title = Text(no_wrap=True, overflow="ellipsis")
        if not source.available:
            title.append(f"i {source.note}")
        else:
            title.append(f"Rejets AAF — {len(page.rows)}")
            if page.total != len(page.rows):
                title.append(f" affichés sur {page.total}")
            if page.handled:
                title.append(f" · {plural(page.handled, 'traité masqué', 'traités masqués')}"
                             if self.hide_handled else
                             f" · {plural(page.handled, 'traité', 'traités')}")
            filters = self.filters_shown()
            if filters:
                title.append(f" · {filters} · Échap : effacer")
            title.append(" · t : traité · x : export CSV · Entrée : détail")
        self.query_one("#rejects-title", Static).update(title)
        self._show_detail()

    def filters_shown(self) -> str:
        """Every filter set, as the title line shows it: « UAI 0698… · « noel » »."""
        query = self.current_query()
        parts = []
        if query.uai:
            parts.append(f"UAI {query.uai.upper()}{'' if len(query.uai) >= 8 else '…'}")
        parts.extend(value for value in (query.code, query.severity, query.kind) if value)
        if query.text:
            parts.append(f"« {query.text} »")
        return " · ".join(parts)

    def _current_row(self) -> RejectRow | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.rows.get(str(key))

    def _show_detail(self) -> None:
        row = self._current_row()
        body = self.query_one("#rejects-detail-body", Static)
        if row is None:
            body.update(Text("Aucun rejet ne correspond aux filtres." if
                             self.console.rejects.available else self.console.rejects.note))
        else:
            body.update(reject_detail(row))

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.action_toggle_detail()

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        self.reload()

    @on(Input.Submitted)
    def _input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        self.reload()

    def on_engine_events(self, events: list[EngineEventView]) -> None:
        """Rejects streaming from an import: read again, at most once a second."""
        if any(event.kind == "reject" for event in events):
            now = time.monotonic()
            if now - self._last_stream_reload >= 1.0:
                self._last_stream_reload = now
                self._facets_loaded = False
                self.reload()

    # -- actions ---------------------------------------------------------------------------------

    def action_search(self) -> None:
        """Focus the search box."""
        self.query_one("#filter-text", Input).focus()

    def action_filter_uai(self) -> None:
        """Focus the UAI filter (a UAI's beginning is enough)."""
        self.query_one("#filter-uai", Input).focus()

    def action_open_person(self) -> None:
        """The person screen of the current reject's record (why can't they log in)."""
        row = self._current_row()
        if row is None or not row.record_id or row.kind not in PERSON_KINDS:
            self.notify("Ce rejet ne concerne pas une personne.", timeout=3)
            return
        self.app.push_screen(PersonScreen(row.record_id))

    def action_toggle_detail(self) -> None:
        """Enter: the detail takes the screen, or gives it back."""
        self.toggle_class("-detail-expanded")
        if self.has_class("-detail-expanded"):
            self.query_one("#rejects-detail").focus()
        else:
            self.query_one(DataTable).focus()

    def action_mark_handled(self) -> None:
        """Mark the current reject handled, or not handled."""
        row = self._current_row()
        if row is None:
            return
        handled = not row.handled
        self.console.rejects.set_handled([row.id], handled)
        self.notify(f"Rejet {row.code} ({row.uai}) : "
                    + (f"traité par {handler_label()}" if handled else "à traiter"), timeout=2)
        self.reload()

    def action_hide_handled(self) -> None:
        """Show or hide handled rejects."""
        self.hide_handled = not self.hide_handled
        self.reload()

    def action_export_csv(self) -> None:
        """Ask for the export folder (pre-filled with the configured one), then export the
        filtered rejects there as CSV."""
        query = self.current_query(limit=1_000_000)

        def chosen(folder: str | None) -> None:
            if folder:
                self._export(query, Path(folder).expanduser())

        self.app.push_screen(TextPromptModal(
            "Export CSV des rejets", ["Dossier de l'export (créé s'il n'existe pas) :"],
            value=str(self.console.exports_dir), placeholder="/chemin/vers/le/dossier",
            validate=_folder_problem), chosen)

    @work(thread=True, exclusive=True, group="rejects-export", exit_on_error=False,
          description="export des rejets")
    def _export(self, query: RejectQuery, folder: Path) -> tuple[str, int]:
        page = self.console.rejects.query(query)
        uais = {row.uai for row in page.rows}
        uai = next(iter(uais)) if len(uais) == 1 else ""
        path = export_csv(page.rows, folder, self.console.now(), uai=uai)
        return str(path), len(page.rows)

    def action_clear_filters(self) -> None:
        """Escape: clear every filter."""
        if self.has_class("-detail-expanded"):
            self.action_toggle_detail()
            return
        with self.prevent(Input.Changed, Select.Changed):
            self.query_one("#filter-uai", Input).value = ""
            self.query_one("#filter-text", Input).value = ""
            for widget_id in ("#filter-code", "#filter-severity", "#filter-kind"):
                self.query_one(widget_id, Select).clear()
        self.reload()
        self.query_one(DataTable).focus()


def _folder_problem(text: str) -> str:
    """Why ``text`` cannot be the export folder (French), or ''."""
    if not text.strip():
        return "Indiquez un dossier."
    path = Path(text.strip()).expanduser()
    if path.exists() and not path.is_dir():
        return f"{path} n'est pas un dossier."
    return ""
