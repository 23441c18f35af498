"""Review fixes of the AAF importer: streamed reject excerpts, add then modify in one Delta."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from yearchange_tui.aaf.parser import inspect_prologue, record_excerpts


def structure_record(index: int) -> str:
    return (f'<addRequest><operationalAttributes><attr name="categoriePersonne"><value>Eleve'
            f'</value></attr></operationalAttributes><identifier><id>{index}</id></identifier>'
            f'<attributes><attr name="sn"><value>Hélène {index}</value></attr>'
            f'<attr name="givenName"><value>Zoé\n</value></attr></attributes></addRequest>')


def test_record_excerpts_stream_a_large_latin1_file(tmp_path: Path) -> None:
    """Excerpts at the start, middle and end are right, and the file is never held whole."""
    path = tmp_path / "ENT_99_Complet_20260818_Eleve_0000.xml"
    count = 60_000  # about 16 MB
    with path.open("w", encoding="latin-1", newline="\n") as out:
        out.write('<?xml version="1.0" encoding="ISO-8859-1"?>\n'
                  '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n<ficAlimMENESR>\n')
        for index in range(count):
            out.write(structure_record(index) + "\n")  # each record takes two lines
        out.write("</ficAlimMENESR>\n")
    size = path.stat().st_size
    prologue = inspect_prologue(path, path.name)
    first, middle, last = 0, count // 2, count - 1
    lines = {4 + 2 * index: index for index in (first, middle, last)}
    tracemalloc.start()
    try:
        found = record_excerpts(path, prologue, [*lines, 4 + 2 * count + 10])
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found == {line: structure_record(index) for line, index in lines.items()}
    assert peak < size // 4, (peak, size)
