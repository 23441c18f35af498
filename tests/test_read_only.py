"""Read-only is read-only: no command but ``engine``, ``sample``, ``demo`` and ``db upgrade``
creates or migrates a database, and read-only commands cannot write (SQLite always,
PostgreSQL when ``YEARCHANGE_TEST_PG_URL`` is set)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from changeover_support import make_academy
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from yearchange_tui.cli.main import build_parser, main
from yearchange_tui.cli.util import open_database_from_args
from yearchange_tui.ent.database import (
    Access,
    DatabaseError,
    alembic_config,
    create_db_engine,
    current_revision,
    head_revision,
    known_revisions,
    open_database,
    open_existing_database,
)
from yearchange_tui.ent.models import Project

# SQLite: "attempt to write a readonly database"; PostgreSQL: "cannot execute … in a
# read-only transaction".
READ_ONLY_REFUSAL = re.compile(r"readonly database|read-only transaction")

TYPO_COMMANDS = [
    ["status"],
    ["status", "--json"],
    ["--read-only", "rejects"],
    ["rejects"],
    ["verify"],
    ["plan"],
    ["engine-status"],
    ["access-block", "--login", "eleve"],
    ["dry-run"],
    ["run", "purge-trash", "--all", "--yes"],
    ["import-aaf", "livraison"],
    ["school-life-check"],
    ["console"],
    [],
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def academy_url(database_url: str, tmp_path: Path) -> str:
    """A database at this version's schema with a one-establishment académie."""
    make_academy(database_url, tmp_path / "storage").database.dispose()
    return database_url


def project_count(url: str) -> int:
    database = open_existing_database(url, Access.READ_ONLY)
    try:
        with database.session() as session:
            return int(session.scalar(select(func.count()).select_from(Project)) or 0)
    finally:
        database.dispose()


# -- a database that is not there, empty, older or newer ------------------------------------

