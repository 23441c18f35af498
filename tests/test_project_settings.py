"""The project owns its settings (issue #13, items 2, 3, 7, 9; seed §3.3, §6.3–6.5).

No free-group message is planned by default (an engine left running through 30 June on the
template sends nothing); ``project show|set`` and ``access-block set`` change the access
block and the other settings through their owners, audited, refusing what leaves the
limits (exit 2, stable code, nothing changed); the default block message is the seed's
example; ``plan`` and ``dry-run`` flag a project without block dates; step 5 writes
default periods and dates only where the project chose « valeurs par défaut » and never on
a blocked unit.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from changeover_support import Academy, make_academy
from sqlalchemy import func, select
from template_support import copy_sample
from timetable_support import PARTNER, SAMPLES, UAI, build_directory

from yearchange_tui.changeover.notices import WARNING_SUBJECT
from yearchange_tui.changeover.steps.init_school_life import run_init_school_life
from yearchange_tui.cli.main import main
from yearchange_tui.ent import base
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import (
    Establishment,
    Message,
    OpeningDates,
    Period,
    Person,
    PersonKind,
)
from yearchange_tui.scheduling.engine import Engine, EngineConfig
from yearchange_tui.scheduling.models import EngineTask
from yearchange_tui.timetable.importer import import_timetable
from yearchange_tui.workflow.audit import AuditEntry
from yearchange_tui.workflow.localtime import operator_zone
from yearchange_tui.workflow.models import Step, StepUnit, UnitStatus

PARIS = operator_zone("Europe/Paris")
LYCEE, COLLEGE = "0016980G", "0693422V"  # the sample (2 establishments, seed 7, 2025)

# Seed §6.4, the example of the redirect page, word for word.
SEED_EXAMPLE = ("Madame, monsieur, bonjour,\n\nVotre espace NOM_ENT sera indisponible du xx "
                "août au yy septembre 20xx inclus, pour permettre le paramétrage des services "
                "et des comptes utilisateurs pour l'année 20xx-20xx.\n\nCordialement,\n\n"
                "L'Equipe ENT.")


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"délai dépassé : {what}")


@pytest.fixture
def academy1(database_url: str, tmp_path: Path) -> Iterator[Academy]:
    academy = make_academy(database_url, tmp_path / "storage", establishments=1)
    yield academy
    academy.database.dispose()


def test_an_engine_left_running_through_30_june_on_the_template_sends_nothing(
        academy1: Academy) -> None:
    """Seed §6.3: « Aucun message n'est transmis par défaut ». The engine's clock starts a
    few seconds before 30 June 08:00 (the old template's warning) and runs past it."""
    database = academy1.database
    before = dt.datetime(2026, 6, 30, 7, 59, 57, tzinfo=PARIS).astimezone(dt.UTC)
    started = dt.datetime.now(dt.UTC)

    def clock() -> dt.datetime:
        return before + (dt.datetime.now(dt.UTC) - started)

    config = EngineConfig(poll_interval=0.1, heartbeat_interval=0.5, plan_sync_interval=0.5)
    engine = Engine(database, academy1.storage, config, clock=clock)
    failures: list[BaseException] = []
    thread = threading.Thread(target=lambda: _run(engine, failures), name="engine-30-juin")
    thread.start()
    jobs_seen: set[str] = set()
    try:
        wait_until(lambda: engine.ready.is_set() or failures, "démarrage du moteur")
        assert not failures

        def past_the_warning() -> bool:
            jobs_seen.update(job.id for job in engine.scheduler.get_jobs())
            return clock() > before + dt.timedelta(seconds=8) and engine.ticks > 20

        wait_until(past_the_warning, "le 30/06 08:00 passé")
    finally:
        engine.request_stop("fin du test")
        thread.join(60)
    assert not thread.is_alive() and not failures
    assert not [job for job in jobs_seen if job.startswith("plan:warning")]
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(EngineTask).where(
            EngineTask.milestone.in_(["warning", "second-warning"]))) == 0
        assert session.scalar(select(func.count()).select_from(Message).where(
            Message.subject == WARNING_SUBJECT)) == 0


def _run(engine: Engine, failures: list[BaseException]) -> None:
    try:
        engine.run()
    except BaseException as error:  # noqa: BLE001 - reported to the test
        failures.append(error)


# -- the command line ----------------------------------------------------------------------

