"""Every key binding of the console, with a stable id, a French label and its scope.

The ids are what an operator remaps in the config file::

    [keys]
    quit = "f10,ctrl+q"
    dry-run = "b"

Defaults are F-keys and plain letters (mc and htop habits); none needs Ctrl+S, Ctrl+B,
Ctrl+Enter or Alt, which terminals and multiplexers swallow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class KeySpec:
    """One binding: id, default keys, action, French label and where it applies."""

    id: str
    keys: str
    action: str
    label: str
    scope: str  # app, grid, rejects, person, log, detail, timeline, school-life, requests,
    # fleet, dry-run-report
    changes_data: bool = False
    show: bool = True
    key_display: str | None = None


SPECS: tuple[KeySpec, ...] = (
    # Everywhere.
    KeySpec("help", "f1", "help", "Aide", "app", show=False),
    KeySpec("show-grid", "f2", "show_mode('grid')", "Grille", "app", show=False),
    KeySpec("show-timeline", "f3", "show_mode('timeline')", "Calendrier", "app", show=False),
    KeySpec("show-rejects", "f4", "show_mode('rejects')", "Rejets", "app", show=False),
    KeySpec("refresh", "f5", "refresh_data", "Actualiser", "app", show=False),
    KeySpec("show-log", "f6", "show_mode('log')", "Journal", "app", show=False),
    KeySpec("change-theme", "f8", "next_theme", "Thème", "app", show=False),
    KeySpec("command-palette", "f9,ctrl+p", "command_palette", "Actions", "app",
            show=False),
    KeySpec("quit", "f10,q,ctrl+q", "request_quit", "Quitter", "app", show=False),
    # Calendar grid.
    KeySpec("filter-text", "slash", "filter_text", "Filtrer", "grid", key_display="/"),
    KeySpec("filter-clear", "escape", "clear_filter", "Effacer le filtre", "grid", show=False,
            key_display="Échap"),
    KeySpec("filter-state", "f", "filter_state", "État", "grid", show=False),
    KeySpec("filter-kind", "k", "filter_kind", "Type", "grid", show=False),
    KeySpec("sort", "o", "sort", "Trier", "grid", show=False),
    KeySpec("group-by-project", "g", "group", "Par projet", "grid", show=False),
    KeySpec("mark", "space", "mark", "Marquer", "grid", show=False, key_display="Espace"),
    KeySpec("mark-all", "plus", "mark_all", "Tout marquer", "grid", show=False,
            key_display="+"),
    KeySpec("unmark-all", "minus", "unmark_all", "Tout démarquer", "grid", show=False,
            key_display="-"),
    KeySpec("open-detail", "enter", "open_detail", "Détail", "grid", show=False,
            key_display="Entrée"),
    KeySpec("bottom-pane", "b", "cycle_pane", "Volet", "grid", show=False),
    KeySpec("dry-run", "d", "dry_run", "Passage à blanc", "grid", changes_data=True),
    KeySpec("run-step", "r", "run_step", "Lancer", "grid", changes_data=True),
    KeySpec("pause-resume", "p", "pause_resume", "Pause", "grid", changes_data=True,
            show=False),
    KeySpec("cancel", "c", "cancel", "Annuler", "grid", changes_data=True, show=False),
    KeySpec("retry-failed", "R", "retry_failed", "Relancer échecs", "grid",
            changes_data=True, show=False, key_display="Maj+R"),
    KeySpec("edit-dates", "e", "edit_dates", "Dates", "grid", changes_data=True, show=False),
    KeySpec("import-aaf", "i", "import_aaf", "Import AAF", "grid", changes_data=True,
            show=False),
    KeySpec("import-timetable", "I", "import_timetable", "Import EDT", "grid",
            changes_data=True, show=False, key_display="Maj+I"),
    KeySpec("school-life", "v", "school_life", "Vie scolaire", "grid", show=False),
    KeySpec("show-requests", "D", "show_requests", "Demandes", "grid", show=False,
            key_display="Maj+D"),
    KeySpec("dry-run-report", "w", "dry_run_report", "Avertissements", "grid", show=False),
    KeySpec("show-fleet", "t", "show_fleet", "Processus de travail", "grid", show=False),
    KeySpec("redo-archive", "A", "redo_archive", "Refaire l'archivage", "grid",
            changes_data=True, show=False, key_display="Maj+A"),
    KeySpec("project-settings", "P", "project_settings", "Projet", "grid",
            changes_data=True, show=False, key_display="Maj+P"),
    # Rejects browser.
    KeySpec("rejects-search", "slash", "search", "Rechercher", "rejects", key_display="/"),
    KeySpec("rejects-detail", "enter", "toggle_detail", "Détail", "rejects", show=False,
            key_display="Entrée"),
    KeySpec("rejects-handled", "t", "mark_handled", "Traité", "rejects"),
    KeySpec("rejects-hide-handled", "h", "hide_handled", "Masquer traités", "rejects",
            show=False),
    KeySpec("rejects-export", "x", "export_csv", "Export CSV", "rejects"),
    KeySpec("rejects-clear", "escape", "clear_filters", "Effacer filtres", "rejects",
            show=False, key_display="Échap"),
    KeySpec("rejects-uai", "u", "filter_uai", "UAI", "rejects"),
    KeySpec("rejects-person", "p", "open_person", "Personne", "rejects"),
    # One person (support staff).
    KeySpec("person-close", "escape", "close", "Retour aux rejets", "person",
            key_display="Échap"),
    # Log.
    KeySpec("log-search", "slash", "search", "Filtrer", "log", key_display="/"),
    KeySpec("log-level", "n", "cycle_level", "Niveau", "log"),
    KeySpec("log-clear", "escape", "clear_search", "Effacer le filtre, ou retour",
            "log", show=False, key_display="Échap"),
    KeySpec("log-line", "enter", "open_line", "Ligne entière", "log", show=False,
            key_display="Entrée"),
    # Requests to the engine.
    KeySpec("requests-close", "escape", "close", "Retour à la grille", "requests",
            key_display="Échap"),
    # The fleet: worker processes and the units they run.
    KeySpec("fleet-close", "escape", "close", "Retour à la grille", "fleet",
            key_display="Échap"),
    KeySpec("fleet-cancel", "c", "cancel", "Annuler", "fleet", changes_data=True),
    KeySpec("fleet-cancel-all", "C", "cancel_all", "Tout annuler", "fleet",
            changes_data=True, key_display="Maj+C"),
    KeySpec("fleet-pause-resume", "p", "pause_resume", "Pause / reprise", "fleet",
            changes_data=True),
    # Establishment detail.
    KeySpec("detail-close", "escape", "close", "Fermer", "detail", key_display="Échap"),
    KeySpec("detail-dry-run", "d", "dry_run", "Passage à blanc", "detail", changes_data=True),
    KeySpec("detail-run-step", "r", "run_step", "Lancer une étape", "detail",
            changes_data=True),
    KeySpec("detail-school-life", "v", "school_life", "Vie scolaire", "detail"),
    KeySpec("detail-redo-archive", "A", "redo_archive", "Refaire l'archivage", "detail",
            changes_data=True, show=False, key_display="Maj+A"),
    # Step-5 wizard (vie scolaire).
    KeySpec("school-life-close", "escape", "close", "Fermer", "school-life",
            key_display="Échap"),
    KeySpec("school-life-apply", "f7", "apply", "Valider", "school-life", changes_data=True),
    # Timeline.
    KeySpec("timeline-earlier", "left", "shift(-7)", "Semaine -1", "timeline", show=False,
            key_display="←"),
    KeySpec("timeline-later", "right", "shift(7)", "Semaine +1", "timeline", show=False,
            key_display="→"),
    KeySpec("timeline-today", "home", "shift(0)", "Aujourd'hui", "timeline", show=False,
            key_display="Début"),
    KeySpec("timeline-zoom", "z", "zoom", "Zoom", "timeline"),
    KeySpec("timeline-back", "escape", "back", "Retour à la grille", "timeline", show=False,
            key_display="Échap"),
    # Académie-wide dry-run report.
    KeySpec("report-search", "slash", "search", "Filtrer", "dry-run-report", key_display="/"),
    KeySpec("report-code", "c", "cycle_code", "Code", "dry-run-report"),
    KeySpec("report-export", "x", "export_csv", "Export CSV", "dry-run-report"),
    KeySpec("report-close", "escape", "close", "Effacer le filtre, ou retour",
            "dry-run-report", key_display="Échap"),
)
SPEC_BY_ID = {spec.id: spec for spec in SPECS}
CHANGING_ACTION_NAMES = frozenset(spec.action for spec in SPECS if spec.changes_data)

FORBIDDEN_DEFAULT_KEYS = ("ctrl+s", "ctrl+b", "ctrl+enter", "ctrl+j", "ctrl+a")
"""Keys a terminal or multiplexer swallows; no default may use them (nor any alt+)."""


def bindings_for(scope: str) -> list[Binding]:
    """Textual bindings of one scope, each carrying its id."""
    return [Binding(spec.keys, spec.action, spec.label, show=spec.show, id=spec.id)
            for spec in SPECS if spec.scope == scope]


def keymap_from_settings(raw: object) -> tuple[dict[str, str], list[str]]:
    """Validate the config file's ``[keys]`` table.

    Args:
        raw: the table as read (binding id → keys, comma separated).

    Returns:
        The keymap to apply and French problems (unknown id, bad value), if any.
    """
    if raw is None:
        return {}, []
    if not isinstance(raw, Mapping):
        return {}, ["[keys] doit être une table « identifiant = \"touches\" »."]
    keymap: dict[str, str] = {}
    problems: list[str] = []
    for binding_id, keys in raw.items():
        if binding_id not in SPEC_BY_ID:
            problems.append(f"[keys] identifiant inconnu « {binding_id} ».")
            continue
        if isinstance(keys, list):
            keys = ",".join(str(key) for key in keys)
        if not isinstance(keys, str) or not keys.strip():
            problems.append(f"[keys] {binding_id} : touches attendues (texte).")
            continue
        keymap[str(binding_id)] = ",".join(key.strip() for key in keys.split(",") if key.strip())
    return keymap, problems


def effective_keys(binding_id: str, keymap: Mapping[str, str]) -> str:
    """The keys a binding answers to once the keymap is applied."""
    return keymap.get(binding_id, SPEC_BY_ID[binding_id].keys)


def display_keys(keys: str) -> str:
    """Human form of a key list: ``f10,q`` → ``F10, q``."""
    names = {"slash": "/", "space": "Espace", "enter": "Entrée", "escape": "Échap",
             "plus": "+", "minus": "-", "left": "←", "right": "→", "home": "Début",
             "up": "↑", "down": "↓"}
    shown = []
    for key in keys.split(","):
        key = key.strip()
        if key in names:
            shown.append(names[key])
        elif key.startswith("f") and key[1:].isdigit():
            shown.append(key.upper())
        elif key.startswith("ctrl+"):
            shown.append("Ctrl+" + key[5:].upper())
        elif len(key) == 1 and key.isupper():
            shown.append(f"Maj+{key}")
        else:
            shown.append(key)
    return ", ".join(shown)
