"""The console as support staff use it, read-only, at 80x24, on a real database: a UAI's
rejects in a few keys, one search that finds « NOËL » by « noel », and the person screen."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support_data import fill_support_database, plant_last_year_class
from textual.widgets import Input
from tui_support import make_app, run, screen_text, settle, wait_until

from yearchange_tui.tui.fake_engine import FakeEngine
from yearchange_tui.tui.rejects_source import DatabaseRejectsSource, HandledStore
from yearchange_tui.tui.screens.modals import HelpModal, TextPromptModal
from yearchange_tui.tui.screens.person import PersonScreen
from yearchange_tui.tui.screens.rejects import RejectsScreen
from yearchange_tui.workflow.audit import system_user

# The scripted console's clock is 03/07/2026: the block covers it.
BLOCK = (dt.date(2026, 7, 1), dt.date(2026, 9, 1))


@pytest.fixture
def source(database_url: str, tmp_path: Path):
    database = fill_support_database(database_url, BLOCK)
    yield DatabaseRejectsSource(database, HandledStore(tmp_path / "handled.json"))
    database.dispose()


def codes(browser: RejectsScreen) -> list[str]:
    return sorted(row.code for row in browser.rows.values())


def test_support_finds_a_schools_rejects_and_a_student_read_only(source, tmp_path) -> None:
    async def scenario() -> None:
        app = make_app(FakeEngine(3), data_dir=tmp_path, rejects=source, read_only=True,
                       exports_dir=tmp_path / "mes-exports")
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("f4")
            browser = app.screen
            assert isinstance(browser, RejectsScreen)
            assert await wait_until(pilot, lambda: len(browser.rows) == 2)
            # The UAI key is in the footer; F4, u, the UAI's beginning, Enter: 3 keys.
            assert "u UAI" in screen_text(app)
            await pilot.press("u", *"0698", "enter")
            assert await wait_until(pilot, lambda: codes(browser) ==
                                    ["AAF-NAISSANCE-MANQUANTE"])
            assert "UAI 0698…" in screen_text(app)
            # Handled: who and when, in the detail and the export named for the school.
            await pilot.press("t")
            assert await wait_until(pilot, lambda: not browser.rows)  # hidden, and counted
            assert "1 traité masqué" in screen_text(app)
            await pilot.press("h")
            assert await wait_until(pilot, lambda: any(
                row.handled for row in browser.rows.values()))
            row = next(iter(browser.rows.values()))
            assert row.handled_by.startswith(system_user()) and row.handled_at is not None
            assert await wait_until(pilot, lambda: f"✓ traité par {system_user()} le "
                                    in screen_text(app))
            # x asks for the folder, pre-filled with the configured one; Enter keeps it.
            await pilot.press("x")
            assert await wait_until(pilot, lambda: isinstance(app.screen, TextPromptModal))
            prompt = app.screen.query_one(Input)
            assert prompt.value == str(tmp_path / "mes-exports")
            assert "Dossier de l'export" in screen_text(app)
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            exports = list((tmp_path / "mes-exports").glob("rejets-0698689V-*.csv"))
            assert len(exports) == 1
            # Another folder, typed in the dialog: the export goes there; a file is refused.
            await pilot.press("x")
            assert await wait_until(pilot, lambda: isinstance(app.screen, TextPromptModal))
            prompt = app.screen.query_one(Input)
            prompt.value = str(exports[0])
            await pilot.press("enter")
            assert await wait_until(pilot, lambda: "n'est pas un dossier" in screen_text(app))
            prompt.value = str(tmp_path / "pour-le-college")
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            assert app.screen is browser
            assert len(list((tmp_path / "pour-le-college").glob("rejets-0698689V-*.csv"))) == 1
            lines = exports[0].read_text(encoding="utf-8-sig").splitlines()
            assert lines[0].endswith("traité;traité par;traité le")
            assert f";oui;{system_user()}" in lines[1]
            await pilot.press("escape")
            assert await wait_until(pilot, lambda: len(browser.rows) == 2)
            # Live narrowing as the name is typed: « noel » finds NOËL's own warning.
            await pilot.press("slash", *"noe")
            assert await wait_until(pilot, lambda: codes(browser) == ["AAF-CLASSE-INCONNUE"])
            await pilot.press("l", "enter")
            assert await wait_until(pilot, lambda: "« noel »" in screen_text(app))
            await pilot.press("p")
            assert await wait_until(pilot, lambda: isinstance(app.screen, PersonScreen)
                                    and app.screen.facts is not None)
            person = app.screen
            assert isinstance(person, PersonScreen) and person.facts is not None
            assert person.facts.decision is not None and person.facts.decision.blocked
            text = screen_text(app)
            assert "NOËL Camille" in text and "⊘ bloqué" in text and "5EME2" in text
            assert "AAF-CLASSE-INCONNUE" in text and "Élève bloqué jusqu'au 01/09" in text
            await pilot.press("escape")
            assert await wait_until(pilot, lambda: app.screen is browser)
            # A refused newcomer: no account, and why, in the words of the rejects.
            await pilot.press("escape", "slash", *"beranger", "enter", "p")
            assert await wait_until(pilot, lambda: isinstance(app.screen, PersonScreen)
                                    and app.screen.facts is not None)
            assert "aucun compte" in screen_text(app)
            # Several words, any order: « zoe beranger » finds her reject as well.
            await pilot.press("escape", "escape", "slash", *"zoe beranger", "enter")
            assert await wait_until(pilot, lambda: codes(browser) ==
                                    ["AAF-NAISSANCE-MANQUANTE"])
            await pilot.press("escape", "f1")
            assert await wait_until(pilot, lambda: isinstance(app.screen, HelpModal))
            # F1 on the browser lists the UAI key with the others.
            assert ("u", "UAI  [rejects-uai]") in app.keys_for("rejects")

    run(scenario)


def test_the_person_screen_flags_a_class_that_looks_like_last_years(
        database_url: str, tmp_path: Path) -> None:
    """The step-4 « classe N-1 probable » detection, on the person screen at 80x24."""
    database = fill_support_database(database_url, BLOCK)
    plant_last_year_class(database)
    source = DatabaseRejectsSource(database, HandledStore(tmp_path / "handled.json"))

    async def scenario() -> None:
        app = make_app(FakeEngine(3), data_dir=tmp_path, rejects=source, read_only=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("f4")
            browser = app.screen
            assert isinstance(browser, RejectsScreen)
            await pilot.press("slash", *"noel", "enter")
            assert await wait_until(pilot, lambda: codes(browser) == ["AAF-CLASSE-INCONNUE"])
            await pilot.press("p")
            assert await wait_until(pilot, lambda: isinstance(app.screen, PersonScreen)
                                    and app.screen.facts is not None)
            text = screen_text(app)
            assert "Classe N-1 probable" in text and "même code qu'une classe" in text

    try:
        run(scenario)
    finally:
        database.dispose()
