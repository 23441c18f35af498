"""Persisted engine events: coalesced progress, bounded retention, log lines."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import func, select

from yearchange_tui.ent.database import open_database
from yearchange_tui.scheduling.client import DatabaseEngineClient
from yearchange_tui.scheduling.events import EventLogHandler, EventWriter
from yearchange_tui.scheduling.models import EngineEventRow
from yearchange_tui.workflow.events import UnitFailed, UnitFinished, UnitProgressed, UnitStarted


class FakeClock:
    """Monotonic seconds advanced by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_coalesced_and_the_latest_value_is_kept(database_url: str) -> None:
    database = open_database(database_url)
    clock = FakeClock()
    writer = EventWriter(database, progress_interval=0.5, monotonic=clock)
    try:
        writer.notify(UnitStarted("0750654D", "archive", 1000))
        for done in range(1, 1001):
            clock.now += 0.01  # 1,000 reports over 10 seconds
            writer.notify(UnitProgressed("0750654D", "archive", done, 1000))
            writer.notify(UnitProgressed("0750655E", "purge-trash", done, 1000))
        writer.flush(force=True)
        writer.close()
        client = DatabaseEngineClient(database)
        events = client.events_after(0, limit=1000)
        progress = [e for e in events if e.kind == "progress" and e.uai == "0750654D"]
        # At most one write per unit per half second, not one per report.
        assert 10 <= len(progress) <= 22
        assert progress[-1].data["done"] == 1000
        assert len([e for e in events if e.kind == "progress"]) <= 44
        assert events[0].kind == "unit" and events[0].data["event"] == "started"
    finally:
        database.dispose()


def test_a_finished_unit_drops_its_pending_progress(database_url: str) -> None:
    database = open_database(database_url)
    clock = FakeClock()
    writer = EventWriter(database, progress_interval=0.5, monotonic=clock)
    try:
        writer.notify(UnitProgressed("0750654D", "archive", 1, 3))
        writer.notify(UnitProgressed("0750654D", "archive", 2, 3))  # coalesced, pending
        writer.notify(UnitFinished("0750654D", "archive", {"archives": 3}))
        writer.notify(UnitFailed("0750654D", "delete-obsolete", "archives manquantes",
                                 refused=True))
        clock.now += 10
        assert writer.flush() == 0
        writer.close()
        events = DatabaseEngineClient(database).events_after(0)
        assert [(e.kind, e.data.get("event"), e.data.get("done")) for e in events] == [
            ("progress", None, 1), ("unit", "finished", None), ("unit", "refused", None)]
        assert events[2].level == "warning" and "refusée" in events[2].message
    finally:
        database.dispose()


def test_retention_is_bounded_by_count_and_by_age(database_url: str) -> None:
    database = open_database(database_url)
    now = dt.datetime(2026, 7, 8, 12, tzinfo=dt.UTC)
    moments = iter([now - dt.timedelta(days=40)] * 5 + [now] * 30)
    writer = EventWriter(database, max_rows=20, max_age=dt.timedelta(days=30),
                         clock=lambda: next(moments, now))
    try:
        for index in range(35):
            writer.record("log", f"ligne {index}")
        writer.close()
        assert writer.prune() == 15
        with database.session() as session:
            kept = session.scalars(select(EngineEventRow.message).order_by(EngineEventRow.id)).all()
            assert session.scalar(select(func.count()).select_from(EngineEventRow)) == 20
        assert kept[0] == "ligne 15" and kept[-1] == "ligne 34"
    finally:
        database.dispose()


def test_log_lines_become_events(database_url: str) -> None:
    database = open_database(database_url)
    writer = EventWriter(database)
    logger = logging.getLogger("yearchange_tui.scheduling.test")
    handler = EventLogHandler(writer)
    logger.addHandler(handler)
    try:
        logger.warning("Fenêtre « %s » manquée", "étapes 1 à 3")
        logger.debug("jamais persisté")
        writer.close()
        [event] = DatabaseEngineClient(database).events_after(0)
        assert (event.kind, event.level, event.message) == (
            "log", "warning", "Fenêtre « étapes 1 à 3 » manquée")
    finally:
        logger.removeHandler(handler)
        database.dispose()
