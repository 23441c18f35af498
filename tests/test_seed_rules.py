"""Seed rules closed by issue #13's leftovers, each proved through the real commands.

- checklist row 125 (§6.4): account-deactivation notices, suspended for students and
  parents while the project says so (mid-September at most);
- checklist row 20 and issue #15 (§3.3): each establishment's AAF rejects published to its
  own admins (``rejects --publish``);
- the AAF-GROUPE-N-1-PROBABLE warning through a real import of a real-format delivery.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from yearchange_tui.changeover.notices import DEACTIVATION_SUBJECT
from yearchange_tui.cli.main import main
from yearchange_tui.ent import base
from yearchange_tui.ent.database import open_database
from yearchange_tui.ent.models import (
    Message,
    MessageAttachment,
    MessageCopy,
    Person,
    StoredFile,
)
from yearchange_tui.workflow.models import AuditEntry

ROOT = Path(__file__).resolve().parents[1]
DELIVERY = ROOT / "sample_data" / "aaf" / "livraison"
HEADER = ('<?xml version="1.0" encoding="UTF-8"?>\n'
          '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n<ficAlimMENESR>\n')


@pytest.fixture
def options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    found = ["--db", f"sqlite:///{tmp_path / 'yearchange.db'}", "--storage",
             str(tmp_path / "storage")]
    assert main([*found, "db", "upgrade"]) == 0
    capsys.readouterr()
    return found


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def pin(monkeypatch: pytest.MonkeyPatch, moment: list[dt.datetime]) -> None:
    monkeypatch.setattr(base, "clock", lambda: moment[0])


def delete_delta(tmp_path: Path, name: str, *identifiers: str) -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(
        "<deleteRequest><operationalAttributes><attr name=\"categoriePersonne\">"
        "<value>Eleve</value></attr></operationalAttributes>"
        f"<identifier><id>{identifier}</id></identifier></deleteRequest>\n"
        for identifier in identifiers) + "</ficAlimMENESR>\n", encoding="utf-8")
    return path


def notices_to(options: list[str], jointure: str) -> list[str]:
    database = open_database(options[1])
    try:
        with database.session() as session:
            return list(session.scalars(select(Message.body).join(
                MessageCopy, MessageCopy.message_id == Message.id).join(
                Person, Person.id == MessageCopy.owner_id).where(
                Person.aaf_jointure == jointure, Message.subject == DEACTIVATION_SUBJECT)))
    finally:
        database.dispose()


def test_deactivation_notices_are_sent_and_suspended_for_students_and_parents(
        options: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed checklist row 125 (§6.4): « Il est possible à la demande des équipes projets de
    suspendre la notification de désactivation des comptes aux élèves et parents durant une
    période définie (jusqu'à mi-septembre au plus tard) ». A person an AAF delivery
    deactivates is told once; while the project's suspension runs the notice waits, and
    goes out after it to those still deactivated."""
    moment = [dt.datetime(2026, 8, 20, 8, 0, tzinfo=dt.UTC)]
    pin(monkeypatch, moment)
    status, out, err = run(capsys, *options, "import-aaf",
                           *map(str, sorted(DELIVERY.glob("*_Complet_*.xml"))), "--json")
    assert status == 0, err
    assert json.loads(out)["deactivation_notices"] == []
    assert run(capsys, *options, "project", "set", "--suspension-notifications",
               "2026-09-10")[0] == 0

    # A delete during the suspension: the student's notice waits.
    delta = delete_delta(tmp_path, "ENT_99_Delta_20260820_Eleve_0000.xml", "1000106")
    status, out, err = run(capsys, *options, "import-aaf", str(delta))
    assert status == 0, err
    assert ("0999001W : 0 notification(s) de désactivation envoyée(s), 1 suspendue(s) "
            "(élèves et parents) jusqu'au 10/09/2026") in out
    assert notices_to(options, "1000106") == []
    status, out, _ = run(capsys, *options, "notify", "deactivation", "--all")
    assert status == 0 and "1 suspendue(s)" in out and notices_to(options, "1000106") == []

    # After the suspension the notice goes out, once.
    moment[0] = dt.datetime(2026, 9, 11, 8, 0, tzinfo=dt.UTC)
    status, out, _ = run(capsys, *options, "notify", "deactivation", "--all")
    assert status == 0
    assert "✓ 0999001W : 1 notification(s) de désactivation envoyée(s)\n" in out
    [body] = notices_to(options, "1000106")
    assert "n'est plus transmis par l'annuaire académique depuis le 20 août 2026" in body
    assert "il a été désactivé" in body
    status, out, _ = run(capsys, *options, "notify", "deactivation", "--all")
    assert "0999001W : 0 notification(s)" in out and len(notices_to(options, "1000106")) == 1

    # Without a suspension, the import itself tells the person.
    assert run(capsys, *options, "project", "set", "--suspension-notifications",
               "aucune")[0] == 0
    delta = delete_delta(tmp_path, "ENT_99_Delta_20260911_Eleve_0000.xml", "1000104")
    status, out, err = run(capsys, *options, "import-aaf", str(delta), "--json")
    assert status == 0, err
    assert json.loads(out)["deactivation_notices"] == [
        "0999001W : 1 notification(s) de désactivation envoyée(s)"]
    assert len(notices_to(options, "1000104")) == 1
    database = open_database(options[1])
    with database.session() as session:
        audited = [json.loads(row) for row in session.scalars(select(AuditEntry.details).where(
            AuditEntry.action == "deactivation-notices").order_by(AuditEntry.id))]
    database.dispose()
    assert [(row["sent"], row["suspended"]) for row in audited] == [
        (0, 1), (0, 1), (1, 0), (1, 0)]


