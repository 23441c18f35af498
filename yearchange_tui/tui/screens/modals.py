"""Modal dialogs: confirmation (typed for steps 1 to 3), the out-of-window override (a
second typed confirmation and a reason), quit, help, date, path, step."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from yearchange_tui.workflow.calendar import CalendarError, parse_day

MAX_LISTED = 6


def list_uais(uais: Sequence[str]) -> str:
    """``0693422V, 0016980G … et 12 autres``."""
    shown = ", ".join(uais[:MAX_LISTED])
    if len(uais) > MAX_LISTED:
        shown += f" … et {len(uais) - MAX_LISTED} autres"
    return shown


def challenge_for(uais: Sequence[str]) -> str:
    """What the operator types to confirm a destructive step: the count, or the one UAI."""
    return uais[0] if len(uais) == 1 else str(len(uais))


class ConfirmModal(ModalScreen[bool]):
    """Ask before acting. With ``challenge``, the operator must type it.

    Args:
        title: the action, in French.
        lines: what will happen, in French.
        challenge: text to type (number of establishments or the UAI), or None.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f10", "answer(False)", "Annuler", id="confirm-cancel"),
        Binding("enter", "submit", "Confirmer", id="confirm-ok"),
        Binding("o", "answer(True)", "Oui", id="confirm-yes", show=False),
        Binding("n", "answer(False)", "Non", id="confirm-no", show=False),
    ]

    def __init__(self, title: str, lines: Sequence[str], challenge: str | None = None) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.lines = list(lines)
        self.challenge = challenge

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(self.title_text, id="dialog-title")
            # What will happen scrolls on a short terminal: the field to type in stays shown.
            with VerticalScroll(id="dialog-lines"):
                for line in self.lines:
                    yield Static(line, classes="dialog-line")
            if self.challenge is not None:
                what = ("l'UAI" if not self.challenge.isdigit() else
                        "le nombre d'établissements")
                yield Static(f"Pour confirmer, tapez {what} : {self.challenge}",
                             id="dialog-challenge")
                yield Input(id="dialog-input", compact=True, placeholder=self.challenge)
                yield Static("Entrée : confirmer · Échap : annuler", classes="dialog-keys")
            else:
                yield Static("Entrée ou o : confirmer · Échap ou n : annuler",
                             classes="dialog-keys")

    def on_mount(self) -> None:
        if self.challenge is not None:
            self.query_one(Input).focus()

    def action_answer(self, value: bool) -> None:
        """Close with ``value`` (o/n only when no text is asked)."""
        if value and self.challenge is not None:
            return
        self.dismiss(value)

    def action_submit(self) -> None:
        """Enter: confirm, when the typed text matches."""
        if self.challenge is None:
            self.dismiss(True)
            return
        self._check(self.query_one(Input).value)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._check(event.value)

    def _check(self, typed: str) -> None:
        assert self.challenge is not None
        if typed.strip().upper() == self.challenge.upper():
            self.dismiss(True)
            return
        self.query_one("#dialog-challenge", Static).update(
            Text(f"✗ « {typed.strip()} » ne correspond pas. Tapez : {self.challenge}"))
        self.query_one(Input).value = ""


OVERRIDE_CHALLENGE = "HORS FENETRE"


def window_lines(problems: Sequence[str]) -> list[str]:
    """The dialog lines saying which establishments are out of their window, and what it takes."""
    if not problems:
        return []
    shown = list(problems[:MAX_LISTED])
    if len(problems) > MAX_LISTED:
        shown.append(f"… et {len(problems) - MAX_LISTED} autres")
    return [f"⚠ Hors fenêtre ou avant la fermeture — {len(problems)} établissement(s) :",
            *[f"  {line}" for line in shown],
            ("Une seconde confirmation et un motif (tracé dans l'audit) seront demandés ; "
             "sans eux le moteur refuse.")]


