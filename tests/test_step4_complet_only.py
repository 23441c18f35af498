"""Step 4 is the import of the « complet d'initialisation » of N+1 (seed §6.4), nothing else.

After steps 1–3, a Delta is refused for the establishments it would initialise: a French
reason with a stable code, the files and what to ask the rectorat for; nothing is written
for them, their step 4 is not marked done and the newest timetable versions are not
activated. The Complet then is their step 4.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select
from template_support import copy_aaf_delivery, copy_academy, copy_sample

from yearchange_tui.changeover.runner import ChangeoverRunner
from yearchange_tui.changeover.steps import RunOptions
from yearchange_tui.changeover.steps.init_directory import import_aaf_delivery
from yearchange_tui.cli.main import main
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import Establishment, Person, Project, SchoolClass, SchoolYear
from yearchange_tui.sample.roster import SampleAcademy, build_academy
from yearchange_tui.workflow.models import AuditEntry, Step, StepUnit, UnitStatus
from yearchange_tui.workflow.units import current_school_year, finish_unit, get_unit

CODE = "AAF-ETAPE4-COMPLET-REQUIS"
STEPS_1_TO_3 = (Step.PURGE_TRASH, Step.ARCHIVE, Step.DELETE_OBSOLETE)


@pytest.fixture
def academy_db(database_url: str, tmp_path: Path) -> tuple[Database, SampleAcademy, Path]:
    academy = build_academy(2, seed=7, year=2025)
    copy_academy(database_url, tmp_path / "storage", 2, 7, 2025)
    database = open_database(database_url)
    aaf = tmp_path / "aaf"
    copy_aaf_delivery(aaf, 2, 7, 2025)
    yield database, academy, aaf
    database.dispose()


def steps_1_to_3_done(database: Database) -> None:
    with database.session() as session:
        year = current_school_year(session)
        for establishment in session.scalars(select(Establishment)):
            for step in STEPS_1_TO_3:
                finish_unit(get_unit(session, establishment.id, year.id, step), {})


def two_file_delta(complet: Path, target: Path) -> Path:
    """A 2-file Delta (structures and students) made of the Complet's records."""
    target.mkdir()
    for kind in ("EtabEducNat", "Eleve"):
        source = next(complet.glob(f"*_Complet_*_{kind}_0000.xml"))
        shutil.copy(source, target / source.name.replace("_Complet_", "_Delta_")
                    .replace("20260818", "20260819"))
    shutil.copy(complet / "ficAlimMENESR.dtd", target / "ficAlimMENESR.dtd")
    return target


def next_year_state(database: Database) -> dict[str, object]:
    with database.session() as session:
        year = current_school_year(session)
        units = dict(session.execute(select(Establishment.uai, StepUnit.status).join(
            StepUnit, StepUnit.establishment_id == Establishment.id).where(
            StepUnit.step == Step.INIT_DIRECTORY, StepUnit.school_year_id == year.id)).all())
        next_year = session.scalar(select(SchoolYear.id).where(
            SchoolYear.start_year == year.start_year + 1))
        classes = session.scalar(select(func.count()).select_from(SchoolClass).where(
            SchoolClass.school_year_id == next_year)) if next_year else 0
        activated = session.scalar(select(Project.newest_timetable_versions_enabled))
        people = session.scalar(select(func.count()).select_from(Person))
        audits = [(entry.outcome, json.loads(entry.details or "{}").get("code"))
                  for entry in session.scalars(select(AuditEntry).where(
                      AuditEntry.step == Step.INIT_DIRECTORY.value).order_by(AuditEntry.id))]
    return {"units": units, "classes": classes, "activated": activated, "people": people,
            "audits": audits}


