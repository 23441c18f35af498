"""The console driven with keys on a scripted engine: every action, live updates, read-only."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tui_support import make_app, run, screen_text, settle, wait_until

from yearchange_tui.bench.console import bench_console, console_app
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.tui.fake_engine import FakeEngine
from yearchange_tui.tui.rejects_source import RejectQuery
from yearchange_tui.tui.screens.detail import DetailScreen
from yearchange_tui.tui.screens.modals import ConfirmModal, HelpModal, QuitModal, TextPromptModal
from yearchange_tui.tui.screens.rejects import RejectsScreen
from yearchange_tui.tui.widgets.calendar_grid import CalendarGrid
from yearchange_tui.workflow.models import Step, UnitStatus


def test_the_grid_shows_every_establishment_with_glyphs_and_words_at_80x24() -> None:
    fake = FakeEngine(5)
    fake.set_unit(fake.uais[0], "archive", status=UnitStatus.FAILED, error="disque plein")

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            text = screen_text(app)
            for uai in fake.uais:
                assert uai in text
            assert "✗ échec" in text and "○ 07/07" in text
            assert "moteur ● attaché" in text
            assert "✗ 1 échec" in text and "5 étab." in text
            assert "1Aide" in text and "10Quitter" in text
            for line in text.splitlines():
                assert len(line) <= 80
            await pilot.press("right")
            text = screen_text(app)
            assert f"{fake.uais[0]} · 2 Archivage : ✗ échec — disque plein" in text

    run(scenario)


def test_live_progress_redraws_only_the_changed_cell() -> None:
    fake = FakeEngine(40)

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            grid = app.query_one(CalendarGrid)
            full, cells = grid.full_refreshes, grid.cell_refreshes
            fake.progress(fake.uais[1], "archive", 21, 50, rate=3.5, eta=8)
            await settle(app, pilot)
            assert grid.cell_refreshes == cells + 1
            assert grid.full_refreshes == full
            text = screen_text(app)
            assert "◐ 42 %" in text
            assert "Progression — 1 unité en cours" in text
            assert "21/50 3,5/s reste 0:08" in text
            fake.set_unit(fake.uais[1], "archive", status=UnitStatus.DONE, rate_per_s=None)
            await settle(app, pilot)
            assert "aucune unité en cours" in screen_text(app)

    run(scenario)


def test_dry_run_of_the_marked_establishments_is_confirmed_then_requested() -> None:
    fake = FakeEngine(6, auto=True)

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("space", "space", "d")
            assert isinstance(app.screen, ConfirmModal)
            assert "2 établissement(s)" in screen_text(app)
            await pilot.press("escape")
            await settle(app, pilot)
            assert fake.requests == []
            await pilot.press("d", "q")  # a dialog is modal: q does not quit from it
            assert isinstance(app.screen, ConfirmModal) and app.is_running
            await pilot.press("f10")  # F10 closes a dialog, as in mc
            assert not isinstance(app.screen, ConfirmModal) and app.is_running
            await pilot.press("d", "enter")
            await settle(app, pilot)
            assert fake.requests == [(RequestAction.DRY_RUN, {"uais": fake.uais[:2]})]
            assert screen_text(app).count("◐ 0 %") == 2
            fake.tick(4)
            await settle(app, pilot)
            assert app.model.cells[fake.uais[0]]["dry-run"].status is UnitStatus.DONE

    run(scenario)


def test_destructive_steps_need_the_number_of_establishments_typed() -> None:
    fake = FakeEngine(6, auto=True)

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("plus", "right", "r")  # cursor column: 2 Archivage
            assert isinstance(app.screen, ConfirmModal)
            assert "tapez le nombre d'établissements : 6" in screen_text(app)
            await pilot.press("5", "enter")
            assert isinstance(app.screen, ConfirmModal)
            assert "ne correspond pas" in screen_text(app)
            await pilot.press("6", "enter")
            await settle(app, pilot)
            assert fake.requests == [(RequestAction.RUN, {"step": "archive",
                                                          "uais": fake.uais})]

    run(scenario)


def test_one_establishment_needs_its_uai_typed_and_step_4_only_a_yes() -> None:
    fake = FakeEngine(3, auto=True)

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            uai = fake.uais[0]
            await pilot.press("r")  # cursor column: 1 Corbeille
            assert "tapez l'UAI" in screen_text(app)
            await pilot.press(*uai.lower(), "enter")
            await settle(app, pilot)
            assert fake.requests[-1] == (RequestAction.RUN, {"step": "purge-trash",
                                                             "uais": [uai]})
            await pilot.press("right", "right", "right", "r")  # 4 Annuaire
            assert isinstance(app.screen, ConfirmModal) and app.screen.challenge is None
            await pilot.press("o")
            await settle(app, pilot)
            assert fake.requests[-1] == (RequestAction.RUN, {"step": "init-directory",
                                                             "uais": [uai]})

    run(scenario)


def test_a_step_is_asked_for_when_the_cursor_is_not_on_one() -> None:
    fake = FakeEngine(3, auto=True)

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("left", "left", "r")  # column 0: passage à blanc
            assert "Quelle étape lancer ?" in screen_text(app)
            await pilot.press("down", "down", "down", "down", "enter")  # step 5
            assert isinstance(app.screen, ConfirmModal)
            await pilot.press("enter")
            await settle(app, pilot)
            assert fake.requests[-1][1]["step"] == "init-school-life"

    run(scenario)


def test_pause_resume_cancel_and_retry() -> None:
    fake = FakeEngine(4, auto=True)
    fake.set_unit(fake.uais[2], "archive", status=UnitStatus.FAILED, error="verrou")

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("p", "enter")
            await settle(app, pilot)
            assert fake.requests[-1][0] is RequestAction.PAUSE
            assert "EN PAUSE" in screen_text(app)
            await pilot.press("p", "enter")
            await settle(app, pilot)
            assert fake.requests[-1][0] is RequestAction.RESUME
            await pilot.press("c")
            await settle(app, pilot)
            assert len(fake.requests) == 2  # nothing running: nothing to confirm
            fake.progress(fake.uais[0], "purge-trash", 1, 4)
            await settle(app, pilot)
            await pilot.press("c", "enter")
            await settle(app, pilot)
            # Nothing marked: the cursor row, never every unit.
            assert fake.requests[-1] == (RequestAction.CANCEL, {"uais": [fake.uais[0]]})
            await pilot.press("plus", "right", "R")
            assert "Relancer les échecs de l'étape 2" in screen_text(app)
            await pilot.press(*fake.uais[2], "enter")
            await settle(app, pilot)
            assert fake.requests[-1] == (RequestAction.RETRY, {"step": "archive",
                                                               "uais": [fake.uais[2]]})

    run(scenario)


def test_edit_dates_and_imports(tmp_path: Path) -> None:
    fake = FakeEngine(3, auto=True)
    delivery = tmp_path / "aaf"
    delivery.mkdir()

    async def scenario() -> None:
        app = make_app(fake, aaf_hint=str(delivery))
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("e")
            await pilot.press("ctrl+a", "ctrl+k", *"31/02/2026", "enter")
            assert "Date invalide" in screen_text(app)
            await pilot.press("ctrl+a", "ctrl+k", *"09/07/2026", "enter", "enter")
            await settle(app, pilot)
            assert fake.requests[-1] == (RequestAction.SET_DATE, {
                "step": "purge-trash", "uais": [fake.uais[0]], "date": dt.date(2026, 7, 9)})
            assert "○ 09/07" in screen_text(app)
            await pilot.press("i", "enter", "enter")
            await settle(app, pilot)
            assert fake.requests[-1] == (RequestAction.IMPORT_AAF, {"path": str(delivery)})
            assert await wait_until(pilot, lambda: "ELEVE_SANS_CLASSE" in screen_text(app))
            await pilot.press("I", *str(tmp_path / "missing.xml"), "enter")
            assert "Chemin introuvable" in screen_text(app)
            await pilot.press("escape", "I", *str(delivery), "enter", "enter")
            await settle(app, pilot)
            assert fake.requests[-1] == (RequestAction.IMPORT_TIMETABLE,
                                         {"path": str(delivery), "uai": fake.uais[0]})

    run(scenario)


def test_read_only_offers_nothing_that_changes_data() -> None:
    fake = FakeEngine(3, auto=True, read_only=True)

    async def scenario() -> None:
        app = make_app(fake, read_only=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            assert "CONSULTATION" in screen_text(app)
            for key in ("d", "r", "p", "c", "R", "e", "i", "I"):
                await pilot.press(key)
                assert not isinstance(app.screen, ConfirmModal), key
            # Shown greyed (disabled), each key saying why when pressed.
            bindings = app.screen.active_bindings
            assert not bindings["r"].enabled and not bindings["d"].enabled
            titles = [command.title for command in app.get_system_commands(app.screen)]
            assert not any("Lancer" in title or "Importer" in title or "Annuler" in title
                           for title in titles)
            app.send_request(RequestAction.RUN, {"step": "archive", "uais": fake.uais}, "")
            await settle(app, pilot)
            assert fake.requests == []
            await pilot.press("f1")
            assert isinstance(app.screen, HelpModal)
            labels = " ".join(label for _keys, label in app.screen.keys)
            # A dry run stores its report: support staff do not start one.
            assert "Passage à blanc — indisponible en mode consultation  [dry-run]" in labels
            assert "[show-rejects]" in labels

    run(scenario)


def test_the_engine_refusal_is_shown_not_raised() -> None:
    fake = FakeEngine(2, auto=True, read_only=True)

    async def scenario() -> None:
        app = make_app(fake)  # the console thinks it may; the engine says no
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await settle(app, pilot)
            app.read_only = False
            app.send_request(RequestAction.PAUSE, {}, "Pause demandée.")
            await settle(app, pilot)
            assert any("Refusé par le moteur" in n.message for n in app._notifications)

    run(scenario)


def test_filter_sort_group_and_detail() -> None:
    fake = FakeEngine(12)

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            lycee = next(u for u in fake.uais if app.model.views[u].kind == "lycee")
            await pilot.press("slash", *lycee[:5])
            assert app.model.visible_uais == [u for u in fake.uais if u.startswith(lycee[:5])]
            await pilot.press("escape")
            assert len(app.model.visible_uais) == 12
            await pilot.press("k")
            assert all(app.model.views[u].kind == "college" for u in app.model.visible_uais)
            await pilot.press("k", "k", "k", "g")
            assert "Projet ACAD-GRENOBLE" in screen_text(app)
            await pilot.press("g", "f", "f")
            assert app.model.visible_uais == [] and "Aucun établissement" in screen_text(app)
            await pilot.press(*["f"] * 6)
            await pilot.press("o")
            assert "Ordre : nom" in " ".join(n.message for n in app._notifications)
            await pilot.press("enter")
            assert isinstance(app.screen, DetailScreen)
            await app.workers.wait_for_complete()
            await pilot.pause()
            text = screen_text(app)
            assert "Archives de l'étape 2 (1)" in text and "9f2c000000000000…" in text
            assert "Classes probablement héritées" in text
            await pilot.press("escape")
            assert app.screen.HELP_NAME == "grid"  # type: ignore[attr-defined]

    run(scenario)


def test_quitting_while_units_run_says_they_continue_in_the_engine() -> None:
    fake = FakeEngine(3)
    fake.progress(fake.uais[0], "archive", 1, 10)

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("q")
            assert isinstance(app.screen, QuitModal)
            assert "continuent dans le moteur" in screen_text(app)
            await pilot.press("escape")
            assert not isinstance(app.screen, QuitModal)
            await pilot.press("f10", "enter")
            await pilot.pause()
        assert app.return_code == 0

    run(scenario)


def test_quitting_with_nothing_running_needs_no_question() -> None:
    async def scenario() -> None:
        app = make_app(FakeEngine(2))
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("ctrl+q")
            await pilot.pause()
            assert not app.is_running

    run(scenario)


def test_help_per_screen_and_remapped_keys() -> None:
    fake = FakeEngine(3, auto=True)

    async def scenario() -> None:
        app = make_app(fake, keys={"dry-run": "w", "show-rejects": "f7"})
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("f1")
            assert isinstance(app.screen, HelpModal)
            text = screen_text(app)
            assert "Aide — Grille du changement d'année" in text
            assert app.screen.keys[1] == ("/", "Filtrer  [filter-text]")
            assert ("w", "Passage à blanc  [dry-run]") in app.screen.keys
            await pilot.press("escape", "w")
            assert isinstance(app.screen, ConfirmModal)
            await pilot.press("escape", "f7")
            assert isinstance(app.screen, RejectsScreen)
            assert "7Rejets" in screen_text(app)
            await pilot.press("f1")
            assert "Aide — Rejets des imports AAF" in screen_text(app)

    run(scenario)


def test_a_broken_theme_gives_one_notification_and_a_fallback(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text('name = "cassé"\nprimary = "bleu"\n')

    async def scenario() -> None:
        fake = FakeEngine(2)
        app = make_app(fake, theme="inconnu", theme_dirs=[tmp_path])
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await settle(app, pilot)
            notes = list(app._notifications)
            assert len(notes) == 1
            assert "broken.toml" in notes[0].message and "inconnu" in notes[0].message
            assert app.theme == "yearchange-secours"
            assert fake.uais[0] in screen_text(app)

    run(scenario)


def test_theme_switch_from_the_palette_and_f8() -> None:
    async def scenario() -> None:
        app = make_app(FakeEngine(2))
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("f9", *"light")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await pilot.pause()
            assert app.theme == "yearchange-light"
            await pilot.press("f8")
            assert app.theme == app.theme_names[(app.theme_names.index(
                "yearchange-light") + 1) % len(app.theme_names)]

    run(scenario)


def test_the_palette_offers_every_action() -> None:
    async def scenario() -> None:
        app = make_app(FakeEngine(2))
        async with app.run_test(size=(80, 24)):
            titles = " | ".join(command.title for command in app.get_system_commands(app.screen))
            for wanted in ("Passage à blanc", "Lancer une étape", "Suspendre ou reprendre",
                           "Annuler les unités", "Relancer les échecs", "Modifier une date",
                           "Importer une livraison AAF", "Importer un emploi du temps",
                           "Filtrer la grille par texte", "Exporter les rejets", "Quitter",
                           "Aide", "Thème : yearchange-high-contrast"):
                assert wanted in titles, wanted

    run(scenario)


def test_rejects_browser_filters_marks_and_exports(tmp_path: Path) -> None:
    fake = FakeEngine(6)

    async def scenario() -> None:
        app = make_app(fake, data_dir=tmp_path)
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            await pilot.press("f4")
            assert await wait_until(pilot, lambda: "INE_DOUBLON" in screen_text(app))
            text = screen_text(app)
            assert "Rejets AAF — 6" in text
            assert "Explication : L'élève n'a aucune classe" in text
            assert "Action suggérée : Affecter l'élève" in text and "<addRequest>" in text
            await pilot.press("t")
            assert await wait_until(pilot, lambda: fake.rejects.query(
                RejectQuery(hide_handled=True)).total == 5)
            # Handled rejects are hidden by default, and counted; h shows them.
            assert await wait_until(pilot, lambda: "Rejets AAF — 5 · 1 traité masqué"
                                    in screen_text(app))
            await pilot.press("x")
            assert await wait_until(pilot, lambda: isinstance(app.screen, TextPromptModal))
            await pilot.press("enter")  # the configured folder, as pre-filled
            await app.workers.wait_for_complete()
            exports = list((tmp_path / "exports").glob("rejets-*.csv"))
            assert len(exports) == 1
            assert len(exports[0].read_text(encoding="utf-8-sig").splitlines()) == 6
            await pilot.press("h")
            assert await wait_until(pilot, lambda: "Rejets AAF — 6 · 1 traité"
                                    in screen_text(app))
            await pilot.press("slash", *"doublon")
            browser = app.screen
            assert isinstance(browser, RejectsScreen)
            assert await wait_until(pilot, lambda: bool(browser.rows) and all(
                row.code == "INE_DOUBLON" for row in browser.rows.values()))
            await pilot.press("escape", "escape")
            await pilot.press("enter")
            assert app.screen.has_class("-detail-expanded")

    run(scenario)


def test_journal_and_timeline() -> None:
    fake = FakeEngine(4)
    fake.log("Moteur démarré.")
    fake.log("Disque presque plein.", "warning")
    fake.log("Étape 2 en échec.", "error", uai=fake.uais[0], kind="unit")

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await settle(app, pilot)
            await pilot.press("f6")
            text = screen_text(app)
            assert "Moteur démarré." in text and "! 09:30:00 Disque presque plein." in text
            await pilot.press("n", "n")
            text = screen_text(app)
            assert "Moteur démarré." not in text and "Étape 2 en échec." in text
            await pilot.press("f3")
            text = screen_text(app)
            assert "│juillet" in text and "┃ aujourd'hui 03/07" in text
            assert "1 Corbeille" in text and "█" in text
            fake.log("Unité en échec.", "error", uai=fake.uais[1], kind="unit")
            await settle(app, pilot)
            assert any("Unité en échec." in n.message for n in app._notifications)

    run(scenario)


def test_a_thousand_establishments_stay_fluid() -> None:
    fake = FakeEngine(1000)
    for uai in fake.uais[:8]:
        fake.progress(uai, "archive", 1, 1000)

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            grid = app.query_one(CalendarGrid)
            assert len(app.model.rows) == 1000
            await pilot.press("end")
            assert grid.cursor_uai == fake.uais[-1] and fake.uais[-1] in screen_text(app)
            await pilot.press("home")
            full, cells = grid.full_refreshes, grid.cell_refreshes
            for done in range(2, 202):
                for uai in fake.uais[:8]:
                    fake.progress(uai, "archive", done, 1000)
                app.bridge.poll_once()
            app.drain_board()
            await pilot.pause()
            assert grid.full_refreshes == full
            assert grid.cell_refreshes - cells == 8  # 1,600 reports, one repaint per cell
            assert "◐ 20 %" in screen_text(app)
            assert app.model.cells[fake.uais[7]]["archive"].percent == 20
            assert app.model.views[fake.uais[7]].units[Step.ARCHIVE].progress_done == 201

    run(scenario)


def test_the_console_bench_measures_the_real_rejects_browser_and_detail() -> None:
    fake = FakeEngine(6)

    async def scenario() -> None:
        app = console_app(fake)
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            await pilot.press("f4")
            assert await wait_until(pilot, lambda: "Rejets AAF — 6" in screen_text(app))
            await pilot.press("f2")
            assert await wait_until(pilot, lambda: not isinstance(app.screen, RejectsScreen))
            await pilot.press("enter")
            assert isinstance(app.screen, DetailScreen)
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert "Archives de l'étape 2 (1)" in screen_text(app)
        fake.close()

    run(scenario)


def test_the_console_bench_measures_every_key_press() -> None:

    result = bench_console(establishments=60, running=2, presses=8, size=(80, 24), scripted=True)
    assert result["measured"] == 8
    assert result["key_to_redraw_ms"]["p50"] is not None
    assert result["board"]["drains"] >= 1 and result["peak_rss_mb"] > 0
