"""The AAF reader process: same import as inline, refusals and failures carried, no leftovers."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect
from template_support import copy_aaf_delivery

from yearchange_tui.aaf import importer as importer_module
from yearchange_tui.aaf import pipeline
from yearchange_tui.aaf.delivery import open_delivery
from yearchange_tui.aaf.importer import import_delivery
from yearchange_tui.aaf.parser import AafFileError
from yearchange_tui.aaf.prepare import Preparer
from yearchange_tui.ent.database import Database, open_database

ROOT = Path(__file__).resolve().parents[1]
DELIVERY = ROOT / "sample_data" / "aaf" / "livraison"
REFUSED = ROOT / "sample_data" / "aaf" / "refuses"
NOW = dt.datetime(2026, 8, 20, 9, 30, tzinfo=dt.UTC)

# Set when the import ends (wall clock), not from ``now``.
VOLATILE = {("aaf_imports", "finished_at"), ("import_reports", "finished_at"),
            ("step_units", "finished_at"), ("step_units", "started_at"),
            ("step_units", "updated_at")}


def dump(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (volatile columns left out), sorted."""
    # The console's change log is written by triggers with transaction ids and times: it
    # says that rows changed, not what they hold (compared here table by table).
    names = [n for n in inspect(database.engine).get_table_names()
             if n not in ("alembic_version", "console_changes")]
    found: dict[str, list[tuple[Any, ...]]] = {}
    with database.engine.connect() as connection:
        for name in names:
            result = connection.exec_driver_sql(f"SELECT * FROM {name}")
            keep = [i for i, column in enumerate(result.keys()) if (name, column) not in VOLATILE]
            found[name] = sorted((tuple(row[i] for i in keep) for row in result), key=repr)
    return found


def import_with(monkeypatch: pytest.MonkeyPatch, mode: str, url: str,
                paths: list[Path]) -> tuple[dict[str, Any], dict[str, list[tuple[Any, ...]]]]:
    monkeypatch.setenv(pipeline.READER_ENV, mode)
    database = open_database(url)
    try:
        result = import_delivery(database, paths, now=NOW).to_dict()
        return result, dump(database)
    finally:
        database.dispose()


def academy_delivery(target: Path, establishments: int = 1) -> Path:
    return copy_aaf_delivery(target, establishments, 5, 2025)


