"""Engine events and the observer interface the scheduler and the console listen on.

Events are past-tense dataclasses. Observers are called on the thread that runs the
unit (a scheduler thread, or the CLI's main thread); they must not block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class UnitStarted:
    """A unit of work started."""

    uai: str
    step: str
    total: int
    dry_run: bool = False


@dataclass(frozen=True)
class UnitProgressed:
    """A unit advanced: ``done`` of ``total`` items."""

    uai: str
    step: str
    done: int
    total: int
    dry_run: bool = False


@dataclass(frozen=True)
class UnitFinished:
    """A unit finished with its counts."""

    uai: str
    step: str
    counts: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    # A dry run's warnings, as (stable code, French message): written to the journal.
    warnings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class UnitFailed:
    """A unit failed (the French ``error`` says why) or was refused by a guard."""

    uai: str
    step: str
    error: str
    refused: bool = False
    dry_run: bool = False


EngineEvent = UnitStarted | UnitProgressed | UnitFinished | UnitFailed


class Observer(Protocol):
    """Receives engine events."""

    def notify(self, event: EngineEvent) -> None:
        """Handle one event; must return quickly."""


class NullObserver:
    """Ignores every event."""

    def notify(self, event: EngineEvent) -> None:
        """Do nothing."""


class RecordingObserver:
    """Keeps every event (tests, CLI summaries)."""

    def __init__(self) -> None:
        self.events: list[EngineEvent] = []

    def notify(self, event: EngineEvent) -> None:
        """Append the event."""
        self.events.append(event)
