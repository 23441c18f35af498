"""The step-5 wizard of one establishment: periods, dates, alternations, summary, the check.

Everything it proposes comes from :mod:`yearchange_tui.timetable.school_life` through the
console's school-life source (read and written on worker threads). Edits stay in the
form until « Valider », which writes the periods and dates, then asks the engine to run
step 5 (a ``run`` request, as ``r`` in the grid) and shows its answer. Échap closes
without writing anything.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Static
from textual.worker import Worker, WorkerState, get_current_worker

from yearchange_tui.ent.models import PeriodKind
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.timetable.school_life import (
    PERIOD_KIND_LABELS,
    STEP,
    MissingItem,
    PeriodProposal,
    SchoolLifeError,
    SchoolLifeProposal,
    period_problem,
    propose_periods,
)
from yearchange_tui.tui.bindings import bindings_for
from yearchange_tui.tui.school_life_source import (
    READ_ONLY_REFUSAL,
    EngineAnswer,
    EngineVerdict,
    SchoolLifeOutcome,
    SchoolLifeRefused,
    SchoolLifeState,
    follow_step_request,
)
from yearchange_tui.tui.screens.base import ConsoleScreen
from yearchange_tui.tui.screens.modals import ConfirmModal
from yearchange_tui.tui.widgets.console_footer import ConsoleFooter
from yearchange_tui.tui.widgets.fkey_bar import FKeyBar
from yearchange_tui.workflow.models import UNIT_STATUS_GLYPHS, UNIT_STATUS_LABELS, UnitStatus

DATE_PATTERN = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
WEEKS_SHOWN = 8


def parse_form_date(text: str, first_day: dt.date | None = None,
                    last_day: dt.date | None = None) -> tuple[dt.date | None, str]:
    """A ``JJ/MM/AAAA`` field: the date, or None and a French problem.

    Args:
        text: what the operator typed.
        first_day: earliest date accepted (the school year's window), if any.
        last_day: latest date accepted, if any.
    """
    text = text.strip()
    if not text:
        return None, "date manquante (JJ/MM/AAAA)"
    match = DATE_PATTERN.match(text)
    if match is None:
        return None, f"« {text} » n'est pas une date au format JJ/MM/AAAA"
    day, month, year = (int(part) for part in match.groups())
    try:
        value = dt.date(year, month, day)
    except ValueError:
        return None, f"le {text} n'existe pas"
    if first_day is not None and last_day is not None and not first_day <= value <= last_day:
        return None, (f"le {value:%d/%m/%Y} est hors de l'année scolaire "
                      f"({first_day:%d/%m/%Y} → {last_day:%d/%m/%Y})")
    return value, ""


def school_year_bounds(label: str) -> tuple[dt.date, dt.date] | None:
    """1 August to 31 August of the next year, for a label such as ``2026-2027``."""
    try:
        start = int(label[:4])
    except ValueError:
        return None
    return dt.date(start, 8, 1), dt.date(start + 1, 8, 31)


def weeks_text(weeks: tuple[int, ...]) -> str:
    """``18 semaines (36, 38, 40, …)``."""
    shown = ", ".join(str(week) for week in weeks[:WEEKS_SHOWN])
    more = ", …" if len(weeks) > WEEKS_SHOWN else ""
    return f"{len(weeks)} semaine{'s' if len(weeks) > 1 else ''} ({shown}{more})"


def step_state_text(step_status: str) -> str:
    """``○ planifié`` from a unit status value."""
    try:
        status = UnitStatus(step_status)
    except ValueError:
        return step_status
    return f"{UNIT_STATUS_GLYPHS[status]} {UNIT_STATUS_LABELS[status]}"


def check_text(items: list[MissingItem], school_year: str) -> Group:
    """The missing-items check: ✗ blocks step 5, ! is to complete; each with its action."""
    heading = Text(f"Ce qui manque avant l'ouverture du cahier de textes {school_year}",
                   style="bold underline")
    if not items:
        return Group(heading, Text("✓ Rien ne manque."))
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(no_wrap=True, width=1)
    table.add_column(ratio=1)
    for item in items:
        line = Text(item.label, style="bold" if item.blocking else "")
        line.append(f" — {item.detail}", style="")
        line.append(f"\n→ {item.action}", style="italic")
        table.add_row("✗" if item.blocking else "!", line)
    return Group(heading, table, Text("✗ bloque l'étape 5 · ! à compléter", style="dim"))


def summary_text(state: SchoolLifeState) -> Text:
    """Alternations, then what comes from the timetable and the AAF (not edited here)."""
    existing = state.proposal.existing
    text = Text()
    text.append("Alternances", style="bold")
    text.append(" (de l'emploi du temps) : ")
    if state.alternations:
        text.append(" · ".join(f"{row.name} — {weeks_text(row.weeks)}"
                               for row in state.alternations))
    else:
        text.append("aucune (tous les cours chaque semaine, ou emploi du temps non importé)")
    text.append("\nRepris de l'emploi du temps et de l'AAF", style="bold")
    text.append(" (l'assistant ne les modifie pas) : ")
    if not state.next_year_exists:
        text.append("rien encore, l'année N+1 n'existe pas (étape 4).")
        return text
    text.append(f"{existing.get('services', 0)} service(s) d'enseignement · "
                f"{existing.get('cours', 0)} cours hebdomadaire(s) · "
                f"{existing.get('professeurs_principaux', 0)} professeur(s) principal(aux) "
                f"pour {existing.get('classes', 0)} classe(s) · "
                f"{existing.get('imports_emploi_du_temps', 0)} import(s) d'emploi du temps")
    return text


def verdict_text(outcome: SchoolLifeOutcome) -> tuple[str, str, SeverityLevel]:
    """(glyph, French verdict, notification severity) of the engine's answer to « Valider »."""
    answer = outcome.answer
    items = outcome.state.status.items
    blocking = [item for item in items if item.blocking]
    step_done = outcome.state.status.step_status == UnitStatus.DONE.value
    verdict = answer.verdict
    if verdict is EngineVerdict.UNCHANGED:
        verdict = EngineVerdict.DONE if step_done else EngineVerdict.QUEUED
    number = f"demande n° {answer.request_id}" if answer.request_id else "demande"
    if verdict is EngineVerdict.DONE and not items:
        return "✓", "Étape 5 terminée : rien ne manque.", "information"
    if verdict is EngineVerdict.DONE:
        return "✓", (f"Étape 5 terminée ; {len(items)} point(s) à compléter "
                     "(ci-dessous, !)."), "information"
    if verdict is EngineVerdict.MISSING:
        return "⊘", (f"Étape 5 pas encore terminée : {len(blocking)} point(s) manquent "
                     "encore (ci-dessous, ✗)."), "warning"
    if verdict is EngineVerdict.REFUSED:
        return "⊘", f"Étape 5 refusée par le moteur : {answer.message}", "error"
    if verdict is EngineVerdict.FAILED:
        return "✗", f"Étape 5 en échec : {answer.message}", "error"
    if not answer.engine_runs:
        return "○", (f"Étape 5 en file ({number}) : aucun moteur ne tourne ; elle partira "
                     "à son démarrage (yearchange engine)."), "warning"
    return "○", (f"Étape 5 en file dans le moteur ({number}) : la grille montrera son "
                 "état."), "information"


def _other_kind(kind: PeriodKind) -> PeriodKind:
    return PeriodKind.SEMESTER if kind is PeriodKind.TRIMESTER else PeriodKind.TRIMESTER


class PeriodKindToggle(Widget, can_focus=True):
    """Trimesters or semesters, each shown with a glyph and a word (Espace, ← →)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space,enter", "toggle", "Changer", show=False),
        Binding("left", "choose('trimester')", show=False),
        Binding("right", "choose('semester')", show=False),
    ]
    DEFAULT_CSS = """
    PeriodKindToggle { height: 1; width: auto; padding: 0 1; }
    """

    class Changed(Message):
        """The operator chose another kind."""

        def __init__(self, toggle: PeriodKindToggle, kind: PeriodKind) -> None:
            super().__init__()
            self.toggle = toggle
            self.kind = kind

    def __init__(self, kind: PeriodKind = PeriodKind.TRIMESTER, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.kind = kind

    def render(self) -> Text:
        """``◉ trimestres   ○ semestres``."""
        line = Text()
        for index, kind in enumerate(PeriodKind):
            if index:
                line.append("   ")
            chosen = kind is self.kind
            line.append(f"{'◉' if chosen else '○'} {PERIOD_KIND_LABELS[kind]}",
                        style="bold" if chosen else "")
        return line

    def show_kind(self, kind: PeriodKind) -> None:
        """Show ``kind`` without telling anyone (loading, undoing a refused change)."""
        self.kind = kind
        self.refresh()

    def action_choose(self, kind: str) -> None:
        """Choose one kind."""
        chosen = PeriodKind(kind)
        if chosen is not self.kind:
            self.show_kind(chosen)
            self.post_message(self.Changed(self, chosen))

    def action_toggle(self) -> None:
        """The other kind."""
        self.action_choose(_other_kind(self.kind).value)

    def on_click(self) -> None:
        self.action_toggle()


def _date_input(input_id: str, value: dt.date | None = None) -> Input:
    return Input(f"{value:%d/%m/%Y}" if value else None, id=input_id, compact=True,
                 max_length=10, restrict=r"[0-9/]*", placeholder="JJ/MM/AAAA",
                 classes="date-input")


class PeriodsEditor(Vertical):
    """One row per period: its name, start and end dates, and the row's error line."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.periods: list[PeriodProposal] = []

    def compose(self) -> ComposeResult:
        for period in self.periods:
            with Horizontal(classes="form-row"):
                yield Label(period.name, classes="form-label")
                yield Label("du ", classes="form-word")
                yield _date_input(f"period-{period.position}-starts", period.starts_on)
                yield Label(" au ", classes="form-word")
                yield _date_input(f"period-{period.position}-ends", period.ends_on)
            yield Static("", id=f"period-{period.position}-error", classes="form-error")

    async def show(self, periods: list[PeriodProposal]) -> None:
        """Rebuild the rows for these periods."""
        self.periods = list(periods)
        await self.recompose()


@dataclass
class FormReading:
    """The form as typed: the proposal to write, or None with the problems shown."""

    proposal: SchoolLifeProposal | None
    first_invalid: Input | None = None


class SchoolLifeScreen(ConsoleScreen):
    """The step-5 wizard of one establishment, read and written on worker threads."""

    HELP_NAME = "school-life"
    BINDINGS = bindings_for("school-life")

    def __init__(self, uai: str) -> None:
        super().__init__()
        self.uai = uai
        self.state: SchoolLifeState | None = None
        self.result_text: Text | None = None

    def compose(self) -> ComposeResult:
        yield Static(f"Vie scolaire N+1 — {self.uai} : chargement…", id="school-life-title")
        with VerticalScroll(id="school-life-scroll"):
            yield Static("", id="school-life-intro")
            with Horizontal(classes="form-row"):
                yield Label("Découpage", classes="form-label")
                yield PeriodKindToggle(id="period-kind")
            with Horizontal(classes="form-row"):
                yield Label("Ouverture", classes="form-label")
                yield _date_input("opens-on")
                yield Label("  Fermeture ", classes="form-word")
                yield _date_input("closes-on")
            yield Static("", id="dates-error", classes="form-error")
            yield Static(Text("Périodes", style="bold"), id="periods-heading")
            yield PeriodsEditor(id="periods")
            yield Static("", id="periods-error", classes="form-error")
            yield Static("", id="school-life-summary")
            yield Static("", id="school-life-result")
            yield Static("", id="school-life-check")
        with Horizontal(id="school-life-buttons"):
            yield Button("Valider", id="school-life-apply", compact=True)
            yield Button("Recalculer les périodes", id="school-life-recut", compact=True)
            yield Button("Fermer", id="school-life-close", compact=True)
        yield ConsoleFooter()
        yield FKeyBar()

    def on_mount(self) -> None:
        for error_id in ("#dates-error", "#periods-error", "#school-life-result"):
            self.query_one(error_id).display = False
        self.set_form_enabled(False)
        self.load()

    def set_form_enabled(self, enabled: bool) -> None:
        """Inputs and buttons are usable once the establishment is read."""
        for widget in self.query("Input, Button, PeriodKindToggle"):
            if widget.id != "school-life-close":
                widget.disabled = not enabled

    # -- reading -------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="school-life-read", exit_on_error=False,
          description="lecture de la vie scolaire")
    def load(self) -> SchoolLifeState | None:
        """Read the proposal and the check (worker thread)."""
        source = self.console.school_life
        if source is None:
            return None
        return source.load(self.uai)

    async def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Show what was read or written, or why it failed."""
        group = event.worker.group
        if group == "school-life-read":
            if event.state is WorkerState.SUCCESS:
                state = event.worker.result
                if state is None:
                    self.query_one("#school-life-title", Static).update(
                        f"Vie scolaire N+1 — {self.uai} : établissement inconnu.")
                    return
                await self.show_state(state)
            elif event.state is WorkerState.ERROR:
                self.query_one("#school-life-title", Static).update(Text(
                    f"✗ Vie scolaire — {self.uai} : lecture impossible ({event.worker.error})"))
        elif group == "school-life-write":
            if event.state is WorkerState.SUCCESS:
                outcome = event.worker.result
                assert isinstance(outcome, SchoolLifeOutcome)
                await self.show_outcome(outcome)
            elif event.state is WorkerState.ERROR:
                self.show_write_error(event.worker.error)

    async def show_state(self, state: SchoolLifeState) -> None:
        """Fill the form and the check from a fresh reading."""
        self.state = state
        proposal = state.proposal
        title = Text(f"Vie scolaire {proposal.school_year} — {proposal.uai} {proposal.name}"
                     f" · étape 5 : {step_state_text(state.status.step_status)}")
        if self.console.read_only:
            title.append(" · mode consultation")
        self.query_one("#school-life-title", Static).update(title)
        intro = Text()
        intro.append(f"Proposé d'après : {proposal.source}. ")
        intro.append("Modifiez si besoin puis Valider (F7) ; Échap ferme sans rien écrire.",
                     style="italic")
        if state.guard_problem:
            intro.append(f"\n⊘ {state.guard_problem} Valider sera refusé.", style="bold")
        elif not state.next_year_exists:
            intro.append("\n⊘ L'année N+1 n'existe pas encore (l'étape 4 la crée) : Valider "
                         "sera refusé.", style="bold")
        self.query_one("#school-life-intro", Static).update(intro)
        self.query_one(PeriodKindToggle).show_kind(proposal.period_kind)
        self.query_one("#opens-on", Input).value = f"{proposal.opens_on:%d/%m/%Y}"
        self.query_one("#closes-on", Input).value = f"{proposal.closes_on:%d/%m/%Y}"
        await self.query_one(PeriodsEditor).show(proposal.periods)
        self.query_one("#school-life-summary", Static).update(summary_text(state))
        self.query_one("#school-life-check", Static).update(
            check_text(state.status.items, proposal.school_year))
        self.set_form_enabled(True)
        self.read_form()
        self.query_one(PeriodKindToggle).focus()

    # -- the form ------------------------------------------------------------------------------

    def _show_error(self, widget_id: str, problems: list[str]) -> None:
        error = self.query_one(widget_id, Static)
        error.update(Text("✗ " + " ; ".join(problems)) if problems else "")
        error.display = bool(problems)

    def _year_bounds(self) -> tuple[dt.date, dt.date] | tuple[None, None]:
        """The dates a field accepts: the N+1 school year being set (none before reading)."""
        bounds = school_year_bounds(self.state.proposal.school_year) if self.state else None
        return bounds or (None, None)

    def read_form(self) -> FormReading:
        """Check every field, show each problem beside its field, build the proposal."""
        if self.state is None:
            return FormReading(None)
        proposal = self.state.proposal
        first_day, last_day = self._year_bounds()
        invalid: list[Input] = []

        def field(input_id: str, what: str, problems: list[str]) -> dt.date | None:
            box = self.query_one(f"#{input_id}", Input)
            value, problem = parse_form_date(box.value, first_day, last_day)
            box.set_class(bool(problem), "-invalid-date")
            if problem:
                problems.append(f"{what} : {problem}")
                invalid.append(box)
            return value

        date_problems: list[str] = []
        opens_on = field("opens-on", "ouverture", date_problems)
        closes_on = field("closes-on", "fermeture", date_problems)
        if opens_on and closes_on and closes_on <= opens_on:
            date_problems.append(f"la fermeture ({closes_on:%d/%m/%Y}) doit suivre "
                                 f"l'ouverture ({opens_on:%d/%m/%Y})")
            invalid.append(self.query_one("#closes-on", Input))
        self._show_error("#dates-error", date_problems)
        periods: list[PeriodProposal] = []
        complete = True
        for period in self.query_one(PeriodsEditor).periods:
            row_problems: list[str] = []
            starts_on = field(f"period-{period.position}-starts", "début", row_problems)
            ends_on = field(f"period-{period.position}-ends", "fin", row_problems)
            self._show_error(f"#period-{period.position}-error", row_problems)
            if starts_on is None or ends_on is None:
                complete = False
                continue
            periods.append(PeriodProposal(period.position, period.name, starts_on, ends_on))
        problem = ""
        if complete and periods:
            problem = period_problem(periods, opens_on, closes_on)
        self._show_error("#periods-error", [problem[:1].upper() + problem[1:]] if problem
                         else [])
        if invalid or problem or not complete or opens_on is None or closes_on is None:
            return FormReading(None, invalid[0] if invalid else None)
        kind = self.query_one(PeriodKindToggle).kind
        return FormReading(replace(proposal, period_kind=kind, periods=periods,
                                   opens_on=opens_on, closes_on=closes_on))

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        if self.state is not None:
            self.read_form()

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        """Entrée in a date moves to the next field, as in a paper form."""
        event.stop()
        self.focus_next()

    @on(PeriodKindToggle.Changed)
    async def _kind_changed(self, event: PeriodKindToggle.Changed) -> None:
        if not await self.recut(event.kind):
            event.toggle.show_kind(_other_kind(event.kind))

    async def recut(self, kind: PeriodKind) -> bool:
        """Cut the year again into ``kind`` from the opening and closing dates typed."""
        if self.state is None:
            return False
        first_day, last_day = self._year_bounds()
        opens_on, _ = parse_form_date(self.query_one("#opens-on", Input).value,
                                      first_day, last_day)
        closes_on, _ = parse_form_date(self.query_one("#closes-on", Input).value,
                                       first_day, last_day)
        if opens_on is None or closes_on is None:
            self._show_error("#periods-error", [
                "Corrigez les dates d'ouverture et de fermeture avant de découper l'année."])
            return False
        try:
            periods = propose_periods(kind, opens_on, closes_on)
        except SchoolLifeError as error:
            self._show_error("#periods-error", [str(error)])
            return False
        await self.query_one(PeriodsEditor).show(periods)
        self.read_form()
        return True

    # -- actions -------------------------------------------------------------------------------

    @on(Button.Pressed, "#school-life-apply")
    def _apply_pressed(self) -> None:
        self.action_apply()

    @on(Button.Pressed, "#school-life-recut")
    async def _recut_pressed(self) -> None:
        await self.recut(self.query_one(PeriodKindToggle).kind)

    @on(Button.Pressed, "#school-life-close")
    def _close_pressed(self) -> None:
        self.action_close()

    def action_close(self) -> None:
        """Échap: back, nothing written."""
        self.dismiss(None)

    def action_apply(self) -> None:
        """Valider: write the periods and dates (asking first when it replaces some)."""
        if self.console.read_only:
            self._show_result(Text(f"⊘ {READ_ONLY_REFUSAL}", style="bold"))
            self.notify(READ_ONLY_REFUSAL, severity="error")
            return
        if self.state is None:
            return
        reading = self.read_form()
        if reading.proposal is None:
            message = "Corrigez les champs signalés ✗ : rien n'a été enregistré."
            self._show_result(Text(f"✗ {message}", style="bold"))
            self.notify(message, severity="error")
            if reading.first_invalid is not None:
                reading.first_invalid.focus()
            return
        proposal = reading.proposal
        stored = self.state.proposal
        existing = stored.existing
        already = existing.get("periodes", 0) or existing.get("dates_ouverture", 0)
        same = (proposal.period_kind, proposal.periods, proposal.opens_on,
                proposal.closes_on) == (stored.period_kind, stored.periods, stored.opens_on,
                                        stored.closes_on)
        if not already or same:
            self.write(proposal, replace=False)
            return
        lines = [(f"{stored.uai} a déjà {existing.get('periodes', 0)} période(s) et "
                  f"{existing.get('dates_ouverture', 0)} jeu de dates pour "
                  f"{stored.school_year}."),
                 (f"Elles seront remplacées par : ouverture {proposal.opens_on:%d/%m/%Y}, "
                  f"fermeture {proposal.closes_on:%d/%m/%Y}, "
                  f"{len(proposal.periods)} {PERIOD_KIND_LABELS[proposal.period_kind]}.")]

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.write(proposal, replace=True)
            else:
                self._show_result(Text("Remplacement annulé : rien n'a été enregistré."))

        self.app.push_screen(ConfirmModal("Remplacer la vie scolaire déjà saisie ?", lines),
                             answered)

    def write(self, proposal: SchoolLifeProposal, *, replace: bool) -> None:
        """Send the write, then the step-5 request, to a worker thread."""
        self._show_result(Text("Enregistrement, puis demande de l'étape 5 au moteur…"))
        self.set_form_enabled(False)
        self._write_worker(proposal, replace)

    @work(thread=True, exclusive=True, group="school-life-write", exit_on_error=False,
          description="enregistrement de la vie scolaire")
    def _write_worker(self, proposal: SchoolLifeProposal, replace: bool) -> SchoolLifeOutcome:
        """Write (refusals raise: nothing written), ask the engine, read again."""
        source = self.console.school_life
        assert source is not None
        written = source.apply(self.uai, proposal, replace=replace)
        answer = self._ask_engine()
        state = source.load(self.uai)
        assert state is not None
        return SchoolLifeOutcome(written.written, state, answer)

    def _ask_engine(self) -> EngineAnswer:
        """Send step 5's ``run`` request through the engine client and follow it."""
        worker = get_current_worker()
        try:
            request_id = self.console.bridge.request(RequestAction.RUN, step=STEP.value,
                                                     uais=[self.uai])
        except PermissionError as error:
            return EngineAnswer(EngineVerdict.REFUSED, str(error))
        except Exception as error:  # noqa: BLE001 - the write is done: say the request failed
            return EngineAnswer(EngineVerdict.FAILED, f"demande non transmise ({error})")
        return follow_step_request(self.console.client, request_id,
                                   cancelled=lambda: worker.is_cancelled)

    def _show_result(self, text: Text) -> None:
        result = self.query_one("#school-life-result", Static)
        result.update(text)
        result.display = True

    def show_write_error(self, error: BaseException | None) -> None:
        """A refused or failed write: say why; nothing was written."""
        self.set_form_enabled(True)
        if isinstance(error, PermissionError | SchoolLifeRefused | SchoolLifeError):
            message = f"{error} Rien n'a été enregistré."
        else:
            message = f"Enregistrement impossible ({error}) : rien n'a été enregistré."
        self._show_result(Text(f"✗ {message}", style="bold"))
        self.notify(message, severity="error", timeout=8)

    async def show_outcome(self, outcome: SchoolLifeOutcome) -> None:
        """After « Valider »: the form read again, and the engine's verdict on top."""
        await self.show_state(outcome.state)
        written = outcome.written
        if any(written.values()):
            saved = (f"Enregistré : {written.get('periodes', 0)} période(s), "
                     f"{written.get('dates_ouverture', 0)} jeu de dates.")
        else:
            saved = "Déjà enregistré : rien de changé."
        text = Text(saved + "\n")
        glyph, verdict, severity = verdict_text(outcome)
        text.append(f"{glyph} {verdict}", style="bold")
        self._show_result(text)
        self.notify(f"{self.uai} : {verdict}", severity=severity, timeout=6)
        self.query_one("#school-life-scroll", VerticalScroll).scroll_to_widget(
            self.query_one("#school-life-result"), animate=False)
