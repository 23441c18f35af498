"""The engine's settings (``[yearchange.engine]`` in the config file, or CLI options)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from yearchange_tui.workflow.calendar import DEFAULT_TIMEZONE


@dataclass
class EngineConfig:
    """Engine settings (``[yearchange.engine]`` in the config file, or CLI options)."""

    concurrency: int = 2
    """Units run at the same time."""
    poll_interval: float = 1.0
    """Seconds between two looks at the request table."""
    heartbeat_interval: float = 2.0
    lease_ttl: float = 60.0
    """Seconds without heartbeat after which another engine may take the lease over."""
    plan_sync_interval: float = 15.0
    """Seconds between two reconciliations of the calendar with the scheduler's jobs."""
    prune_interval: float = 60.0
    timezone: str = DEFAULT_TIMEZONE
    misfire_grace_time: int = 3600
    """Default for jobs; each calendar job gets the length of its window instead."""
    progress_interval: float = 0.5
    events_max_rows: int = 20_000
    events_max_age_days: float = 30.0
    read_only: bool = False
    log_path: str = ""
    local_workers: int = -1
    """PostgreSQL: worker processes the engine starts on its own machine (``yearchange
    worker``); -1: ``concurrency`` of them, 0: none (only the fleet's workers run units).
    On SQLite the engine always runs units in ``concurrency`` local processes."""
    retries: int = 2
    """PostgreSQL: times a failed unit is tried again by the workers before it stays failed."""
    retry_wait: float = 30.0
    """Seconds before the first retry; the n-th waits n times as long."""
    max_units_per_step: int = 0
    """Units of one step running at the same time across the fleet (0: no cap)."""
    max_units_per_project: int = 0
    """Units of one project running at the same time across the fleet (0: no cap)."""
    step_caps: dict[str, int] = field(default_factory=dict)
    """Per-step caps overriding ``max_units_per_step`` (``[engine.step_caps] archive = 4``)."""

    def step_cap(self, milestone: str) -> int:
        """The cap of concurrent units of a step (0: none)."""
        return int(self.step_caps.get(milestone, self.max_units_per_step) or 0)

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None, **overrides: Any) -> EngineConfig:
        """Build from a config-file table, then CLI overrides (None values ignored).

        Raises:
            ValueError: for an unknown key (French message).
        """
        known = {f.name: f for f in fields(cls)}
        config = cls()
        for key, value in {**(values or {}), **overrides}.items():
            name = key.replace("-", "_")
            if value is None:
                continue
            if name not in known:
                raise ValueError(f"réglage moteur inconnu « {key} » "
                                 f"(connus : {', '.join(sorted(known))})")
            current = getattr(config, name)
            setattr(config, name, type(current)(value) if current is not None else value)
        if config.concurrency < 1:
            raise ValueError("concurrency doit être au moins 1")
        if config.retries < 0 or config.max_units_per_step < 0 or (
                config.max_units_per_project < 0):
            raise ValueError("retries, max_units_per_step et max_units_per_project ne peuvent "
                             "pas être négatifs")
        config.step_caps = {str(k): int(v) for k, v in config.step_caps.items()}
        return config
