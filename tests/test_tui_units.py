"""Console building blocks without a terminal: cells, layout, filters, keys, themes, board."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from rich.color import Color as RichColor
from rich.color import ColorSystem
from textual.color import Color

from yearchange_tui.resources import themes_dir
from yearchange_tui.scheduling.api import EngineMode, EngineStatus, RequestOutcome
from yearchange_tui.scheduling.models import RequestStatus
from yearchange_tui.tui.app import answer_message
from yearchange_tui.tui.bindings import (
    FORBIDDEN_DEFAULT_KEYS,
    SPECS,
    display_keys,
    keymap_from_settings,
)
from yearchange_tui.tui.bridge import EngineBridge, ProgressBoard
from yearchange_tui.tui.detail_source import dates_from
from yearchange_tui.tui.fake_engine import FakeEngine, fake_establishments
from yearchange_tui.tui.grid_model import (
    COLUMNS,
    CellState,
    Density,
    GridModel,
    SortKey,
    cells_for,
)
from yearchange_tui.tui.rejects_source import (
    EmptyRejectsSource,
    HandledStore,
    MemoryRejectsSource,
    RejectQuery,
    export_csv,
)
from yearchange_tui.tui.theming import (
    DEFAULT_THEME,
    OWN_VARIABLES,
    ThemeFileError,
    load_theme_dirs,
    load_theme_file,
)
from yearchange_tui.tui.widgets.calendar_grid import STEP_WIDTH, compute_layout
from yearchange_tui.tui.widgets.fkey_bar import fkey_items
from yearchange_tui.workflow.audit import system_user
from yearchange_tui.workflow.calendar import SOURCES
from yearchange_tui.workflow.models import UNIT_STATUS_GLYPHS, Step, UnitStatus

STATUS_VARIABLES = [name for name in OWN_VARIABLES if name.startswith("status-")
                    and name != "status-none"]


# -- cells ---------------------------------------------------------------------------------


@pytest.mark.parametrize("density", list(Density))
@pytest.mark.parametrize("status", [*UnitStatus, None])
def test_every_cell_fits_its_column_and_starts_with_its_glyph(density: Density,
                                                              status: UnitStatus | None) -> None:
    for cell in (CellState(status), CellState(status, dt.date(2026, 7, 7)),
                 CellState(status, percent=100), CellState(status, word="actif")):
        text = cell.text(density)
        assert len(text) <= STEP_WIDTH[density] - 1, (density, text)
        assert text.startswith(cell.glyph)


def test_cells_say_the_state_in_words_not_only_in_colour() -> None:
    assert CellState(UnitStatus.DONE).text(Density.WIDE) == "✓ terminé"
    assert CellState(UnitStatus.DONE).text(Density.MEDIUM) == "✓ terminé"
    assert CellState(UnitStatus.FAILED).text(Density.NARROW) == "✗ échec"
    assert CellState(UnitStatus.RUNNING, percent=42).text(Density.WIDE) == "◐ en cours 42 %"
    assert CellState(UnitStatus.RUNNING, percent=42).text(Density.NARROW) == "◐ 42 %"
    planned = CellState(UnitStatus.PENDING, dt.date(2026, 7, 7))
    assert planned.text(Density.WIDE) == "○ planifié 07/07"
    assert planned.describe() == "○ planifié le 07/07/2026"
    assert CellState(UnitStatus.PENDING).describe() == "○ en attente"
    assert CellState(None).describe() == "· non prévu"
    glyphs = {UNIT_STATUS_GLYPHS[status] for status in UnitStatus}
    assert len(glyphs) == len(UnitStatus)


def test_pseudo_steps_are_derived_when_the_client_does_not_report_them() -> None:
    view = fake_establishments(1)[0]
    units = {key: unit for key, unit in view.units.items() if isinstance(key, Step)}
    bare = replace(view, units=units)
    assert cells_for(bare)["dry-run"].status is UnitStatus.PENDING
    done = {step: replace(unit, dry_run_done=True) for step, unit in units.items()}
    assert cells_for(replace(bare, units=done))["dry-run"].status is UnitStatus.DONE
    running = {**done, Step.PURGE_TRASH: replace(done[Step.PURGE_TRASH],
                                                 status=UnitStatus.RUNNING)}
    assert cells_for(replace(bare, units=running))["dry-run"].status is UnitStatus.DONE
    blocked = cells_for(replace(bare, access_blocked=True))["access-block"]
    assert blocked.status is UnitStatus.RUNNING and blocked.word == "actif"
    assert cells_for(bare)["warnings"].status is None


# -- layout --------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "density", "names"), [
    (79, Density.NARROW, False), (99, Density.NARROW, True), (119, Density.MEDIUM, True),
    (200, Density.WIDE, True)])
def test_the_grid_layout_fits_the_width(width: int, density: Density, names: bool) -> None:
    layout = compute_layout(width)
    assert layout.density is density
    assert bool(layout.name_width) is names
    assert layout.width <= width
    assert len(layout.step_x) == len(COLUMNS)


# -- model: filter, sort, groups, counts ---------------------------------------------------


def _model(count: int = 12) -> GridModel:
    model = GridModel()
    model.replace_all(fake_establishments(count))
    return model


def test_filter_by_text_state_and_kind() -> None:
    model = _model()
    lycee = next(view for view in model.views.values() if view.kind == "lycee")
    model.filter.text = lycee.uai.lower()
    model.rebuild_rows()
    assert model.visible_uais == [lycee.uai]
    model.filter.text = ""
    model.filter.kind = "lycee"
    model.rebuild_rows()
    assert model.visible_uais and all(model.views[u].kind == "lycee" for u in model.visible_uais)
    model.filter.kind = None
    failed = model.visible_uais[0]
    unit = model.views[failed].units[Step.ARCHIVE]
    model.update(replace(model.views[failed], units={
        **model.views[failed].units, Step.ARCHIVE: replace(unit, status=UnitStatus.FAILED)}))
    model.filter.status = UnitStatus.FAILED
    model.rebuild_rows()
    assert model.visible_uais == [failed]
    assert "échec" in model.filter.describe()


def test_update_reports_only_the_changed_cells() -> None:
    model = _model()
    uai = model.visible_uais[3]
    view = model.views[uai]
    unit = view.units[Step.ARCHIVE]
    changed = model.update(replace(view, units={**view.units, Step.ARCHIVE: replace(
        unit, status=UnitStatus.RUNNING, progress_done=5, progress_total=10)}))
    assert changed == {"archive"}
    assert model.update(model.views[uai]) == set()


def test_sort_by_state_puts_failures_first_and_grouping_adds_headings() -> None:
    model = _model(10)
    last = max(model.views)
    view = model.views[last]
    model.update(replace(view, units={**view.units, Step.ARCHIVE: replace(
        view.units[Step.ARCHIVE], status=UnitStatus.FAILED)}))
    model.sort_key, model.sort_column = SortKey.STATE, "archive"
    model.rebuild_rows()
    assert model.visible_uais[0] == last
    model.sort_key = SortKey.UAI
    model.grouped = True
    model.rebuild_rows()
    headings = [row.heading for row in model.rows if row.is_heading]
    assert headings == ["Projet ACAD-GRENOBLE — 5 établissement(s)",
                        "Projet ACAD-LYON — 5 établissement(s)"]
    assert model.counts()[UnitStatus.FAILED] == 1


# -- keys ----------------------------------------------------------------------------------


def test_every_binding_has_a_unique_id_and_no_default_key_is_swallowed_by_terminals() -> None:
    ids = [spec.id for spec in SPECS]
    assert len(ids) == len(set(ids))
    for spec in SPECS:
        for key in spec.keys.split(","):
            assert key not in FORBIDDEN_DEFAULT_KEYS, spec
            assert not key.startswith("alt+"), spec
    quit_keys = next(spec for spec in SPECS if spec.id == "quit").keys.split(",")
    assert {"f10", "q", "ctrl+q"} <= set(quit_keys)
    assert next(spec for spec in SPECS if spec.id == "help").keys == "f1"
    assert next(spec for spec in SPECS if spec.id == "filter-text").keys == "slash"


def test_keymap_from_the_config_file_is_checked() -> None:
    keymap, problems = keymap_from_settings({"dry-run": "w", "quit": ["f10", "x"],
                                             "nope": "z", "help": 3})
    assert keymap == {"dry-run": "w", "quit": "f10,x"}
    assert any("nope" in problem for problem in problems)
    assert any("help" in problem for problem in problems)
    assert keymap_from_settings("quit")[1]
    assert display_keys("f10,q,ctrl+q") == "F10, q, Ctrl+Q"
    assert display_keys("R") == "Maj+R"


def test_fkey_bar_follows_remaps() -> None:
    assert fkey_items({})[0] == ("1", "Aide")
    items = {label: key for key, label in fkey_items({"show-rejects": "f7"})}
    assert items["Rejets"] == "7"


# -- themes --------------------------------------------------------------------------------


def test_shipped_themes_load_with_every_console_variable() -> None:
    loaded = load_theme_dirs([themes_dir()])
    assert loaded.errors == []
    assert {"yearchange-dark", "yearchange-light", "yearchange-high-contrast"} <= set(
        loaded.themes)
    assert DEFAULT_THEME in loaded.themes
    for theme in loaded.themes.values():
        assert set(OWN_VARIABLES) <= set(theme.variables), theme.name


def _downgraded(value: str, system: ColorSystem) -> str:
    rgb = Color.parse(value).rich_color.get_truecolor()
    return str(RichColor.from_rgb(*rgb).downgrade(system).number)


@pytest.mark.parametrize("name", ["yearchange-dark", "yearchange-light",
                                  "yearchange-high-contrast"])
def test_status_colours_stay_distinct_at_256_colours(name: str) -> None:
    theme = load_theme_dirs([themes_dir()]).themes[name]
    colours = [_downgraded(theme.variables[variable], ColorSystem.EIGHT_BIT)
               for variable in STATUS_VARIABLES]
    assert len(set(colours)) == len(colours), dict(zip(STATUS_VARIABLES, colours))


def test_high_contrast_status_colours_stay_distinct_at_16_colours() -> None:
    theme = load_theme_dirs([themes_dir()]).themes["yearchange-high-contrast"]
    essential = ["status-running", "status-done", "status-failed", "status-blocked",
                 "status-missed"]
    colours = [_downgraded(theme.variables[v], ColorSystem.STANDARD) for v in essential]
    assert len(set(colours)) == len(colours)


def test_a_broken_theme_file_is_reported_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "bad-colour.toml").write_text('name = "bad"\nprimary = "#zzzzzz"\n')
    (tmp_path / "not-toml.toml").write_text("name = \n")
    (tmp_path / "no-primary.toml").write_text('name = "np"\n')
    (tmp_path / "typo.toml").write_text('name = "typo"\nprimary = "#ffffff"\nprimry = "#000"\n')
    (tmp_path / "minimal.toml").write_text('name = "minimal"\nprimary = "#5f87d7"\n')
    loaded = load_theme_dirs([tmp_path])
    assert sorted(loaded.themes) == ["minimal"]
    assert len(loaded.errors) == 4
    assert all(error.split(" : ")[0].endswith(".toml") for error in loaded.errors)
    assert set(OWN_VARIABLES) <= set(loaded.themes["minimal"].variables)
    with pytest.raises(ThemeFileError, match="primary"):
        load_theme_file(tmp_path / "no-primary.toml")


# -- bridge and board ----------------------------------------------------------------------


def test_the_board_coalesces_reports_from_many_threads() -> None:
    fake = FakeEngine(50)
    board = ProgressBoard()
    uais = fake.uais[:8]

    def report(uai: str) -> None:
        for done in range(1, 1001):
            fake.progress(uai, "archive", done, 1000)
            board.put_views(fake.establishments())

    threads = [threading.Thread(target=report, args=(uai,)) for uai in uais]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    changes = board.drain()
    assert set(changes.views) == set(fake.uais)
    assert all(changes.views[uai].units[Step.ARCHIVE].progress_done == 1000 for uai in uais)
    assert board.drains == 1 and board.reports >= 8000
    assert not board.drain()


def test_the_bridge_reports_an_unreachable_engine_once() -> None:
    class Broken:
        def last_event_id(self) -> int:
            raise OSError("base verrouillée")

        def status(self) -> EngineStatus:
            raise OSError("base verrouillée")

    posted: list[object] = []
    bridge = EngineBridge(Broken(), ProgressBoard(), posted.append)  # type: ignore[arg-type]
    bridge.poll_once()
    bridge.poll_once()
    assert len(posted) == 1 and "base verrouillée" in posted[0].problem  # type: ignore[attr-defined]


def test_the_bridge_polls_views_status_and_events() -> None:
    fake = FakeEngine(3, mode=EngineMode.OBSERVER)
    fake.log("bonjour")
    posted: list[object] = []
    board = ProgressBoard()
    bridge = EngineBridge(fake, board, posted.append)
    bridge.poll_once()
    changes = board.drain()
    assert len(changes.views) == 3 and changes.status is not None
    assert changes.status.mode is EngineMode.OBSERVER
    assert [event.message for event in posted[0].events] == ["bonjour"]  # type: ignore[attr-defined]
    bridge.poll_once()
    assert not board.drain() and len(posted) == 1


# -- rejects source ------------------------------------------------------------------------


def test_memory_rejects_filter_mark_and_export(tmp_path: Path) -> None:
    fake = FakeEngine(6)
    source: MemoryRejectsSource = fake.rejects
    page = source.query(RejectQuery())
    assert page.total == 6
    first = page.rows[0]
    assert source.query(RejectQuery(uai=first.uai.lower())).total == 1
    assert source.query(RejectQuery(severity="avertissement")).total == 1
    assert source.query(RejectQuery(text="doublon")).total == 2
    source.set_handled([first.id], True)
    assert source.query(RejectQuery(hide_handled=True)).total == 5
    path = export_csv(source.query(RejectQuery()).rows, tmp_path, dt.datetime(2026, 7, 3))
    content = path.read_text(encoding="utf-8-sig").splitlines()
    assert content[0].startswith("import;uai;code;gravité")
    assert len(content) == 7 and f";oui;{system_user()}" in content[1]
    assert content[2].endswith(";non;;")


def test_handled_marks_survive_a_restart(tmp_path: Path) -> None:
    store = HandledStore(tmp_path / "marks.json")
    store.set([3, 4], True)
    store.set([4], False)
    assert HandledStore(tmp_path / "marks.json").ids() == {3}
    by, at = HandledStore(tmp_path / "marks.json").marks()[3]
    assert by.startswith(system_user()) and at is not None and at.tzinfo is not None


def test_an_older_handled_file_still_reads_without_who_nor_when(tmp_path: Path) -> None:
    (tmp_path / "marks.json").write_text("[5, 7]", encoding="utf-8")
    assert HandledStore(tmp_path / "marks.json").marks() == {5: ("", None), 7: ("", None)}


def test_one_establishments_export_is_named_for_it(tmp_path: Path) -> None:
    rows = FakeEngine(6).rejects.query(RejectQuery()).rows
    named = export_csv(rows[:1], tmp_path, dt.datetime(2026, 7, 3, 9, 5), uai=rows[0].uai)
    assert named.name == f"rejets-{rows[0].uai}-20260703-090500.csv"
    assert export_csv(rows, tmp_path, dt.datetime(2026, 7, 3)).name == \
        "rejets-20260703-000000.csv"


def test_every_source_of_an_access_block_date_reads_as_correct_french() -> None:
    phrases = {label: dates_from(label) for label in SOURCES.values()}
    assert phrases["établissement"] == "dates de l'établissement"
    assert phrases["projet"] == "dates du projet"
    assert phrases["modèle"] == "dates du modèle"
    assert phrases["type"] == "dates du type d'établissement"
    for label, phrase in phrases.items():
        assert phrase.startswith("dates ") and ":" not in phrase, label
        assert "du é" not in phrase and "du tous" not in phrase, phrase
    assert dates_from("modèle (lendemain de la fermeture)") == (
        "dates du modèle (lendemain de la fermeture)")


def test_without_a_rejects_source_the_browser_is_empty_with_a_french_note() -> None:
    source = EmptyRejectsSource()
    assert source.query(RejectQuery()).rows == [] and not source.available
    assert "rejets AAF" in source.note and "pas disponible" not in source.note


def test_theme_settings_and_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from yearchange_tui.tui.app import _theme_setting, theme_dirs_for

    assert _theme_setting("yearchange-light") == ("yearchange-light", [])
    assert _theme_setting({"name": "x", "dir": str(tmp_path)}) == ("x", [tmp_path])
    assert _theme_setting(None) == (None, [])
    monkeypatch.setenv("YEARCHANGE_THEMES_DIR", str(tmp_path / "env"))
    folders = theme_dirs_for([tmp_path / "config"])
    assert folders[0] == themes_dir()
    assert folders[-2:] == [tmp_path / "env", tmp_path / "config"]


def test_the_themes_command_checks_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from yearchange_tui.cli.main import main

    assert main(["themes", "--check"]) == 0
    assert "yearchange-high-contrast" in capsys.readouterr().out
    (tmp_path / "oops.toml").write_text('name = "oops"\n')
    monkeypatch.setenv("YEARCHANGE_THEMES_DIR", str(tmp_path))
    assert main(["themes", "--check"]) == 2
    assert "oops.toml" in capsys.readouterr().out


def test_keys_from_the_config_file_are_listed_with_their_ids(
        capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import os

    from yearchange_tui.cli.main import main

    Path(os.environ["YEARCHANGE_CONFIG"]).write_text('[keys]\ndry-run = "w"\nnope = "z"\n',
                                                     encoding="utf-8")
    assert main(["keys", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    by_id = {row["id"]: row for row in listed["bindings"]}
    assert by_id["dry-run"]["keys"] == "w" and by_id["quit"]["keys"] == "f10,q,ctrl+q"
    assert by_id["run-step"]["changes_data"] is True
    assert any("nope" in problem for problem in listed["problems"])


def test_both_engine_clients_offer_everything_the_console_uses(tmp_path: Path) -> None:
    from yearchange_tui.ent.database import open_database
    from yearchange_tui.scheduling.api import EngineClient
    from yearchange_tui.scheduling.client import DatabaseEngineClient

    database = open_database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        assert isinstance(DatabaseEngineClient(database), EngineClient)
        assert DatabaseEngineClient(database).request_outcome(1) is None
    finally:
        database.dispose()
    assert isinstance(FakeEngine(1), EngineClient)


def test_the_wizard_follows_its_step_5_request_to_the_engines_answer() -> None:
    from yearchange_tui.scheduling.api import RequestAction
    from yearchange_tui.tui.school_life_source import EngineVerdict, follow_step_request

    fake = FakeEngine(2, auto=True, step_total=1)
    uai = fake.uais[0]
    request_id = fake.request(RequestAction.RUN, step="init-school-life", uais=[uai])
    # Running: not settled yet, so the wizard says it is in the engine's queue.
    answer = follow_step_request(fake, request_id, timeout=0)
    assert answer.verdict is EngineVerdict.QUEUED and answer.engine_runs
    fake.tick()
    assert follow_step_request(fake, request_id).verdict is EngineVerdict.DONE
    blocked = fake.request(RequestAction.RUN, step="init-school-life", uais=[fake.uais[1]])
    fake.set_unit(fake.uais[1], "init-school-life", status=UnitStatus.BLOCKED,
                  error="2 point(s) bloquant(s)")
    answer = follow_step_request(fake, blocked)
    assert (answer.verdict, answer.message) == (EngineVerdict.MISSING, "2 point(s) bloquant(s)")
    fake.set_status(mode=EngineMode.NONE)
    answer = follow_step_request(fake, fake.request(RequestAction.RUN, step="init-school-life",
                                                    uais=[uai]))
    assert answer.verdict is EngineVerdict.QUEUED and not answer.engine_runs


def test_a_request_toast_is_the_engine_answer() -> None:
    done = answer_message("Étape 2 demandée.", 7, RequestOutcome(
        7, "run", RequestStatus.DONE, "Archivage de fin d'année N : 0 unité(s) en file, "
        "1 déjà terminée(s)"))
    assert done.text == ("Moteur (demande n° 7) : Archivage de fin d'année N : 0 unité(s) en "
                         "file, 1 déjà terminée(s)") and done.severity == "information"
    refused = answer_message("Passage à blanc demandé.", 8, RequestOutcome(
        8, "dry-run", RequestStatus.REFUSED, "mode consultation : refusée"))
    assert refused.severity == "error" and "Refusé par le moteur" in refused.text
    failed = answer_message("Import AAF demandé.", 9, RequestOutcome(
        9, "import-aaf", RequestStatus.FAILED, "fichier illisible"))
    assert failed.severity == "error" and failed.text.endswith("en échec : fichier illisible")
    queued = answer_message("Étape 1 demandée.", 10, None)
    assert queued.text.startswith("Étape 1 demandée. (demande n° 10) : en file")


def test_ten_thousand_fake_establishments_have_valid_distinct_uais() -> None:
    """``console-bench --establishments 9001`` crashed on « 06910000 » (issue 16)."""
    from yearchange_tui.ent.uai import is_valid_uai

    uais = [view.uai for view in fake_establishments(20_000)]
    assert len(set(uais)) == 20_000
    assert all(is_valid_uai(uai) for uai in uais)
    assert uais[:3] == [view.uai for view in fake_establishments(3)]
