"""``yearchange dry-run --workers N``: the same report, establishments simulated at once."""

from __future__ import annotations

from pathlib import Path

from changeover_support import make_academy
from sqlalchemy import func, select

from yearchange_tui.changeover.runner import ChangeoverRunner
from yearchange_tui.workflow.events import RecordingObserver, UnitFinished
from yearchange_tui.workflow.models import DryRunReport


def _report(outcomes: list) -> list[tuple]:
    return [(o.uai, o.step, o.status, o.counts, o.lists, o.warnings, o.warning_codes)
            for o in outcomes]


def test_workers_give_the_same_report_as_one_process(database_url: str, tmp_path: Path) -> None:
    academy = make_academy(database_url, tmp_path / "storage", establishments=2)
    try:
        establishments = academy.runner().establishments()
        alone = academy.runner().dry_run(establishments)
        observer = RecordingObserver()
        runner = ChangeoverRunner(academy.database, academy.storage, observer,
                                  academy.runner().fixed_now)
        together = runner.dry_run(establishments, workers=2)
        assert _report(together) == _report(alone)
        assert [o.uai for o in together] == [e.uai for e in establishments for _ in range(3)]
        assert all(o.counts for o in together)
        finished = [event for event in observer.events if isinstance(event, UnitFinished)]
        assert sorted(event.uai for event in finished) == sorted(o.uai for o in together)
        with academy.database.session() as session:
            assert session.scalar(select(func.count()).select_from(DryRunReport)) == 12
    finally:
        academy.database.dispose()
