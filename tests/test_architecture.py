"""The package reads top-down: import-linter's layers hold, and the engine side never
imports Textual or Rich (house rule: the domain stays UI-free)."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Every package that must run headless (the engine under systemd, the CLI's engine commands).
ENGINE_PACKAGES = ("ent", "workflow", "importing", "aaf", "timetable", "changeover",
                   "scheduling", "sample")


def engine_modules() -> list[str]:
    """Every module of the engine packages, found on disk (not a hand-kept list)."""
    names: list[str] = []
    for package in ENGINE_PACKAGES:
        module = __import__(f"yearchange_tui.{package}", fromlist=["_"])
        names.append(module.__name__)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{module.__name__}."):
            if ".migrations" not in info.name:
                names.append(info.name)
    return sorted(names)


def test_every_engine_module_is_found() -> None:
    modules = engine_modules()
    assert "yearchange_tui.scheduling.engine" in modules
    assert "yearchange_tui.aaf.importer" in modules
    assert len(modules) > 60


def test_no_engine_module_imports_textual_or_rich() -> None:
    modules = engine_modules()
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(leaked)); sys.exit(1 if leaked else 0)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False, cwd=ROOT)
    assert result.returncode == 0, f"the engine side imports the UI: {result.stdout} {result.stderr}"


def test_import_layers_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is part of the test extra"
    result = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], capture_output=True,
                            text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr

