"""The engine side never imports Textual (house rule: the domain stays UI-free)."""

import os
import subprocess
import sys

import pytest

ENGINE_SIDE = [
    "yearchange_tui.ent",
    "yearchange_tui.ent.models",
    "yearchange_tui.ent.database",
    "yearchange_tui.changeover",
    "yearchange_tui.aaf",
    "yearchange_tui.timetable",
    "yearchange_tui.scheduling",
    "yearchange_tui.scheduling.api",
    "yearchange_tui.scheduling.calendar",
    "yearchange_tui.scheduling.models",
    "yearchange_tui.scheduling.lease",
    "yearchange_tui.scheduling.engine",
    "yearchange_tui.scheduling.events",
    "yearchange_tui.scheduling.client",
    "yearchange_tui.scheduling.spawn",
    "yearchange_tui.scheduling.commands",
    "yearchange_tui.aaf.importer",
    "yearchange_tui.aaf.step4",
    "yearchange_tui.sample.build",
    "yearchange_tui.sample.fill",
    "yearchange_tui.sample.aaf_writer",
    "yearchange_tui.sample.timetable_writer",
    "yearchange_tui.config",
]


@pytest.mark.parametrize("module", ENGINE_SIDE)
def test_engine_side_module_does_not_import_textual(module: str) -> None:
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            "leaked = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')); "
            "print(','.join(leaked)); sys.exit(1 if leaked else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, f"{module} imports Textual: {result.stdout} {result.stderr}"


def test_output_into_a_closed_pipe_stops_quietly() -> None:
    """``yearchange timetable-rules | head -1``: no traceback when the reader goes away."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        result = subprocess.run([sys.executable, "-m", "yearchange_tui.cli", "timetable-rules"],
                                stdout=writer, stderr=subprocess.PIPE, text=True, check=False)
    finally:
        os.close(writer)
    assert "Traceback" not in result.stderr
    assert "Exception ignored" not in result.stderr
    assert result.returncode == 1


def test_usage_errors_and_help_are_in_french(capsys: pytest.CaptureFixture[str]) -> None:
    from yearchange_tui.cli import main

    with pytest.raises(SystemExit) as refused:
        main(["import-timetable", "emploi.xml"])
    assert refused.value.code == 2
    error = capsys.readouterr().err
    assert "arguments obligatoires manquants : --uai" in error
    assert "required" not in error
    with pytest.raises(SystemExit):
        main(["rejects", "--help"])
    help_text = capsys.readouterr().out
    assert help_text.startswith("usage : yearchange rejects")
    assert "afficher cette aide et quitter" in help_text
