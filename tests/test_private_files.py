"""What the tool creates (database, archives, logs, exports) is never readable by others."""

from __future__ import annotations

import grp
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from yearchange_tui.ent.database import Access, open_existing_database
from yearchange_tui.scheduling.lease import read_lease

ROOT = Path(__file__).resolve().parents[1]


def _yearchange(*argv: str, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
    # The operator's shell has the usual umask 022: the tool must not rely on it.
    return subprocess.run([sys.executable, "-m", "yearchange_tui", *argv], capture_output=True,
                          text=True, check=False, cwd=ROOT, env=env,
                          preexec_fn=lambda: os.umask(0o022))


def _open_to_others(folder: Path) -> list[str]:
    return [f"{oct(stat.S_IMODE(path.lstat().st_mode))} {path}"
            for path in [folder, *folder.rglob("*")] if path.lstat().st_mode & 0o007]


def test_database_archives_and_engine_log_are_private(tmp_path: Path) -> None:
    out = tmp_path / "academie"
    result = _yearchange("sample", "--out", str(out), "--establishments", "1")
    assert result.returncode == 0, result.stderr
    options = ["--db", f"sqlite:///{out / 'yearchange.db'}", "--storage", str(out / "storage")]
    result = _yearchange(*options, "run", "archive", "--all", "--yes", "--hors-fenetre",
                         "--reason", "test des droits des fichiers")
    assert result.returncode == 0, result.stdout + result.stderr
    archives = list((out / "storage").rglob("*.zip"))
    assert archives
    log_file = tmp_path / "journaux" / "engine.log"
    result = _yearchange(*options, "engine", "--detach", "--log-file", str(log_file))
    assert result.returncode == 0, result.stderr
    database = open_existing_database(options[1], Access.READ_ONLY)
    try:
        lease = read_lease(database)
        assert lease is not None and lease.pid
        os.kill(lease.pid, signal.SIGTERM)
        for _ in range(300):  # a clean stop releases the lease
            info = read_lease(database)
            if info is not None and not info.held:
                break
            time.sleep(0.1)
    finally:
        database.dispose()
    assert _open_to_others(out) == []
    assert _open_to_others(log_file.parent) == []
    assert stat.S_IMODE((out / "yearchange.db").stat().st_mode) == 0o640
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o640
    assert stat.S_IMODE(log_file.parent.stat().st_mode) == 0o750
    assert {stat.S_IMODE(path.stat().st_mode) for path in archives} == {0o640}


def test_the_configured_group_owns_what_is_created(tmp_path: Path) -> None:
    try:
        group = grp.getgrnam("users")
    except KeyError:
        pytest.skip("no « users » group on this machine")
    folder = tmp_path / "ent"
    folder.mkdir(mode=0o750)
    environment = {**os.environ, "YEARCHANGE_GROUP": "users"}
    result = _yearchange("--db", f"sqlite:///{folder / 'y.db'}", "--storage",
                         str(folder / "storage"), "db", "upgrade", env=environment)
    assert result.returncode == 0, result.stderr
    assert folder.stat().st_gid == group.gr_gid and folder.stat().st_mode & stat.S_ISGID
    database = folder / "y.db"
    assert database.stat().st_gid == group.gr_gid
    assert stat.S_IMODE(database.stat().st_mode) == 0o640
    result = _yearchange("config", env={**environment, "YEARCHANGE_GROUP": "pas-un-groupe"})
    assert result.returncode == 2 and "Groupe inconnu « pas-un-groupe »" in result.stderr