@pytest.mark.parametrize("which", ["documented", "academy"])
def test_the_reader_process_gives_exactly_the_inline_import(
        which: str, two_database_urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    paths = [DELIVERY] if which == "documented" else [academy_delivery(tmp_path / "aaf")]
    first, second = two_database_urls
    inline_result, inline_rows = import_with(monkeypatch, "inline", first, paths)
    process_result, process_rows = import_with(monkeypatch, "process", second, paths)
    assert process_result == inline_result
    assert inline_rows["aaf_rejects"], "the delivery has rejects to compare"
    assert all(row for row in inline_rows["aaf_rejects"])
    for name, rows in inline_rows.items():
        assert process_rows[name] == rows, name
    assert not multiprocessing.active_children()


def test_every_reject_keeps_its_raw_xml_through_the_reader_process(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import select

    from yearchange_tui.importing.models import AafReject

    monkeypatch.setenv(pipeline.READER_ENV, "process")
    database = open_database(database_url)
    try:
        import_delivery(database, [DELIVERY], now=NOW)
        with database.session() as session:
            rejects = list(session.scalars(select(AafReject)))
    finally:
        database.dispose()
    with_record = [r for r in rejects if r.line]
    assert with_record
    for reject in with_record:
        assert reject.raw_xml.lstrip().startswith("<"), (reject.code, reject.record_id)


def _student(identifier: str, extra: str = "") -> str:
    return ("<addRequest><operationalAttributes><attr name=\"categoriePersonne\"><value>Eleve"
            "</value></attr></operationalAttributes>"
            f"<identifier><id>{identifier}</id></identifier><attributes>"
            f"<attr name=\"ENTPersonJointure\"><value>{identifier}</value></attr>"
            f"<attr name=\"sn\"><value>NOM{extra}</value></attr>"
            "<attr name=\"givenName\"><value>Prenom</value></attr>"
            "</attributes></addRequest>\n")


# Broken after 300 good records: refused while reading (in a reader process), past what
# the prologue check reads.
_GOOD = "".join(_student(str(800000 + number)) for number in range(300))
BROKEN_LATER = {
    "malforme_Eleve_0000.xml": (_GOOD + _student("900002").replace(
        "</attributes>", "</attribute>"), "utf-8", "AAF-XML-MALFORME"),
    "entite_Eleve_0000.xml": (_GOOD + _student("900002", "&nbspx;"), "utf-8",
                              "AAF-ENTITE-INCONNUE"),
    "octets_Eleve_0000.xml": (_GOOD + _student("900002", "\u00e9"), "latin-1",
                              "AAF-ENCODAGE-INVALIDE"),
}


@pytest.mark.parametrize("bad", ["tronque_EtabEducNat_0000.xml", *sorted(BROKEN_LATER)])
def test_a_file_refused_in_the_reader_process_refuses_the_delivery(
        bad: str, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "livraison"
    shutil.copytree(DELIVERY, folder)
    if bad in BROKEN_LATER:
        body, codec, code = BROKEN_LATER[bad]
        (folder / bad).write_bytes(
            ('<?xml version="1.0" encoding="UTF-8"?>\n'
             '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n<ficAlimMENESR>\n'
             + body + "</ficAlimMENESR>\n").encode(codec))
        with open_delivery([folder / bad]):
            pass  # the start of the file is fine: the problem is found while reading
    else:
        shutil.copy(REFUSED / bad, folder / bad)
        code = "AAF-XML-MALFORME"
    errors = {}
    for mode in ("inline", "process"):
        monkeypatch.setenv(pipeline.READER_ENV, mode)
        database = open_database(database_url)
        try:
            with pytest.raises(AafFileError) as caught:
                import_delivery(database, [folder], now=NOW)
            counts = {name: len(rows) for name, rows in dump(database).items()
                      if name.startswith("aaf_") or name == "people"}
        finally:
            database.dispose()
        errors[mode] = (caught.value.code, caught.value.file, caught.value.line,
                        caught.value.message)
        assert not any(counts.values()), (mode, counts)  # nothing written
    assert errors["process"] == errors["inline"]
    assert errors["process"][0] == code and errors["process"][1].endswith(bad)
    assert errors["process"][2] and errors["process"][2] > 3
    assert not multiprocessing.active_children()


def test_the_reader_process_stops_when_the_import_fails(
        database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    delivery = academy_delivery(tmp_path / "aaf")
    monkeypatch.setenv(pipeline.READER_ENV, "process")
    calls = 0
    original = importer_module._Importer._flush

    def failing_flush(self: Any, kind: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("panne d'écriture")
        original(self, kind)

    monkeypatch.setattr(importer_module._Importer, "_flush", failing_flush)
    threads = threading.active_count()
    database = open_database(database_url)
    try:
        with pytest.raises(RuntimeError, match="panne d'écriture"):
            import_delivery(database, [delivery], now=NOW)
        assert not any(rows for name, rows in dump(database).items() if name == "people")
    finally:
        database.dispose()
    assert not multiprocessing.active_children()
    assert threading.active_count() == threads


def test_a_failure_in_the_reader_process_is_raised_in_the_import(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pipeline.READER_ENV, "process")

    def broken(self: Preparer, raw: Any, kind: str) -> Any:
        raise ValueError("normalisation cassée")

    monkeypatch.setattr(Preparer, "prepare", broken)  # inherited by the forked child
    database = open_database(database_url)
    try:
        with pytest.raises(ValueError, match="normalisation cassée") as caught:
            import_delivery(database, [DELIVERY], now=NOW)
    finally:
        database.dispose()
    assert any("processus de lecture" in note for note in caught.value.__notes__)
    assert not multiprocessing.active_children()


def test_how_records_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pipeline.READER_ENV, raising=False)
    monkeypatch.setattr(pipeline, "_cpus", lambda: pipeline.MIN_CPUS)
    assert pipeline.reader_method(10_000) is None  # small: inline
    assert pipeline.reader_method(50 * 1024 * 1024) == "fork"
    monkeypatch.setattr(pipeline, "_cpus", lambda: pipeline.MIN_CPUS - 1)
    assert pipeline.reader_method(50 * 1024 * 1024) is None  # no processor to spare
    monkeypatch.setattr(pipeline, "_cpus", lambda: pipeline.MIN_CPUS)
    monkeypatch.setenv(pipeline.READER_ENV, "inline")
    assert pipeline.reader_method(50 * 1024 * 1024) is None
    monkeypatch.setenv(pipeline.READER_ENV, "process")
    assert pipeline.reader_method(10_000) == "fork"
    # Never a fork of a multi-threaded process.
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert pipeline.reader_method(10_000) == "forkserver"
    finally:
        stop.set()
        thread.join()


def test_a_multi_threaded_caller_reads_through_a_fork_server(
        two_database_urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = two_database_urls
    inline_result, inline_rows = import_with(monkeypatch, "inline", first, [DELIVERY])
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)  # as in the console: never fork with threads
    thread.start()
    try:
        monkeypatch.setenv(pipeline.READER_ENV, "process")
        assert pipeline.reader_method(10_000) == "forkserver"
        process_result, process_rows = import_with(monkeypatch, "process", second, [DELIVERY])
    finally:
        stop.set()
        thread.join()
    assert process_result == inline_result
    assert process_rows == inline_rows
