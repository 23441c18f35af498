"""What an import reports: per-establishment summaries, unknown attributes, file headers.

Read by the import's own record (``aaf_imports``), its result and the step-4 units.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select

from yearchange_tui.aaf.run import EstablishmentContext, ImportRun
from yearchange_tui.ent.models import Establishment

establishments = Establishment.__table__


PERSON_OUTCOMES = ("created", "updated", "unchanged", "deleted", "refused")
"""What becomes of a person record: each one is counted once, in one line of the summary."""


def _line(counts: Counter[str], rejects: dict[str, int], **head: Any) -> dict[str, Any]:
    return {**head, **{outcome: counts[outcome] for outcome in PERSON_OUTCOMES},
            "restored": counts["restored"], "flagged_absent": counts["flagged_absent"],
            "classes_created": counts["classes_created"],
            "groups_created": counts["groups_created"],
            "rubrics_created": counts["rubrics_created"], "rejects": rejects}


def summary_of(run: ImportRun, context: EstablishmentContext) -> dict[str, Any]:
    """One establishment's counts and rejects by code."""
    rejects = dict(sorted(run.reject_counts.get(context.id, Counter()).items()))
    # Counted before the import took the establishment in scope (a modifyRequest read
    # before its deleteRequest, say): still this establishment's people.
    counts = context.counts + run.outside_counts.get(context.id, Counter())
    return _line(counts, rejects, uai=context.uai, name=context.name,
                 mode=context.mode, school_year=context.year_label,
                 guard_override=context.overridden,
                 establishment_created=bool(counts["establishment_created"]))


def establishment_summaries(run: ImportRun) -> list[dict[str, Any]]:
    """The summaries of the establishments in scope, by UAI, then the other lines.

    Every person record read is in exactly one line: its establishment's; or, for a
    person whose establishment the import did not take in scope (a modifyRequest or a
    deleteRequest without structure), a line of that establishment; or the line
    « sans établissement » (no usable structure, relative no written student cites).
    """
    summaries = [summary_of(run, c) for c in sorted(run.contexts.values(),
                                                    key=lambda c: c.uai) if c.in_scope]
    shown = {c.id for c in run.contexts.values() if c.in_scope}
    others = sorted(e for e, counts in run.outside_counts.items()
                    if e is not None and e not in shown and any(counts.values()))
    if others:
        rows = run.connection.execute(
            select(establishments.c.id, establishments.c.uai, establishments.c.name)
            .where(establishments.c.id.in_(others))).all()
        for row in sorted(rows, key=lambda r: r.uai):
            summaries.append(_line(
                run.outside_counts[row.id],
                dict(sorted(run.reject_counts.get(row.id, Counter()).items())),
                uai=row.uai, name=row.name, mode="", school_year=run.year_n.label,
                guard_override=False, establishment_created=False))
    orphans = run.reject_counts.get(None)
    unattached = run.outside_counts.get(None, Counter())
    if orphans or any(unattached.values()):
        summaries.append(_line(unattached, dict(sorted((orphans or Counter()).items())),
                               uai="", name="sans établissement", mode="", school_year="",
                               guard_override=False, establishment_created=False))
    return summaries


def unknown_summary(run: ImportRun) -> dict[str, int]:
    """Occurrences of each unknown attribute, as ``kind.attribute``."""
    return {f"{kind}.{name}": entry[0] for (kind, name), entry in sorted(run.unknown.items())}


def header(run: ImportRun) -> dict[str, Any]:
    """The header values of each file, and those all files share."""
    names = {"version_af": "versionAF", "version_sdet": "versionSDET",
             "academy_code": "codeAcademieExport", "degree": "degre",
             "generated_on": "dateGenerationExport"}
    per_file = {row["name"]: {label: row[key] for key, label in names.items() if row[key]}
                for row in run.file_rows}
    values = list(per_file.values())
    common = {key: value for key, value in (values[0].items() if values else ())
              if all(v.get(key) == value for v in values)}
    return {"common": common, "files": per_file}
