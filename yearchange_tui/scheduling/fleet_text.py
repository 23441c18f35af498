"""The fleet in French words: a worker's name, its state, its heartbeat's age, its units.

Shared by every place that shows the fleet (the console's fleet screen, the detail of an
establishment, the grid's cell line); plain functions, no Textual, any thread.
"""

from __future__ import annotations

import datetime as dt

from yearchange_tui.scheduling.fleet import STALE_LABEL, FleetWorker, RunningUnit
from yearchange_tui.workflow.localtime import format_local

STATE_GLYPHS = {"actif": "●", "s'arrête": "◌", "arrêté": "○", STALE_LABEL: "!"}
"""A glyph beside each state label (never colour alone)."""


def ago(now: dt.datetime, then: dt.datetime) -> str:
    """« il y a 12 s », « il y a 4 min », « il y a 2 h 05 » (« à l'instant » under 1 s)."""
    seconds = int((now - then).total_seconds())
    if seconds < 1:
        return "à l'instant"
    if seconds < 120:
        return f"il y a {seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"il y a {minutes} min"
    return f"il y a {minutes // 60} h {minutes % 60:02d}"


def worker_name(worker: FleetWorker) -> str:
    """« calcul-01 (pid 4301) »."""
    return f"{worker.host} (pid {worker.pid})"


def running_on(worker: FleetWorker) -> str:
    """« en cours sur calcul-01 (pid 4301) »."""
    return f"en cours sur {worker_name(worker)}"


def worker_state(worker: FleetWorker, now: dt.datetime) -> str:
    """« ● actif », « ! sans nouvelles »…"""
    label = worker.state_label(now)
    return f"{STATE_GLYPHS.get(label, '')} {label}".strip()


def queues_text(worker: FleetWorker) -> str:
    """The queues it takes units from, « toutes » when it takes every one."""
    return worker.queues.replace(",", ", ") if worker.queues else "toutes"


def load_text(worker: FleetWorker) -> str:
    """« 2 / 4 »: units running out of its concurrency."""
    return f"{len(worker.units)} / {worker.concurrency}"


def unit_step(unit: RunningUnit) -> str:
    """« étape 2 — Archivage de fin d'année N »."""
    return f"étape {unit.step.number} — {unit.step.label}"


def since_text(unit: RunningUnit, now: dt.datetime) -> str:
    """« depuis 09:12:03 (il y a 3 min) », in the operator's zone."""
    return f"depuis {format_local(unit.since, '%H:%M:%S')} ({ago(now, unit.since)})"


def worker_line(worker: FleetWorker, now: dt.datetime) -> str:
    """The whole worker on one line (the fleet screen's line under the table)."""
    line = (f"{worker_name(worker)} · {worker_state(worker, now)} · dernier signe de vie "
            f"{ago(now, worker.heartbeat_at)} ({format_local(worker.heartbeat_at, '%H:%M:%S')})"
            f" · démarré le {format_local(worker.started_at, '%d/%m à %H:%M')} · files : "
            f"{queues_text(worker)} · {len(worker.units)} unité(s) en cours sur "
            f"{worker.concurrency}")
    if worker.stale(now):
        line += (" — ce processus ne donne plus signe de vie : ses unités seront reprises "
                 "par un autre à l'expiration de leur réservation")
    return line


def empty_fleet(embedded: bool) -> str:
    """What an empty fleet means, and what to do."""
    if embedded:
        return ("Aucun processus de travail : sur SQLite, le moteur exécute les unités "
                "lui-même (yearchange engine, ou la console qui l'a lancé).")
    return ("Aucun processus de travail : lancez « yearchange worker » sur chaque machine "
            "de calcul (même base, même stockage partagé) ; les unités attendent en file "
            "jusque-là.")
