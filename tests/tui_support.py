"""Helpers of the console tests (no tests here): a pinned app on the scripted engine."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from yearchange_tui.resources import themes_dir
from yearchange_tui.scheduling.api import EngineClient
from yearchange_tui.tui.app import YearChangeApp
from yearchange_tui.tui.fake_engine import FIXED_NOW, FakeEngine


def make_app(client: EngineClient | None = None, *, data_dir: Path | None = None,
             **options: Any) -> YearChangeApp:
    """The console on an engine client (by default a scripted one, whose rejects and
    detail it shows), clock and theme pinned, no poller thread unless asked."""
    client = client or FakeEngine(12, auto=True)
    if isinstance(client, FakeEngine):
        options.setdefault("rejects", client.rejects)
        options.setdefault("details", client)
    options.setdefault("theme", "yearchange-dark")
    options.setdefault("theme_dirs", [themes_dir()])
    options.setdefault("start_poller", False)
    return YearChangeApp(client, now=lambda: FIXED_NOW, data_dir=data_dir, **options)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run an async scenario to the end (no pytest-asyncio needed)."""
    asyncio.run(scenario())


async def settle(app: YearChangeApp, pilot: Any) -> None:
    """Let requests reach the engine, read it back, and let the screen update."""
    await app.workers.wait_for_complete()
    await app.sync()
    await pilot.pause()


def screen_text(app: YearChangeApp) -> str:
    """What the terminal shows, as plain text lines."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def wait_until(pilot: Any, condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Pause until ``condition`` holds (never a bare sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if condition():
            return True
        await pilot.pause(0.02)
    return condition()
