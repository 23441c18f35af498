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


# Labels shortened to their key (then dropped) when the bar is too wide, in this order;
# « Aide » and « Quitter » stay whole however narrow the terminal.
SHRINK_ORDER = ("Thème", "Actual.", "Calend.", "Rejets", "Journal", "Actions", "Grille")


def fit_items(items: list[tuple[str, str]], width: int) -> list[tuple[str, str]]:
    """The bar's items for ``width`` columns: labels shortened to their key (least used
    first), then those bare keys dropped; never « Aide » nor « Quitter »."""
    fitted = [(key, label, label) for key, label in items]  # key, shown, original

    def used() -> int:
        return sum(len(key) + len(shown) + 1 for key, shown, _label in fitted)

    for label in SHRINK_ORDER:
        if used() <= width:
            break
        fitted = [(key, "" if original == label else shown, original)
                  for key, shown, original in fitted]
    for label in SHRINK_ORDER:
        if used() <= width:
            break
        fitted = [item for item in fitted if item[2] != label]
    return [(key, shown) for key, shown, _label in fitted]


class FKeyBar(Widget):
    """One line: each F-key number then its label."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"fkey--key", "fkey--label"}

    DEFAULT_CSS = """
    FKeyBar { height: 1; dock: bottom; }
    """

    def render(self) -> Text:
        """The bar, fitted to the width (« Aide » and « Quitter » always whole)."""
        keymap = getattr(self.app, "keymap", {})
        key_style = self.get_component_rich_style("fkey--key", partial=True)
        label_style = self.get_component_rich_style("fkey--label", partial=True)
        line = Text(no_wrap=True, overflow="crop")
        for key, label in fit_items(fkey_items(keymap), self.size.width or 80):
            line.append(key, key_style)
            line.append(label, label_style)
            line.append(" ")
        return line
