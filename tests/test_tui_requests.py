"""The console shows the truth about requests: cancel acts on what the operator sees
(the marked set, else the cursor row, queued units included, paused or not), read-only
keys say why they do nothing, the queue has its own glyphs, and every request is listed
with the engine's answer (Maj+D)."""

from __future__ import annotations

from tui_support import make_app, run, screen_text, settle, wait_until

from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.tui.fake_engine import FakeEngine
from yearchange_tui.tui.screens.modals import ConfirmModal, HelpModal
from yearchange_tui.tui.screens.requests import RequestsScreen
from yearchange_tui.workflow.models import UnitStatus


def dialog_text(app: object) -> str:
    return " ".join(str(line) for line in app.screen.lines)  # type: ignore[attr-defined]


def notifications(app: object) -> str:
    return " ".join(n.message for n in app._notifications)  # type: ignore[attr-defined]


def test_cancel_of_a_marked_set_names_the_set_running_and_queued() -> None:
    fake = FakeEngine(4, auto=True)
    first, second, third, _fourth = fake.uais
    fake.progress(first, "purge-trash", 1, 4)
    fake.set_unit(second, "purge-trash", queue="queued")  # waits in the engine's queue
    fake.progress(third, "purge-trash", 1, 4)  # running, but not marked

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            assert "≡" in screen_text(app)  # the queued unit has its own glyph
            await pilot.press("space", "space")  # mark the first two rows
            assert app.marked == {first, second}
            await pilot.press("c")
            assert isinstance(app.screen, ConfirmModal)
            text = dialog_text(app)
            assert "1 unité(s) en cours" in text and "1 unité(s) en file" in text
            # Before Entrée, the running unit finishes: the request still names the set.
            fake.set_unit(first, "purge-trash", status=UnitStatus.DONE)
            await pilot.press("enter")
            await settle(app, pilot)
            assert fake.requests[-1] == (RequestAction.CANCEL, {"uais": [first, second]})
            assert app.model.cells[second]["purge-trash"].queue is None
            assert app.model.cells[third]["purge-trash"].status is UnitStatus.RUNNING

    run(scenario)


def test_cancel_with_nothing_marked_is_the_cursor_row_only() -> None:
    fake = FakeEngine(3, auto=True)
    for uai in fake.uais:
        fake.progress(uai, "archive", 1, 4)

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            await pilot.press("down", "c")
            assert isinstance(app.screen, ConfirmModal)
            assert fake.uais[1] in dialog_text(app) and "1 unité(s) en cours" in dialog_text(app)
            await pilot.press("enter")
            await settle(app, pilot)
            assert fake.requests[-1] == (RequestAction.CANCEL, {"uais": [fake.uais[1]]})
            assert app.model.cells[fake.uais[1]]["archive"].queue is not None  # interrupted
            assert "‖" in screen_text(app)
            for uai in (fake.uais[0], fake.uais[2]):
                assert app.model.cells[uai]["archive"].status is UnitStatus.RUNNING

    run(scenario)


def test_while_paused_cancel_removes_queued_units() -> None:
    fake = FakeEngine(3, auto=True)

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            await pilot.press("p", "enter")
            await settle(app, pilot)
            await pilot.press("plus", "d", "enter")  # a dry run of all three: queued
            await settle(app, pilot)
            assert all(app.model.cells[uai]["dry-run"].queue is not None for uai in fake.uais)
            await pilot.press("c")
            assert isinstance(app.screen, ConfirmModal)
            assert "3 unité(s) en file" in dialog_text(app)
            await pilot.press("enter")
            await settle(app, pilot)
            assert fake.requests[-1] == (RequestAction.CANCEL, {"uais": fake.uais})
            assert all(app.model.cells[uai]["dry-run"].queue is None for uai in fake.uais)
            assert "retirée(s) de la file" in notifications(app)

    run(scenario)


def test_read_only_keys_are_greyed_and_say_why_without_sending() -> None:
    fake = FakeEngine(3, auto=True, read_only=True)

    async def scenario() -> None:
        app = make_app(fake, read_only=True)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await settle(app, pilot)
            bindings = app.screen.active_bindings
            assert bindings["d"].enabled is False and bindings["r"].enabled is False
            await pilot.press("d")
            assert not isinstance(app.screen, ConfirmModal)
            said = notifications(app)
            assert "Mode consultation" in said and "Passage à blanc" in said
            assert "rapport" in said and "Rien n'a été envoyé" in said
            await pilot.press("c")
            assert not isinstance(app.screen, ConfirmModal)
            assert "« Annuler » est indisponible" in notifications(app)
            await settle(app, pilot)
            assert fake.requests == []
            await pilot.press("f1")
            assert isinstance(app.screen, HelpModal)
            labels = {label.rsplit("[", 1)[-1]: label for _keys, label in app.screen.keys}
            assert "indisponible en mode consultation" in labels["dry-run]"]
            assert "indisponible" not in labels["show-rejects]"]

    run(scenario)


def test_the_requests_screen_lists_each_request_with_the_engine_answer() -> None:
    fake = FakeEngine(3, auto=True)

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(120, 30), notifications=True) as pilot:
            await settle(app, pilot)
            await pilot.press("c")  # nothing runs on the cursor row: nothing is sent
            assert not isinstance(app.screen, ConfirmModal)
            app.send_request(RequestAction.CANCEL, {"uais": [fake.uais[0]]}, "")
            await settle(app, pilot)
            assert "Sans effet (demande n° 1)" in notifications(app)
            app.send_request(RequestAction.RUN, {"step": "purge-trash", "uais": [fake.uais[0]]},
                             "")
            await settle(app, pilot)
            await pilot.press("D")
            assert isinstance(app.screen, RequestsScreen)
            assert await wait_until(pilot, lambda: "Lancer" in screen_text(app))
            text = screen_text(app)
            assert "∅ sans effet" in text and "✓ fait" in text
            assert "aucune unité en file ni en cours à annuler" in text
            assert text.index("Lancer") < text.index("Annuler")  # newest first
            await pilot.press("down")
            assert "Demande n° 1" in screen_text(app)
            await pilot.press("escape")
            assert await wait_until(pilot, lambda: not isinstance(app.screen, RequestsScreen))
            titles = [command.title for command in app.get_system_commands(app.screen)]
            assert any(title.startswith("Aller aux demandes (Maj+D)") for title in titles)

    run(scenario)


def test_the_header_and_the_state_filter_count_the_queue_apart_from_planned() -> None:
    from yearchange_tui.tui.widgets.engine_header import EngineHeader

    fake = FakeEngine(4)
    first, second, third, _fourth = fake.uais
    fake.set_unit(first, "purge-trash", queue="queued")
    fake.set_unit(second, "purge-trash", queue="waiting")
    fake.set_unit(third, "purge-trash", queue="interrupted")
    fake.set_unit(third, "archive", queue="interrupted")

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(160, 30)) as pilot:
            await settle(app, pilot)
            header = str(app.screen.query_one(EngineHeader).render())
            assert "≡ 1 en file" in header and "⋯ 1 prérequis" in header
            assert "‖ 2 interrompu" in header
            # The planned count leaves out the 4 units the engine has in its queue.
            planned = app.model.counts()[UnitStatus.PENDING]
            assert f"○ {planned} planifié" in header
            pending = sum(cell.status is UnitStatus.PENDING
                          for cells in app.model.cells.values()
                          for key, cell in cells.items() if key != "access-block")
            assert planned == pending - 4
            # The state filter finds them by their queue state, not as « planifié ».
            shown = []
            for _ in range(8):
                await pilot.press("f")
                shown.append((app.model.filter.describe(), list(app.model.visible_uais)))
            assert ("état ‖ interrompu", [third]) in shown
            assert ("état ≡ en file", [first]) in shown
            assert ("état ⋯ prérequis", [second]) in shown

    run(scenario)


def test_at_80_columns_the_header_keeps_every_count_and_the_establishments() -> None:
    from yearchange_tui.tui.widgets.engine_header import EngineHeader

    fake = FakeEngine(30)
    for uai in fake.uais:
        fake.set_view(uai, access_blocked=True)
        fake.set_unit(uai, "access-block", status=UnitStatus.RUNNING)  # in force: not work
        for key in ("purge-trash", "archive", "delete-obsolete", "init-directory"):
            fake.set_unit(uai, key, status=UnitStatus.DONE, dry_run_done=True)
    first, second, third, fourth = fake.uais[:4]
    fake.set_unit(first, "init-directory", status=UnitStatus.FAILED, error="x")
    fake.set_unit(second, "init-school-life", queue="queued")
    fake.set_unit(third, "init-school-life", queue="waiting")
    fake.set_unit(fourth, "delete-obsolete", status=UnitStatus.PENDING, queue="interrupted")

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            header = screen_text(app).splitlines()[1]
            assert "…" not in header, header
            assert header.rstrip().endswith("│ 30 étab."), header
            for piece in ("✗ 1 échec", "‖ 1 int.", "⋯ 1 prér.", "≡ 1 file"):
                assert piece in header, (piece, header)
            assert "◐" not in header  # the blocks in force are not « en cours »
            assert isinstance(app.screen.query_one(EngineHeader), EngineHeader)

    run(scenario)
