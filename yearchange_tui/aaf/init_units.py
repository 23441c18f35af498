"""What an import that initialises year N+1 (step 4) does beyond the directory.

The step-4 unit itself (begin, checkpoint, finish, audit) is kept by the change-over
runner (:mod:`yearchange_tui.changeover.steps.init_directory`); the import reports its
progress file by file to those units and activates the newest timetable versions.
Only a « complet d'initialisation » is step 4 (seed §6.4): an establishment met only by
another delivery (a Delta) is left out of the import and its refusal is reported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from yearchange_tui.aaf.run import MODE_INIT, STEP4_NEEDS_COMPLET, ImportRun
from yearchange_tui.ent.models import Project
from yearchange_tui.workflow.events import UnitProgressed
from yearchange_tui.workflow.models import Step


def notify_progress(run: ImportRun) -> None:
    """Report the bytes read so far to every unit the import initialises."""
    for context in run.contexts.values():
        if context.mode == MODE_INIT:
            run.observer.notify(UnitProgressed(context.uai, Step.INIT_DIRECTORY.value,
                                               run.bytes_done, run.bytes_total,
                                               dry_run=run.dry_run))


def enable_newest_timetable_versions(run: ImportRun) -> None:
    """The AAF initialisation import activates the newest timetable versions."""
    for context in run.contexts.values():
        if context.mode != MODE_INIT or not context.in_scope:
            continue
        project = run.session.get(Project, context.project_id)
        if project is not None and not project.newest_timetable_versions_enabled:
            project.newest_timetable_versions_enabled = True


STEP4_ACTION = ("Demandez au rectorat (cellule AAF de la DSI) la livraison « complet "
                "d'initialisation » de l'année N+1 couvrant cet établissement (fichiers "
                "« Complet »), puis importez-la : yearchange import-aaf CHEMIN.")


def _files_text(files: Sequence[str]) -> str:
    shown = ", ".join(files[:6])
    more = len(files) - 6
    return shown + (f" et {more} autre(s)" if more > 0 else "") if files else "aucun fichier"


def step4_refusal(uai: str, name: str, files: Sequence[str], *, absent: bool = False
                  ) -> dict[str, Any]:
    """The French refusal of an establishment's step 4 by a delivery that is not its Complet.

    Args:
        uai: the establishment.
        name: its name.
        files: the files of the delivery that met it (or the whole delivery when absent).
        absent: the delivery does not mention the establishment at all.
    """
    what = (f"la livraison ({_files_text(files)}) ne contient pas cet établissement"
            if absent else
            f"la livraison reçue pour lui n'est pas un « Complet » ({_files_text(files)})")
    message = (f"Étape 4 refusée pour {uai} {name} : l'étape 4 est l'import du « complet "
               f"d'initialisation » de l'année N+1, or {what}. Rien n'a été écrit pour cet "
               "établissement ; son étape 4 reste à faire.").replace("  ", " ")
    return {"uai": uai, "name": name, "code": STEP4_NEEDS_COMPLET, "message": message,
            "files": list(files), "action": STEP4_ACTION}


def step4_refusals(run: ImportRun) -> list[dict[str, Any]]:
    """The establishments whose step 4 the import refused (a delivery that is not a Complet)."""
    return [step4_refusal(context.uai, context.name, context.refusal_files)
            for context in sorted(run.contexts.values(), key=lambda c: c.uai)
            if context.refusal is not None]