def test_each_establishment_reads_its_own_rejects_published_to_its_heads(
        options: list[str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed checklist row 20 (§3.3 « Sensibiliser les administrateurs à consulter les
    rejets sur leur portail ») and issue #15's « rejects --publish »: each establishment's
    rejects of an AAF import are written as a CSV (the one CSV writer) in its own space and
    sent to its heads like the sanctions CSV, audited; publishing again replaces, and says
    so. The sample delivery: 0999001W has 15 rejects and one head, 0999002X no head."""
    pin(monkeypatch, [dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)])
    status, _, err = run(capsys, *options, "import-aaf",
                         *map(str, sorted(DELIVERY.glob("*_Complet_*.xml"))))
    assert status == 0, err
    status, out, _ = run(capsys, *options, "rejects", "--uai", "0999001W", "--json")
    expected = json.loads(out)
    assert len(expected) == 15

    status, out, err = run(capsys, *options, "rejects", "--publish")
    assert status == 0, err
    relative = "0999001W/rejets/rejets-0999001W-import-1.csv"
    assert out.splitlines() == [
        "Rejets de l'import AAF n° 1 publiés pour 1 établissement(s) :",
        "  ✓ 0999001W : 15 rejet(s) (4 avertissement(s), 10 erreur(s), 1 information(s))",
        "    → 1 chef(s) d'établissement",
        f"    {relative}",
        "    0999001W/rejets/rejets-0999001W-import-1.html",
        "  ⊘ 0999002X : aucun chef d'établissement (profil direction) à qui publier",
        "    [REJETS-SANS-DIRECTION]"]
    assert max(len(line) for line in out.splitlines()) <= 80
    storage = Path(options[3])
    text = (storage / relative).read_bytes().decode("utf-8")
    assert text.startswith("\ufeffimport;uai;code;severite;fichier;ligne;identifiant;")
    assert sorted(line.split(";")[2] for line in text[1:].split("\r\n")[1:]
                  if line.startswith("1;0999001W;")) == sorted(row["code"] for row in expected)
    assert not (storage / "0999002X" / "rejets").exists()

    def published() -> list[tuple[str, int, str]]:
        database = open_database(options[1])
        try:
            with database.session() as session:
                return [tuple(row) for row in session.execute(
                    select(Person.aaf_jointure, Message.establishment_id, Message.subject)
                    .join(MessageCopy, MessageCopy.message_id == Message.id)
                    .join(Person, Person.id == MessageCopy.owner_id)
                    .where(Message.subject.like("[Import AAF]%")))]
        finally:
            database.dispose()

    [(head, _establishment, subject)] = published()
    assert subject == "[Import AAF] Rejets de l'import n° 1"

    # The printable HTML of the same rows is attached beside the CSV, escaped, in French.
    page = (storage / "0999001W/rejets/rejets-0999001W-import-1.html").read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<html lang="fr">' in page
    assert page.count("<tr><td>1</td><td>0999001W</td>") == 15
    assert "<th>Explication</th>" in page
    # Every explanation is there, escaped (« l'import » as « l&#x27;import »).
    assert all(f"<td>{html.escape(row['message'])}</td>" in page for row in expected)
    database = open_database(options[1])
    with database.session() as session:
        attached = sorted(session.scalars(select(StoredFile.relative_path).join(
            MessageAttachment, MessageAttachment.stored_file_id == StoredFile.id)))
    database.dispose()
    assert attached == sorted([relative, "0999001W/rejets/rejets-0999001W-import-1.html"])

    # Again: refused for that establishment, saying when (operator's zone) and how to
    # send again; nothing is sent twice.
    status, again, _ = run(capsys, *options, "rejects", "--publish", "--uai", "0999001W")
    assert status == 0
    assert "⊘ 0999001W : déjà publiés le 07/12/2026 à 10:00 ; --republier pour les" in again
    assert "[REJETS-DEJA-PUBLIES]" in again
    assert [row[0] for row in published()] == [head]

    # --republier sends again, replacing the earlier message and files, and says so.
    status, again, _ = run(capsys, *options, "rejects", "--publish", "--uai", "0999001W",
                           "--republier")
    assert status == 0
    assert "— remplace la publication précédente" in again
    assert [row[0] for row in published()] == [head]
    assert (storage / relative).read_bytes().decode("utf-8") == text
    database = open_database(options[1])
    with database.session() as session:
        audited = [json.loads(row) for row in session.scalars(select(AuditEntry.details).where(
            AuditEntry.action == "rejects-publish").order_by(AuditEntry.id))]
    database.dispose()
    assert [(row["uai"], row["rejects"], row["replaced"]) for row in audited] == [
        ("0999001W", 15, False), ("0999001W", 15, True)]


def test_rejects_html_writes_one_printable_page_per_establishment(
        options: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``rejects --html --uai U --output DIR``: the establishment's rejects as a printable,
    escaped French page, the same rows as the CSV; read-only, nothing published."""
    status, _, err = run(capsys, *options, "import-aaf",
                         *map(str, sorted(DELIVERY.glob("*_Complet_*.xml"))))
    assert status == 0, err
    status, out, _ = run(capsys, *options, "rejects", "--uai", "0999001W", "--csv")
    csv_lines = [line for line in out.lstrip("\ufeff").splitlines()[1:] if line]
    folder = tmp_path / "imprimer"
    status, out, err = run(capsys, *options, "rejects", "--html", "--uai", "0999001W",
                           "--output", str(folder))
    assert status == 0, err
    page_path = folder / "rejets-0999001W-import-1.html"
    assert out.splitlines() == [str(page_path)]
    page = page_path.read_text("utf-8")
    assert page.count("<tr><td>") == len(csv_lines) == 15
    assert "Rejets de l&#x27;import AAF n° 1 — 0999001W" in page
    assert sorted(page.split("<td>AAF-")[i + 1].split("<")[0] for i in range(15)) == \
        sorted(line.split(";")[2].removeprefix("AAF-") for line in csv_lines)
    status, _, err = run(capsys, *options, "rejects", "--html", "--output", str(folder),
                         "--code", "AAF-NAISSANCE-MANQUANTE")
    assert status == 2 and "--html" in err


def test_a_group_of_last_year_is_reported_through_the_real_step_4_import(
        options: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Issue #13 item 9 (year N-1 groups, AAF-GROUPE-N-1-PROBABLE) end to end: the sample
    delivery (real AAF format) is imported, steps 1 to 3 really run (step 3 keeps the
    group history and deletes the year's AAF groups), and the same Complet imported as
    step 4 brings LATIN back with last year's students: the import reports it, with its
    explanation and action, and nothing else as a year N-1 group."""
    complet = [str(path) for path in sorted(DELIVERY.glob("*_Complet_*.xml"))]
    status, _, err = run(capsys, *options, "import-aaf", *complet)
    assert status == 0, err
    status, out, _ = run(capsys, *options, "rejects", "--code", "AAF-GROUPE-N-1-PROBABLE",
                         "--json")
    assert status == 0 and json.loads(out) == []  # no history yet: nothing reported
    for step in ("1", "2", "3"):
        status, _, err = run(capsys, *options, "run", step, "--all", "--yes",
                             "--hors-fenetre", "--reason", "test de bout en bout")
        assert status == 0, err
    status, out, err = run(capsys, *options, "import-aaf", *complet)
    assert status == 0, err
    assert "étape 4 terminée pour : 0999001W, 0999002X" in out
    assert "AAF-GROUPE-N-1-PROBABLE 1" in out
    status, out, _ = run(capsys, *options, "rejects", "--code", "AAF-GROUPE-N-1-PROBABLE",
                         "--json")
    [found] = json.loads(out)
    assert (found["uai"], found["record_id"], found["severity"]) == (
        "0999002X", "LATIN", "avertissement")
    assert found["message"] == (
        "Le groupe « LATIN » (0999002X) ressemble à un groupe de l'année passée : même code "
        "qu'un groupe de l'année passée et 2 élève(s) sur 2 y étaient déjà.")
    assert found["action"].startswith("Vérifier dans STS-web que ce groupe n'a pas été "
                                      "conservé dans les choix de bascule")
