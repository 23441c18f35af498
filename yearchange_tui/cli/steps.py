"""How ``yearchange run init-directory`` and ``run init-school-life`` report, in French."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from yearchange_tui.aaf.parser import AafFileError
from yearchange_tui.aaf.step4 import STEP as STEP4
from yearchange_tui.aaf.step4 import (
    DeliveryUnavailableError,
    InitDirectoryReport,
    run_init_directory,
)
from yearchange_tui.cli.util import EXIT_FAILED, EXIT_OK, UsageError, print_json
from yearchange_tui.timetable.step5 import STEP as STEP5
from yearchange_tui.timetable.step5 import run_init_school_life


def run_init_directory_command(runner: Any, establishments: Sequence[Any],
                               args: argparse.Namespace) -> int:
    """``yearchange run init-directory``: run step 4 and print the outcome in French.

    Args:
        runner: the change-over runner (its database, observer and fixed time are used).
        establishments: the establishments chosen (objects with ``id`` and ``uai``).
        args: the parsed command line (``--json``; ``--source`` when given).

    Returns:
        The exit status: 0 when every establishment is done, 1 otherwise.
    """
    source = getattr(args, "source", None)
    try:
        report = run_init_directory(runner.database, [e.id for e in establishments],
                                    runner.observer, source=source,
                                    now=getattr(runner, "fixed_now", None))
    except DeliveryUnavailableError as error:
        raise UsageError(str(error)) from error
    except AafFileError as error:
        raise UsageError(f"{error}\n  Action : {error.action}") from error
    if getattr(args, "json", False):
        print_json(report.to_dict())
    else:
        print_init_directory_report(report)
    return EXIT_OK if report.ok else EXIT_FAILED


def print_init_directory_report(report: InitDirectoryReport) -> None:
    """Print a step-4 report in French, one line per establishment."""
    summaries = {s["uai"]: s for s in (report.result.establishments if report.result else [])}
    for uai in report.done:
        summary = summaries.get(uai, {})
        print(f"{'✓ terminé':<30} {uai}  étape {STEP4.number} {STEP4.label}")
        if summary:
            print(f"    {summary_line(summary)}")
    for uai in report.already_done:
        print(f"{'✓ déjà terminé (rien à faire)':<30} {uai}  étape {STEP4.number} {STEP4.label}")
    for uai, message in report.refused.items():
        print(f"{'⊘ refusé':<30} {uai}  {message}")
    for uai, message in report.failed.items():
        print(f"{'✗ échec':<30} {uai}  {message}")


def summary_line(summary: dict[str, Any]) -> str:
    """One French line of counts for an establishment's import summary."""
    rejects = summary.get("rejects") or {}
    parts = [f"{summary.get('created', 0)} créé(s)", f"{summary.get('updated', 0)} mis à jour",
             f"{summary.get('unchanged', 0)} inchangé(s)",
             f"{summary.get('flagged_absent', 0)} absent(s) signalé(s)",
             f"{summary.get('restored', 0)} rétabli(s)",
             f"{summary.get('classes_created', 0)} classe(s) créée(s)"]
    if rejects:
        parts.append("rejets : " + ", ".join(f"{code} {count}" for code, count in rejects.items()))
    else:
        parts.append("aucun rejet")
    return ", ".join(parts)


def run_init_school_life_command(runner: Any, establishments: Sequence[Any],
                                 args: argparse.Namespace) -> int:
    """``yearchange run init-school-life``: run step 5 and print the outcome in French.

    Args:
        runner: the change-over runner (its database and observer are used).
        establishments: the establishments chosen (objects with ``id`` and ``uai``).
        args: the parsed command line (``--json``).

    Returns:
        0 when every establishment is done, 1 otherwise.
    """
    report = run_init_school_life(runner.database, [e.id for e in establishments],
                                  runner.observer)
    if getattr(args, "json", False):
        print_json(report.to_dict())
        return EXIT_OK if report.ok else EXIT_FAILED
    for uai in report.done:
        print(f"{'✓ terminé':<30} {uai}  étape {STEP5.number} {STEP5.label}")
        written = report.written.get(uai) or {}
        if any(written.values()):
            print(f"    proposé par défaut : {written.get('periodes', 0)} période(s), "
                  f"{written.get('dates_ouverture', 0)} date(s) d'ouverture")
        for item in report.missing.get(uai, []):
            print(f"    ! à compléter : {item.label} — {item.detail}")
    for uai in report.already_done:
        print(f"{'✓ déjà terminé (rien à faire)':<30} {uai}  étape {STEP5.number} {STEP5.label}")
    for uai, message in report.refused.items():
        print(f"{'⊘ bloqué':<30} {uai}  {message if uai not in report.missing else ''}")
        for item in report.missing.get(uai, []):
            mark = "✗" if item.blocking else "!"
            print(f"    {mark} {item.label} — {item.detail}\n      → {item.action}")
    for uai, message in report.failed.items():
        print(f"{'✗ échec':<30} {uai}  {message}")
    return EXIT_OK if report.ok else EXIT_FAILED
