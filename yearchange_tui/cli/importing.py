"""What ``import-aaf`` and ``import-timetable`` share: read-only refusal, how they end.

Operator text is French; exit status 2 for a file refused whole, 1 for a guard refusal.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from yearchange_tui.cli.util import (
    UsageError,
    err,
    print_json,
    refuse_in_read_only,
    settings_from_args,
)
from yearchange_tui.importing.outcome import CODE_BAD_REQUEST, ImportOutcome, ImportStatus


def refuse_import_in_read_only(args: argparse.Namespace, what: str) -> None:
    """Raise a usage error for an import in read-only mode (a dry run stays allowed).

    Args:
        args: the command's arguments (global options and ``dry_run``).
        what: the French name of the import (``l'import AAF``).
    """
    settings = settings_from_args(args)
    if settings.read_only and args.dry_run:
        return  # --read-only: a dry run keeps nothing
    try:
        refuse_in_read_only(settings, what)
    except UsageError as error:
        if settings.read_only_by_database:
            raise  # the database refuses even a dry run's uncommitted writes
        raise UsageError(f"{str(error).rstrip('.')} (--dry-run reste possible).") from None


def report_refused(outcome: ImportOutcome, as_json: bool, refused: str, lifted: str) -> int:
    """Report an import refused whole (JSON on stdout if asked, French on stderr).

    Args:
        outcome: the refused import's outcome (a refused file or a guard).
        as_json: also print it as JSON.
        refused: the French head of a file refusal (``livraison refusée``).
        lifted: what an MOE override lifts, in French (``ce gel``, ``cette garde``).

    Returns:
        The exit status (2 for a refused file, 1 for a guard; nothing changed).
    """
    if as_json:
        print_json(outcome.refusal_dict())
    if outcome.by_guard:
        err(f"yearchange : import refusé [{outcome.code}] : {outcome.message}\n"
            f"  Rien n'a été importé. Une dérogation MOE (yearchange override) peut lever "
            f"{lifted} ; elle est tracée.")
    else:
        err(f"yearchange : {refused}, rien n'a été importé.\n  {outcome.summary}\n"
            f"  Action : {outcome.action}")
    return outcome.exit_status


def report_import(outcome: ImportOutcome, result: Any, as_json: bool,
                  print_result: Callable[[Any], None], refused: str, lifted: str) -> int:
    """How ``import-aaf`` and ``import-timetable`` end: a bad request, a refusal, or the
    result (JSON or French) with the outcome's exit status.

    Raises:
        UsageError: the request itself was bad (exit 2, nothing changed).
    """
    if outcome.code == CODE_BAD_REQUEST:
        raise UsageError(outcome.message)
    if outcome.status is ImportStatus.REFUSED:
        return report_refused(outcome, as_json, refused, lifted)
    if outcome.status is ImportStatus.ALREADY_IMPORTED:
        # Nothing to do (exit 0, like a step already done): said, with its code.
        if as_json:
            print_json(dict(outcome.details))
        else:
            print(f"[{outcome.code}] {outcome.message}\n  {outcome.action}")
        return outcome.exit_status
    assert result is not None
    if as_json:
        print_json(result.to_dict())
    else:
        print_result(result)
    return outcome.exit_status
