"""What an import reports: per-establishment summaries, unknown attributes, file headers.

Read by the import's own record (``aaf_imports``), its result and the step-4 units.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from yearchange_tui.aaf.run import EstablishmentContext, ImportRun


def summary_of(run: ImportRun, context: EstablishmentContext) -> dict[str, Any]:
    """One establishment's counts and rejects by code."""
    counts = context.counts
    rejects = dict(sorted(run.reject_counts.get(context.id, Counter()).items()))
    return {"uai": context.uai, "name": context.name, "mode": context.mode,
            "school_year": context.year_label, "created": counts["created"],
            "updated": counts["updated"], "unchanged": counts["unchanged"],
            "restored": counts["restored"], "flagged_absent": counts["flagged_absent"],
            "refused": counts["refused"], "classes_created": counts["classes_created"],
            "groups_created": counts["groups_created"],
            "rubrics_created": counts["rubrics_created"], "rejects": rejects,
            "guard_override": context.overridden,
            "establishment_created": bool(counts["establishment_created"])}


def establishment_summaries(run: ImportRun) -> list[dict[str, Any]]:
    """The summaries of the establishments in scope, by UAI, then rejects tied to none."""
    summaries = [summary_of(run, c) for c in sorted(run.contexts.values(),
                                                    key=lambda c: c.uai) if c.in_scope]
    orphans = run.reject_counts.get(None)
    if orphans:
        summaries.append({"uai": "", "name": "sans établissement", "mode": "",
                          "school_year": "", "created": 0, "updated": 0, "unchanged": 0,
                          "restored": 0, "flagged_absent": 0, "refused": 0,
                          "classes_created": 0, "groups_created": 0, "rubrics_created": 0,
                          "rejects": dict(sorted(orphans.items())), "guard_override": False})
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
