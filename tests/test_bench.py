"""``yearchange bench`` for steps 2 and 3: what it measures (no timing threshold here)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from yearchange_tui.bench.changeover import run_bench

# A measurement: run by CI, left out of the inner loop (`pytest -m "not slow"`).
pytestmark = pytest.mark.slow


def test_bench_measures_steps_2_and_3_against_their_floors(tmp_path: Path) -> None:
    result = run_bench(2, tmp_path, repeats=2, workers=2)
    step2, step3 = result["step2"], result["step3"]
    assert step2["all_done"] and step3["all_done"]
    assert step2["workers"] == 2 and len(step2["engine_seconds"]) == 2
    # The floor compressed exactly the bytes the archives hold.
    storage = tmp_path / "academie" / "storage"
    archives = sorted(storage.glob("*/archives/*/**/*.zip"))
    assert archives
    held = 0
    for path in archives:
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None
            held += sum(info.file_size for info in archive.infolist())
    assert step2["uncompressed_bytes"] == held
    # The second attempt wrote new files: no temporary file is left behind.
    assert not list(storage.glob("**/.*.part"))
    # Step 3 deleted the very rows the raw SQL floor deletes.
    assert step3["rows_engine"] == step3["rows_raw_sql"] > 0
    for key in ("engine_mb_per_s", "zlib_mb_per_s", "ratio"):
        assert step2[key] > 0, key
    for key in ("engine_rows_per_s", "raw_sql_rows_per_s", "ratio"):
        assert step3[key] > 0, key
