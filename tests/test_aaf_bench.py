"""``bench_aaf`` measures what ``yearchange bench`` prints (no timing threshold here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from yearchange_tui.bench.aaf import bench_aaf, parse_floor
from yearchange_tui.cli.main import main

# A measurement: run by CI, left out of the inner loop (`pytest -m "not slow"`).
pytestmark = pytest.mark.slow

DELIVERY = Path(__file__).resolve().parents[1] / "sample_data" / "aaf" / "livraison"


def test_parse_floor_counts_every_request() -> None:
    count, seconds = parse_floor(DELIVERY)
    assert count == 81 and seconds > 0  # 82 records minus the <updateRequest> element


def test_bench_aaf_reports_throughput_and_memory(tmp_path: Path) -> None:
    out = tmp_path / "academie"
    assert main(["sample", "--establishments", "1", "--seed", "3", "--year", "2025",
                 "--out", str(out)]) == 0
    result = bench_aaf(out, quick=True)
    assert result["records_x10"] > 9 * result["records"]
    for key in ("import_records_per_s", "floor_records_per_s", "import_records_per_s_x10",
                "floor_records_per_s_x10", "peak_memory_mib", "peak_memory_mib_x10"):
        assert result[key] > 0, key
    assert result["ratio"] > 0 and result["memory_ratio"] > 0
    assert result["target_ratio"] == 0.5 and result["target_memory_ratio"] == 1.5