@pytest.fixture
def places(tmp_path: Path) -> list[str]:
    out = copy_sample(tmp_path / "academie", 2, 7, 2025)
    return ["--db", f"sqlite:///{out / 'yearchange.db'}", "--storage", str(out / "storage")]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def show(capsys: pytest.CaptureFixture[str], places: list[str]) -> dict[str, Any]:
    status, out, _ = run(capsys, "project", "show", "--json", *places)
    assert status == 0
    return json.loads(out)


def audit_rows(places: list[str], action: str) -> list[dict[str, Any]]:
    database = open_database(places[1])
    try:
        with database.session() as session:
            return [json.loads(details) for details in session.scalars(
                select(AuditEntry.details).where(AuditEntry.action == action)
                .order_by(AuditEntry.id))]
    finally:
        database.dispose()


def student_login(places: list[str], uai: str) -> str:
    database = open_database(places[1])
    try:
        with database.session() as session:
            return session.scalar(select(Person.login).join(
                Establishment, Establishment.id == Person.establishment_id).where(
                Establishment.uai == uai, Person.kind == PersonKind.STUDENT).limit(1))
    finally:
        database.dispose()


def test_project_set_and_show_round_trip_and_are_audited(
        places: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    before = show(capsys, places)
    assert before["free_groups"]["warning_on"] is None
    assert before["free_groups"]["second_warning_on"] is None
    status, out, err = run(
        capsys, "project", "set", "--blocage-debut", "2026-08-21", "--blocage-fin",
        "2026-09-02", "--blocage-profils", "eleves,parents", "--etablissements-modifient",
        "oui", "--limite-debut", "2026-08-19", "--limite-fin", "2026-09-10",
        "--lien-duree-de-vie", "https://ent.lyon.fr/groupes/{group_id}/vie",
        "--jours-delta", "lundi,mercredi", "--jours-complet", "samedi",
        "--avertissement", "2026-06-25", "--second-avertissement", "2026-07-03",
        "--bilan-groupes", "oui", "--suspension-notifications", "2026-09-10", *places)
    assert status == 0, err
    assert "✓ blocage des accès : du 21/08/2026 au 02/09/2026" in out
    after = show(capsys, places)
    block = after["access_block"]
    assert (block["starts_on"], block["ends_on"]) == ("2026-08-21", "2026-09-02")
    assert block["profiles"] == ["National_ELV", "National_TUT"]
    assert (block["establishment_earliest_start"], block["establishment_latest_end"]) == (
        "2026-08-19", "2026-09-10")
    groups = after["free_groups"]
    assert (groups["warning_on"], groups["second_warning_on"]) == ("2026-06-25", "2026-07-03")
    assert groups["lifetime_url_warning"] == "" and groups["summary"] is True
    assert after["aaf"]["delta_days"] == "lundi,mercredi"
    assert after["aaf"]["rhythm"][1] == ["mercredi", "delta du mercredi", "jeudi matin"]
    assert after["deactivation_notices_suspended_until"] == "2026-09-10"
    [row] = audit_rows(places, "project")
    assert row["project"] == "ENT-LYON" and row["changes"]["block_start"] == "2026-08-21"
    # The plan shows the project's warnings and rhythm.
    status, out, _ = run(capsys, "plan", "--uai", COLLEGE, *places)
    warning = next(line for line in out.splitlines() if "Avertissement groupes libres" in line)
    assert "jeu. 25/06/2026" in warning and "projet" in warning
    words = " ".join(out.split())
    assert "mercredi delta du mercredi jeudi matin" in words and "delta du mardi" not in words


def test_project_set_and_plan_set_read_dates_the_same_way(
        places: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """One date parser for every command: ``project set`` takes JJ/MM/AAAA as ``plan set``
    does, ``plan set`` takes AAAA-MM-JJ, and a bad date gets the same French message and
    exit 2 from both, changing nothing."""
    status, out, err = run(capsys, "project", "set", "--blocage-debut", "21/08/2026",
                           "--blocage-fin", "2026-09-02", "--avertissement", "25/06/2026",
                           *places)
    assert status == 0, err
    assert "✓ blocage des accès : du 21/08/2026 au 02/09/2026" in out
    settings = show(capsys, places)
    assert settings["access_block"]["starts_on"] == "2026-08-21"
    assert settings["free_groups"]["warning_on"] == "2026-06-25"
    status, _out, err = run(capsys, "plan", "set", "2", "2026-07-09", "--uai", COLLEGE,
                            *places)
    assert status == 0, err
    status, out, _ = run(capsys, "plan", "--json", "--uai", COLLEGE, *places)
    archive = next(milestone for milestone in json.loads(out)["establishments"][0]["milestones"]
                   if milestone["milestone"] == "archive")
    assert archive["date"] == "2026-07-09"
    expected = "date invalide « 31/02/2026 » (attendu JJ/MM/AAAA ou AAAA-MM-JJ)"
    for argv in (["project", "set", "--blocage-debut", "31/02/2026"],
                 ["plan", "set", "2", "31/02/2026", "--uai", COLLEGE]):
        status, _out, err = run(capsys, *argv, *places)
        assert status == 2 and expected in err, (argv, err)
    assert show(capsys, places) == settings
    assert len(audit_rows(places, "project")) == 1


@pytest.mark.parametrize(("argv", "code"), [
    (["--suspension-notifications", "2026-09-16"], "SUSPENSION-APRES-MI-SEPTEMBRE"),
    (["--blocage-fin", "2026-09-20"], "BLOCAGE-APRES-MI-SEPTEMBRE"),
    (["--blocage-message", "Fermé jusqu'au {date}"], "BLOCAGE-MESSAGE-VARIABLE"),
    (["--blocage-profils", "eleves,directeurs"], "BLOCAGE-PROFIL-INCONNU"),
])
def test_a_refused_project_setting_changes_nothing(
        argv: list[str], code: str, places: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    before = show(capsys, places)
    status, _out, err = run(capsys, "project", "set", "--avertissement", "2026-06-25", *argv,
                            *places)
    assert status == 2 and f"[{code}]" in err
    assert show(capsys, places) == before and audit_rows(places, "project") == []


def test_an_empty_or_example_lifetime_link_is_flagged(
        places: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # The sample (like a project the AAF import creates) has the example address.
    assert "[LIEN-DUREE-VIE-EXEMPLE]" in show(capsys, places)["free_groups"][
        "lifetime_url_warning"]
    status, _out, err = run(capsys, "project", "set", "--lien-duree-de-vie", "", *places)
    assert status == 0 and "[LIEN-DUREE-VIE-VIDE]" in err


def test_the_warnings_sent_with_an_example_link_say_so(
        places: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "notify", "warning", "--deletion-date", "2026-07-10",
                         "--uai", COLLEGE, *places)
    assert status == 0 and "message(s)" in out and "[LIEN-DUREE-VIE-EXEMPLE]" in out


def test_access_block_set_for_one_establishment_within_the_project_limits(
        places: list[str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # During the pré-rentrée (template « Rentrée des enseignants », 01/09; checklist row 129).
    monkeypatch.setattr(base, "clock", lambda: dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC))
    login = student_login(places, COLLEGE)
    status, out, err = run(capsys, "access-block", "set", "--uai", COLLEGE, "--debut",
                           "2026-08-24", "--fin", "2026-09-04", "--message",
                           "Fermé du {debut} au {fin}.", *places)
    assert status == 0, err
    assert "blocage du 24/08/2026 au 04/09/2026 (établissement)" in out
    status, out, _ = run(capsys, "access-block", "--login", login, "--at", "2026-09-04",
                         *places)
    assert out.startswith("⊘ bloqué") and "Fermé du 24/08/2026 au 04/09/2026." in out
    [row] = audit_rows(places, "access-block")
    assert row["uai"] == COLLEGE and row["fin"] == "2026-09-04"
    # Only the end given: the establishment's own start stays.
    status, out, _ = run(capsys, "access-block", "set", "--uai", COLLEGE, "--fin",
                         "2026-09-03", *places)
    assert status == 0 and "blocage du 24/08/2026 au 03/09/2026" in out

    # Outside the project's limits: refused with its code, nothing changed.
    assert run(capsys, "project", "set", "--limite-fin", "2026-09-05", *places)[0] == 0
    for argv, code in ((["--fin", "2026-09-08"], "BLOCAGE-APRES-LIMITE-PROJET"),
                       (["--debut", "2026-08-19"], "BLOCAGE-AVANT-PROJET"),
                       (["--fin", "2026-09-30"], "BLOCAGE-APRES-MI-SEPTEMBRE")):
        status, _out, err = run(capsys, "access-block", "set", "--uai", COLLEGE, *argv,
                                *places)
        assert status == 2 and f"[{code}]" in err, err
    assert len(audit_rows(places, "access-block")) == 2
    # Without the MOA's authorisation an establishment changes nothing.
    assert run(capsys, "project", "set", "--etablissements-modifient", "non", *places)[0] == 0
    status, _out, err = run(capsys, "access-block", "set", "--uai", LYCEE, "--message", "x",
                            *places)
    assert status == 2 and "[BLOCAGE-NON-AUTORISE]" in err


def test_the_default_block_message_is_the_seed_example(
        places: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    login = student_login(places, COLLEGE)
    assert run(capsys, "project", "set", "--blocage-message", "", *places)[0] == 0
    assert show(capsys, places)["access_block"]["message_is_default"] is True
    status, out, _ = run(capsys, "access-block", "--login", login, "--at", "2026-08-25",
                         "--json", *places)
    assert status == 0
    expected = (SEED_EXAMPLE.replace("NOM_ENT", "ENT Lyon").replace("xx août", "20 août")
                .replace("yy septembre 20xx", "1er septembre 2026")
                .replace("20xx-20xx", "2026-2027"))
    assert json.loads(out)["message"] == expected


def test_plan_and_dry_run_flag_a_project_without_block_dates(
        places: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "plan", *places)
    assert "BLOCAGE-NON-PARAMETRE" not in out
    # the free-group warnings (the note wraps between words at 80 columns)
    assert "non prévu (à définir par le projet)" in " ".join(out.split())
    assert run(capsys, "project", "set", "--blocage-debut", "aucune", "--blocage-fin",
               "aucune", *places)[0] == 0
    status, out, _ = run(capsys, "plan", *places)
    assert status == 0 and out.startswith("⚠ Projet ENT-LYON : aucune date de blocage")
    assert "[BLOCAGE-NON-PARAMETRE]" in out
    status, out, _ = run(capsys, "dry-run", "--uai", COLLEGE, "--json", *places)
    assert status == 0
    warnings = [w for outcome in json.loads(out) for w in outcome["warnings"]]
    assert sum("[BLOCAGE-NON-PARAMETRE]" in w for w in warnings) == 1


# -- step 5 --------------------------------------------------------------------------------

@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = open_database(database_url)
    yield db
    db.dispose()


def written_rows(database: Database, establishment_id: int) -> tuple[int, int]:
    with database.session() as session:
        return (session.scalar(select(func.count()).select_from(Period).where(
                    Period.establishment_id == establishment_id)),
                session.scalar(select(func.count()).select_from(OpeningDates).where(
                    OpeningDates.establishment_id == establishment_id)))


def choose_defaults(database: Database, establishment_id: int) -> None:
    with database.session() as session:
        session.get(Establishment, establishment_id).school_life_defaults = True


def step5_status(database: Database, establishment_id: int) -> UnitStatus:
    with database.session() as session:
        return session.scalar(select(StepUnit.status).where(
            StepUnit.establishment_id == establishment_id,
            StepUnit.step == Step.INIT_SCHOOL_LIFE))


def test_step_5_writes_nothing_without_valeurs_par_defaut_nor_on_a_blocked_unit(
        database: Database) -> None:
    establishment_id = build_directory(database)
    # Not chosen: the establishment enters its periods; the engine only checks.
    report = run_init_school_life(database, [establishment_id])
    assert report.written[UAI] == {} and written_rows(database, establishment_id) == (0, 0)
    # Chosen, but the unit stays « bloqué » (no timetable yet): still nothing written.
    choose_defaults(database, establishment_id)
    report = run_init_school_life(database, [establishment_id])
    assert step5_status(database, establishment_id) is UnitStatus.BLOCKED
    assert "Emploi du temps non importé" in report.refused[UAI]
    assert report.written[UAI] == {} and written_rows(database, establishment_id) == (0, 0)
    # Chosen and only the periods and dates missing: the defaults are written, step 5 done.
    import_timetable(database, SAMPLES / "sts" / f"sts_emp_{UAI}_2026.xml", UAI,
                     declared_version="EDT 2020")
    import_timetable(database, SAMPLES / "edt" / f"Edt_To_{PARTNER}_{UAI}_Enclair.xml",
                     UAI, declared_version="2020")
    report = run_init_school_life(database, [establishment_id])
    assert report.written[UAI] == {"periodes": 3, "dates_ouverture": 1}
    assert report.done == [UAI] and written_rows(database, establishment_id) == (3, 1)


def test_project_set_chooses_valeurs_par_defaut_per_establishment(
        places: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "project", "set", "--uai", COLLEGE, "--vie-scolaire",
                         "defaut", *places)
    assert status == 0 and "1 établissement(s)" in out
    rows = {row["uai"]: row["school_life_defaults"] for row in show(capsys, places)[
        "establishments"]}
    assert rows == {LYCEE: False, COLLEGE: True}
