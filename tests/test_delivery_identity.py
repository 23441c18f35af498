"""A delivery knows itself, and leaves nothing behind.

- An AAF delivery already imported (same files, same SHA-256 each) is answered
  « Livraison déjà importée le … » with a stable code, exit status 0 and nothing changed
  (no second import entry), on every path (``import-aaf``, the engine's import request the
  console sends); ``--reimport`` imports it again and is audited (issue #14, finding 14).
- The temporary extraction folder of an archive is removed when ``import-aaf`` is stopped
  by SIGTERM or SIGHUP; one left by ``kill -9`` is removed by the next import, and a live
  import's folder never is (issue #14, finding 12). These run the real command in a
  subprocess with its own ``TMPDIR``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import Person
from yearchange_tui.importing.identity import CODE_ALREADY_IMPORTED
from yearchange_tui.importing.models import AafImport, AafImportFile
from yearchange_tui.importing.outcome import ImportStatus
from yearchange_tui.scheduling.api import RequestAction
from yearchange_tui.scheduling.import_requests import import_status
from yearchange_tui.scheduling.imports import run_import_request
from yearchange_tui.scheduling.models import RequestStatus
from yearchange_tui.workflow.localtime import format_local
from yearchange_tui.workflow.models import AuditEntry

ROOT = Path(__file__).resolve().parents[1]
DELIVERY = ROOT / "sample_data" / "aaf" / "livraison"


def _xml_files() -> list[Path]:
    return sorted(DELIVERY.glob("*.xml"))


def _zip_of_delivery(target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in _xml_files():
            bundle.write(path, f"livraison/{path.name}")
    return target


# --- finding 14: a delivery already imported ------------------------------------------


@pytest.fixture
def options(database_url: str, tmp_path: Path) -> list[str]:
    open_database(database_url).dispose()  # an empty, up-to-date database
    return ["--db", database_url, "--storage", str(tmp_path / "storage")]


def _state(url: str) -> tuple[int, int, list[tuple[int, str, str]]]:
    """Import entries, people, and the import files (import, name, SHA-256)."""
    database = open_database(url)
    try:
        with database.session() as session:
            imports = session.scalar(select(func.count()).select_from(AafImport))
            people = session.scalar(select(func.count()).select_from(Person))
            files = [tuple(row) for row in session.execute(
                select(AafImportFile.import_id, AafImportFile.name, AafImportFile.sha256)
                .order_by(AafImportFile.import_id, AafImportFile.position))]
    finally:
        database.dispose()
    return imports, people, files  # type: ignore[return-value]


def _audit(url: str, action: str) -> list[tuple[str, dict]]:
    database = open_database(url)
    try:
        with database.session() as session:
            return [(entry.outcome, json.loads(entry.details)) for entry in session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))]
    finally:
        database.dispose()


def test_the_same_delivery_again_is_answered_and_changes_nothing(options, capsys) -> None:
    url = options[1]
    assert main([*options, "import-aaf", str(DELIVERY)]) == 0
    capsys.readouterr()
    imports, people, files = _state(url)
    assert imports == 1 and people > 0
    # Each file's SHA-256 is stored with the import: the very bytes of the file.
    assert {name: sha for _, name, sha in files} == {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in _xml_files()}

    assert main([*options, "import-aaf", str(DELIVERY)]) == 0  # nothing to do
    out = capsys.readouterr().out
    database = open_database(url)
    with database.session() as session:
        first = session.scalar(select(AafImport))
        when = format_local(first.finished_at, "%d/%m/%Y à %H:%M")  # the operator's zone
    database.dispose()
    assert f"Livraison déjà importée le {when}" in out
    assert CODE_ALREADY_IMPORTED in out and "--reimport" in out
    assert _state(url) == (imports, people, files)  # no second import entry, no change
    assert _audit(url, "import-aaf")[-1][0] == "already-imported"


def test_recognised_however_it_is_packaged_and_in_json(options, tmp_path, capsys) -> None:
    url = options[1]
    assert main([*options, "import-aaf", str(DELIVERY)]) == 0
    capsys.readouterr()
    before = _state(url)
    archive = _zip_of_delivery(tmp_path / "livraison-renommee.zip")
    assert main([*options, "import-aaf", "--json", str(archive)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["already_imported"] is True and answer["code"] == CODE_ALREADY_IMPORTED
    assert answer["import_id"] == before[2][0][0]
    assert answer["message"].startswith("Livraison déjà importée le ")
    # A dry run says the same: nothing would be done.
    assert main([*options, "import-aaf", "--dry-run", *map(str, _xml_files())]) == 0
    assert "Livraison déjà importée le " in capsys.readouterr().out
    assert _state(url) == before


def test_reimport_imports_again_and_is_audited(options, capsys) -> None:
    url = options[1]
    assert main([*options, "import-aaf", str(DELIVERY)]) == 0
    _imports, people, files = _state(url)
    assert main([*options, "import-aaf", "--reimport", str(DELIVERY)]) == 0
    out = capsys.readouterr().out
    assert "réimport (--reimport) de la livraison de l'import n° 1" in out
    imports_after, people_after, files_after = _state(url)
    assert imports_after == 2 and people_after == people
    assert len(files_after) == 2 * len(files)
    outcome, details = _audit(url, "import-aaf")[-1]
    assert outcome == "done" and details["reimport_of"] == 1 and details["import_id"] == 2


def test_a_changed_file_is_a_new_delivery(options, tmp_path, capsys) -> None:
    url = options[1]
    assert main([*options, "import-aaf", str(DELIVERY)]) == 0
    changed = tmp_path / "changed"
    changed.mkdir()
    for path in _xml_files():
        data = path.read_bytes()
        if path.name.startswith("ENT_99_Delta_"):  # same name, same size, one byte changed
            changed_data = data.replace(b"-->\n\n", b"--> \n", 1)
            assert changed_data != data and len(changed_data) == len(data)
            data = changed_data
        (changed / path.name).write_bytes(data)
    capsys.readouterr()
    assert main([*options, "import-aaf", str(changed)]) == 0
    assert "déjà importée" not in capsys.readouterr().out
    assert _state(url)[0] == 2


def test_the_consoles_import_request_is_answered_without_effect(database_url, tmp_path) -> None:
    database: Database = open_database(database_url)
    try:
        params = {"path": str(DELIVERY)}
        first = run_import_request(database, tmp_path / "storage", RequestAction.IMPORT_AAF,
                                   params)
        assert first.status is ImportStatus.DONE
        again = run_import_request(database, tmp_path / "storage", RequestAction.IMPORT_AAF,
                                   params)
        assert again.status is ImportStatus.ALREADY_IMPORTED
        assert again.code == CODE_ALREADY_IMPORTED and again.import_id == first.import_id
        status, answer = import_status(again, 0, stopping=False)
        assert status is RequestStatus.NO_EFFECT
        assert answer.startswith("Livraison déjà importée le ")
        forced = run_import_request(database, tmp_path / "storage", RequestAction.IMPORT_AAF,
                                    {**params, "reimport": True})
        assert forced.status is ImportStatus.DONE and forced.details["reimport_of"] == first.import_id
        with database.session() as session:
            assert session.scalar(select(func.count()).select_from(AafImport)) == 2
    finally:
        database.dispose()


# --- finding 12: temporary folders on SIGTERM, SIGHUP, kill -9 --------------------------


def _scratch(tmpdir: Path) -> list[Path]:
    return sorted(path for path in tmpdir.glob("yearchange-aaf-*") if path.is_dir())


# ``yearchange`` as from a terminal: SIGTERM and SIGHUP with their default action, even if
# the test runner was started with them ignored (nohup), which a child would inherit.
LAUNCH = ("import runpy, signal, sys\n"
          "for signum in (signal.SIGTERM, signal.SIGHUP):\n"
          "    signal.signal(signum, signal.SIG_DFL)\n"
          "sys.argv = ['yearchange', *sys.argv[1:]]\n"
          "runpy.run_module('yearchange_tui', run_name='__main__')\n")


def _start_import(tmp_path: Path, *paths: Path) -> tuple[subprocess.Popen[bytes], Path]:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    url = f"sqlite:///{tmp_path / 'yearchange.db'}"
    open_database(url).dispose()  # an empty, up-to-date database
    command = [sys.executable, "-c", LAUNCH, "--db", url, "--storage",
               str(tmp_path / "storage"), "import-aaf", *map(str, paths)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    return process, tmpdir


def _stalled_import(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """``import-aaf`` of an archive plus a file still being delivered (a FIFO nobody writes
    yet): the archive is extracted, then the import waits on the last file."""
    archive = _zip_of_delivery(tmp_path / "livraison.zip")
    late = tmp_path / "ENT_99_Delta_20260820_PersEducNat_0000.xml"
    os.mkfifo(late)
    process, tmpdir = _start_import(tmp_path, archive, late)
    deadline = time.monotonic() + 120  # a guard against a hang, not a timing assertion
    # Polled until the archive's files are all in the folder (the import then waits on the
    # FIFO): the signal comes while the import is under way.
    while not _scratch(tmpdir) or \
            len(list(_scratch(tmpdir)[0].rglob("*.xml"))) < len(_xml_files()):
        if process.poll() is not None:
            _out, err = process.communicate()
            pytest.fail(f"import ended before its extraction folder appeared: {err.decode()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the extraction folder never appeared")
        time.sleep(0.05)
    return process, tmpdir


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stopped_import_leaves_no_temporary_folder(tmp_path: Path, signum: int) -> None:
    process, tmpdir = _stalled_import(tmp_path)
    folder = _scratch(tmpdir)[0]
    assert f"-{process.pid}-" in folder.name  # the owner is in the name
    process.send_signal(signum)
    process.communicate(timeout=120)
    assert process.returncode == -signum  # ended by the signal, as before
    assert _scratch(tmpdir) == []


def test_a_killed_imports_folder_goes_with_the_next_import_not_a_live_ones(
        tmp_path: Path) -> None:
    process, tmpdir = _stalled_import(tmp_path)
    process.kill()
    process.communicate(timeout=120)
    stale = _scratch(tmpdir)
    assert len(stale) == 1  # kill -9: nothing could clean up
    live = tmpdir / f"yearchange-aaf-{os.getpid()}-vivant"  # a running process's folder
    (live / "0-0").mkdir(parents=True)
    (live / "0-0" / "en-cours.xml").write_text("<ficAlimMENESR/>", encoding="utf-8")

    again, _ = _start_import(tmp_path, _zip_of_delivery(tmp_path / "encore.zip"))
    _out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err.decode()
    assert not stale[0].exists()
    assert (live / "0-0" / "en-cours.xml").exists()
    assert _scratch(tmpdir) == [live]


def test_an_import_stopped_inside_its_transaction_leaves_nothing(database_url: str,
                                                                 tmp_path: Path) -> None:
    """SIGTERM while the import waits inside its transaction (PostgreSQL: the test holds a
    lock on the import table): no folder left, nothing written."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a lock another session holds, waited for inside the import: PostgreSQL")
    from sqlalchemy import create_engine, text

    from yearchange_tui.ent.database import normalise_url
    from yearchange_tui.ent.models import SchoolYear

    open_database(database_url).dispose()
    locker = create_engine(normalise_url(database_url))
    watcher = create_engine(normalise_url(database_url), isolation_level="AUTOCOMMIT")
    holding = locker.connect()
    try:
        holding.begin()
        holding.execute(text("LOCK TABLE aaf_imports IN EXCLUSIVE MODE"))  # reads allowed
        tmpdir = tmp_path / "tmp"
        tmpdir.mkdir()
        command = [sys.executable, "-c", LAUNCH, "--db", database_url, "--storage",
                   str(tmp_path / "storage"), "import-aaf",
                   str(_zip_of_delivery(tmp_path / "livraison.zip"))]
        process = subprocess.Popen(command, env={**os.environ, "TMPDIR": str(tmpdir)},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120  # a guard against a hang, not a timing assertion
        with watcher.connect() as connection:
            while not connection.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'")):
                assert process.poll() is None, process.communicate()[1].decode()
                if time.monotonic() > deadline:
                    process.kill()
                    pytest.fail("the import never waited for the lock")
                time.sleep(0.05)
        assert len(_scratch(tmpdir)) == 1  # extracted, and waiting inside its transaction
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=120)
        assert process.returncode == -signal.SIGTERM
        assert _scratch(tmpdir) == []
    finally:
        holding.close()
        locker.dispose()
        watcher.dispose()
    database = open_database(database_url)
    try:
        with database.session() as session:  # its school year and import entry rolled back
            assert session.scalar(select(func.count()).select_from(AafImport)) == 0
            assert session.scalar(select(func.count()).select_from(SchoolYear)) == 0
    finally:
        database.dispose()
