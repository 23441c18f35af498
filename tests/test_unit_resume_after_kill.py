"""Killing the engine at any point and running again gives the uninterrupted end state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from changeover_support import make_academy, storage_files, table_rows

from yearchange_tui.workflow.models import Step

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import sys
from pathlib import Path
from changeover_support import WINDOW
from yearchange_tui.workflow.models import Step
from yearchange_tui.changeover.runner import ChangeoverRunner
from yearchange_tui.ent.database import open_database

class Printer:
    def notify(self, event):
        print(type(event).__name__, getattr(event, "done", ""), flush=True)

database = open_database(sys.argv[1])
runner = ChangeoverRunner(database, Path(sys.argv[2]), observer=Printer(), now=WINDOW)
runner.run(Step(sys.argv[3]), runner.establishments())
print("END", flush=True)
"""


def _run_and_kill(url: str, storage: Path, step: Step, after_progress: int) -> bool:
    """Run ``step`` in a child process and SIGKILL it after its n-th progress event.

    Returns:
        True when the child was killed before finishing.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT)]))
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, str(storage), step.value],
                             stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    seen = 0
    killed = False
    for line in child.stdout:
        if line.startswith("UnitProgressed"):
            seen += 1
            if seen == after_progress:
                child.send_signal(signal.SIGKILL)
                killed = True
                break
        if line.startswith("END"):
            break
    child.wait(timeout=120)
    child.stdout.close()
    return killed


# Each number is the progress event (of that run) after which the child is killed.
@pytest.mark.parametrize("kills", [{Step.ARCHIVE: [1, 3, 2], Step.DELETE_OBSOLETE: [1, 3]},
                                   {Step.ARCHIVE: [8], Step.DELETE_OBSOLETE: [6]}])
def test_killed_runs_resume_to_the_uninterrupted_end_state(
        two_database_urls: tuple[str, str], tmp_path: Path, kills: dict[Step, list[int]]) -> None:
    reference_url, crashed_url = two_database_urls
    reference = make_academy(reference_url, tmp_path / "reference")
    crashed = make_academy(crashed_url, tmp_path / "crashed")
    try:
        for step in (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE):
            runner = reference.runner()
            assert [o.status for o in runner.run(step, runner.establishments())] == ["done"]
        for step in (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE):
            for after in kills.get(step, []):
                assert _run_and_kill(crashed_url, crashed.storage, step, after)
            runner = crashed.runner()
            assert [o.status for o in runner.run(step, runner.establishments())] == ["done"]
        assert table_rows(crashed.database, with_keys=False) == table_rows(
            reference.database, with_keys=False)
        assert storage_files(crashed.storage) == storage_files(reference.storage)
    finally:
        reference.database.dispose()
        crashed.database.dispose()
