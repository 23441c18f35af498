"""SVG snapshots of every screen at 80×24 and 120×36, and of the grid in every shipped theme.

The clock, the theme, the engine (scripted) and the cursor are pinned. A missing or
different snapshot fails; to accept the new pictures after reviewing them, run
``YEARCHANGE_SNAPSHOT_UPDATE=1 python -m pytest tests/test_tui_snapshots.py``.
Snapshots are tied to the exact Textual version (8.2.8): expect churn on upgrades.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input
from tui_support import make_app, run, settle

from yearchange_tui.scheduling.api import EngineMode
from yearchange_tui.tui.fake_engine import FakeEngine
from yearchange_tui.workflow.models import UnitStatus

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
UPDATE = os.environ.get("YEARCHANGE_SNAPSHOT_UPDATE") == "1"
SIZES = {"80x24": (80, 24), "120x36": (120, 36)}


def showcase() -> FakeEngine:
    """An engine caught mid-summer: every state on screen at least once."""
    fake = FakeEngine(30)
    first, second, third, fourth, fifth, sixth = fake.uais[:6]
    for key in ("purge-trash", "archive", "delete-obsolete"):
        fake.set_unit(first, key, status=UnitStatus.DONE, dry_run_done=True)
    fake.set_unit(first, "dry-run", status=UnitStatus.DONE)
    fake.progress(first, "init-directory", 21, 50, rate=3.5, eta=8)
    fake.set_view(first, access_blocked=True)
    fake.set_unit(first, "access-block", status=UnitStatus.RUNNING)
    fake.set_unit(second, "dry-run", status=UnitStatus.DONE)
    fake.set_unit(second, "purge-trash", status=UnitStatus.DONE)
    fake.set_unit(second, "archive", status=UnitStatus.FAILED, error="disque plein")
    fake.set_unit(third, "purge-trash", status=UnitStatus.BLOCKED,
                  error="import AAF en cours")
    fake.progress(fourth, "dry-run", 2, 4, rate=0.5, eta=4)
    fake.set_unit(fifth, "purge-trash", status=UnitStatus.MISSED)
    fake.set_unit(sixth, "init-school-life", status=UnitStatus.SKIPPED)
    fake.set_unit(sixth, "warnings", status=UnitStatus.DONE)
    fake.log("Moteur démarré sur moteur-test:4242.")
    fake.log("Fenêtre « étapes 1 à 3 » du 07/07 : 20 établissements.")
    fake.log("Étape 2 en échec : disque plein.", "error", uai=second, kind="unit")
    fake.log("Import AAF refusé pour un établissement fermé.", "warning", uai=third)
    return fake


def check_snapshot(name: str, svg: str, tmp_path: Path) -> None:
    """Compare with ``tests/snapshots/<name>.svg`` (or write it when updating)."""
    expected = SNAPSHOTS / f"{name}.svg"
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        expected.write_text(svg, encoding="utf-8")
        return
    actual = tmp_path / f"{name}.svg"
    actual.write_text(svg, encoding="utf-8")
    if not expected.exists():
        pytest.fail(f"pas de capture {expected.name} : relisez {actual} puis acceptez-la avec "
                    "YEARCHANGE_SNAPSHOT_UPDATE=1")
    if expected.read_text(encoding="utf-8") != svg:
        pytest.fail(f"la console a changé : comparez {expected} et {actual}")


Steps = Callable[[Any, Any, FakeEngine], Awaitable[None]]


async def _grid(app: Any, pilot: Any, fake: FakeEngine) -> None:
    await pilot.press("down", "space", "up", "right")


async def _timeline(app: Any, pilot: Any, fake: FakeEngine) -> None:
    await pilot.press("f3")


async def _rejects(app: Any, pilot: Any, fake: FakeEngine) -> None:
    await pilot.press("f4")
    await app.workers.wait_for_complete()
    await pilot.pause()


async def _log(app: Any, pilot: Any, fake: FakeEngine) -> None:
    await pilot.press("f6")


async def _detail(app: Any, pilot: Any, fake: FakeEngine) -> None:
    await pilot.press("enter")
    await app.workers.wait_for_complete()
    await pilot.pause()


async def _help(app: Any, pilot: Any, fake: FakeEngine) -> None:
    await pilot.press("f1")


async def _confirm(app: Any, pilot: Any, fake: FakeEngine) -> None:
    await pilot.press("plus", "right", "r")


SCREENS: dict[str, Steps] = {"grid": _grid, "timeline": _timeline, "rejects": _rejects,
                             "log": _log, "detail": _detail, "help": _help,
                             "confirm": _confirm}


def _capture(steps: Steps, size: tuple[int, int], theme: str,
             mode: EngineMode = EngineMode.ATTACHED) -> str:
    captured: list[str] = []

    async def scenario() -> None:
        fake = showcase()
        fake.set_status(mode=mode)
        app = make_app(fake, theme=theme)
        async with app.run_test(size=size) as pilot:
            await settle(app, pilot)
            await steps(app, pilot, fake)
            for box in app.screen.query(Input):
                box.cursor_blink = False
            await pilot.pause()
            captured.append(app.export_screenshot())

    run(scenario)
    return captured[0]


@pytest.mark.parametrize("size_name", list(SIZES))
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen_snapshot(screen: str, size_name: str, tmp_path: Path) -> None:
    svg = _capture(SCREENS[screen], SIZES[size_name], "yearchange-dark")
    check_snapshot(f"{screen}-{size_name}", svg, tmp_path)


@pytest.mark.parametrize("size_name", list(SIZES))
@pytest.mark.parametrize("theme", ["yearchange-light", "yearchange-high-contrast"])
def test_theme_snapshot(theme: str, size_name: str, tmp_path: Path) -> None:
    svg = _capture(_grid, SIZES[size_name], theme)
    check_snapshot(f"grid-{theme}-{size_name}", svg, tmp_path)


def test_no_engine_header_snapshot(tmp_path: Path) -> None:
    """No engine runs (it could not start): the header says so and that requests wait."""
    svg = _capture(_grid, SIZES["80x24"], "yearchange-dark", EngineMode.NONE)
    check_snapshot("grid-no-engine-80x24", svg, tmp_path)


# -- every screen after step 4, at 80×24 ---------------------------------------------------------


class ProjectFakeEngine(FakeEngine):
    """The scripted engine with one project's settings (the console's Maj+P dialog)."""

    def project_settings(self) -> list[dict[str, Any]]:
        return [{"project": "ACAD-GRENOBLE",
                 "access_block": {"starts_on": "2026-08-20", "ends_on": "2026-08-31",
                                  "message": "", "message_is_default": True,
                                  "establishments_may_amend": False},
                 "free_groups": {"warning_on": "2026-06-30", "second_warning_on": None,
                                 "lifetime_url_template": ""}}]


def after_step_4() -> FakeEngine:
    """An académie the day after step 4: steps 1 to 4 done almost everywhere, the access
    block in force, and the leftovers an operator must read at 80 columns (a step 4 refused
    before its unit began, a step 3 interrupted, step 5 queued, running and waiting)."""
    from yearchange_tui.scheduling.api import RequestAction
    from yearchange_tui.scheduling.models import RequestStatus

    fake = ProjectFakeEngine(30)
    uais = fake.uais
    for uai in uais:
        fake.set_unit(uai, "dry-run", status=UnitStatus.DONE)
        fake.set_unit(uai, "warnings", status=UnitStatus.DONE)
        for key in ("purge-trash", "archive", "delete-obsolete", "init-directory"):
            fake.set_unit(uai, key, status=UnitStatus.DONE, dry_run_done=True)
        fake.set_view(uai, access_blocked=True)
        fake.set_unit(uai, "access-block", status=UnitStatus.RUNNING,
                      error="accès élèves et parents bloqués jusqu'au 31/08/2026")
    refused, interrupted, queued, running, waiting = uais[1:6]
    fake.set_unit(refused, "init-directory", status=UnitStatus.FAILED,
                  error="en échec (demande n° 2) : aucune livraison AAF importée")
    fake.set_unit(interrupted, "delete-obsolete", status=UnitStatus.PENDING,
                  queue="interrupted", error="annulée par l'opérateur (demande n°3)")
    fake.set_unit(interrupted, "init-directory", status=UnitStatus.PENDING)
    fake.set_unit(queued, "init-school-life", queue="queued",
                  error="en file d'attente du moteur")
    fake.progress(running, "init-school-life", 3, 8, rate=0.5, eta=10)
    fake.set_unit(waiting, "init-school-life", queue="waiting",
                  error="en attente de l'étape 4")
    for action, params, answer in (
            (RequestAction.RUN, {"step": "init-directory", "uais": uais},
             (RequestStatus.DONE, "4 Annuaire : 29 unité(s) en file, 1 déjà terminée(s)")),
            (RequestAction.RUN, {"step": "init-directory", "uais": [refused]},
             (RequestStatus.FAILED, "aucune livraison AAF importée")),
            (RequestAction.CANCEL, {"uais": [interrupted]},
             (RequestStatus.DONE, ("0 unité(s) retirée(s) de la file, 1 en cours "
                                   "s'arrête(nt) à leur prochain point de reprise"))),
            (RequestAction.RETRY, {"step": "init-directory", "uais": [refused]},
             (RequestStatus.NO_EFFECT, "aucune unité en échec à relancer : " + refused
              + ", étape 4 arrêtée avant de commencer — aucune livraison AAF importée ; "
              "levez la cause puis redemandez l'étape 4 (r) : une relance ne reprend "
              "qu'une unité commencée")),
            (RequestAction.RUN, {"step": "init-school-life", "uais": [queued, running]},
             (RequestStatus.DONE, "5 Vie scolaire : 2 unité(s) en file"))):
        request_id = fake.request(action, **params)
        fake.answers[request_id] = answer
    fake.log("Moteur démarré sur moteur-test:4242.")
    fake.log("Étape 4 terminée pour 28 établissements.", kind="unit", step="init-directory")
    fake.log(f"Étape 4 en échec : aucune livraison AAF importée ({refused}).", "error",
             uai=refused, kind="unit", step="init-directory")
    fake.log(f"Étape 3 interrompue : annulée par l'opérateur ({interrupted}).", "warning",
             uai=interrupted, kind="unit", step="delete-obsolete")
    fake.log("Blocage des accès élèves et parents en vigueur jusqu'au 31/08/2026.")
    return fake


async def _requests(app: Any, pilot: Any, fake: FakeEngine) -> None:
    await pilot.press("D")
    await app.workers.wait_for_complete()
    await pilot.pause()


async def _dry_run_report(app: Any, pilot: Any, fake: FakeEngine) -> None:
    await pilot.press("w")
    await app.workers.wait_for_complete()
    await pilot.pause()


async def _project(app: Any, pilot: Any, fake: FakeEngine) -> None:
    await pilot.press("P")
    await pilot.pause()


async def _detail_interrupted(app: Any, pilot: Any, fake: FakeEngine) -> None:
    await pilot.press("down", "down", "enter")  # the establishment whose step 3 was cancelled
    await app.workers.wait_for_complete()
    await pilot.pause()


AFTER_STEP_4: dict[str, Steps] = {
    "grid": _grid, "detail": _detail_interrupted, "rejects": _rejects,
    "timeline": _timeline, "log": _log, "requests": _requests,
    "dry-run-report": _dry_run_report, "project": _project, "help": _help}
"""Every console screen but the step-5 wizard, whose 80×24 snapshot
(``school-life-80x24``) is taken on a real database after step 4 (test_tui_school_life)."""


@pytest.mark.parametrize("screen", list(AFTER_STEP_4))
def test_after_step_4_snapshot(screen: str, tmp_path: Path) -> None:
    captured: list[str] = []

    async def scenario() -> None:
        fake = after_step_4()
        app = make_app(fake, theme="yearchange-dark")
        async with app.run_test(size=SIZES["80x24"]) as pilot:
            await settle(app, pilot)
            await AFTER_STEP_4[screen](app, pilot, fake)
            for box in app.screen.query(Input):
                box.cursor_blink = False
            await pilot.pause()
            captured.append(app.export_screenshot())

    run(scenario)
    check_snapshot(f"after-step-4-{screen}-80x24", captured[0], tmp_path)


# -- the fleet: two simulated workers, one without news ------------------------------------------


@pytest.mark.parametrize("size_name", list(SIZES))
def test_fleet_snapshot(size_name: str, tmp_path: Path) -> None:
    """The fleet screen: each worker, its state and heartbeat, the units under it."""
    captured: list[str] = []

    async def scenario() -> None:
        fake = showcase()
        fake.workers = 2
        fake.stale_workers.add(1)
        for uai in fake.uais[6:9]:
            fake.progress(uai, "archive", 3, 10, rate=1.0, eta=7)
        app = make_app(fake, theme="yearchange-dark")
        async with app.run_test(size=SIZES[size_name]) as pilot:
            await settle(app, pilot)
            await pilot.press("t")
            await settle(app, pilot)
            await pilot.press("down")
            await pilot.pause()
            captured.append(app.export_screenshot())

    run(scenario)
    check_snapshot(f"fleet-{size_name}", captured[0], tmp_path)
