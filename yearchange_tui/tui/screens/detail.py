"""One establishment: step history (dry run beside real), archives, rejects, N-1, access."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from yearchange_tui.importing.rules import SEVERITY_LABELS
from yearchange_tui.scheduling.fleet_text import running_on
from yearchange_tui.tui.bindings import bindings_for
from yearchange_tui.tui.detail_source import EstablishmentDetail, StepHistory, readable_counts
from yearchange_tui.tui.grid_model import COLUMNS, KIND_LABELS
from yearchange_tui.tui.screens.base import ConsoleScreen
from yearchange_tui.tui.screens.grid import step_choices
from yearchange_tui.tui.screens.modals import StepChoiceModal
from yearchange_tui.tui.widgets.console_footer import ConsoleFooter
from yearchange_tui.tui.widgets.engine_header import EngineHeader
from yearchange_tui.tui.widgets.fkey_bar import FKeyBar
from yearchange_tui.workflow.localtime import format_local
from yearchange_tui.workflow.models import UNIT_STATUS_GLYPHS, UNIT_STATUS_LABELS, UnitStatus
from yearchange_tui.workflow.units import QUEUE_STATE_GLYPHS, QUEUE_STATE_LABELS, QueueState

if TYPE_CHECKING:
    from yearchange_tui.tui.app import ModelChanges


def _when(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return format_local(value, "%d/%m à %H:%M")
    return value.strftime("%d/%m") if value else "—"


def _step_lines(step: StepHistory) -> list[str]:
    """The italic lines under a step: times, the dry run compared with, error, warnings."""
    lines = []
    if step.started_at or step.finished_at:
        lines.append(f"début {_when(step.started_at)}, fin {_when(step.finished_at)}, "
                     f"{step.attempts} tentative(s)")
    if step.dry_run_at and (step.started_at or step.real_counts):
        lines.append(f"comparé au passage à blanc du {_when(step.dry_run_at)}")
    elif step.dry_run_at:
        lines.append(f"passage à blanc du {_when(step.dry_run_at)}")
    elif (step.started_at or step.real_counts) and not step.dry_run_counts:
        lines.append("aucun passage à blanc avant l'exécution réelle : rien à comparer")
    if step.later_dry_runs:
        lines.append(f"{step.later_dry_runs} passage(s) à blanc fait(s) après l'exécution "
                     f"réelle (dernier le {_when(step.later_dry_run_at)}) : gardé(s) dans "
                     "l'historique, non comparé(s)")
    if step.error:
        lines.append(f"✗ {step.error}")
    lines.extend(f"! {warning}" for warning in step.warnings[:5])
    if len(step.warnings) > 5:
        lines.append(f"… et {len(step.warnings) - 5} autre(s) avertissement(s) (rapport "
                     "académique : yearchange dry-run --report)")
    return lines


def _counts_table(detail: EstablishmentDetail) -> Table:
    """One block per step (its label and state on their own line, so nothing is squeezed
    out at 80 columns), then its counts: dry run beside real, in French."""
    table = Table(box=None, padding=(0, 1), expand=True, show_edge=False)
    table.add_column("Compte", min_width=16, ratio=1, overflow="fold")
    table.add_column("À blanc", justify="right", overflow="fold", max_width=24)
    table.add_column("Réel", justify="right", overflow="fold", max_width=24)
    for step in detail.steps:
        status = UnitStatus(step.status)
        state = f"{UNIT_STATUS_GLYPHS[status]} {UNIT_STATUS_LABELS[status]}"
        if step.queue:
            queue = QueueState(step.queue)
            state = f"{QUEUE_STATE_GLYPHS[queue]} {QUEUE_STATE_LABELS[queue]}"
        table.add_row(Text(f"{step.label} — {state}", style="bold"), "", "")
        dry_run = readable_counts(step.dry_run_counts)
        real_counts = readable_counts(step.real_counts)
        for key in sorted(set(dry_run) | set(real_counts)):
            planned = dry_run.get(key)
            real = real_counts.get(key)
            differs = planned is not None and real is not None and planned != real
            real_text = Text(str(real) if real is not None else "—",
                             style="bold reverse" if differs else "")
            if differs:
                real_text.append(" ≠")
            table.add_row(f"  {key}", str(planned) if planned is not None else "—",
                          real_text)
        for line in _step_lines(step):
            table.add_row(Text(f"  {line}", style="italic"), "", "")
    return table


def render_detail(detail: EstablishmentDetail) -> Group:
    """The whole detail as Rich renderables."""
    parts: list[Any] = []
    kind = KIND_LABELS.get(detail.kind, detail.kind)
    closing = f", fermeture le {detail.closing_date:%d/%m/%Y}" if detail.closing_date else ""
    parts.append(Text(f"{detail.uai} — {detail.name} ({kind}), projet {detail.project}{closing}",
                      style="bold"))
    parts.append(Text("\nÉtapes : passage à blanc et exécution réelle", style="bold underline"))
    parts.append(_counts_table(detail))
    parts.append(Text(f"\nArchives de l'étape 2 ({len(detail.archives)})",
                      style="bold underline"))
    if detail.archives:
        archives = Table(box=None, padding=(0, 1), show_edge=False, expand=True)
        archives.add_column("Archive", overflow="fold")
        archives.add_column("Type", no_wrap=True)
        archives.add_column("Taille", justify="right", no_wrap=True)
        archives.add_column("SHA-256", no_wrap=True)
        for archive in detail.archives[:200]:
            archives.add_row(archive.key, archive.kind, f"{archive.size:,}".replace(",", " "),
                             archive.sha256[:16] + "…")
        parts.append(archives)
        if len(detail.archives) > 200:
            parts.append(Text(f"… et {len(detail.archives) - 200} autres archives."))
    else:
        parts.append(Text("Aucune archive (l'étape 2 n'a pas encore écrit d'archive)."))
    total = sum(detail.reject_counts.values())
    parts.append(Text(f"\nRejets AAF ({total})", style="bold underline"))
    if detail.reject_counts:
        parts.append(Text(" · ".join(f"{SEVERITY_LABELS.get(severity, severity)} : {count}"
                                     for severity, count in detail.reject_counts.items())))
    for row in detail.rejects[:10]:
        parts.append(Text(f"{SEVERITY_LABELS.get(row.severity, row.severity)} {row.code} "
                          f"({row.where}) : {row.message}", overflow="fold"))
    if not detail.rejects:
        parts.append(Text("Aucun rejet pour cet établissement."))
    parts.append(Text("\nClasses probablement héritées de l'année N-1", style="bold underline"))
    if detail.previous_year_classes:
        parts.extend(Text(f"! {line}") for line in detail.previous_year_classes)
    else:
        parts.append(Text("Aucune (ou l'annuaire N+1 n'est pas encore initialisé)."))
    parts.append(Text("\nBlocage des accès (élèves, parents)", style="bold underline"))
    parts.append(Text(detail.access_block or "Inconnu."))
    if detail.notes:
        parts.append(Text(""))
        parts.extend(Text(f"i {note}", style="italic") for note in detail.notes)
    return Group(*parts)


class DetailScreen(ConsoleScreen):
    """The detail of one establishment, read on a worker thread."""

    HELP_NAME = "detail"
    BINDINGS = bindings_for("detail")

    def __init__(self, uai: str) -> None:
        super().__init__()
        self.uai = uai

    def compose(self) -> ComposeResult:
        yield EngineHeader(id="header")
        with VerticalScroll(id="detail-scroll"):
            yield Static(Text(f"{self.uai} : chargement…"), id="detail-live")
            yield Static("", id="detail-body")
        yield ConsoleFooter()
        yield FKeyBar()

    def on_mount(self) -> None:
        self._update_live()
        self.load()
        self.query_one("#detail-scroll").focus()
        if any(cell.status is UnitStatus.RUNNING
               for cell in self.console.model.cells.get(self.uai, {}).values()):
            self.console.read_fleet()  # which worker runs it, without waiting for the poll

    def _update_live(self) -> None:
        app = self.console
        view = app.model.views.get(self.uai)
        header = self.query_one(EngineHeader)
        header.update_state(status=app.engine_status, read_only=app.read_only, now=app.now(),
                            counts=app.model.counts([self.uai]) if view else app.model.counts([]),
                            shown=1, total=1, filter_text=self.uai, problem=app.engine_problem)
        if view is None:
            return
        cells = app.model.cells[self.uai]
        line = Text()
        for column in COLUMNS:
            cell = cells[column.key]
            line.append(f"{column.title} : {cell.describe()}")
            if cell.status is UnitStatus.RUNNING and app.fleet is not None and (
                    worker := app.fleet.holder(self.uai, column.key)):
                line.append(f" — {running_on(worker)}", "bold")
            line.append("\n")
        self.query_one("#detail-live", Static).update(line)

    def on_fleet(self) -> None:
        """The fleet was read again: which worker runs each running unit."""
        self._update_live()

    def on_model_changes(self, changes: ModelChanges) -> None:
        """Live states of this establishment; the history is re-read when a unit ends."""
        if self.uai in changes.cells or changes.status_changed or changes.rows_rebuilt:
            self._update_live()
        keys = changes.cells.get(self.uai, set())
        cells = self.console.model.cells.get(self.uai, {})
        if any(cells.get(key) and cells[key].status is not UnitStatus.RUNNING for key in keys):
            self.load()

    @work(thread=True, exclusive=True, group="detail-read", exit_on_error=False,
          description="lecture du détail")
    def load(self) -> EstablishmentDetail | None:
        """Read the detail (worker thread)."""
        source = self.console.details
        if source is None:
            return None
        return source.detail(self.uai)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Show the detail, or why it could not be read."""
        if event.worker.group != "detail-read":
            return
        body = self.query_one("#detail-body", Static)
        if event.state is WorkerState.SUCCESS:
            detail = event.worker.result
            if detail is None:
                body.update(Text("Détail indisponible pour cet établissement (aucune source "
                                 "de détail, ou UAI inconnue)."))
            else:
                body.update(render_detail(detail))
        elif event.state is WorkerState.ERROR:
            body.update(Text(f"✗ Lecture du détail impossible : {event.worker.error}"))

    def action_close(self) -> None:
        """Back to the grid."""
        self.dismiss(None)

    def action_school_life(self) -> None:
        """Open the step-5 wizard of this establishment."""
        self.console.open_school_life(self.uai)

    def action_redo_archive(self) -> None:
        """Rebuild this establishment's step-2 archives."""
        self.console.confirm_redo_archive(self.uai)

    def action_dry_run(self) -> None:
        """Dry run of this establishment."""
        self.console.confirm_dry_run([self.uai])

    def action_run_step(self) -> None:
        """Run one step for this establishment (its UAI is typed for steps 1 to 3)."""
        def chosen(step_key: str | None) -> None:
            if step_key:
                self.console.confirm_run(step_key, [self.uai])

        self.app.push_screen(StepChoiceModal(f"Quelle étape lancer pour {self.uai} ?",
                                             step_choices()), chosen)
