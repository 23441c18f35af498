"""The command line as an operator meets it: quiet pipes, French usage errors."""

import os
import subprocess
import sys

import pytest


def test_output_into_a_closed_pipe_stops_quietly() -> None:
    """``yearchange timetable-rules | head -1``: no traceback when the reader goes away."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        result = subprocess.run([sys.executable, "-m", "yearchange_tui.cli.main", "timetable-rules"],
                                stdout=writer, stderr=subprocess.PIPE, text=True, check=False)
    finally:
        os.close(writer)
    assert "Traceback" not in result.stderr
    assert "Exception ignored" not in result.stderr
    assert result.returncode == 1


def test_usage_errors_and_help_are_in_french(capsys: pytest.CaptureFixture[str]) -> None:
    from yearchange_tui.cli.main import main

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
