"""The project's settings and an establishment's access block, edited from the console.

Two dialogs (:class:`SettingsModal`): :func:`edit_access_block` (`e` on the grid's Blocage
column: an establishment's own block dates and message) and :func:`edit_project` (Maj+P: the
project's block dates, message, whether establishments may amend, the free-group warnings'
dates and « modifier la durée de vie » link). Neither writes anything: on F7 (or Entrée on
the last field) the console asks the engine (``set-access-block`` / ``set-project``
requests), which applies them through the access block's one owner
(:mod:`yearchange_tui.workflow.access_block`) and the project settings
(:mod:`yearchange_tui.workflow.project_settings`), and its answer (done, or refused with
the BLOCAGE-* code) is the notification.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.tui.screens.modals import list_uais, parse_french_date

if TYPE_CHECKING:
    from yearchange_tui.tui.app import YearChangeApp

# (input id, French label, kind): "date", "text" or "yesno".
Field = tuple[str, str, str]

BLOCK_FIELDS: tuple[Field, ...] = (
    ("starts_on", "Premier jour bloqué (JJ/MM/AAAA, vide : celui du projet)", "date"),
    ("ends_on", "Dernier jour bloqué (JJ/MM/AAAA, vide : celui du projet)", "date"),
    ("message", "Message propre (vide : celui du projet ; {debut}, {fin}, {ent}…)", "text"),
)

PROJECT_FIELDS: tuple[Field, ...] = (
    ("block_start", "Blocage des accès : premier jour (JJ/MM/AAAA, vide : aucun)", "date"),
    ("block_end", "Blocage des accès : dernier jour (au plus tard mi-septembre)", "date"),
    ("message", "Message de blocage (vide : l'exemple du cahier des charges)", "text"),
    ("may_amend", "Les établissements peuvent modifier le blocage (oui/non)", "yesno"),
    ("warning", "Avertissement groupes libres (JJ/MM/AAAA, vide : non prévu)", "date"),
    ("second_warning", "Second avertissement (JJ/MM/AAAA, vide : non prévu)", "date"),
    ("lifetime_url", "Lien « modifier la durée de vie » ({group_id} remplacé)", "text"),
)


def _parse(kind: str, text: str) -> Any:
    """The value of a field; raises ValueError with a French message."""
    text = text.strip()
    if kind == "date":
        return parse_french_date(text).isoformat() if text else None
    if kind == "yesno":
        if text.lower() not in ("oui", "non"):
            raise ValueError(f"« {text} » : oui ou non attendu.")
        return text.lower() == "oui"
    return text.replace("\\n", "\n")


def _shown(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind == "date":
        return dt.date.fromisoformat(str(value)).strftime("%d/%m/%Y")
    if kind == "yesno":
        return "oui" if value else "non"
    return str(value).replace("\n", "\\n")


class SettingsModal(ModalScreen[dict[str, Any] | None]):
    """A form of a few fields; dismissed with the fields the operator changed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f10", "dismiss(None)", "Annuler", id="settings-cancel"),
        Binding("f7", "submit", "Valider", id="settings-submit"),
    ]

    def __init__(self, title: str, lines: Sequence[str], fields: Sequence[Field],
                 values: dict[str, Any]) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.lines = list(lines)
        self.fields = list(fields)
        self.values = {key: _shown(kind, values.get(key)) for key, _label, kind in fields}

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(self.title_text, id="dialog-title")
            for line in self.lines:
                yield Static(line, classes="dialog-line")
            for key, label, _kind in self.fields:
                yield Static(label, classes="dialog-line")
                yield Input(self.values[key], id=f"field-{key}", compact=True)
            yield Static("", id="dialog-error")
            yield Static("Entrée : champ suivant · F7 : valider · Échap : annuler",
                         classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one(f"#field-{self.fields[0][0]}", Input).focus()

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        event.stop()
        keys = [key for key, _label, _kind in self.fields]
        current = (event.input.id or "").removeprefix("field-")
        if current == keys[-1]:
            self.action_submit()
        else:
            self.query_one(f"#field-{keys[keys.index(current) + 1]}", Input).focus()

    def action_submit(self) -> None:
        """Check every field; dismiss with the changed ones (as the engine takes them)."""
        changes: dict[str, Any] = {}
        for key, label, kind in self.fields:
            text = self.query_one(f"#field-{key}", Input).value
            try:
                value = _parse(kind, text)
            except ValueError as error:
                self.query_one("#dialog-error", Static).update(Text(f"✗ {label} : {error}"))
                return
            if text.strip() != self.values[key].strip():
                changes[key] = value
        self.dismiss(changes)


def edit_access_block(app: YearChangeApp, uais: list[str],
                      values: dict[str, Any] | None = None) -> None:
    """`e` on the Blocage column: the establishments' own block, asked of the engine."""
    def entered(changes: dict[str, Any] | None) -> None:
        if not changes:
            if changes is not None:
                app.notify("Rien de modifié.", timeout=2)
            return
        lines = [f"{len(uais)} établissement(s) : {list_uais(uais)}."]
        for key, label, kind in BLOCK_FIELDS:
            if key in changes:
                lines.append(f"{label.split(' (')[0]} : "
                             f"{_shown(kind, changes[key]) or 'celui du projet'}")
        lines.append("Le moteur vérifie l'autorisation et les limites du projet.")
        app.confirm_and_send("Blocage des accès (étape 4)", lines, None,
                             RequestAction.SET_ACCESS_BLOCK, {"uais": uais, **changes},
                             "Blocage des accès demandé.")

    app.push_screen(SettingsModal(
        "Blocage des accès élèves et parents — établissement",
        [f"{len(uais)} établissement(s) : {list_uais(uais)}.",
         "Dans les limites du projet, s'il l'autorise (cahier des charges §6.4)."],
        BLOCK_FIELDS, values or {}), entered)


def project_values(app: YearChangeApp) -> tuple[str | None, dict[str, Any]]:
    """The project's code and current settings, when the console reads a database."""
    reader = getattr(app.bridge.client, "project_settings", None)
    if reader is None:
        return None, {}
    try:
        settings = reader()
    except Exception:  # noqa: BLE001 - the dialog opens empty rather than crash
        return None, {}
    if not settings:
        return None, {}
    first = settings[0]
    block, groups = first["access_block"], first["free_groups"]
    return first["project"], {
        "block_start": block["starts_on"], "block_end": block["ends_on"],
        "message": "" if block["message_is_default"] else block["message"],
        "may_amend": block["establishments_may_amend"],
        "warning": groups["warning_on"], "second_warning": groups["second_warning_on"],
        "lifetime_url": groups["lifetime_url_template"]}


def edit_project(app: YearChangeApp) -> None:
    """Maj+P: the project's settings, asked of the engine."""
    code, values = project_values(app)

    def entered(changes: dict[str, Any] | None) -> None:
        if not changes:
            if changes is not None:
                app.notify("Rien de modifié.", timeout=2)
            return
        if "message" in changes and not changes["message"]:
            changes["message"] = None
        lines = [f"Projet {code or '(le seul)'} :"]
        for key, label, kind in PROJECT_FIELDS:
            if key in changes:
                lines.append(f"{label.split(' (')[0]} : {_shown(kind, changes[key]) or '—'}")
        app.confirm_and_send("Paramètres du projet", lines, None, RequestAction.SET_PROJECT,
                             {"project": code, "changes": changes},
                             "Paramètres du projet demandés.")

    app.push_screen(SettingsModal(
        f"Paramètres du projet {code or ''}".strip(),
        [("Blocage des accès (§6.4) et avertissements des groupes libres (§6.3) : aucun "
          "message n'est envoyé sans date fixée par le projet.")],
        PROJECT_FIELDS, values), entered)


__all__ = ["SettingsModal", "edit_access_block", "edit_project"]
