"""Tables and paragraphs of the command line, readable at the terminal's width.

The width is the terminal's (``COLUMNS`` when set, 80 when the output is a pipe):
text wraps between words, never inside one, and table columns shrink in the order the
command gives them (a column with ``ratio`` gives its width first, a ``no_wrap`` column
keeps its width). Rich renders the tables; nothing is coloured on a pipe.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

PIPE_WIDTH = 80


def width() -> int:
    """The width to print at: ``COLUMNS``, the terminal's, or 80 on a pipe."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size((PIPE_WIDTH, 24)).columns
    return PIPE_WIDTH


def table(*columns: tuple[str, dict[str, Any]]) -> Table:
    """A borderless table of ``(title, options)`` columns (Rich ``add_column`` options)."""
    # Rich is loaded only when a table is printed: `yearchange … --help` stays quick.
    from rich.table import Table

    result = Table(box=None, padding=(0, 1, 0, 0), show_edge=False, pad_edge=False,
                   header_style="bold")
    for title, options in columns:
        result.add_column(title, **options)
    return result


def print_table(rendered: Table, indent: int = 0) -> None:
    """Print a table (indented by ``indent`` spaces) at the terminal's width."""
    # Rich is loaded only when a table is printed: `yearchange … --help` stays quick.
    from rich.console import Console

    buffer = io.StringIO()
    out = Console(file=buffer, width=max(20, width() - indent), highlight=False, markup=False,
                  emoji=False, soft_wrap=False, color_system=None)
    out.print(rendered)
    for line in buffer.getvalue().splitlines():
        print((" " * indent + line).rstrip())


def paragraph(text: str, indent: str = "", subsequent: str | None = None) -> str:
    """``text`` wrapped between words at the terminal's width (long words kept whole)."""
    return textwrap.fill(text, width=max(20, width()), initial_indent=indent,
                         subsequent_indent=indent if subsequent is None else subsequent,
                         break_long_words=False, break_on_hyphens=False)


def print_paragraph(text: str, indent: str = "", subsequent: str | None = None) -> None:
    """Print :func:`paragraph`."""
    print(paragraph(text, indent, subsequent))
