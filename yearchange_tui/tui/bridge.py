"""The console's side of the engine: a poller thread, a latest-value board, messages.

The poller runs on its own thread (``engine-poll``): it asks the
:class:`~yearchange_tui.scheduling.api.EngineClient` for the engine status, the
establishments and the new events, and never touches a widget. Establishment views go
to the :class:`ProgressBoard` (latest value per UAI, under a lock); the UI drains it on
a 10 Hz timer and redraws only the cells that changed. Discrete events (a batch of engine
events, the engine becoming unreachable or reachable again) are posted as Textual
messages, which is thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from yearchange_tui.scheduling.api import (
    EngineClient,
    EngineEventView,
    EngineMode,
    EngineStatus,
    EstablishmentView,
    RequestAction,
    RequestOutcome,
)
from yearchange_tui.scheduling.models import RequestStatus

HISTORY = 300
"""Engine events read back at start-up, to fill the journal."""

ANSWER_WAIT = 10.0
"""Seconds a request is followed for the engine's answer before saying it waits in the queue."""


class EngineEventsReceived(Message):
    """New engine events, oldest first (posted from the poller thread)."""

    def __init__(self, events: list[EngineEventView], initial: bool = False) -> None:
        super().__init__()
        self.events = events
        self.initial = initial
        """True for the history read at start-up (no alert for it)."""


class EngineReachability(Message):
    """The engine could not be read, or can be read again (French ``problem``)."""

    def __init__(self, problem: str) -> None:
        super().__init__()
        self.problem = problem


@dataclass
class BoardChanges:
    """What changed since the last drain."""

    views: dict[str, EstablishmentView] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    status: EngineStatus | None = None

    def __bool__(self) -> bool:
        return bool(self.views or self.removed or self.status is not None)


class ProgressBoard:
    """Thread-safe latest-value store: any thread writes, the UI thread drains.

    Many reports for one establishment between two drains become one update.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, EstablishmentView] = {}
        self._dirty: set[str] = set()
        self._removed: set[str] = set()
        self._status: EngineStatus | None = None
        self._status_dirty = False
        self.reports = 0
        self.drains = 0

    def put_views(self, views: list[EstablishmentView], complete: bool = True,
                  removed: list[str] | tuple[str, ...] = ()) -> None:
        """Report views; with ``complete``, UAIs not in ``views`` are removed, as are the
        ``removed`` ones."""
        with self._lock:
            for uai in removed:
                if self._latest.pop(uai, None) is not None:
                    self._dirty.discard(uai)
                    self._removed.add(uai)
            self.reports += len(views)
            seen = set()
            for view in views:
                seen.add(view.uai)
                previous = self._latest.get(view.uai)
                if previous is not view and previous != view:
                    self._latest[view.uai] = view
                    self._dirty.add(view.uai)
                    self._removed.discard(view.uai)
            if complete:
                for uai in set(self._latest) - seen:
                    del self._latest[uai]
                    self._dirty.discard(uai)
                    self._removed.add(uai)

    def put_status(self, status: EngineStatus) -> None:
        """Report the engine status (kept only when it changed)."""
        with self._lock:
            if status != self._status:
                self._status = status
                self._status_dirty = True

    def drain(self) -> BoardChanges:
        """Take everything reported since the last drain (UI thread)."""
        with self._lock:
            if not (self._dirty or self._removed or self._status_dirty):
                return BoardChanges()
            self.drains += 1
            changes = BoardChanges({uai: self._latest[uai] for uai in self._dirty},
                                   set(self._removed),
                                   self._status if self._status_dirty else None)
            self._dirty.clear()
            self._removed.clear()
            self._status_dirty = False
            return changes

    def snapshot(self) -> list[EstablishmentView]:
        """Every known view (any thread)."""
        with self._lock:
            return list(self._latest.values())


class EngineBridge:
    """Polls an engine client on a thread and feeds the board and the app's messages.

    Args:
        client: the engine client.
        board: where establishment views and the status go.
        post: posts a Textual message to the app (``App.post_message``; thread-safe).
        poll_interval: seconds between two polls.
    """

    def __init__(self, client: EngineClient, board: ProgressBoard,
                 post: Callable[[Message], Any], poll_interval: float = 0.5) -> None:
        self.client = client
        self.board = board
        self.post = post
        self.poll_interval = poll_interval
        self.last_event_id = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._poll_lock = threading.Lock()
        self._problem = ""
        self._first = True
        self._cursor: Any = None
        """The client's refresh cursor (a client that reads only what changed)."""
        self._full_then_incremental = False

    def poll_once(self) -> None:
        """Read the engine once (any thread but the UI's: it may block on the database)."""
        with self._poll_lock:
            try:
                if self._first:
                    self.last_event_id = max(self.last_event_id,
                                             self.client.last_event_id() - HISTORY)
                status = self.client.status()
                incremental = getattr(self.client, "establishment_changes", None)
                if incremental is not None:
                    # Only what changed since the previous poll (the database client).
                    read = incremental(self._cursor)
                    views, removed, complete = read.views, read.removed, read.complete
                else:
                    views, removed, complete = self.client.establishments(), [], True
                events = self.client.events_after(self.last_event_id)
            except Exception as error:  # noqa: BLE001 - any client failure is shown, not raised
                problem = f"Moteur illisible : {error}"
                if problem != self._problem:
                    self._problem = problem
                    self.post(EngineReachability(problem))
                return
            if self._problem:
                self._problem = ""
                self.post(EngineReachability(""))
            self.board.put_status(status)
            self.board.put_views(views, complete=complete, removed=removed)
            if incremental is not None:
                self._cursor = read.cursor
            self._full_then_incremental = incremental is not None and complete
            if events:
                self.last_event_id = max(event.id for event in events)
                self.post(EngineEventsReceived(events, initial=self._first))
            self._first = False

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.poll_once()
            elapsed = time.monotonic() - started
            # A slow engine slows the polling down instead of piling reads up; the one
            # full read of a client that then reads only what changed does not.
            slow = 0.0 if self._full_then_incremental else 2 * elapsed
            self._wake.wait(max(self.poll_interval, slow))
            self._wake.clear()

    def start(self) -> None:
        """Start the poller thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="engine-poll", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Poll now rather than at the next tick (after a request, on F5)."""
        self._wake.set()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the poller thread (called after the app has exited)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def request(self, action: RequestAction, **params: Any) -> int:
        """Forward a request to the engine and poll soon after (worker thread)."""
        request_id = self.client.request(action, **params)
        self.wake()
        return request_id

    def answer(self, request_id: int, timeout: float = ANSWER_WAIT,
               poll: float = 0.25) -> RequestOutcome | None:
        """The engine's answer to a request once it has taken it (worker thread); None
        when no engine runs or none took it within ``timeout`` (it waits in the queue)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.client.status().mode is EngineMode.NONE:
                return None
            outcome = self.client.request_outcome(request_id)
            if outcome is not None and (outcome.handled
                                        or outcome.status is RequestStatus.RUNNING):
                return outcome
            if time.monotonic() >= deadline:
                return None
            time.sleep(poll)