class WindowOverrideModal(ModalScreen[str | None]):
    """The second confirmation of steps 1 to 3 out of the window or before closure: type
    « HORS FENETRE », then the reason; dismissed with the reason (None: cancelled)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f10", "dismiss(None)", "Annuler", id="override-cancel"),
    ]

    def __init__(self, title: str, problems: Sequence[str]) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.problems = list(problems)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(f"Seconde confirmation — {self.title_text}", id="dialog-title")
            with VerticalScroll(id="dialog-lines"):
                for line in window_lines(self.problems)[:-1]:
                    yield Static(line, classes="dialog-line")
            yield Static(f"Pour passer outre, tapez : {OVERRIDE_CHALLENGE}",
                         id="override-challenge")
            yield Input(id="override-input", compact=True, placeholder=OVERRIDE_CHALLENGE)
            yield Static("Motif (obligatoire, tracé dans l'audit) :", classes="dialog-line")
            yield Input(id="override-reason", compact=True, placeholder="motif")
            yield Static("", id="dialog-error")
            yield Static("Entrée : valider · Tab : champ suivant · Échap : annuler",
                         classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one("#override-input", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        typed = self.query_one("#override-input", Input).value.strip().upper()
        reason = self.query_one("#override-reason", Input).value.strip()
        error = self.query_one("#dialog-error", Static)
        if typed != OVERRIDE_CHALLENGE:
            error.update(Text(f"✗ Tapez exactement : {OVERRIDE_CHALLENGE}"))
            self.query_one("#override-input", Input).focus()
            return
        if not reason:
            if event.input.id == "override-input":
                self.query_one("#override-reason", Input).focus()
                return
            error.update(Text("✗ Le motif est obligatoire."))
            return
        self.dismiss(reason)


class QuitModal(ModalScreen[bool]):
    """Quit while units run: say what happens to them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(False)", "Rester", id="quit-stay"),
        Binding("enter", "dismiss(True)", "Quitter", id="quit-ok"),
        Binding("o,f10,q", "dismiss(True)", "Oui", id="quit-yes", show=False),
        Binding("n", "dismiss(False)", "Non", id="quit-no", show=False),
    ]

    def __init__(self, running: int, stop_command: str = "yearchange engine-stop") -> None:
        super().__init__(classes="dialog")
        self.running = running
        self.stop_command = stop_command

    def compose(self) -> ComposeResult:
        units = f"{self.running} unité{'s' if self.running > 1 else ''} en cours"
        fate = (f"{units} : elles continuent dans le moteur après la fermeture de la "
                "console. Rouvrez la console pour les suivre.")
        with Vertical(id="dialog-box"):
            yield Label("Quitter la console ?", id="dialog-title")
            yield Static(fate, classes="dialog-line")
            yield Static(f"Le moteur continue de tourner ; pour l'arrêter : {self.stop_command}",
                         classes="dialog-line")
            yield Static("Entrée ou o : quitter · Échap ou n : rester", classes="dialog-keys")


class HelpModal(ModalScreen[None]):
    """F1: the screen's help text and its keys."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,f10,q", "dismiss(None)", "Fermer", id="help-close"),
    ]

    def __init__(self, title: str, text: str, keys: Sequence[tuple[str, str]]) -> None:
        super().__init__(classes="dialog")
        self.help_title = title
        self.help_text = text
        self.keys = list(keys)

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True)
        table.add_column()
        for keys, label in self.keys:
            table.add_row(Text(keys, style="bold"), label)
        with Vertical(id="dialog-box", classes="help-box"):
            yield Label(f"Aide — {self.help_title}", id="dialog-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(self.help_text, classes="dialog-line")
                yield Static("Touches", classes="help-heading")
                yield Static(table)
            yield Static("Échap : fermer · ↑↓ : défiler", classes="dialog-keys")


class StepChoiceModal(ModalScreen[str | None]):
    """Choose a step (when the cursor is not on one)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f10", "dismiss(None)", "Annuler", id="step-cancel")]

    def __init__(self, title: str, choices: Sequence[tuple[str, str]]) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.choices = list(choices)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(self.title_text, id="dialog-title")
            yield OptionList(*[Option(label, id=key) for key, label in self.choices],
                             id="step-options")
            yield Static("↑↓ puis Entrée : choisir · Échap : annuler", classes="dialog-keys")

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)


def parse_french_date(text: str) -> dt.date:
    """``JJ/MM/AAAA`` (or ``AAAA-MM-JJ``) to a date, read by the calendar's one parser
    (:func:`~yearchange_tui.workflow.calendar.parse_day`, as ``plan set``).

    Raises:
        ValueError: with a French message.
    """
    try:
        return parse_day(text)
    except CalendarError as error:
        raise ValueError(f"{str(error)[0].upper()}{str(error)[1:]}.") from error


class TextPromptModal(ModalScreen[str | None]):
    """Ask for one value (a date, a path); ``validate`` returns a French error or ''."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f10", "dismiss(None)", "Annuler", id="prompt-cancel")]

    def __init__(self, title: str, lines: Sequence[str], value: str = "",
                 placeholder: str = "", validate=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(classes="dialog")
        self.title_text = title
        self.lines = list(lines)
        self.value = value
        self.placeholder = placeholder
        self.validate = validate

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(self.title_text, id="dialog-title")
            for line in self.lines:
                yield Static(line, classes="dialog-line")
            yield Input(self.value, placeholder=self.placeholder, id="dialog-input",
                        compact=True)
            yield Static("", id="dialog-error")
            yield Static("Entrée : valider · Échap : annuler", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        problem = self.validate(event.value) if self.validate else ""
        if problem:
            self.query_one("#dialog-error", Static).update(Text(f"✗ {problem}"))
            return
        self.dismiss(event.value.strip())
