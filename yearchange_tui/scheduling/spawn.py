"""Start the engine as a detached background process.

The engine gets its own session (``setsid``): a hang-up of the console's terminal or SSH
connection (SIGHUP to the console's session) never reaches it. Its output goes to a log
file; the console then attaches to it through the database. Never imports Textual.

The database URL (which may hold a password) is never on the engine's command line, which
every local account can read (``ps``, ``/proc/PID/cmdline``): it goes in the child's
environment (``YEARCHANGE_DB``), readable only by the same account.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from yearchange_tui.config import default_data_dir
from yearchange_tui.ent.database import Database
from yearchange_tui.scheduling.lease import DEFAULT_TTL, read_lease
from yearchange_tui.workflow.units import utcnow


class EngineStartError(Exception):
    """The engine process stopped before taking the lease (French, with the log's tail)."""


def default_log_file() -> Path:
    """``<data folder>/logs/engine.log``."""
    return default_data_dir() / "logs" / "engine.log"


DB_VARIABLE = "YEARCHANGE_DB"


def engine_command(storage: Path | str, *, log_file: Path,
                   config_file: Path | None = None, read_only: bool = False,
                   extra_args: tuple[str, ...] = ()) -> list[str]:
    """The command line of a headless engine that logs to ``log_file`` only.

    It holds no database URL: :func:`engine_environment` passes it.
    """
    command = [sys.executable, "-m", "yearchange_tui", "--storage", str(storage)]
    if config_file is not None:
        command += ["--config", str(config_file)]
    if read_only:
        command.append("--read-only")
    command += ["engine", "--log-file", str(log_file), "--no-stdout", *extra_args]
    return command


def engine_environment(db_url: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """The engine's environment: ``env`` (default: this process's) with the database URL."""
    environment = dict(env if env is not None else os.environ)
    environment[DB_VARIABLE] = db_url
    return environment


def spawn_engine(db_url: str, storage: Path | str, *, log_file: Path,
                 config_file: Path | None = None, read_only: bool = False,
                 extra_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a detached engine (new session, stdin closed, output appended to ``log_file``).

    Returns:
        The process; it outlives the caller.
    """
    log_file = Path(log_file).expanduser()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as output:
        return subprocess.Popen(
            engine_command(storage, log_file=log_file, config_file=config_file,
                           read_only=read_only, extra_args=extra_args),
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, env=engine_environment(db_url, env))


def wait_for_engine(database: Database, process: subprocess.Popen[bytes] | None = None,
                    timeout: float = 20.0, poll: float = 0.1) -> bool:
    """Wait until a live engine holds the lease.

    Returns:
        True once one does; False when ``timeout`` passed.

    Raises:
        EngineStartError: ``process`` exited and no engine holds the lease.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_lease(database)
        if info is not None and info.is_live(utcnow(), DEFAULT_TTL):
            return True
        if process is not None and process.poll() is not None:
            raise EngineStartError(
                f"Le moteur s'est arrêté au démarrage (code {process.returncode}). "
                f"{_tail(process)}")
        time.sleep(poll)
    return False


def _tail(process: subprocess.Popen[bytes]) -> str:
    log_path = ""
    args = process.args if isinstance(process.args, list) else []
    if "--log-file" in args:
        log_path = str(args[args.index("--log-file") + 1])
    if not log_path:
        return ""
    path = Path(log_path)
    lines = (path.read_text(encoding="utf-8", errors="replace").splitlines()
             if path.is_file() else [])
    if not lines:
        return f"Journal : {log_path} (vide)."
    return "Fin du journal " + log_path + " :\n" + "\n".join(lines[-5:])
