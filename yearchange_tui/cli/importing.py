"""What ``import-aaf`` and ``import-timetable`` share: read-only refusal, refusal reports.

Operator text is French; exit status 2 for a file refused whole, 1 for a guard refusal.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from yearchange_tui.cli.util import (
    EXIT_FAILED,
    EXIT_USAGE,
    UsageError,
    err,
    print_json,
    settings_from_args,
)

if TYPE_CHECKING:
    from yearchange_tui.importing.xmlsafe import RefusedFileError
    from yearchange_tui.workflow.guards import GuardRefused


def refuse_import_in_read_only(args: argparse.Namespace, what: str) -> None:
    """Raise a usage error for an import in read-only mode (a dry run stays allowed).

    Args:
        args: the command's arguments (global options and ``dry_run``).
        what: the French name of the import (``l'import AAF``).
    """
    if settings_from_args(args).read_only and not args.dry_run:
        raise UsageError(f"Mode consultation (--read-only) : {what} est interdit "
                         "(--dry-run reste possible).")


def report_file_refused(error: RefusedFileError, as_json: bool, refused: str) -> int:
    """Report a file refused whole (JSON on stdout if asked, French on stderr).

    Args:
        error: the refusal.
        as_json: also print it as JSON.
        refused: the French head of the message (``livraison refusée``).

    Returns:
        The exit status (2: nothing changed).
    """
    if as_json:
        print_json({"refused": True, **error.to_dict()})
    err(f"yearchange : {refused}, rien n'a été importé.\n  {error}\n"
        f"  Action : {error.action}")
    return EXIT_USAGE


def report_guard_refused(refusal: GuardRefused, as_json: bool, lifted: str) -> int:
    """Report an import a guard refused (JSON on stdout if asked, French on stderr).

    Args:
        refusal: the guard's refusal.
        as_json: also print it as JSON.
        lifted: what an MOE override lifts, in French (``ce gel``, ``cette garde``).

    Returns:
        The exit status (1).
    """
    if as_json:
        print_json({"refused": True, "code": refusal.code, "message": refusal.message})
    err(f"yearchange : import refusé [{refusal.code}] : {refusal.message}\n"
        f"  Rien n'a été importé. Une dérogation MOE (yearchange override) peut lever "
        f"{lifted} ; elle est tracée.")
    return EXIT_FAILED
