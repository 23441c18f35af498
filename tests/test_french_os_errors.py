"""System errors reach the operator in French with the path: disk full, permission, read-only.

Each is produced for real: a tmpfs too small for step 2's archives or mounted read-only (in
a private mount namespace, gone with the process), and a root process without the
capability that lets root ignore file permissions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from changeover_support import make_academy

from yearchange_tui.ent.errors import describe_error

ROOT = Path(__file__).resolve().parents[1]
needs_root_tools = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("unshare") is None
    or shutil.which("setpriv") is None, reason="needs root, unshare and setpriv")


def _yearchange(prefix: list[str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "yearchange_tui", *argv],
                          capture_output=True, text=True, check=False, cwd=ROOT)


def _in_tmpfs(mount_point: Path, options: str, then: str) -> list[str]:
    """A command prefix: a private tmpfs at ``mount_point``, then the shell line ``then``."""
    return ["unshare", "-m", "sh", "-c",
            f'mount -t tmpfs -o {options} tmpfs "$0" && {then} && exec "$@"', str(mount_point)]


def test_describe_error_speaks_french() -> None:
    assert describe_error(OSError(28, "No space left on device", "/srv/a.zip")) == \
        "plus de place sur le disque : /srv/a.zip"
    assert describe_error(PermissionError(13, "Permission denied", "/srv/x")) == \
        "permission refusée : /srv/x"
    assert describe_error(OSError(30, "Read-only file system", "/srv/y")) == \
        "système de fichiers en lecture seule : /srv/y"
    assert describe_error(ValueError("déjà en français")) == "déjà en français"


@needs_root_tools
def test_disk_full_during_step_2_names_the_archive_in_french(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'y.db'}"
    make_academy(url, tmp_path / "storage").database.dispose()
    # tmpfs takes whole pages: each file and folder rounded up to 4 KiB.
    used = sum(-(-path.stat().st_size // 4096) * 4096 if path.is_file() else 4096
               for path in (tmp_path / "storage").rglob("*"))
    small = tmp_path / "petit-disque"
    small.mkdir()
    size_kib = used // 1024 + 512  # the storage fits, its archives do not
    prefix = _in_tmpfs(small, f"size={size_kib}k", f'cp -a "{tmp_path / "storage"}/." "$0/"')
    result = _yearchange(prefix, "--db", url, "--storage", str(small), "run", "archive",
                         "--all", "--yes")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "plus de place sur le disque : " + str(small) in output
    assert "Errno" not in output and "No space left" not in output
    assert "Traceback" not in output


@needs_root_tools
def test_read_only_file_system_in_french(tmp_path: Path) -> None:
    mount_point = tmp_path / "lecture-seule"
    mount_point.mkdir()
    result = _yearchange(_in_tmpfs(mount_point, "ro", "true"), "sample", "--out",
                         str(mount_point / "academie"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("yearchange : système de fichiers en lecture seule : "
                                     f"{mount_point / 'academie'}.")


@needs_root_tools
def test_permission_denied_in_french(tmp_path: Path) -> None:
    closed = tmp_path / "ferme"
    closed.mkdir(mode=0o555)
    # Root without the capabilities that let it ignore permissions: a plain account.
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    result = _yearchange(prefix, "sample", "--out", str(closed / "academie"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"yearchange : permission refusée : {closed / 'academie'}."
