"""The console as a new operator meets it at 80×24 and 60×20 (Textual pilot, scripted
engine): « Chargement… » until the first data, a palette that finds « pause », Esc that
clears every filter and goes back, an F-key bar that keeps Aide and Quitter, a grid that
scrolls sideways, a journal line read whole, batch progress with the time left, and the
académie-wide dry-run report (filter, code, CSV export).
"""

from __future__ import annotations

from pathlib import Path

from tui_support import make_app, run, screen_text, settle, wait_until

from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.tui.fake_engine import FakeEngine
from yearchange_tui.tui.grid_model import COLUMNS
from yearchange_tui.tui.screens.dry_run_report import DryRunReportScreen
from yearchange_tui.tui.screens.log import LineModal
from yearchange_tui.workflow.models import UnitStatus


def test_the_first_frame_says_loading_not_that_nothing_matches() -> None:
    async def scenario() -> None:
        app = make_app(FakeEngine(3))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            text = screen_text(app)
            assert "Chargement…" in text
            assert "Aucun établissement ne correspond" not in text
            await settle(app, pilot)
            assert "Chargement…" not in screen_text(app)

    run(scenario)


def test_the_palette_finds_pause_by_its_help() -> None:
    async def scenario() -> None:
        app = make_app(FakeEngine(2))
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("f9", *"pause")
            assert await wait_until(pilot, lambda: "Suspendre ou reprendre" in screen_text(app))
            await pilot.press("enter")
            await pilot.pause()
            assert "Mettre le moteur en pause" in screen_text(app)

    run(scenario)


def test_escape_clears_every_grid_filter_and_goes_back_from_f3_and_f6() -> None:
    fake = FakeEngine(12)

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("k", "f", "slash", "0", "enter")
            assert len(app.model.visible_uais) < 12
            await pilot.press("escape")
            assert len(app.model.visible_uais) == 12
            assert app.model.filter.describe() == ""
            await pilot.press("f3")
            assert app.screen.HELP_NAME == "timeline"  # type: ignore[attr-defined]
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen.HELP_NAME == "grid"  # type: ignore[attr-defined]
            await pilot.press("f6")
            assert app.screen.HELP_NAME == "log"  # type: ignore[attr-defined]
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen.HELP_NAME == "grid"  # type: ignore[attr-defined]

    run(scenario)


def test_at_60_columns_the_fkey_bar_keeps_help_and_quit_and_the_grid_scrolls() -> None:
    fake = FakeEngine(6)

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(60, 20)) as pilot:
            await settle(app, pilot)
            last_line = screen_text(app).splitlines()[-1]
            assert "1Aide" in last_line and "10Quitter" in last_line
            first = fake.uais[0]
            assert COLUMNS[-1].narrow_title not in screen_text(app)
            await pilot.press(*["right"] * len(COLUMNS))
            await pilot.pause()
            text = screen_text(app)
            assert COLUMNS[-1].narrow_title in text  # the last step came into view
            assert first in text and "◂" in text  # the UAI stays, the left is hidden
            await pilot.press(*["left"] * len(COLUMNS))
            await pilot.pause()
            assert "◂" not in screen_text(app)

    run(scenario)


def test_enter_shows_a_whole_journal_line() -> None:
    fake = FakeEngine(2)
    tail = "et la fin du message se lit en entier dans la fenêtre"
    fake.log("Import AAF : " + "fichier ENT_10_Complet_Eleve.xml, " * 8 + tail, "warning")

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("f6")
            assert tail not in " ".join(screen_text(app).split())
            await pilot.press("enter")
            assert await wait_until(pilot, lambda: isinstance(app.screen, LineModal))
            assert await wait_until(pilot, lambda: tail in " ".join(
                screen_text(app).replace("█", " ").split()))  # the dialog's border
            await pilot.press("escape")
            assert app.screen.HELP_NAME == "log"  # type: ignore[attr-defined]

    run(scenario)


def test_a_batch_shows_how_many_ended_and_the_time_left() -> None:
    fake = FakeEngine(4, auto=True)
    clock = [100.0]

    async def scenario() -> None:
        app = make_app(fake)
        app.batches.clock = lambda: clock[0]
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("space", "space", "space", "d", "enter")
            await settle(app, pilot)
            assert fake.requests[-1][0] is RequestAction.DRY_RUN
            assert "0 À blanc : 0/3" in screen_text(app)
            clock[0] += 20
            fake.set_unit(fake.uais[0], "dry-run", status=UnitStatus.DONE)
            await settle(app, pilot)
            assert "0 À blanc : 1/3, reste ~0:40" in screen_text(app)

    run(scenario)


def test_the_dry_run_report_screen_filters_and_exports(tmp_path: Path) -> None:
    fake = FakeEngine(12)

    async def scenario() -> None:
        app = make_app(fake, data_dir=tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("w")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert isinstance(app.screen, DryRunReportScreen)
            assert "8 sur 8, 4 établissement(s)" in screen_text(app)
            first = fake.uais[0]
            await pilot.press("slash", *first, "enter")
            assert "2 sur 8, 1 établissement(s)" in screen_text(app)
            await pilot.press("escape", "c")
            assert "4 sur 8" in screen_text(app) and "code ARCHIVE-CAHIER-VIDE" in screen_text(app)
            await pilot.press("x")
            await app.workers.wait_for_complete()
            [export] = (tmp_path / "exports").glob("avertissements-*.csv")
            raw = export.read_bytes()
            assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
            rows = raw.decode("utf-8-sig").split("\r\n")
            assert rows[0].split(";")[:4] == ["UAI", "Établissement", "Étape", "Code"]
            assert len([row for row in rows[1:] if row]) == 4
            await pilot.press("escape")
            assert "8 sur 8" in screen_text(app)
            await pilot.press("escape")
            assert app.screen.HELP_NAME == "grid"  # type: ignore[attr-defined]

    run(scenario)
