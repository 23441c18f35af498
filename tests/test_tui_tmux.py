"""The real console in a real terminal (tmux, 80×24, TERM=xterm-256color, no COLORTERM).

Builds a two-establishment sample, opens ``yearchange`` on it as an operator would,
moves in the grid, starts a dry run, watches it finish on screen, quits with F10. Skipped
without tmux; every wait has a deadline, and the tmux server and the engine the console
started are stopped at the end.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from template_support import copy_sample

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux absent")]


class Terminal:
    """A tmux server of our own with one 80×24 session."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str, timeout: float = 10) -> str:
        result = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                                text=True, timeout=timeout, check=False)
        return result.stdout

    def start(self, command: str, env: dict[str, str]) -> None:
        exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
        shell = f"env -u COLORTERM -u NO_COLOR {exports} {command}; echo FIN=$?; sleep 60"
        subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d",
                        "-s", "console", "-x", "80", "-y", "24", "sh", "-c", shell],
                       check=True, timeout=10)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "console")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "console", *keys)

    def wait_for(self, condition: Callable[[str], bool], what: str,
                 timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if condition(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"attendu à l'écran : {what}\n--- écran ---\n{screen}")

    def stop(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=10, check=False)


@pytest.fixture
def academy(tmp_path: Path) -> Path:
    return copy_sample(tmp_path / "academie", 2, 7, 2025)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal(f"yc-test-{os.getpid()}")
    try:
        yield term
    finally:
        term.stop()


def _stop_engine(db_url: str) -> None:
    """Stop the engine process the console started (it outlives the console by design)."""
    try:
        from yearchange_tui.ent.database import open_database
        from yearchange_tui.scheduling.lease import read_lease
    except ImportError:
        return
    database = open_database(db_url)
    try:
        lease = read_lease(database)
    finally:
        database.dispose()
    if lease is None or not lease.pid:
        return
    try:
        os.kill(lease.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(lease.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(lease.pid, signal.SIGKILL)


def test_an_operator_runs_a_dry_run_in_a_real_terminal(academy: Path, terminal: Terminal,
                                                       tmp_path: Path) -> None:
    db_url = f"sqlite:///{academy / 'yearchange.db'}"
    env = {"TERM": "xterm-256color", "LANG": "C.UTF-8",
           "YEARCHANGE_DATA_DIR": str(tmp_path / "data"),
           "YEARCHANGE_CONFIG": str(tmp_path / "config.toml"),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    command = " ".join(shlex.quote(part) for part in (
        sys.executable, "-m", "yearchange_tui", "--db", db_url,
        "--storage", str(academy / "storage")))
    try:
        terminal.start(command, env)
        screen = terminal.wait_for(lambda s: "0693422V" in s and "10Quitter" in s,
                                   "la grille", timeout=90)
        assert "0016980G" in screen and "Passage" in screen
        # The console started the engine on the database it opened, and attached to it.
        screen = terminal.wait_for(lambda s: "moteur ● attaché" in s, "le moteur attaché",
                                   timeout=60)
        assert (tmp_path / "data" / "logs" / "console.log").is_file()
        assert all(len(line) <= 80 for line in screen.splitlines())

        terminal.keys("Down")
        terminal.wait_for(lambda s: " 0693422V · 1 Corbeille" in s, "la ligne du curseur")
        terminal.keys("+")
        terminal.wait_for(lambda s: "● 2 marqués" in s, "deux établissements marqués")
        terminal.keys("d")
        terminal.wait_for(lambda s: "Passage à blanc (étape 0)" in s, "la confirmation")
        terminal.keys("Enter")
        screen = terminal.wait_for(
            lambda s: sum(line.split()[2:4] == ["✓", "fini"] for line in s.splitlines()
                          if line[1:9] in ("0016980G", "0693422V")) == 2,
            "le passage à blanc terminé sur les deux lignes", timeout=120)

        terminal.keys("F6")
        terminal.wait_for(lambda s: "Journal du moteur" in s, "le journal")
        terminal.keys("F2")
        terminal.wait_for(lambda s: "10Quitter" in s and "0693422V" in s, "la grille")
        terminal.keys("F10")
        terminal.wait_for(lambda s: "FIN=0" in s, "la fin de la console", timeout=30)
    finally:
        _stop_engine(db_url)
