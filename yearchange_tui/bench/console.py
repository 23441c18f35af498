"""Console bench, headless: key press to redraw latency and memory with a big académie.

Runs the real app on the scripted engine (1,000 establishments, 8 units progressing on a
thread), presses navigation keys and measures the time from each key press to the next
screen update that carries it, rendered to terminal bytes as a real terminal would get.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from textual import events

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
    stamps: list[float] = []
    written = [0]
    original_display = app._display

    def display(screen: Any, renderable: Any) -> None:
        if renderable is not None:
            output = renderable.render_segments(app.console)
            written[0] += len(output)
            stamps.append(time.perf_counter())
        original_display(screen, renderable)

    app._display = display  # type: ignore[method-assign]
    latencies: list[float] = []
    async with app.run_test(size=size) as pilot:
        await app.sync()
        await pilot.pause()
        grid = app.query_one(CalendarGrid)
        handled: list[float] = []
        original_refresh_row = grid._refresh_row

        def refresh_row(row_index: int) -> None:
            original_refresh_row(row_index)
            handled.append(time.perf_counter())

        grid._refresh_row = refresh_row  # type: ignore[method-assign]
        fake.start_script(0.02)
        await asyncio.sleep(0.5)
        for index in range(presses):
            key = KEYS[index % len(KEYS)]
            handled.clear()
            started = time.perf_counter()
            # As the terminal driver delivers a key: a Key event to the app, nothing awaited.
            app._driver.send_message(events.Key(key, None))  # type: ignore[union-attr]
            deadline = started + 2.0
            shown = None
            while time.perf_counter() < deadline:
                if handled:
                    after = [stamp for stamp in stamps if stamp >= handled[0]]
                    if after:
                        shown = after[0]
                        break
                await asyncio.sleep(0.0005)
            if shown is not None:
                latencies.append(shown - started)
            await asyncio.sleep(0.03)  # key repeat of a held arrow, about 30 a second
        fake.close()
        drains, reports = app.board.drains, app.board.reports
        cell_refreshes = grid.cell_refreshes
    rss_after = peak_memory_kib()
    return {
        "establishments": establishments, "running_units": running, "terminal": list(size),
        "presses": presses, "measured": len(latencies),
        "key_to_redraw_ms": {
            "p50": round(1000 * statistics.median(latencies), 1) if latencies else None,
            "p95": round(1000 * _percentile(latencies, 0.95), 1) if latencies else None,
            "max": round(1000 * max(latencies), 1) if latencies else None},
        "board": {"reports": reports, "drains": drains},
        "grid_cell_refreshes": cell_refreshes,
        "peak_rss_mb": round(rss_after / 1024, 1),
        "rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
        "bytes_written": written[0],
    }


def bench_console(establishments: int = 1000, running: int = 8, presses: int = 100,
                  size: tuple[int, int] = (120, 36)) -> dict[str, Any]:
    """Measure the console headless; returns a JSON-ready summary.

    Args:
        establishments: rows of the grid.
        running: units progressing during the measure.
        presses: navigation keys pressed.
        size: terminal size (columns, lines).
    """
    return asyncio.run(_measure(establishments, running, presses, size))
