"""Console bench, headless: key press to redraw latency, filter keystrokes, calendar
opening, idle CPU and memory with a big académie.

By default the real app runs on a real database (SQLite in a temporary folder, or the
empty database ``--db`` names) filled with the product's sample writer, polled by the real
database client while another process advances the running units; ``--scripted`` runs it
on the scripted engine instead (8 units progressing on a thread, no database). Each
latency is the time from a key press to the next screen update that carries it, rendered
to terminal bytes as a real terminal would get.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from textual import events

from yearchange_tui.bench.changeover import load_average
from yearchange_tui.bench.measure import peak_memory_kib
from yearchange_tui.resources import themes_dir
from yearchange_tui.tui.app import YearChangeApp
from yearchange_tui.tui.fake_engine import FIXED_NOW, FakeEngine
from yearchange_tui.tui.widgets.calendar_grid import CalendarGrid
from yearchange_tui.workflow.models import UnitStatus

KEYS = ("down", "down", "right", "pagedown", "down", "left", "up", "pageup", "end", "home")


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def console_app(fake: FakeEngine) -> YearChangeApp:
    """The console the bench measures: the real screens on the scripted engine.

    The rejects browser and the establishment detail read the scripted engine, as
    ``yearchange console --scripted N`` opens them; clock and themes are pinned.
    """
    return YearChangeApp(fake, rejects=fake.rejects, details=fake, now=lambda: FIXED_NOW,
                         theme_dirs=[themes_dir()], poll_interval=0.1)


async def _measure(establishments: int, running: int, presses: int,
                   size: tuple[int, int]) -> dict[str, Any]:
    rss_before = peak_memory_kib()
    fake = FakeEngine(establishments)
    for uai in fake.uais[:running]:
        fake.set_unit(uai, "archive", status=UnitStatus.RUNNING, progress_done=0,
                      progress_total=100_000)
    app = console_app(fake)
    stamps: list[tuple[float, float]] = []
    written = [0]
    original_display = app._display

    def display(screen: Any, renderable: Any) -> None:
        if renderable is not None:
            output = renderable.render_segments(app.console)
            written[0] += len(output)
            stamps.append((time.perf_counter(), time.process_time()))
        original_display(screen, renderable)

    app._display = display  # type: ignore[method-assign]
    latencies: list[tuple[float, float]] = []
    async with app.run_test(size=size) as pilot:
        await app.sync()
        await pilot.pause()
        grid = app.query_one(CalendarGrid)
        handled = _hook_row_refreshes(grid)
        fake.start_script(0.02)
        await asyncio.sleep(0.5)
        for index in range(presses):
            latency = await _press(app, KEYS[index % len(KEYS)], None, handled, stamps,
                                   timeout=2.0)
            if latency is not None:
                latencies.append(latency)
            await asyncio.sleep(0.03)  # key repeat of a held arrow, about 30 a second
        fake.close()
        drains, reports = app.board.drains, app.board.reports
        cell_refreshes = grid.cell_refreshes
    rss_after = peak_memory_kib()
    return {
        "engine": "scripted",
        "establishments": establishments, "running_units": running, "terminal": list(size),
        "presses": presses, "measured": len(latencies),
        "key_to_redraw_ms": _summary(latencies),
        "board": {"reports": reports, "drains": drains},
        "grid_cell_refreshes": cell_refreshes,
        "peak_rss_mb": round(rss_after / 1024, 1),
        "rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
        "bytes_written": written[0],
    }


def _hook_row_refreshes(grid: CalendarGrid) -> list[float]:
    """Make ``grid`` stamp each row it redraws; returns the list the stamps go to (the
    moment a key press was handled, which :func:`_press` waits for)."""
    handled: list[float] = []
    original_refresh_row = grid._refresh_row

    def refresh_row(row_index: int) -> None:
        original_refresh_row(row_index)
        handled.append(time.perf_counter())

    grid._refresh_row = refresh_row  # type: ignore[method-assign]
    return handled


async def _press(app: YearChangeApp, key: str, character: str | None,
                 handled: list[float], stamps: list[tuple[float, float]],
                 timeout: float = 5.0) -> tuple[float, float] | None:
    """Seconds from sending ``key`` to the first screen update after it was handled (the
    first stamp in ``handled`` after the send), wall clock and the process's CPU (which a
    loaded machine does not stretch), or None past ``timeout``."""
    handled.clear()
    started, cpu = time.perf_counter(), time.process_time()
    # As the terminal driver delivers a key: a Key event to the app, nothing awaited.
    app._driver.send_message(events.Key(key, character))  # type: ignore[union-attr]
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if handled:
            # The earliest screen update at or after the handling (newest stamps last).
            shown = None
            for stamp in reversed(stamps):
                if stamp[0] < handled[0]:
                    break
                shown = stamp
            if shown is not None:
                return shown[0] - started, shown[1] - cpu
        await asyncio.sleep(0.0005)
    return None


def _summary(latencies: list[tuple[float, float]]) -> dict[str, Any]:
    walls = [wall for wall, _cpu in latencies]
    cpus = [cpu for _wall, cpu in latencies]
    if not latencies:
        return {"p50": None, "p95": None, "max": None, "cpu_p50": None, "cpu_p95": None,
                "measured": 0}
    return {"p50": round(1000 * statistics.median(walls), 1),
            "p95": round(1000 * _percentile(walls, 0.95), 1),
            "max": round(1000 * max(walls), 1),
            "cpu_p50": round(1000 * statistics.median(cpus), 1),
            "cpu_p95": round(1000 * _percentile(cpus, 0.95), 1),
            "measured": len(latencies)}


FILTER_TEXT = ("0", "6", "9", "1", "backspace", "backspace", "backspace", "backspace",
               "c", "o", "n", "backspace", "backspace", "backspace")
"""Filter keystrokes: a UAI prefix, then part of a name, each typed and erased."""


async def _measure_database(url: str, establishments: int, running: int, presses: int,
                            size: tuple[int, int], idle_seconds: float,
                            poll_interval: float, full_reads: bool = False) -> dict[str, Any]:
    """The console on a real database, polled by the real client (a writer process
    advances the running units meanwhile)."""
    # Deferred: the database bench needs the scheduling client and the sample writer.
    from yearchange_tui.bench.console_database import UnitWriter, build_console_database
    from yearchange_tui.ent.database import open_existing_database
    from yearchange_tui.scheduling.client import DatabaseEngineClient
    from yearchange_tui.tui.screens.timeline import TimelineScreen

    built = build_console_database(url, establishments, running)
    database = open_existing_database(url)
    writer = UnitWriter(url, built["running_unit_ids"])
    rss_before = peak_memory_kib()
    client = DatabaseEngineClient(database)
    if full_reads:
        # The poller reads every establishment each time, as before incremental refresh.
        client.establishment_changes = None  # type: ignore[assignment,method-assign]
    app = YearChangeApp(client, theme_dirs=[themes_dir()], poll_interval=poll_interval)
    polls: list[tuple[float, float]] = []
    original_poll = app.bridge.poll_once

    def poll_once() -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        original_poll()
        polls.append((time.perf_counter() - wall, time.thread_time() - cpu))

    app.bridge.poll_once = poll_once  # type: ignore[method-assign]
    stamps: list[tuple[float, float]] = []
    timeline_stamps: list[tuple[float, float]] = []
    original_display = app._display

    def display(screen: Any, renderable: Any) -> None:
        if renderable is not None:
            renderable.render_segments(app.console)
            stamp = (time.perf_counter(), time.process_time())
            stamps.append(stamp)
            if isinstance(screen, TimelineScreen):
                timeline_stamps.append(stamp)
        original_display(screen, renderable)

    app._display = display  # type: ignore[method-assign]
    result: dict[str, Any] = {}
    try:
        writer.start()
        async with app.run_test(size=size) as pilot:
            loaded = time.perf_counter()
            while len(app.model.views) < establishments and time.perf_counter() - loaded < 120:
                await asyncio.sleep(0.05)
            result["first_load_s"] = round(time.perf_counter() - loaded, 2)
            await pilot.pause()
            await asyncio.sleep(1.0)
            grid = app.query_one(CalendarGrid)
            original_refresh_row = grid._refresh_row
            handled = _hook_row_refreshes(grid)
            keys = []
            for index in range(presses):
                latency = await _press(app, KEYS[index % len(KEYS)], None, handled, stamps)
                if latency is not None:
                    keys.append(latency)
                await asyncio.sleep(0.03)  # key repeat of a held arrow, about 30 a second
            grid._refresh_row = original_refresh_row  # type: ignore[method-assign]

            model = app.model
            original_rebuild = model.rebuild_rows

            def rebuild_rows() -> None:
                original_rebuild()
                handled.append(time.perf_counter())

            model.rebuild_rows = rebuild_rows  # type: ignore[method-assign]
            await _press(app, "slash", "/", [time.perf_counter()], stamps)
            await pilot.pause()
            typed = []
            for key in FILTER_TEXT:
                latency = await _press(app, key, key if len(key) == 1 else None, handled,
                                       stamps)
                if latency is not None:
                    typed.append(latency)
                await asyncio.sleep(0.1)  # a technician typing, about 10 keys a second
            filtered_rows = len(model.rows)
            await _press(app, "escape", None, handled, stamps)
            model.rebuild_rows = original_rebuild  # type: ignore[method-assign]
            await pilot.pause()

            calendar = []
            for _ in range(3):
                timeline_stamps.clear()
                started, cpu = time.perf_counter(), time.process_time()
                app._driver.send_message(events.Key("f3", None))  # type: ignore[union-attr]
                while not timeline_stamps and time.perf_counter() - started < 10:
                    await asyncio.sleep(0.0005)
                if timeline_stamps:
                    calendar.append((timeline_stamps[0][0] - started,
                                     timeline_stamps[0][1] - cpu))
                await asyncio.sleep(0.3)
                app._driver.send_message(events.Key("f2", None))  # type: ignore[union-attr]
                await asyncio.sleep(0.5)

            polls_before = len(polls)
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.sleep(idle_seconds)
            busy_cpu = time.process_time() - cpu
            busy_wall = time.perf_counter() - wall
            writer.stop()
            await asyncio.sleep(1.0)
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.sleep(idle_seconds)
            quiet_cpu = time.process_time() - cpu
            quiet_wall = time.perf_counter() - wall
            later_polls = polls[polls_before:]
            result.update({
                "key_to_redraw_ms": _summary(keys),
                "filter_keystroke_ms": _summary(typed),
                "filter_rows_at_end": filtered_rows,
                "calendar_open_ms": _summary(calendar),
                "idle_cpu_percent": {
                    "units_running": round(100 * busy_cpu / busy_wall, 1),
                    "engine_quiet": round(100 * quiet_cpu / quiet_wall, 1)},
                "poll": {"first_cpu_s": round(polls[0][1], 2) if polls else None,
                         "later_cpu_ms_mean": round(1000 * statistics.mean(
                             cpu for _, cpu in later_polls), 1) if later_polls else None,
                         "later_wall_ms_p95": round(1000 * _percentile(
                             [wall for wall, _ in later_polls], 0.95), 1)
                         if later_polls else None,
                         "count": len(polls)},
                "board": {"reports": app.board.reports, "drains": app.board.drains},
                "grid_cell_refreshes": grid.cell_refreshes,
            })
    finally:
        writer.stop()
        app.bridge.stop()
        database.dispose()
    rss_after = peak_memory_kib()
    result.update({"backend": url.split(":", 1)[0].split("+", 1)[0], "engine": "database",
                   "load": load_average(),
                   "establishments": establishments, "running_units": running,
                   "terminal": list(size), "presses": presses, "build_s": built["seconds"],
                   "poll_interval_s": poll_interval, "full_reads": full_reads,
                   "peak_rss_mb": round(rss_after / 1024, 1),
                   "rss_growth_mb": round((rss_after - rss_before) / 1024, 1)})
    return result


def bench_console(establishments: int = 1000, running: int = 8, presses: int = 100,
                  size: tuple[int, int] = (120, 36), *, db_url: str | None = None,
                  scripted: bool = False, idle_seconds: float = 10.0,
                  poll_interval: float = 0.5, full_reads: bool = False) -> dict[str, Any]:
    """Measure the console headless; returns a JSON-ready summary.

    Args:
        establishments: rows of the grid.
        running: units progressing during the measure.
        presses: navigation keys pressed.
        size: terminal size (columns, lines).
        db_url: an empty database to fill and measure on (default: SQLite in a
            temporary folder); ignored with ``scripted``.
        scripted: measure on the scripted engine (no database, no polling cost).
        idle_seconds: length of each idle CPU measure (units running, then engine quiet).
        poll_interval: seconds between two polls of the database (the console's default).
        full_reads: every poll reads every establishment (the console before incremental
            refresh, for comparison).
    """
    if scripted:
        return asyncio.run(_measure(establishments, running, presses, size))
    if db_url is not None:
        return asyncio.run(_measure_database(db_url, establishments, running, presses, size,
                                             idle_seconds, poll_interval, full_reads))
    with tempfile.TemporaryDirectory(prefix="yearchange-console-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'console.db'}"
        return asyncio.run(_measure_database(url, establishments, running, presses, size,
                                             idle_seconds, poll_interval, full_reads))
