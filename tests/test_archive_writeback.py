"""Step 2 starts the disk's writeback of each archive as soon as it is complete (issue 16):
the buffered bytes reach the kernel first, and nothing changes where the system has no
``sync_file_range`` (durability still comes from ``syncfs`` before the manifest)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from yearchange_tui.changeover import effects
from yearchange_tui.changeover.effects import start_writeback


def test_writeback_flushes_python_buffer_first(tmp_path: Path) -> None:
    path = tmp_path / "archive.zip"
    with path.open("wb") as handle:
        handle.write(b"PK" * 1000)  # still in the BufferedWriter's buffer
        start_writeback(handle)
        assert os.fstat(handle.fileno()).st_size == 2000


def test_without_sync_file_range_nothing_is_asked(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(effects, "_sync_file_range", lambda: None)
    path = tmp_path / "archive.zip"
    with path.open("wb") as handle:
        handle.write(b"x")
        start_writeback(handle)
    assert path.read_bytes() == b"x"
