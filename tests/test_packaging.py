"""A plain ``pip install .`` ships the data folders: themes/ and sample_data/."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from the checkout and install it (no dependencies) into a folder."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "-w", str(work), str(ROOT)], check=True)
    wheel = next(work.glob("yearchange_tui-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "yearchange_tui/sample_data/generator/last_names.txt" in names
    assert any(name.startswith("yearchange_tui/themes/") for name in names)
    assert "yearchange_tui/ent/migrations/versions/0001_ent_model.py" in names
    site = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(site), str(wheel)], check=True)
    return site


def test_installed_package_finds_its_data_and_builds_a_roster(installed_site: Path,
                                                               tmp_path: Path) -> None:
    code = (
        "import yearchange_tui, pathlib\n"
        "from yearchange_tui.resources import sample_data_dir, themes_dir\n"
        "from yearchange_tui.sample.roster import build_academy\n"
        "package = pathlib.Path(yearchange_tui.__file__).parent\n"
        "assert sample_data_dir().is_relative_to(package), sample_data_dir()\n"
        "assert themes_dir().is_relative_to(package), themes_dir()\n"
        "print(build_academy(1, 1, 2025).establishments[0].uai)\n"
    )
    env = {"PYTHONPATH": str(installed_site), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip()) == 8
