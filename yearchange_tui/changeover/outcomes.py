"""What a unit run tells its caller: the outcome of one (establishment, step)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from yearchange_tui.workflow.models import Step


class ReadOnlyError(Exception):
    """A change was asked of an engine opened read-only (support staff)."""


@dataclass
class UnitOutcome:
    """What happened to one (establishment, step)."""

    uai: str
    step: Step
    status: str  # done, already-done, failed, refused, cancelled, dry-run
    counts: dict[str, Any] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    code: str = ""
    differences: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # from the guards: override, initial-load
    traceback: str = ""  # of a failure, for the engine's log
    warning_codes: list[str] = field(default_factory=list)  # stable code of each warning

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"uai": self.uai, "step": self.step.value, "status": self.status,
                "counts": self.counts, "lists": self.lists, "warnings": self.warnings,
                "warning_codes": self.warning_codes,
                "error": self.error, "code": self.code, "differences": self.differences,
                "notes": self.notes}
