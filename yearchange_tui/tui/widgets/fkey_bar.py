"""The bottom line of F-keys, mc style (``1Aide 2Grille … 10Quitter``), remaps applied."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from yearchange_tui.tui.bindings import SPECS, effective_keys

SHORT_LABELS = {"show-timeline": "Calend.", "refresh": "Actual.", "command-palette": "Actions"}


def fkey_items(keymap: Mapping[str, str]) -> list[tuple[str, str]]:
    """(F-key number or key, label) of the global bindings, in key order."""
    items = []
    for spec in SPECS:
        if spec.scope != "app":
            continue
        keys = [key.strip() for key in effective_keys(spec.id, keymap).split(",")]
        fkeys = [key for key in keys if key.startswith("f") and key[1:].isdigit()]
        key = fkeys[0][1:] if fkeys else keys[0]
        items.append((key, SHORT_LABELS.get(spec.id, spec.label)))
    return sorted(items, key=lambda item: (not item[0].isdigit(),
                                           int(item[0]) if item[0].isdigit() else 0))


class FKeyBar(Widget):
    """One line: each F-key number then its label."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"fkey--key", "fkey--label"}

    DEFAULT_CSS = """
    FKeyBar { height: 1; dock: bottom; }
    """

    def render(self) -> Text:
        """The bar, trimmed to the width."""
        keymap = getattr(self.app, "keymap", {})
        key_style = self.get_component_rich_style("fkey--key", partial=True)
        label_style = self.get_component_rich_style("fkey--label", partial=True)
        line = Text(no_wrap=True, overflow="crop")
        for key, label in fkey_items(keymap):
            line.append(key, key_style)
            line.append(label, label_style)
            line.append(" ")
        return line
