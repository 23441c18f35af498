"""The AAF commands as a user types them: import-aaf, rejects, run init-directory, access-block."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from template_support import copy_sample

from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import open_database
from yearchange_tui.ent.models import Person

ROOT = Path(__file__).resolve().parents[1]
REFUSED = ROOT / "sample_data" / "aaf" / "refuses"
DELIVERY = ROOT / "sample_data" / "aaf" / "livraison"


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_sample(tmp_path_factory.mktemp("academie"), 2, 7, 2025)


@pytest.fixture
def work(sample_dir: Path, tmp_path: Path) -> tuple[list[str], Path]:
    """A private copy of the sample database; global options for it."""
    (tmp_path / "yearchange.db").write_bytes((sample_dir / "yearchange.db").read_bytes())
    return ["--db", f"sqlite:///{tmp_path / 'yearchange.db'}", "--storage",
            str(sample_dir / "storage")], tmp_path


def steps_1_to_3_done(options: list[str]) -> None:
    from yearchange_tui.ent.models import Establishment
    from yearchange_tui.workflow.models import Step
    from yearchange_tui.workflow.units import current_school_year, finish_unit, get_unit

    database = open_database(options[1])
    with database.session() as session:
        year = current_school_year(session)
        for establishment in session.scalars(select(Establishment)):
            for step in (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE):
                finish_unit(get_unit(session, establishment.id, year.id, step), {})
    database.dispose()


def people(options: list[str]) -> int:
    database = open_database(options[1])
    with database.session() as session:
        count = session.scalar(select(func.count()).select_from(Person))
    database.dispose()
    return count


def test_import_then_rejects_as_a_user(work, sample_dir: Path, capsys) -> None:
    options, _ = work
    steps_1_to_3_done(options)
    assert main([*options, "import-aaf", str(sample_dir / "aaf")]) == 0
    out = capsys.readouterr().out
    summary = json.loads((sample_dir / "sample.json").read_text(encoding="utf-8"))
    for establishment in summary["establishments"]:
        assert f"{establishment['uai']}" in out
    assert "étape 4, initialisation 2026-2027" in out
    assert "AAF-NAISSANCE-MANQUANTE 1" in out

    assert main([*options, "rejects"]) == 0
    out = capsys.readouterr().out
    # 10 as before, and the 8 relatives only refused students cite (one rule for relatives).
    assert "18 rejet(s)" in out and "→ Vérifier la saisie de l'INE dans SIECLE" in out

    assert main([*options, "rejects", "--code", "AAF-INE-PARTAGE", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out.lstrip("\ufeff")),
                               delimiter=";"))
    assert len(rows) == 2 and {row["code"] for row in rows} == {"AAF-INE-PARTAGE"}
    assert all(row["ligne"] and row["fichier"].endswith(".xml") for row in rows)

    uai = summary["establishments"][0]["uai"]
    assert main([*options, "rejects", "--uai", uai, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data and {row["uai"] for row in data} == {uai}
    assert all("raw_xml" in row for row in data)

    assert main([*options, "rejects", "--code", "AAF-INEXISTANT"]) == 2
    assert "Code de rejet inconnu" in capsys.readouterr().err
    assert main([*options, "rejects", "--codes"]) == 0
    assert "AAF-CLASSE-N-1-PROBABLE" in capsys.readouterr().out


def test_run_init_directory_through_the_run_command(work, sample_dir: Path, capsys) -> None:
    options, _ = work
    assert main([*options, "import-aaf", str(sample_dir / "aaf"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["step4"] == []  # before the change-over
    steps_1_to_3_done(options)
    assert main([*options, "run", "init-directory", "--all"]) == 0
    out = capsys.readouterr().out
    assert out.count("✓ terminé") == 2 and "classe(s) créée(s)" in out
    assert main([*options, "run", "init-directory", "--all"]) == 0
    assert capsys.readouterr().out.count("déjà terminé") == 2


@pytest.mark.parametrize("name", ["entites_internes_Eleve_0000.xml", "tronque_EtabEducNat_0000.xml",
                                  "type_incoherent_PersRelEleve_0000.xml"])
def test_refused_file_exit_2_and_nothing_changes(work, capsys, name: str) -> None:
    options, _ = work
    before = people(options)
    assert main([*options, "import-aaf", str(REFUSED / name)]) == 2
    err = capsys.readouterr().err
    assert "livraison refusée, rien n'a été importé" in err and "[AAF-" in err
    assert name in err and "Action :" in err
    assert people(options) == before


def test_guard_refusal_exit_1(work, sample_dir: Path, capsys) -> None:
    options, _ = work
    from yearchange_tui.ent.models import Establishment
    from yearchange_tui.workflow.models import Step
    from yearchange_tui.workflow.units import current_school_year, finish_unit, get_unit

    database = open_database(options[1])
    with database.session() as session:
        year = current_school_year(session)
        establishment = session.scalars(select(Establishment)).first()
        finish_unit(get_unit(session, establishment.id, year.id, Step.ARCHIVE), {})
    database.dispose()
    before = people(options)
    assert main([*options, "import-aaf", str(sample_dir / "aaf")]) == 1
    assert "[gel-aaf]" in capsys.readouterr().err
    assert people(options) == before


def test_read_only_refuses_import_but_allows_dry_run(work, capsys) -> None:
    options, _ = work
    assert main([*options, "--read-only", "import-aaf", str(DELIVERY)]) == 2
    assert "Mode consultation" in capsys.readouterr().err
    before = people(options)
    assert main([*options, "--read-only", "import-aaf", str(DELIVERY), "--dry-run"]) == 0
    assert "à blanc" in capsys.readouterr().out
    assert people(options) == before


def test_access_block_command(work, capsys) -> None:
    options, _ = work
    database = open_database(options[1])
    with database.session() as session:
        login = session.scalar(select(Person.login).where(Person.kind == "student").limit(1))
    database.dispose()
    assert main([*options, "access-block", "--login", login, "--at", "2026-08-25"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("⊘ bloqué le 25/08/2026") and "indisponible" in out
    assert main([*options, "access-block", "--login", login, "--at", "2026-09-03"]) == 0
    assert capsys.readouterr().out.startswith("✓ accès ouvert")
    assert main([*options, "access-block", "--login", "personne", "--at", "2026-09-03"]) == 2