def test_a_delta_after_step_3_is_refused_then_the_complet_is_step_4(academy_db) -> None:
    database, academy, aaf = academy_db
    uais = sorted(e.uai for e in academy.establishments)
    steps_1_to_3_done(database)
    delta = two_file_delta(aaf, aaf.parent / "delta")
    before = next_year_state(database)
    runner = ChangeoverRunner(database, aaf.parent / "storage")
    result = import_aaf_delivery(runner, [delta])  # what ``import-aaf`` does
    assert result.step4_uais == []
    assert [refusal["uai"] for refusal in result.step4_refused] == uais
    for refusal in result.step4_refused:
        assert refusal["code"] == CODE
        assert "complet d'initialisation" in refusal["message"]
        assert "ENT_10_Delta_20260819_Eleve_0000.xml" in refusal["message"]
        assert "Rien n'a été écrit" in refusal["message"]
        assert "rectorat" in refusal["action"]
    assert result.records_by_kind["Eleve"]["imported"] == 0
    after = next_year_state(database)
    assert after["people"] == before["people"]  # nothing written for them
    assert after["classes"] == 0
    assert after["activated"] is False  # the timetable versions wait for step 4
    assert set(after["units"].values()) == {UnitStatus.BLOCKED}
    assert ("blocked", CODE) in after["audits"] and ("done", None) not in after["audits"]

    # The Complet d'initialisation is step 4, even after the refused Delta.
    result = import_aaf_delivery(runner, [aaf])
    assert result.step4_uais == uais and result.step4_refused == []
    done = next_year_state(database)
    assert set(done["units"].values()) == {UnitStatus.DONE}
    assert done["classes"] > 0 and done["activated"] is True


def test_run_init_directory_with_a_delta_is_refused(academy_db) -> None:
    """``run init-directory`` with a Delta: the same refusal, unit « bloqué »."""
    database, _academy, aaf = academy_db
    steps_1_to_3_done(database)
    delta = two_file_delta(aaf, aaf.parent / "delta")
    runner = ChangeoverRunner(database, aaf.parent / "storage")
    outcomes = runner.run_units(Step.INIT_DIRECTORY, runner.establishments(),
                                options=RunOptions(aaf_source=(str(delta),)))
    assert {o.status for o in outcomes} == {"refused"}
    assert {o.code for o in outcomes} == {CODE}
    assert next_year_state(database)["classes"] == 0


@pytest.fixture
def cli_work(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> tuple[list[str], Path]:
    sample = copy_sample(tmp_path_factory.mktemp("academie"), 2, 7, 2025)
    (tmp_path / "yearchange.db").write_bytes((sample / "yearchange.db").read_bytes())
    return ["--db", f"sqlite:///{tmp_path / 'yearchange.db'}", "--storage",
            str(sample / "storage")], sample


def test_import_aaf_of_a_delta_after_step_3_says_why_and_what_to_ask(cli_work, capsys) -> None:
    options, sample = cli_work
    database = open_database(options[1])
    steps_1_to_3_done(database)
    delta = two_file_delta(sample / "aaf", sample / "delta")
    assert main([*options, "import-aaf", str(delta)]) == 1
    out = capsys.readouterr().out
    assert "étape 4 terminée" not in out
    assert out.count(f"[{CODE}]") == 2 and "Action : Demandez au rectorat" in out
    with database.session() as session:
        year = current_school_year(session)
        assert session.scalar(select(func.count()).select_from(StepUnit).where(
            StepUnit.school_year_id == year.id, StepUnit.step == Step.INIT_DIRECTORY,
            StepUnit.status == UnitStatus.DONE)) == 0
    database.dispose()


def test_dry_run_of_step_4_with_a_delta_says_it_would_be_refused(academy_db) -> None:
    database, academy, aaf = academy_db
    steps_1_to_3_done(database)
    delta = two_file_delta(aaf, aaf.parent / "delta")
    runner = ChangeoverRunner(database, aaf.parent / "storage")
    outcomes = runner.dry_run(runner.establishments(), (Step.INIT_DIRECTORY,),
                              RunOptions(aaf_source=(str(delta),)))
    assert len(outcomes) == len(academy.establishments)
    for outcome in outcomes:
        assert any(CODE in warning or "Étape 4 refusée" in warning
                   for warning in outcome.warnings), outcome.warnings
    assert next_year_state(database)["classes"] == 0


def test_a_refused_delta_does_not_rename_the_establishment(academy_db) -> None:
    database, _academy, aaf = academy_db
    steps_1_to_3_done(database)
    delta = two_file_delta(aaf, aaf.parent / "delta")
    structures = next(delta.glob("*_EtabEducNat_*.xml"))
    structures.write_bytes(structures.read_bytes().replace(
        b'ENTStructureNomCourant"><value>CLG$', b'ENTStructureNomCourant"><value>CLG$RENOMME '))
    with database.session() as session:
        names = dict(session.execute(select(Establishment.uai, Establishment.name)).all())
    import_aaf_delivery(ChangeoverRunner(database, aaf.parent / "storage"), [delta])
    with database.session() as session:
        assert dict(session.execute(select(Establishment.uai, Establishment.name)).all()) \
            == names
