"""Classes and groups are created from students only, at the write of a student batch.

A class or group a student is in and the establishment's target year lacks is
created, labelled from its structure's list (and MEF); teachers and teaching services
alone never create one (:mod:`yearchange_tui.aaf.staff`).
"""

from __future__ import annotations

from typing import Any

from yearchange_tui.aaf import directory as db
from yearchange_tui.aaf.contexts import class_cache, group_cache, structure_info
from yearchange_tui.aaf.run import ImportRun, PendingPerson

Key = tuple[int, int, str]
"""(establishment, school year, code)."""


def ensure_classes_and_groups(run: ImportRun, batch: list[PendingPerson]) -> None:
    """Create the classes and groups students are in (only students create them)."""
    class_rows, group_rows = _missing(run, batch)
    if class_rows:
        created = db.create_classes(run.connection, list(class_rows.values()))
        for (establishment_id, _, code), class_id in created.items():
            context = run.contexts[establishment_id]
            class_cache(run, context)[code] = class_id
            context.created_class_ids.add(class_id)
            context.counts["classes_created"] += 1
    if group_rows:
        created = db.create_groups(run.connection, list(group_rows.values()))
        for (establishment_id, _, code), group_id in created.items():
            context = run.contexts[establishment_id]
            cache = group_cache(run, context)
            if code not in cache:
                context.counts["groups_created"] += 1
            cache[code] = group_id
    for pending in batch:
        if pending.classes is not None:
            for establishment_id, code in pending.class_keys:
                context = run.contexts[establishment_id]
                pending.classes[context.year_id].add(class_cache(run, context)[code])
        if pending.groups is not None:
            for establishment_id, code in pending.group_keys:
                context = run.contexts[establishment_id]
                pending.groups[context.year_id].add(group_cache(run, context)[code])


def _missing(run: ImportRun, batch: list[PendingPerson]
             ) -> tuple[dict[Key, dict[str, Any]], dict[Key, dict[str, Any]]]:
    """The rows of the classes and of the groups the batch's students are in and that lack."""
    class_rows: dict[Key, dict[str, Any]] = {}
    group_rows: dict[Key, dict[str, Any]] = {}
    for pending in batch:
        for establishment_id, code in pending.class_keys:
            context = run.contexts[establishment_id]
            key = (establishment_id, context.year_id, code)
            if code in class_cache(run, context) or key in class_rows:
                continue
            info = structure_info(run, establishment_id)
            label, mef = info.classes.get(code, ("", "")) if info else ("", "")
            class_rows[key] = {"establishment_id": establishment_id,
                               "school_year_id": context.year_id, "code": code,
                               "label": label or code,
                               "mef_code": mef or pending.row.mef[:16]}
        for establishment_id, code in pending.group_keys:
            context = run.contexts[establishment_id]
            key = (establishment_id, context.year_id, code)
            if code in group_cache(run, context) or key in group_rows:
                continue
            info = structure_info(run, establishment_id)
            name = info.groups.get(code, "") if info else ""
            group_rows[key] = {"establishment_id": establishment_id,
                               "school_year_id": context.year_id, "code": code,
                               "name": name or code}
    return class_rows, group_rows
