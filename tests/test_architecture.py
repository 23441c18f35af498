"""The package reads top-down: import-linter's layers hold, and the engine side never
imports Textual or Rich (house rule: the domain stays UI-free)."""

from __future__ import annotations

import ast
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



def _function_level_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of each import inside a function of ``path`` with no comment saying why.

    The comment sits on the line right above the import or on the same line; it covers the
    run of import statements that follows it (as a formatter groups them), and a comment
    above a ``try:`` covers the imports that open it.
    """
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source, filename=str(path))

    def commented(lineno: int) -> bool:
        return "#" in lines[lineno - 1] or (
            lineno > 1 and lines[lineno - 2].lstrip().startswith("#"))

    def bodies(node: ast.AST) -> list[list[ast.stmt]]:
        found = [getattr(node, name) for name in ("body", "orelse", "finalbody")
                 if isinstance(getattr(node, name, None), list)]
        found += [handler.body for handler in getattr(node, "handlers", [])]
        return found

    missing: list[tuple[int, str]] = []

    def visit(node: ast.AST, in_function: bool, covered: bool) -> None:
        for body in bodies(node):
            previous_is_covered_import = covered and isinstance(node, ast.Try)
            for statement in body:
                is_import = isinstance(statement, ast.Import | ast.ImportFrom)
                if is_import:
                    ok = previous_is_covered_import or commented(statement.lineno)
                    if in_function and not ok:
                        missing.append((statement.lineno, lines[statement.lineno - 1].strip()))
                    previous_is_covered_import = ok
                else:
                    previous_is_covered_import = False
                    inner = in_function or isinstance(
                        statement, ast.FunctionDef | ast.AsyncFunctionDef)
                    visit(statement, inner,
                          isinstance(statement, ast.Try) and commented(statement.lineno))

    visit(tree, False, False)
    return sorted(missing)


def test_every_function_level_import_says_why() -> None:
    package = ROOT / "yearchange_tui"
    modules = sorted(package.rglob("*.py"))
    assert len(modules) > 100
    offenders = [f"{path.relative_to(ROOT)}:{line}: {text}"
                 for path in modules for line, text in _function_level_imports(path)]
    assert not offenders, ("a function-level import needs a one-line comment saying why "
                           "(or belongs at the top of its module):\n" + "\n".join(offenders))


def test_the_architecture_check_finds_an_uncommented_import(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        "def reasoned():\n"
        "    # Textual is loaded only when a console opens.\n"
        "    from textual.app import App\n"
        "    return App\n\n\n"
        "def bare():\n"
        "    import json\n"
        "    return json\n\n\n"
        "class Holder:\n"
        "    def method(self):\n"
        "        if self:\n"
        "            # A real cycle: the runner imports this module.\n"
        "            from a import b\n"
        "            from c import d\n\n"
        "            import e\n"
        "        x = 1\n"
        "        import f\n"
        "        return x\n", encoding="utf-8")
    assert _function_level_imports(module) == [(8, "import json"), (21, "import f")]


def test_the_command_line_does_not_load_textual_for_other_commands() -> None:
    code = (
        "import sys\n"
        "from yearchange_tui.cli.main import build_parser\n"
        "build_parser().parse_args(['status'])\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] == 'textual')\n"
        "print(','.join(leaked)); sys.exit(1 if leaked else 0)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False, cwd=ROOT)
    assert result.returncode == 0, f"`yearchange status` loads Textual: {result.stdout} {result.stderr}"
    help_run = subprocess.run([sys.executable, "-X", "importtime", "-m", "yearchange_tui",
                               "status", "--help"], capture_output=True, text=True,
                              check=False, cwd=ROOT)
    assert help_run.returncode == 0, help_run.stderr
    assert "status" in help_run.stdout
    loaded = {line.rsplit("|", 1)[-1].strip() for line in help_run.stderr.splitlines()
              if line.startswith("import time:")}
    assert "yearchange_tui.cli.main" in loaded
    assert not {name for name in loaded if name.split(".")[0] in ("textual", "rich")}


# Engine packages where a class past ~400 lines is a design smell (house style): split it
# into collaborators with explicit state. The console's App and the sample generator are
# outside this rule.
SIZED_PACKAGES = ("workflow", "importing", "aaf", "timetable", "changeover", "scheduling")
MAX_CLASS_LINES = 400


def test_no_god_class_in_the_engine_packages() -> None:
    oversized = []
    for package in SIZED_PACKAGES:
        for path in sorted((ROOT / "yearchange_tui" / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    if lines > MAX_CLASS_LINES:
                        oversized.append(f"{path.relative_to(ROOT)}:{node.name} ({lines} lines)")
    assert not oversized, oversized


def test_no_step_asks_whether_it_is_a_dry_run() -> None:
    """A phase describes its writes through the effects; only the effects know a dry run."""
    readers = []
    for path in sorted((ROOT / "yearchange_tui" / "changeover" / "steps").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "dry_run" and isinstance(
                    node.ctx, ast.Load):
                readers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not readers, readers


def _defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {node.name for node in tree.body
             if isinstance(node, ast.FunctionDef | ast.ClassDef)}
    names |= {target.id for node in tree.body if isinstance(node, ast.Assign)
              for target in node.targets if isinstance(target, ast.Name)}
    return names


def test_one_owner_of_the_time_zone_and_of_the_window_remedy() -> None:
    """localtime is the one entry point to a time zone; the window refusal's way out is
    worded once (guards), whichever of the CLI, the engine or the console refuses."""
    package = ROOT / "yearchange_tui"
    zone_owners = {str(path.relative_to(package)) for path in package.rglob("*.py")
                   if {"timezone", "operator_zone"} & _defined_names(path)}
    assert zone_owners == {"workflow/localtime.py"}
    remedy_owners = {str(path.relative_to(package)) for path in package.rglob("*.py")
                     if "WINDOW_REMEDY" in _defined_names(path)}
    assert remedy_owners == {"workflow/guards.py"}
