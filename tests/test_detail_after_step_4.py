"""The establishment detail after the real steps, on a real sample académie.

A dry run made after the real steps is kept as history and never replaces the pre-run
report the real counts are compared with; the detail says which dry run it compares
against, and stays readable at 80×24 after step 4 (French labels, no raw keys, no
Python dict, the dry-run column still there).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from template_support import copy_sample
from textual.containers import VerticalScroll
from tui_support import make_app, run, screen_text, wait_until

from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.tui.detail_source import DatabaseDetailSource
from yearchange_tui.tui.rejects_source import open_rejects_source
from yearchange_tui.tui.screens.detail import DetailScreen

UAI = "0693422V"


@pytest.fixture(scope="module")
def after_step_4(tmp_path_factory: pytest.TempPathFactory) -> tuple[Database, Path]:
    """Dry run, steps 1 to 3, a second dry run after them, then step 4 (the AAF import)."""
    out = copy_sample(tmp_path_factory.mktemp("academie"), 2, 7, 2025)
    places = ["--db", f"sqlite:///{out / 'yearchange.db'}", "--storage", str(out / "storage")]
    assert main(["dry-run", "--uai", UAI, *places]) == 0
    for step in ("purge-trash", "archive", "delete-obsolete"):
        assert main(["run", step, "--uai", UAI, "--yes", *places]) == 0
    assert main(["dry-run", "--uai", UAI, *places]) == 0
    assert main(["import-aaf", str(out / "aaf"), *places]) == 0
    database = open_database(f"sqlite:///{out / 'yearchange.db'}")
    yield database, out
    database.dispose()


def test_a_dry_run_after_the_real_run_keeps_the_pre_run_comparison(after_step_4) -> None:
    database, out = after_step_4
    detail = DatabaseDetailSource(database, open_rejects_source(database, out)).detail(UAI)
    assert detail is not None
    by_key = {step.key: step for step in detail.steps}
    for key in ("purge-trash", "archive", "delete-obsolete"):
        step = by_key[key]
        assert step.real_counts, key
        # The pre-run dry run is the one compared: it counted what the real run did,
        # where the later one (made on emptied data) would count next to nothing.
        assert step.dry_run_at is not None and step.dry_run_at <= step.started_at
        assert step.later_dry_runs == 1
        numbers = {k: v for k, v in step.real_counts.items() if isinstance(v, int)}
        assert any(numbers.values()), key
        assert {k: step.dry_run_counts.get(k) for k in numbers} == numbers, key


def test_the_detail_after_step_4_is_readable_at_80x24(after_step_4) -> None:
    database, out = after_step_4
    rejects = open_rejects_source(database, out)

    async def scenario() -> None:
        app = make_app(DatabaseEngineClient(database), rejects=rejects,
                       details=DatabaseDetailSource(database, rejects))
        async with app.run_test(size=(80, 24)) as pilot:
            await app.sync()
            app.push_screen(DetailScreen(UAI))
            await wait_until(pilot, lambda: "Compte" in screen_text(app))
            await app.workers.wait_for_complete()
            await pilot.pause()
            scroll = app.screen.query_one("#detail-scroll", VerticalScroll)
            pages = []
            for _ in range(12):
                pages.append(screen_text(app))
                scroll.scroll_page_down(animate=False)
                await pilot.pause()
            text = "\n".join(pages)
            assert "À blanc" in text and "Réel" in text
            assert "4 Initialisation de l'annuaire N+1" in text
            assert "personnes créées" in text and "classes créées" in text
            assert "comparé au passage à blanc du" in text
            assert "passage(s) à blanc fait(s) après l'exécution réelle" in text
            for raw in ("classes_created", "flagged_absent", "guard_override",
                        "school_year", "{'", "': "):
                assert raw not in text, raw
            # The dry-run column is drawn: the step-1 counts show their dry-run value.
            assert re.search(r"documents? .*\s\d+\s+\d+", text)

    run(scenario)
