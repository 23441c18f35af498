"""One time zone for everything an operator reads: the console header (windows and clock),
the journal and the calendar show the project's zone (Europe/Paris by default) whatever the
machine's zone; stored times stay UTC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from tui_support import make_app, run, screen_text, settle

from yearchange_tui.scheduling.api import MaintenanceWindow
from yearchange_tui.tui.fake_engine import FakeEngine
from yearchange_tui.workflow import localtime
from yearchange_tui.workflow.localtime import format_local, iso_local, to_local

# 04:00 UTC on a July day is 06:00 in Paris (summer time, UTC+2).
WINDOW_STARTS = dt.datetime(2026, 7, 7, 4, 0, tzinfo=dt.UTC)
WINDOW_ENDS = dt.datetime(2026, 7, 7, 20, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def paris() -> Iterator[None]:
    """Each test starts and ends on the default zone."""
    localtime.configure(None)
    yield
    localtime.configure(None)


def test_stored_utc_times_read_in_paris() -> None:
    assert to_local(WINDOW_STARTS).hour == 6
    assert to_local(dt.datetime(2026, 12, 7, 4, 0)).hour == 5  # naive is UTC; winter UTC+1
    assert format_local(WINDOW_STARTS) == "07/07/2026 06:00"
    assert iso_local(WINDOW_STARTS) == "2026-07-07T06:00:00+02:00"
    assert iso_local(dt.date(2026, 7, 7)) == "2026-07-07" and iso_local(None) is None


def test_an_unknown_zone_is_refused_and_the_zone_in_force_is_kept() -> None:
    with pytest.raises(localtime.TimezoneError, match="fuseau horaire inconnu"):
        localtime.configure("Europe/Atlantide")
    assert localtime.zone_name() == "Europe/Paris"


def test_the_header_shows_a_window_and_the_clock_in_paris_time() -> None:
    fake = FakeEngine(3)
    fake.set_status(next_window=MaintenanceWindow(WINDOW_STARTS, WINDOW_ENDS, "étapes 1 à 3"))

    async def scenario() -> None:
        app = make_app(fake)
        app._now = lambda: dt.datetime(2026, 7, 3, 7, 30, tzinfo=dt.UTC)
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            text = screen_text(app)
            assert "fenêtre 07/07 06:00–22:00 (étapes 1 à 3)" in text
            assert "04:00" not in text
            assert "ven. 03/07 09:30" in text

    run(scenario)


def test_the_header_follows_the_configured_zone() -> None:
    localtime.configure("America/Cayenne")  # UTC-3: an académie of Guyane
    fake = FakeEngine(3)
    fake.set_status(next_window=MaintenanceWindow(WINDOW_STARTS, WINDOW_ENDS, "étapes 1 à 3"))

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(app, pilot)
            assert "fenêtre 07/07 01:00–17:00" in screen_text(app)

    run(scenario)


def test_the_journal_shows_paris_time() -> None:
    fake = FakeEngine(3)
    fake.now = dt.datetime(2026, 7, 3, 7, 30, tzinfo=dt.UTC)
    fake.log("Disque presque plein.", "warning")

    async def scenario() -> None:
        app = make_app(fake)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("f6")
            await pilot.pause()
            assert "! 09:30:00 Disque presque plein." in screen_text(app)

    run(scenario)


def test_requests_and_journal_lines_read_in_paris_time() -> None:
    """A time SQLite gives back naive (stored UTC) reads in Paris time on the requests
    screen, in a whole journal line and in the requests command, like the grid's journal."""
    from yearchange_tui.cli.requests import request_json
    from yearchange_tui.scheduling.api import RequestView
    from yearchange_tui.scheduling.models import RequestStatus
    from yearchange_tui.tui.screens.requests import local_time

    stored = dt.datetime(2026, 12, 7, 13, 0, 5)  # naive: UTC, as SQLite returns it
    assert local_time(stored) == "07/12 14:00:05"
    view = RequestView(id=1, created_at=stored, requested_by="root@vm", action="pause",
                       what="Pause", status=RequestStatus.DONE)
    assert request_json(view)["created_at"] == "2026-12-07T14:00:05+01:00"
