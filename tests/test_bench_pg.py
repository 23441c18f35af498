"""``yearchange bench --db postgresql://…``: every part measured on PostgreSQL, in databases
the bench creates and drops (no timing threshold here).

PostgreSQL only: set ``YEARCHANGE_TEST_PG_URL``.
"""

from __future__ import annotations

import os

import pytest
from conftest import PG_URL
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import normalise_url

needs_pg = pytest.mark.skipif(PG_URL is None, reason="PostgreSQL seulement "
                              "(YEARCHANGE_TEST_PG_URL)")


def _bench_databases() -> set[str]:
    """The bench databases of this process (the bench runs in it: ``main``); other
    benches may run on the same server at the same time."""
    assert PG_URL is not None
    engine = create_engine(make_url(normalise_url(PG_URL)))
    try:
        with engine.connect() as connection:
            return set(connection.execute(text(
                "SELECT datname FROM pg_database WHERE datname LIKE :prefix"),
                {"prefix": f"yearchange_bench_{os.getpid()}_%"}).scalars())
    finally:
        engine.dispose()


@pytest.mark.slow
@needs_pg
def test_bench_on_postgresql_prints_every_ratio_and_leaves_no_database(capsys) -> None:
    assert PG_URL is not None
    before = _bench_databases()
    assert main(["bench", "--db", PG_URL, "--establishments", "1", "--quick",
                 "--attachments", "small"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Banc d'essai PostgreSQL"), out
    lines = out.splitlines()

    def line(start: str) -> str:
        found = [text for text in lines if text.strip().startswith(start)]
        assert found, (start, out)
        return found[0]

    step3 = line("étape 3 :")
    assert "plancher TRUNCATE" in step3 and "ratio (horloge)" in step3
    assert "ratio CPU (client + serveur)" in step3 and "[charge" in step3
    assert "lignes : moteur" in line("plancher : lignes")
    assert "ratio hors contrôle (estimé)" in line("dont contrôle SHA-256 des archives")
    assert "[charge" in line("étape 2 :")
    assert "ratio" in line("par cœur :")
    aaf = line("import AAF (vers PostgreSQL)")
    assert "ratio (horloge)" in aaf and "ratio CPU" in aaf and "[charge" in aaf
    # Both sides removed the same rows.
    counts = line("plancher : lignes").split("lignes : moteur ")[1]
    engine_rows, floor_rows = (int(part.strip()) for part in counts.split(", plancher "))
    assert engine_rows == floor_rows > 0
    # Every database the bench created was dropped.
    assert before == set() and _bench_databases() == set()


def test_bench_refuses_a_database_that_is_not_postgresql(capsys, tmp_path) -> None:
    status = main(["bench", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--quick"])
    assert status == 2
    err = capsys.readouterr().err
    assert "n'est pas une URL PostgreSQL" in err and "banc-base-refusee" in err
    assert not (tmp_path / "x.db").exists()


def test_linearity_needs_postgresql(capsys, monkeypatch) -> None:
    monkeypatch.delenv("YEARCHANGE_BENCH_PG_URL", raising=False)
    assert main(["bench", "--linearity"]) == 2
    assert "--linearity mesure PostgreSQL" in capsys.readouterr().err


@needs_pg
def test_bench_never_touches_a_database_it_did_not_create(capsys) -> None:
    """A database already holding the bench's name is left alone, with a French message."""
    from yearchange_tui.bench.postgres import BenchDatabaseError, BenchDatabases

    assert PG_URL is not None
    databases = BenchDatabases(PG_URL)
    admin = create_engine(make_url(normalise_url(PG_URL)), isolation_level="AUTOCOMMIT")
    name = databases.name("sample")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        with pytest.raises(BenchDatabaseError, match="existe déjà"):
            databases.create("sample")
        with admin.connect() as connection:
            assert connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                      {"n": name}).first()
    finally:
        databases.close()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