@pytest.mark.parametrize("argv", TYPO_COMMANDS, ids=lambda argv: " ".join(argv) or "console")
def test_a_mistyped_database_is_refused_and_nothing_is_created(
        argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "typo"
    url = f"sqlite:///{folder / 'typo.db'}"
    status, _out, err = run(capsys, "--db", url, *argv)
    assert status == 2
    assert "[BASE-ABSENTE]" in err and f"La base {url} n'existe pas" in err
    assert f"yearchange --db {url} db upgrade" in err and "yearchange sample" in err
    assert "Traceback" not in err
    assert not folder.exists()


def test_an_empty_database_file_is_refused_and_left_untouched(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "vide.db"
    path.touch()
    status, _out, err = run(capsys, "--db", f"sqlite:///{path}", "status")
    assert status == 2 and "[BASE-VIDE]" in err and "db upgrade" in err
    assert path.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vide.db"]


def test_a_database_of_another_application_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "autre.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE clients (id INTEGER PRIMARY KEY)")
    status, _out, err = run(capsys, "--db", f"sqlite:///{path}", "rejects")
    assert status == 2 and "[BASE-INCONNUE]" in err and "1 table(s)" in err


def test_an_older_schema_is_refused_until_db_upgrade(
        database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    previous, head = known_revisions()[-2], head_revision()
    engine = create_db_engine(database_url)
    command.upgrade(alembic_config(engine), previous)
    engine.dispose()

    status, _out, err = run(capsys, "--db", database_url, "status")
    assert status == 2 and "[BASE-A-METTRE-A-JOUR]" in err
    assert f"schéma {previous}, antérieur à celui de cette version ({head})" in err
    assert "db upgrade" in err
    probe = create_db_engine(database_url, Access.READ_ONLY)
    assert current_revision(probe) == previous  # refused, not migrated
    probe.dispose()

    status, out, _err = run(capsys, "--db", database_url, "db", "upgrade")
    assert status == 0 and f"schéma {previous} → {head}" in out
    status, out, _err = run(capsys, "--db", database_url, "rejects")
    assert status == 0 and "Aucun import AAF dans la base." in out
    status, out, _err = run(capsys, "--db", database_url, "db", "upgrade", "--json")
    assert status == 0 and json.loads(out)["outcome"] == "up-to-date"


def test_a_newer_schema_is_refused_with_both_revision_names(
        database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    database = open_database(database_url)
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    database.dispose()
    for argv in (["status"], ["db", "upgrade"], ["engine"]):
        status, _out, err = run(capsys, "--db", database_url, *argv)
        assert status == 2, argv
        assert "[BASE-PLUS-RECENTE]" in err
        assert "9999_future" in err and f"(schéma {head_revision()})" in err
    probe = create_db_engine(database_url, Access.READ_ONLY)
    assert current_revision(probe) == "9999_future"
    probe.dispose()


def test_db_upgrade_creates_a_missing_sqlite_database_and_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'nouvelle' / 'yearchange.db'}"
    status, out, _err = run(capsys, "--db", url, "db", "upgrade")
    assert status == 0 and out.strip() == f"✓ Base créée : {url} (schéma {head_revision()})."
    status, out, _err = run(capsys, "--db", url, "rejects")
    assert status == 0 and "Aucun import AAF dans la base." in out
    status, out, _err = run(capsys, "--db", url, "db", "upgrade")
    assert status == 0 and "Base déjà à jour" in out


def test_db_upgrade_is_refused_in_read_only_mode(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'yearchange.db'}"
    status, _out, err = run(capsys, "--db", url, "--read-only", "db", "upgrade")
    assert status == 2 and "Mode consultation" in err
    assert not (tmp_path / "yearchange.db").exists()


# -- read-only connections -----------------------------------------------------------------

def test_read_only_status_works_and_its_connection_cannot_write(
        academy_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _err = run(capsys, "--db", academy_url, "--read-only", "status", "--json")
    assert status == 0
    [row] = json.loads(out)
    assert row["steps"]["purge-trash"]["status"] == "pending"

    # The path a writing command would take under --read-only: even a bug cannot write.
    args = build_parser().parse_args(["--db", academy_url, "--read-only", "override",
                                      "gel-aaf", "--reason", "essai"])
    _settings, database = open_database_from_args(args, Access.READ_WRITE)
    assert database.read_only
    try:
        with pytest.raises(DBAPIError) as refused, database.engine.connect() as connection:
            connection.execute(text("UPDATE projects SET name = 'Renommé'"))
        assert READ_ONLY_REFUSAL.search(str(refused.value.orig))
        with pytest.raises(DBAPIError) as refused, database.session() as session:
            session.add(Project(code="ESSAI", name="Projet d'essai"))
        assert READ_ONLY_REFUSAL.search(str(refused.value.orig))
    finally:
        database.dispose()
    assert project_count(academy_url) == 1


def test_read_only_commands_leave_the_sqlite_file_unchanged(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'y.db'}"
    make_academy(url, tmp_path / "storage").database.dispose()
    before = (tmp_path / "y.db").read_bytes()
    common = ["--db", url, "--storage", str(tmp_path / "storage")]
    for argv in (["status"], ["rejects"], ["verify"], ["plan"], ["engine-status"],
                 ["school-life-check"], ["--read-only", "dry-run", "--at", "2026-07-08"]):
        status, _out, err = run(capsys, *common, *argv)
        assert status in (0, 1) and "Traceback" not in err, (argv, err)
    assert (tmp_path / "y.db").read_bytes() == before
    status, out, _err = run(capsys, *common, "--read-only", "dry-run", "--at", "2026-07-08")
    assert status == 0 and "Rapport non conservé (mode consultation)" in out


def test_read_only_refuses_engine_requests_before_opening(
        academy_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for action in ("dry-run", "pause"):
        status, _out, err = run(capsys, "--db", academy_url, "--read-only", "engine-request",
                                action)
        assert status == 2 and "Mode consultation" in err and "--read-only dry-run" in err
    database = open_existing_database(academy_url, Access.READ_ONLY)
    try:
        with database.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM engine_requests")).scalar() == 0
    finally:
        database.dispose()


def test_a_rollback_only_connection_refuses_to_commit(academy_url: str) -> None:
    database = open_existing_database(academy_url, Access.ROLLBACK_ONLY)
    try:
        with pytest.raises(DatabaseError) as refused, database.session() as session:
            session.add(Project(code="ESSAI", name="Projet d'essai"))
            session.flush()  # the write itself is allowed, inside the transaction
        assert refused.value.code == "BASE-ECRITURE-INTERDITE"
    finally:
        database.dispose()
    assert project_count(academy_url) == 1


def test_read_only_sees_what_a_live_writer_left_in_the_wal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "y.db"
    make_academy(f"sqlite:///{path}", tmp_path / "storage").database.dispose()
    writer = sqlite3.connect(path)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")  # keep the change in the -wal file
        writer.execute("UPDATE establishments SET name = 'Collège renommé'")
        writer.commit()
        assert Path(f"{path}-wal").stat().st_size > 0
        status, out, _err = run(capsys, "--db", f"sqlite:///{path}", "--read-only", "status")
        assert status == 0 and "Collège renommé" in out
    finally:
        writer.close()


def test_read_only_commands_beside_a_running_engine(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from yearchange_tui.scheduling.spawn import spawn_engine, wait_for_engine

    url = f"sqlite:///{tmp_path / 'y.db'}"
    storage = tmp_path / "storage"
    make_academy(url, storage).database.dispose()
    database = open_existing_database(url, Access.READ_ONLY)
    process = spawn_engine(url, storage, log_file=tmp_path / "engine.log",
                           extra_args=("--poll", "0.2"))
    try:
        assert wait_for_engine(database, process, 60)
        common = ["--db", url, "--storage", str(storage), "--read-only"]
        status, out, _err = run(capsys, *common, "engine-status")
        assert status == 0 and "Moteur actif" in out
        status, out, _err = run(capsys, *common, "status")
        assert status == 0 and len(out.splitlines()) == 3  # title, header, one establishment
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        database.dispose()


def test_the_engine_creates_a_new_database_on_first_start_and_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from yearchange_tui.scheduling.lease import read_lease

    url = f"sqlite:///{tmp_path / 'neuve' / 'yearchange.db'}"
    status, out, err = run(capsys, "--db", url, "--storage", str(tmp_path / "storage"),
                           "engine", "--detach", "--log-file", str(tmp_path / "engine.log"))
    database = open_existing_database(url, Access.READ_ONLY)
    lease = None
    try:
        lease = read_lease(database)
        assert status == 0 and "Moteur démarré en arrière-plan" in out
        assert [line for line in err.splitlines() if "Création de la base de données" in line
                ] == [f"… Création de la base de données {url} (schéma {head_revision()})."]
    finally:
        if lease is not None and lease.pid:
            os.kill(lease.pid, signal.SIGTERM)
            for _ in range(300):  # wait for the lease to be released (clean stop)
                info = read_lease(database)
                if info is not None and not info.held:
                    break
                time.sleep(0.1)
        database.dispose()


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder another account can read but not write (the tests run as root)."""
    folder = Path(tempfile.mkdtemp(prefix="yc-ro-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0
                    or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to read as another account")
def test_a_read_only_account_in_a_folder_it_cannot_write(shared_folder: Path) -> None:
    path = shared_folder / "y.db"
    make_academy(f"sqlite:///{path}", shared_folder / "storage").database.dispose()
    shared_folder.chmod(0o755)
    path.chmod(0o644)
    home = shared_folder / "home"
    home.mkdir(mode=0o777)
    command_line = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    sys.executable, "-m", "yearchange_tui", "--db", f"sqlite:///{path}",
                    "--read-only", "status"]
    environment = {**os.environ, "HOME": str(home), "YEARCHANGE_DATA_DIR": str(home),
                   "YEARCHANGE_CONFIG": str(home / "config.toml"),
                   "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    # No engine holds the database open: SQLite cannot create the -shm file it reads
    # a WAL database through, and the operator is told what to do.
    alone = subprocess.run(command_line, capture_output=True, text=True, env=environment,
                           check=False)
    assert alone.returncode == 2 and "[BASE-INACCESSIBLE]" in alone.stderr
    assert "pendant que le moteur tourne" in alone.stderr
    assert sorted(p.name for p in shared_folder.iterdir()) == ["home", "storage", "y.db"]
    # While a writer (the engine) holds it open, its -shm file exists and reading works.
    writer = sqlite3.connect(path)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("UPDATE establishments SET name = 'Collège partagé'")
        writer.commit()
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").chmod(0o644)
        beside = subprocess.run(command_line, capture_output=True, text=True, env=environment,
                                check=False)
        assert beside.returncode == 0, beside.stderr
        assert "Collège partagé" in beside.stdout
    finally:
        writer.close()
