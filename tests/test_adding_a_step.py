""""Adding a step" as the README says: one new module, nothing else touched, no migration.

The README's example module is copied into a copy of the package and run from the command
line on a real database: ``run 6`` runs it as a unit and ``status`` shows it done.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from changeover_support import make_academy

ROOT = Path(__file__).resolve().parent.parent


def readme_example() -> str:
    """The Python block of the README's "Adding a step" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Adding a step"):]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README shows the module to add"
    return match.group(1)


def test_the_readme_example_adds_step_6_with_one_module(database_url: str,
                                                         tmp_path: Path) -> None:
    academy = make_academy(database_url, tmp_path / "storage")
    tree = tmp_path / "src"
    shutil.copytree(ROOT / "yearchange_tui", tree / "yearchange_tui",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "yearchange_tui" / "changeover" / "steps" / "count_people.py").write_text(
        readme_example(), encoding="utf-8")
    options = ["--db", academy.url, "--storage", str(academy.storage)]

    def yearchange(*argv: str, package: Path | None = tree) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(package) if package else ""}
        return subprocess.run([sys.executable, "-m", "yearchange_tui", *options, *argv],
                              capture_output=True, text=True, env=env, cwd=tmp_path,
                              check=False, timeout=300)

    run = yearchange("run", "6", "--all", "--yes", "--json")
    assert run.returncode == 0, run.stderr
    [outcome] = json.loads(run.stdout)
    assert outcome["step"] == "count-people" and outcome["status"] == "done"
    assert outcome["counts"]["personnes comptées"] > 0
    status = yearchange("status", "--json")
    assert status.returncode == 0, status.stderr
    [row] = json.loads(status.stdout)
    assert row["steps"]["count-people"]["status"] == "done"
    assert row["steps"]["archive"]["status"] == "pending"
    again = yearchange("run", "count-people", "--all", "--yes")
    assert again.returncode == 0 and "déjà terminé" in again.stdout
    # The console grid has its column.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    code = ("from yearchange_tui.tui.grid_model import COLUMNS; "
            "print(' | '.join(c.title for c in COLUMNS))")
    grid = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=tmp_path, check=False, timeout=120)
    assert grid.stdout.strip().endswith("5 Vie scolaire | 6 Comptage des personnes"), grid
    # The package without the module does not know the step.
    unknown = yearchange("run", "count-people", "--all", "--yes", package=None)
    assert unknown.returncode == 2
