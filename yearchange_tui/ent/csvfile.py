"""The project's one CSV writer: French spreadsheet conventions, formulas neutralised.

Every CSV the tool writes (step-2 school-life files, the sanctions sent to the heads of
establishment, ``yearchange rejects --csv``, the console's rejects export) goes through
here: UTF-8 with a BOM, ``;`` separator, CRLF line ends, decimal comma for floats.

A text cell that a spreadsheet would read as a formula — starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return (OWASP « CSV injection ») — is written with a
leading ``'``, so Excel and LibreOffice show it as text and never evaluate it. Numbers the
tool itself computes (``int``, ``float``) are written as numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import IO, Any

BOM = "\ufeff"
DELIMITER = ";"
LINE_END = "\r\n"
# The first characters a spreadsheet reads as the start of a formula.
FORMULA_TRIGGERS = frozenset("=+-@\t\r")
# Rows encoded and written at once when streaming to a binary handle.
_CHUNK_ROWS = 2000


def decimal_comma(value: float) -> str:
    """A float in French notation (``12,5``)."""
    return f"{value:g}".replace(".", ",")


def safe_cell(value: Any) -> Any:
    """One cell as written: None empty, floats with a decimal comma, formulas neutralised."""
    if value is None:
        return ""
    kind = type(value)
    if kind is str:
        return "'" + value if value and value[0] in FORMULA_TRIGGERS else value
    if kind is int or kind is bool:
        return value
    if kind is float:
        return decimal_comma(value)
    text = str(value)
    return "'" + text if text and text[0] in FORMULA_TRIGGERS else text


def safe_row(row: Iterable[Any]) -> list[Any]:
    """Each cell of ``row`` through :func:`safe_cell`."""
    return [safe_cell(value) for value in row]


def _writer(handle: IO[str]) -> Any:
    return csv.writer(handle, delimiter=DELIMITER, lineterminator=LINE_END)


def csv_text(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """The CSV as text, without the BOM."""
    buffer = io.StringIO()
    writer = _writer(buffer)
    writer.writerow(safe_row(header))
    writer.writerows(safe_row(row) for row in rows)
    return buffer.getvalue()


def csv_bytes(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> bytes:
    """The whole CSV as bytes (UTF-8 with BOM), for an archive member or an attachment."""
    return (BOM + csv_text(header, rows)).encode("utf-8")


def write_csv(handle: IO[bytes], header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> int:
    """Stream the CSV (UTF-8 with BOM) to a binary handle; returns the number of rows."""
    buffer = io.StringIO()
    writer = _writer(buffer)
    buffer.write(BOM)
    writer.writerow(safe_row(header))
    count = 0
    for row in rows:
        writer.writerow(safe_row(row))
        count += 1
        if count % _CHUNK_ROWS == 0:
            handle.write(buffer.getvalue().encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()
    handle.write(buffer.getvalue().encode("utf-8"))
    return count


def write_csv_text(stream: IO[str], header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> int:
    """Stream the CSV (BOM first) to a text stream opened with ``newline=""``; returns the
    number of rows."""
    stream.write(BOM)
    writer = _writer(stream)
    writer.writerow(safe_row(header))
    count = 0
    for row in rows:
        writer.writerow(safe_row(row))
        count += 1
    return count
