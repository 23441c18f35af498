"""How ``yearchange run STEP`` reports, in French, from the runner's outcomes.

Every step runs through :meth:`~yearchange_tui.changeover.runner.ChangeoverRunner.run_units`;
steps 4 and 5 keep their own French reports (the import summary of each establishment,
what step 5 filled in and what is still missing).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from yearchange_tui.aaf.parser import AafFileError
from yearchange_tui.changeover.runner import ChangeoverRunner, UnitOutcome
from yearchange_tui.changeover.steps import RunOptions, step_definition
from yearchange_tui.changeover.steps.init_directory import (
    DeliveryUnavailableError,
    InitDirectoryReport,
    directory_report,
)
from yearchange_tui.changeover.steps.init_school_life import school_life_report
from yearchange_tui.cli.util import EXIT_FAILED, EXIT_OK, UsageError, print_json
from yearchange_tui.workflow.models import Step

STEP4 = step_definition(Step.INIT_DIRECTORY)
STEP5 = step_definition(Step.INIT_SCHOOL_LIFE)

STATUS_LABELS = {"done": "✓ terminé", "already-done": "✓ déjà terminé (rien à faire)",
                 "failed": "✗ échec", "refused": "⊘ refusé",
                 "cancelled": "… interrompu (reprendra)"}


def counts_line(counts: dict[str, Any], limit: int = 6) -> str:
    """The non-zero counts of a unit, on one French line."""
    numbers = {key: value for key, value in counts.items()
               if isinstance(value, int) and not isinstance(value, bool) and value}
    shown = [f"{key} {value}" for key, value in numbers.items()][:limit]
    more = len(numbers) - len(shown)
    return ", ".join(shown) + (f", … (+{more})" if more > 0 else "")


def print_outcomes(step: Step, outcomes: Sequence[UnitOutcome]) -> None:
    """One French line per establishment, its counts, error and differences with the dry run."""
    definition = step_definition(step)
    for outcome in outcomes:
        print(f"{STATUS_LABELS[outcome.status]:<30} {outcome.uai}  étape {definition.number} "
              f"{definition.label}")
        if outcome.status == "done":
            print(f"    {counts_line(outcome.counts, 8)}")
        if outcome.error:
            print(f"    {outcome.error}")
        for difference in outcome.differences:
            print(f"    ≠ {difference['count']} : passage à blanc {difference['dry_run']}, "
                  f"réel {difference['real']}")


def run_init_directory_command(runner: ChangeoverRunner, establishments: Sequence[Any],
                               args: argparse.Namespace) -> int:
    """``yearchange run init-directory``: run step 4 and print the outcome in French.

    Args:
        runner: the change-over runner.
        establishments: the establishments chosen.
        args: the parsed command line (``--json``; ``--source`` when given).

    Returns:
        The exit status: 0 when every establishment is done, 1 otherwise.

    Raises:
        UsageError: no usable AAF delivery, or the delivery is refused whole.
    """
    source = getattr(args, "source", None)
    options = RunOptions(aaf_source=tuple(str(path) for path in source) if source else None)
    try:
        outcomes = runner.run_units(Step.INIT_DIRECTORY, list(establishments), options=options)
    except DeliveryUnavailableError as error:
        raise UsageError(str(error)) from error
    except AafFileError as error:
        raise UsageError(f"{error}\n  Action : {error.action}") from error
    report = directory_report(outcomes, options)
    if getattr(args, "json", False):
        print_json(report.to_dict())
    else:
        print_init_directory_report(report)
    return EXIT_OK if report.ok else EXIT_FAILED


def print_init_directory_report(report: InitDirectoryReport) -> None:
    """Print a step-4 report in French, one line per establishment."""
    for uai in report.done:
        print(f"{'✓ terminé':<30} {uai}  étape {STEP4.number} {STEP4.label}")
        summary = report.counts.get(uai, {})
        if summary and not summary.get("absent_from_delivery"):
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
             f"{summary.get('deleted', 0)} retiré(s) (deleteRequest)",
             f"{summary.get('refused', 0)} refusé(s)",
             f"{summary.get('flagged_absent', 0)} absent(s) signalé(s)",
             f"{summary.get('restored', 0)} rétabli(s)",
             f"{summary.get('classes_created', 0)} classe(s) créée(s)"]
    if rejects:
        parts.append("rejets : " + ", ".join(f"{code} {count}" for code, count in rejects.items()))
    else:
        parts.append("aucun rejet")
    return ", ".join(parts)


def run_init_school_life_command(runner: ChangeoverRunner, establishments: Sequence[Any],
                                 args: argparse.Namespace) -> int:
    """``yearchange run init-school-life``: run step 5 and print the outcome in French.

    Args:
        runner: the change-over runner.
        establishments: the establishments chosen.
        args: the parsed command line (``--json``).

    Returns:
        0 when every establishment is done, 1 otherwise.
    """
    report = school_life_report(runner.run_units(Step.INIT_SCHOOL_LIFE, list(establishments)))
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


STEP_COMMANDS = {Step.INIT_DIRECTORY: run_init_directory_command,
                 Step.INIT_SCHOOL_LIFE: run_init_school_life_command}
"""Steps whose ``run`` output is their own report rather than :func:`print_outcomes`."""
