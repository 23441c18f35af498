"""``yearchange bench --scale``: it runs with real worker processes on PostgreSQL, prints
every figure with the load beside it, and leaves no database behind (no timing threshold)."""

from __future__ import annotations

import pytest
from pg_support import PG_URL
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from yearchange_tui.bench.scale import BENCH_URL_VARIABLE, SCALE_DB_CODE
from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import normalise_url


@pytest.mark.parametrize("arguments", [[], ["--db", "sqlite:///ailleurs.db"]])
def test_scale_bench_refuses_without_a_postgresql_server(
        arguments: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(BENCH_URL_VARIABLE, raising=False)
    assert main(["bench", "--scale", *arguments]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert SCALE_DB_CODE in said and "PostgreSQL" in said and "rien n'a été fait" in said


def _bench_databases() -> list[str]:
    assert PG_URL is not None
    admin = create_engine(make_url(normalise_url(PG_URL)))
    with admin.connect() as connection:
        names = list(connection.execute(text(
            "SELECT datname FROM pg_database WHERE datname LIKE :prefix"),
            {"prefix": "yearchange_scale_%"}).scalars())
    admin.dispose()
    return names


# A measurement (two runs of steps 1-3 with their engine and workers, a few minutes on a
# loaded machine): run by CI, left out of the inner loop like the other benches.
@pytest.mark.slow
@pytest.mark.skipif(not PG_URL, reason="bench --scale measures worker processes on "
                                       "PostgreSQL: set YEARCHANGE_TEST_PG_URL")
def test_scale_bench_prints_every_figure_with_the_load(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert PG_URL is not None
    monkeypatch.setenv(BENCH_URL_VARIABLE, PG_URL)  # the server through the variable
    before = set(_bench_databases())
    assert main(["bench", "--scale", "--establishments", "2"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()

    def line(start: str) -> str:
        found = [text for text in lines if text.strip().startswith(start)]
        assert len(found) == 1, (start, out)
        return found[0]

    for figure in ("1 processus : 6 unités en", "2 processus : 6 unités en",
                   "accélération 2 processus / 1 : ×", "coût par établissement (1 processus) :",
                   "CPU par établissement (processus de travail", "CPU du serveur PostgreSQL :"):
        assert "[charge " in line(figure), figure
    per_step = [text for text in lines if "étape 1" in text and "étape 3" in text]
    # each run, the wall cost, the CPU cost, each projection (wall, then CPU)
    assert len(per_step) == 2 + 1 + 1 + 3 + 3
    for cores in (8, 16, 32):
        for projection in (line(f"{cores} cœurs :"), line(f"{cores} cœurs dédiés :")):
            assert "étapes 1–3" in projection and " h" in projection
    assert "cible < 8 h" in line("16 cœurs :")
    assert set(_bench_databases()) == before  # its own databases are dropped
