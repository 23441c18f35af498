"""Private temporary folders of an import, removed however the import ends.

An import that extracts an archive works in ``$TMPDIR/yearchange-<kind>-<pid>-XXXXXXXX``
(:func:`scratch_folder`; the pid is the importing process's). The folder is removed when
the import ends or fails, and when the process is stopped by SIGTERM or SIGHUP: the
default action of those signals ends a process without any clean-up, so while a folder
is open this module removes the process's folders first, then ends the process by the
same signal (what the caller sees is unchanged; a database transaction in progress is
rolled back by the database, as before). A signal handler some caller installed itself
(the engine's import child rolls back on SIGTERM) is left in place: its unwinding
removes the folder.

A process killed outright (``kill -9``) cannot clean up: the next import removes the
folders of this kind whose process (the pid in the name) no longer exists and that
belong to this user (:func:`remove_stale`). A folder of a live process — another
import running now — is never touched.

Signal handlers are only installed from the main thread (Python allows no other); an
import on another thread (the engine's scheduler) has its process's own handling.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from yearchange_tui.workflow.claims import pid_alive

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Signals whose default action ends the process: the folders go first."""

_NAME = re.compile(r"^yearchange-(?P<kind>[a-z]+)-(?P<pid>\d+)-")

_lock = threading.Lock()
_open: dict[Path, int] = {}
"""Folders open now → the pid of the process that made them (a forked child inherits
this map, and must not remove its parent's folders)."""
_replaced: dict[int, Any] = {}
"""Signal → the handler this module replaced (the default action)."""


def folder_prefix(kind: str) -> str:
    """The name prefix of this process's folders of ``kind`` (``yearchange-aaf-<pid>-``)."""
    return f"yearchange-{kind}-{os.getpid()}-"


def remove_stale(kind: str, root: Path | None = None) -> list[Path]:
    """Remove the folders of ``kind`` left by processes that no longer exist.

    Only directories named by :func:`folder_prefix`, owned by this user, whose pid is
    not a running process, are removed.

    Args:
        kind: the folder kind (``aaf``).
        root: where to look (default: the temporary folder, ``$TMPDIR``).

    Returns:
        The folders removed.
    """
    base = root or Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        match = _NAME.match(entry.name)
        if match is None or match["kind"] != kind:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() \
                or pid_alive(int(match["pid"])):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def _on_stop(signum: int, _frame: Any) -> None:
    """SIGTERM/SIGHUP with a folder open: remove this process's folders, then end by the
    signal as its default action would have."""
    me = os.getpid()
    for folder, owner in list(_open.items()):
        if owner == me:
            shutil.rmtree(folder, ignore_errors=True)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(me, signum)


def _install() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in STOP_SIGNALS:
        if signum not in _replaced and signal.getsignal(signum) == signal.SIG_DFL:
            signal.signal(signum, _on_stop)
            _replaced[signum] = signal.SIG_DFL


def _uninstall() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, previous in list(_replaced.items()):
        if signal.getsignal(signum) is _on_stop:
            signal.signal(signum, previous)
        del _replaced[signum]


@contextmanager
def scratch_folder(kind: str) -> Iterator[Path]:
    """A private temporary folder for one import, removed however the import ends.

    Stale folders of ``kind`` (their process is gone) are removed first.

    Args:
        kind: the folder kind, in its name (``aaf``).

    Yields:
        The folder (mode 0700, in ``$TMPDIR``).
    """
    remove_stale(kind)
    folder = Path(tempfile.mkdtemp(prefix=folder_prefix(kind)))
    with _lock:
        _open[folder] = os.getpid()
        _install()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        with _lock:
            _open.pop(folder, None)
            if not any(owner == os.getpid() for owner in _open.values()):
                _uninstall()
