"""The timetable and step-5 commands as an operator types them, and the sample académie."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from timetable_support import KEY, PARTNER, REFERENCE, SAMPLES, UAI, build_directory

from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import open_database
from yearchange_tui.timetable.rules import RULES

CLEAR = SAMPLES / "edt" / f"Edt_To_{PARTNER}_{UAI}_Enclair.xml"
SEALED = SAMPLES / "edt" / f"Edt_To_{PARTNER}_{UAI}_EDT2020.xml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_import_timetable_as_an_operator(database_url: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    database = open_database(database_url)
    build_directory(database)
    database.dispose()
    db = ["--db", database_url, "--storage", str(tmp_path / "storage")]

    status, out, _err = run(capsys, *db, "import-timetable", str(CLEAR), "--uai", UAI,
                            "--version", "2020")
    assert status == 0
    assert "version   : EDT 2020, déclarée — ✓ supportée" in out
    assert out.index("version   :") < out.index("Import d'emploi du temps n°")
    assert "EDT-CLASSE-INCONNUE ×1" in out and "aucune classe n'a été créée" in out
    reject_import = int(out.split("yearchange rejects --import ")[1].split()[0])
    status, out, _err = run(capsys, *db, "rejects", "--import", str(reject_import))
    assert status == 0 and "EDT-ENSEIGNANT-INCONNU" in out and "INCONNU Paul" in out

    status, out, err = run(capsys, *db, "import-timetable", str(SEALED), "--uai", UAI)
    assert status == 2 and "LOGICIEL  : EDT Monoposte-EDT 2020 - 1.0.0" in out
    assert "EDT-CLE-PARTENAIRE-ABSENTE" in err and "rien n'a été importé" in err
    status, out, _err = run(capsys, *db, "import-timetable", str(SEALED), "--uai", UAI,
                            "--key", str(KEY), "--partner", PARTNER, "--json")
    result = json.loads(out)
    assert status == 0 and result["replaced"]["cours"] == 9
    assert result["inspection"]["verdict"]["outcome"] == "supportee"
    assert result["inspection"]["verdict"]["source"] == "fichier"

    status, _out, err = run(capsys, *db, "edt-key", "--partner", PARTNER, "--key", str(KEY))
    assert status == 0 and "enregistrée pour le projet ENT-TEST" in err
    status, out, _err = run(capsys, *db, "edt-key")
    assert status == 0 and f"partenaire « {PARTNER} »" in out
    status, out, _err = run(capsys, *db, "import-timetable", str(SEALED), "--uai", UAI,
                            "--dry-run")
    assert status == 0 and "clé du projet" in out and "Import à blanc" in out

    status, _out, err = run(capsys, *db, "import-timetable",
                            str(SAMPLES / "refuses" / "entites_internes.xml"), "--uai", UAI)
    assert status == 2 and "[EDT-DTD-INTERDITE] entites_internes.xml, ligne 2" in err
    status, out, _err = run(capsys, *db, "import-timetable",
                            str(SAMPLES / "refuses" / "tronque.xml"), "--uai", UAI, "--json")
    assert status == 2 and json.loads(out)["code"] == "EDT-XML-MALFORME"
    status, _out, err = run(capsys, *db, "--read-only", "import-timetable", str(CLEAR),
                            "--uai", UAI)
    assert status == 2 and "consultation" in err

    status, out, _err = run(capsys, *db, "school-life-check", "--uai", UAI)
    assert status == 1 and "✗ Périodes absentes" in out
    status, out, _err = run(capsys, *db, "school-life-init", "--uai", UAI, "--periods",
                            "semestres")
    assert status == 0 and "1er semestre   02/09/2026 → 31/01/2027" in out
    status, out, _err = run(capsys, *db, "school-life-check", "--json")
    (check,) = json.loads(out)
    assert status == 0 and check["ready"]
    assert {item["code"] for item in check["missing"]} == {"professeurs-principaux",
                                                           "rejets-emploi-du-temps"}


def test_guard_refusal_exits_with_1(database_url: str, capsys: pytest.CaptureFixture[str]
                                    ) -> None:
    database = open_database(database_url)
    build_directory(database, steps_done=())
    database.dispose()
    status, _out, err = run(capsys, "--db", database_url, "import-timetable", str(CLEAR),
                            "--uai", UAI, "--version", "2020")
    assert status == 1 and "[ordre-des-etapes]" in err and "dérogation" in err


def test_rules_and_policy_are_listed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, _err = run(capsys, "--db", f"sqlite:///{tmp_path / 'y.db'}",
                            "timetable-rules", "--json")
    listed = json.loads(out)
    assert status == 0 and [rule["code"] for rule in listed["codes"]] == list(RULES)
    assert {"version": "EDT 2018", "sans_activation": "non-supportee",
            "avec_activation": "non-supportee"} in listed["policy"]


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="échantillons de référence absents")
def test_reference_encrypted_export_shows_its_header_before_any_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'y.db'}")
    build_directory(database)
    database.dispose()
    path = REFERENCE / "laclasse-com_service-cahiertextes" / "Edt_To_LaclasseCom_0134567A.xml"
    status, out, err = run(capsys, "--db", f"sqlite:///{tmp_path / 'y.db'}",
                           "import-timetable", str(path), "--uai", "0134567A")
    assert status == 2
    assert "LOGICIEL  : PRONOTE Monoposte-PRONOTE 2013 - 0.5.14" in out
    assert "VERSION   : 1.0" in out and "partenaires : INDEXEDUCATION, LaclasseCom" in out
    # Its header already says PRONOTE 2013: refused on it, no key asked for.
    assert "[EDT-VERSION-TROP-ANCIENNE]" in err


def test_the_timetable_package_never_imports_textual() -> None:
    code = ("import sys, yearchange_tui.cli.timetable, yearchange_tui.timetable.school_life, "
            "yearchange_tui.timetable.drop, yearchange_tui.timetable.importer; "
            "assert 'textual' not in sys.modules, 'textual importé'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sample_academie_steps_1_to_5(tmp_path: Path) -> None:
    """The sample académie as a user runs it (SQLite): AAF step 4, each timetable, step 5."""
    from yearchange_tui.changeover.runner import ChangeoverRunner
    from yearchange_tui.changeover.steps.init_directory import import_aaf_delivery
    from yearchange_tui.changeover.steps.init_school_life import run_init_school_life
    from yearchange_tui.ent.models import Establishment
    from yearchange_tui.importing.models import AafReject
    from yearchange_tui.sample.aaf_writer import write_aaf_delivery
    from yearchange_tui.sample.fill import fill_database
    from yearchange_tui.sample.roster import build_academy
    from yearchange_tui.sample.timetable_writer import write_timetables
    from yearchange_tui.timetable.importer import import_timetable
    from yearchange_tui.workflow.models import Step
    from yearchange_tui.workflow.units import current_school_year, finish_unit, get_unit

    academy = build_academy(2, seed=7, year=2025)
    database = open_database(f"sqlite:///{tmp_path / 'y.db'}")
    with database.engine.begin() as connection:
        fill_database(connection, tmp_path / "storage", academy)
    write_aaf_delivery(academy, tmp_path / "aaf")
    files = write_timetables(academy, tmp_path / "timetables")
    with database.session() as session:
        year = current_school_year(session)
        for establishment in session.scalars(select(Establishment)):
            for step in (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE):
                finish_unit(get_unit(session, establishment.id, year.id, step), {})
    # import-aaf after step 3: the import is step 4 of each establishment.
    import_aaf_delivery(ChangeoverRunner(database, tmp_path / "storage"), [tmp_path / "aaf"])
    ids = {}
    for sample in academy.establishments:
        export = next(p for p in files if sample.uai in p.name and not p.name.startswith("sts"))
        result = import_timetable(database, export, sample.uai,
                                  declared_version="26" if export.suffix == ".zip" else "2020")
        _teacher, stale = sample.anomalies["teacher_in_old_class"].split("$")
        with database.session() as session:
            found = {(row.code, row.record_id) for row in session.scalars(select(AafReject).where(
                AafReject.import_id == result.reject_import_id))}
            ids[sample.uai] = session.scalar(select(Establishment.id).where(
                Establishment.uai == sample.uai))
        assert ("EDT-CLASSE-INCONNUE", stale) in found
        assert {code for code, _record in found} == {"EDT-CLASSE-INCONNUE", "EDT-ELEVE-INCONNU"}
        assert result.rejects_by_code["EDT-ELEVE-INCONNU"] == 2  # the two refused by the AAF
        assert result.created["cours"] > 400 and result.created["groupes"] > 0
    # The project chose « valeurs par défaut » for step 5 of both establishments.
    with database.session() as session:
        for establishment in session.scalars(select(Establishment)):
            establishment.school_life_defaults = True
    report = run_init_school_life(database, list(ids.values()))
    assert report.ok and sorted(report.done) == sorted(ids)
    database.dispose()
