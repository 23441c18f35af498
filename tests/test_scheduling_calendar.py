"""The change-over calendar: the seed's template, edits at every level, windows, AAF rhythm."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from changeover_support import make_academy
from sqlalchemy import select, update

from yearchange_tui.cli.main import main
from yearchange_tui.ent.models import Establishment
from yearchange_tui.workflow.calendar import (
    AAF_RHYTHM,
    CalendarError,
    Milestone,
    Target,
    aaf_integration,
    add_window,
    build_plan,
    parse_milestone,
    resolve_target,
    set_date,
    template_dates,
    template_windows,
    unset_date,
)
from yearchange_tui.workflow.localtime import operator_zone

PARIS = operator_zone("Europe/Paris")


def _paris(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=PARIS).astimezone(dt.UTC)


def test_template_follows_the_seed_calendar_with_the_year_as_parameter() -> None:
    dates = template_dates(2025)
    assert dates[Milestone.DRY_RUN]["*"] == dt.date(2026, 6, 29)
    # The project dates the warnings and the access block (seed §6.3, §6.4): none here.
    for milestone in (Milestone.WARNING, Milestone.SECOND_WARNING,
                      Milestone.ACCESS_BLOCK_START, Milestone.ACCESS_BLOCK_END):
        assert dates[milestone]["*"] is None
    # Collèges close before lycées, so steps 1 to 3 fall on different days.
    assert dates[Milestone.PURGE_TRASH]["college"] == dt.date(2026, 7, 7)
    assert dates[Milestone.PURGE_TRASH]["lycee"] == dt.date(2026, 7, 16)
    assert dates[Milestone.ARCHIVE] == dates[Milestone.DELETE_OBSOLETE] == dates[Milestone.PURGE_TRASH]
    assert dt.date(2026, 8, 16) <= dates[Milestone.INIT_DIRECTORY]["*"] <= dt.date(2026, 8, 31)
    assert dates[Milestone.INIT_SCHOOL_LIFE]["*"] == dt.date(2026, 8, 28)
    assert dates[Milestone.START_OF_TERM]["*"] == dt.date(2026, 9, 2)
    assert template_dates(2030)[Milestone.DRY_RUN]["*"] == dt.date(2031, 6, 29)

    windows = {w.scope: w for w in template_windows(2025, PARIS)}
    assert windows["1-3"].starts_at == _paris(dt.date(2026, 7, 7), 6)
    assert windows["1-3"].ends_at == _paris(dt.date(2026, 7, 16), 22)
    assert windows["4"].starts_at == _paris(dt.date(2026, 8, 18), 6)


def test_aaf_rhythm_deltas_next_morning_full_file_on_monday() -> None:
    monday = dt.date(2026, 8, 17)
    assert aaf_integration(monday) == ("delta", dt.date(2026, 8, 18))
    assert aaf_integration(monday + dt.timedelta(days=3)) == ("delta", dt.date(2026, 8, 21))
    assert aaf_integration(monday + dt.timedelta(days=5)) == ("complet", dt.date(2026, 8, 24))
    assert aaf_integration(monday + dt.timedelta(days=4)) is None
    assert [row[0] for row in AAF_RHYTHM] == ["lundi", "mardi", "mercredi", "jeudi", "samedi"]


def test_unknown_milestone_and_kind_are_refused_in_french() -> None:
    assert parse_milestone("3") is Milestone.DELETE_OBSOLETE
    with pytest.raises(CalendarError, match="jalon inconnu"):
        parse_milestone("étape 9")
    with pytest.raises(CalendarError, match="type d'établissement inconnu"):
        Target(establishment_kind="primaire")


def test_template_plan_for_the_sample_academy(database_url: str, tmp_path: Path) -> None:
    academy = make_academy(database_url, tmp_path / "storage")
    try:
        with academy.database.session() as session:
            plan = build_plan(session)
        assert plan.school_year_label == "2025-2026"
        [uai] = {m.uai for m in plan.milestones}
        mine = plan.for_establishment(uai)
        # The sample collège closes on 4 July 2026: steps 1 to 3 on the template's day.
        assert mine[Milestone.CLOSURE].on_date == dt.date(2026, 7, 4)
        assert mine[Milestone.CLOSURE].source == "établissement"
        step1 = mine[Milestone.PURGE_TRASH]
        assert step1.on_date == dt.date(2026, 7, 7)
        assert step1.due_at == _paris(dt.date(2026, 7, 7), 6)
        assert step1.not_after == _paris(dt.date(2026, 7, 16), 22)
        assert step1.window_label == "étapes 1 à 3" and step1.schedulable
        assert mine[Milestone.SECOND_WARNING].on_date is None
        assert not mine[Milestone.SECOND_WARNING].schedulable
        assert not mine[Milestone.START_OF_TERM].schedulable
        # Steps 1 to 3 of the same establishment form one batch per step at the same time.
        batches = plan.batches()
        assert (Milestone.DELETE_OBSOLETE, step1.due_at, step1.not_after) in batches
        assert json.loads(json.dumps(plan.as_dict()))["establishments"][0]["uai"] == uai
    finally:
        academy.database.dispose()


def test_edits_win_from_the_most_specific_level(database_url: str, tmp_path: Path) -> None:
    academy = make_academy(database_url, tmp_path / "storage")
    database = academy.database
    try:
        with database.session() as session:
            uai = session.scalar(select(Establishment.uai))
            every = Target()
            college = Target(establishment_kind="college")
            lycee = Target(establishment_kind="lycee")
            own = resolve_target(session, uai=uai)
            set_date(session, 2025, Milestone.ARCHIVE, dt.date(2026, 7, 8), target=every)
            set_date(session, 2025, Milestone.ARCHIVE, dt.date(2026, 7, 9), target=lycee)
        with database.session() as session:
            planned = build_plan(session).for_establishment(uai)[Milestone.ARCHIVE]
        assert (planned.on_date, planned.source) == (dt.date(2026, 7, 8), "tous les projets")

        with database.session() as session:
            set_date(session, 2025, Milestone.ARCHIVE, dt.date(2026, 7, 10), dt.time(20, 30),
                     target=college)
        with database.session() as session:
            planned = build_plan(session).for_establishment(uai)[Milestone.ARCHIVE]
        assert (planned.on_date, planned.source) == (dt.date(2026, 7, 10), "type")
        assert planned.due_at == _paris(dt.date(2026, 7, 10), 20, 30)

        with database.session() as session:
            set_date(session, 2025, Milestone.ARCHIVE, dt.date(2026, 7, 11), target=own)
            # Setting again replaces, never duplicates.
            set_date(session, 2025, Milestone.ARCHIVE, dt.date(2026, 7, 12), target=own)
        with database.session() as session:
            planned = build_plan(session).for_establishment(uai)[Milestone.ARCHIVE]
        assert (planned.on_date, planned.source) == (dt.date(2026, 7, 12), "établissement")

        with database.session() as session:
            assert unset_date(session, 2025, Milestone.ARCHIVE, target=own) == 1
            set_date(session, 2025, Milestone.WARNING, None, target=every)
        with database.session() as session:
            mine = build_plan(session).for_establishment(uai)
        assert mine[Milestone.ARCHIVE].on_date == dt.date(2026, 7, 10)
        assert mine[Milestone.WARNING].on_date is None and not mine[Milestone.WARNING].schedulable
    finally:
        database.dispose()


def test_windows_bound_units_and_a_late_closure_is_never_scheduled_before_it(
        database_url: str, tmp_path: Path) -> None:
    academy = make_academy(database_url, tmp_path / "storage")
    database = academy.database
    try:
        start = _paris(dt.date(2026, 7, 8), 18)
        end = _paris(dt.date(2026, 7, 10), 6)
        with database.session() as session:
            add_window(session, 2025, "1-3", start, end)
            with pytest.raises(CalendarError, match="doit suivre"):
                add_window(session, 2025, "1-3", end, start)
        with database.session() as session:
            step1 = build_plan(session).milestones
        step1 = next(m for m in step1 if m.milestone is Milestone.PURGE_TRASH)
        # Planned on 7 July 06:00, the unit waits for the window to open.
        assert (step1.due_at, step1.not_after) == (start, end)

        with database.session() as session:
            session.execute(update(Establishment).values(closing_date=dt.date(2026, 7, 20)))
        with database.session() as session:
            step1 = next(m for m in build_plan(session).milestones
                         if m.milestone is Milestone.PURGE_TRASH)
        assert step1.on_date == dt.date(2026, 7, 21)
        assert "aucune fenêtre de maintenance" in step1.note
        assert not step1.schedulable
    finally:
        database.dispose()


def test_plan_commands_show_and_edit_the_calendar(database_url: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    academy = make_academy(database_url, tmp_path / "storage")
    academy.database.dispose()
    common = ["--db", database_url, "--storage", str(tmp_path / "storage")]
    assert main(["plan", *common, "set", "2", "2026-07-09", "--time", "21:00",
                 "--kind", "college"]) == 0
    assert "pour les collèges" in capsys.readouterr().out
    assert main(["plan", *common, "window", "add", "1-3", "2026-07-09T20:00",
                 "2026-07-10T06:00"]) == 0
    capsys.readouterr()
    assert main(["plan", *common, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    archive = next(m for m in plan["establishments"][0]["milestones"]
                   if m["milestone"] == "archive")
    assert archive["date"] == "2026-07-09" and archive["source"] == "type"
    assert archive["due_at"] == "2026-07-09T21:00:00+02:00"  # Paris time, with its offset
    assert dt.datetime.fromisoformat(archive["due_at"]) == _paris(dt.date(2026, 7, 9), 21)
    assert main(["plan", *common]) == 0
    text = " ".join(capsys.readouterr().out.split())  # names wrap at 80 columns
    assert "Étape 2 — Archivage de fin d'année N" in text and "Rythme AAF" in text
    assert main(["plan", *common, "set", "2", "2026-02-30"]) == 2
    assert "date invalide" in capsys.readouterr().err
    assert main(["plan", *common, "--read-only", "set", "2", "2026-07-09"]) == 2
    assert "Mode consultation" in capsys.readouterr().err


def test_project_block_dates_belong_to_the_change_over_of_their_summer(
        database_url: str, tmp_path: Path) -> None:
    academy = make_academy(database_url, tmp_path / "storage")
    try:
        with academy.database.session() as session:
            this_summer = build_plan(session, 2025)
            next_summer = build_plan(session, 2026)
            with pytest.raises(CalendarError, match="Établissement inconnu : 0000000X"):
                build_plan(session, 2025, uais=["0000000x"])
        [uai] = {m.uai for m in this_summer.milestones}
        start = this_summer.for_establishment(uai)[Milestone.ACCESS_BLOCK_START]
        assert (start.on_date, start.source) == (dt.date(2026, 8, 20), "projet")
        # The project's 2026 dates say nothing of the summer 2027, and the template has
        # none: the plan says the project must set them.
        start = next_summer.for_establishment(uai)[Milestone.ACCESS_BLOCK_START]
        assert (start.on_date, start.note) == (None, "non prévu (à définir par le projet)")
    finally:
        academy.database.dispose()
