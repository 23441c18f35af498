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


def test_french_texts_do_not_leak_into_argparse_itself() -> None:
    """Only yearchange's own parsers speak French: ``argparse._`` is never replaced."""
    probe = ("import argparse, gettext, io, contextlib\n"
             "import yearchange_tui.cli\n"
             "from yearchange_tui.cli.main import build_parser\n"
             "build_parser().format_help()\n"
             "assert argparse._ is gettext.gettext, argparse._\n"
             "parser = argparse.ArgumentParser(prog='autre')\n"
             "print(parser.format_help())\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: autre")
    assert "show this help message and exit" in result.stdout


def test_nested_usage_errors_are_in_french(capsys: pytest.CaptureFixture[str]) -> None:
    from yearchange_tui.cli.main import main

    with pytest.raises(SystemExit) as refused:
        main(["rejects", "--severity", "grave"])
    assert refused.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("usage : yearchange rejects")
    assert ("argument --severity : choix invalide : 'grave' (choix possibles : "
            "'erreur', 'avertissement', 'information')") in error
    with pytest.raises(SystemExit):
        main(["commande-inconnue"])
    assert "choix invalide : 'commande-inconnue'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["status", "--bizarre"])
    assert "arguments inconnus : --bizarre" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("yearchange ")
