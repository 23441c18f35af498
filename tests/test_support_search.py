"""Support staff's one search and person answer: folded search on SQLite and PostgreSQL,
``yearchange find`` and ``yearchange person`` as a user types them (subprocess)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text, update
from support_data import REFUSED_XML, fill_support_database, plant_last_year_class

from yearchange_tui.aaf.support import (
    PersonHit,
    best_person_hits,
    facts_lines,
    find,
    person_facts,
)
from yearchange_tui.ent.database import alembic_config, create_db_engine
from yearchange_tui.ent.folding import fold
from yearchange_tui.ent.models import (
    Person,
)

BLOCK_DAY = dt.date(2026, 8, 25)


@pytest.fixture
def filled(database_url: str):
    """A project blocking students 20/08–01/09, one school, a student « NOËL Camille » with
    a class for N+1 and a warning, a refused newcomer only in the rejects."""
    database = fill_support_database(database_url)
    yield database, database_url
    database.dispose()


def test_fold_ignores_case_and_accents() -> None:
    assert {fold(text) for text in ("NOËL", "noël", "Noël", "noel", " No\u0065\u0308l ")} == \
        {"noel"}
    assert fold("Zoé  BÉRANGER") == "zoe beranger"


@pytest.mark.parametrize("typed", ["NOËL", "noël", "Noël", "noel"])
def test_a_name_is_found_whatever_its_case_and_accents(filled, typed: str) -> None:
    database, _ = filled
    with database.session() as session:
        result = find(session, typed)
    assert [(hit.last_name, hit.first_name) for hit in result.people] == [("NOËL", "Camille")]
    # The student's own warning is found through the person (record id = jointure).
    assert [hit.code for hit in result.rejects] == ["AAF-CLASSE-INCONNUE"]


def test_uai_prefix_establishment_name_code_ine_and_login_all_find(filled) -> None:
    database, _ = filled
    with database.session() as session:
        by_prefix = find(session, "0698")
        by_name = find(session, "emile zola")
        by_code = find(session, "naissance-manquante")
        by_ine = find(session, "123456789ab")
        by_login = find(session, "p.martin")
        nothing = find(session, "introuvable")
    assert [hit.uai for hit in by_prefix.establishments] == ["0698689V"]
    assert [hit.code for hit in by_prefix.rejects] == ["AAF-NAISSANCE-MANQUANTE"]
    assert [hit.uai for hit in by_name.establishments] == ["0999001W"]
    assert [hit.code for hit in by_name.rejects] == ["AAF-CLASSE-INCONNUE"]
    assert [hit.record_id for hit in by_code.rejects] == ["J-REFUSED"]
    assert [hit.jointure for hit in by_ine.people] == ["J-NOEL"]
    assert [hit.jointure for hit in by_login.people] == ["J-T"]
    assert not (nothing.people or nothing.rejects or nothing.establishments)


def test_a_refused_person_is_found_by_the_name_in_their_record(filled) -> None:
    database, _ = filled
    with database.session() as session:
        result = find(session, "béranger")
        facts = person_facts(session, result.people[0], BLOCK_DAY)
    assert result.people[0].jointure == "J-REFUSED" and result.people[0].person_id is None
    assert facts.account.startswith("aucun compte")
    assert facts.advice.startswith("Élève sans compte : Date de naissance absente")
    assert "BÉRANGER" in facts.raw_xml
    assert facts.classes == [("demandée par la livraison, non créée", "6A")]


@pytest.mark.parametrize("typed", ["Zoé Béranger", "beranger zoe", "ZOE  béranger"])
def test_every_word_must_match_in_any_order(filled, typed: str) -> None:
    """Several words: each must match, in any order — the refused person by the names in
    their record, and their reject with them."""
    database, _ = filled
    with database.session() as session:
        result = find(session, typed)
    assert [(hit.jointure, hit.person_id) for hit in result.people] == [("J-REFUSED", None)]
    assert [hit.code for hit in result.rejects] == ["AAF-NAISSANCE-MANQUANTE"]


def test_words_may_match_different_things_but_all_must_match(filled) -> None:
    database, _ = filled
    with database.session() as session:
        both = find(session, "camille 0999")  # a name and the UAI's beginning
        mixed = find(session, "noel beranger")  # two different people: nobody
        directory = find(session, "Camille Noël")
    assert [hit.code for hit in both.rejects] == ["AAF-CLASSE-INCONNUE"]
    assert not mixed.people and not mixed.rejects
    assert [hit.jointure for hit in directory.people] == ["J-NOEL"]


def test_renaming_a_person_refolds_their_search_text(filled) -> None:
    database, _ = filled
    with database.session() as session:
        student = session.scalars(select(Person).where(Person.aaf_jointure == "J-NOEL")).one()
        student.last_name = "LEFÈVRE"
    with database.session() as session:
        assert [hit.jointure for hit in find(session, "lefevre").people] == ["J-NOEL"]
        # The login keeps « noel » (set once, at creation); the folded names do not.
        assert session.scalar(select(Person.search_folded).where(
            Person.aaf_jointure == "J-NOEL")).startswith("lefevre camille")


def test_person_facts_give_block_class_rejects_and_absence(filled) -> None:
    database, _ = filled
    with database.session() as session:
        hit = find(session, "noel").people[0]
        facts = person_facts(session, hit, BLOCK_DAY)
        assert facts.decision is not None and facts.decision.blocked
        assert facts.classes == [("2026-2027", "5EME2")]
        assert [reject.code for reject in facts.rejects] == ["AAF-CLASSE-INCONNUE"]
        assert facts.advice.startswith("Élève bloqué jusqu'au 01/09 : message affiché « Votre")
        session.execute(update(Person).where(Person.id == hit.person_id).values(
            disappeared_at=dt.datetime(2026, 7, 3, 10, tzinfo=dt.UTC)))
        after = person_facts(session, hit, dt.date(2026, 9, 10))
    assert not after.decision.blocked
    assert after.account.startswith("signalé absent du Complet le 03/07/2026")
    assert "absent du dernier Complet" in after.advice


def test_a_class_that_looks_like_last_years_is_flagged_on_the_person(filled) -> None:
    """Issue #15: the person's N+1 class flagged « classe N-1 probable » by the step-4
    detection (same code last year, with the same students), in the facts, the lines of
    the person screen and ``yearchange person``, and in what to tell the school."""
    database, url = filled
    with database.session() as session:
        before = person_facts(session, find(session, "noel").people[0], dt.date(2026, 9, 10))
    assert before.old_classes == []
    assert not any(label == "Classe N-1 probable" for label, _ in facts_lines(before))
    plant_last_year_class(database)
    with database.session() as session:
        after = person_facts(session, find(session, "noel").people[0], dt.date(2026, 9, 10))
    assert [code for code, _ in after.old_classes] == ["5EME2"]
    assert ("Classe N-1 probable", ("5EME2 : même code qu'une classe de l'année passée et "
            "1 élève sur 1 y était déjà")) in facts_lines(after)
    assert after.advice.startswith("Élève dans la classe 5EME2, classe N-1 probable")
    shown = run_cli(url, "person", "noel", "--at", "2026-09-10")
    assert shown.returncode == 0, shown.stderr
    assert "Classe N-1 probable : 5EME2 : même code qu'une classe de l'année" in \
        " ".join(shown.stdout.split())
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80
    data = json.loads(run_cli(url, "person", "noel", "--json").stdout)
    assert [c["code"] for c in data["likely_previous_year_classes"]] == ["5EME2"]


def run_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "yearchange_tui", *args, "--db", url],
                          check=False, capture_output=True, text=True, env=env, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])


def test_find_and_person_commands_as_support_types_them(filled) -> None:
    _, url = filled
    found = run_cli(url, "find", "noel")
    assert found.returncode == 0, found.stderr
    assert "NOËL Camille" in found.stdout and "AAF-CLASSE-INCONNUE" in found.stdout
    assert max(len(line) for line in found.stdout.splitlines()) <= 80
    as_json = json.loads(run_cli(url, "find", "0698", "--json").stdout)
    assert [e["uai"] for e in as_json["establishments"]] == ["0698689V"]
    assert as_json["people"][0]["jointure"] == "J-REFUSED"
    assert as_json["people"][0]["imported"] is False

    person = run_cli(url, "person", "Noël", "--at", "2026-08-25")
    assert person.returncode == 0, person.stderr
    out = person.stdout
    assert "Accès : ⊘ bloqué le 25/08/2026" in out
    assert "Classe : 5EME2 (2026-2027)" in out
    assert "AAF-CLASSE-INCONNUE" in out
    assert "À dire à l'établissement : Élève bloqué jusqu'au 01/09" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    data = json.loads(run_cli(url, "person", "J-REFUSED", "--json").stdout)
    assert data["imported"] is False and data["rejects"][0]["code"] == "AAF-NAISSANCE-MANQUANTE"

    # « béranger » is cited in no one else's reject here; « noël » is in NOËL's own only.
    chosen = run_cli(url, "person", "BÉRANGER")
    assert "Compte : aucun compte : l'import AAF a refusé" in chosen.stdout
    assert "Date de naissance absente" in chosen.stdout

    unknown = run_cli(url, "person", "personne-inconnue")
    assert unknown.returncode == 2 and "Personne inconnue" in unknown.stderr
    empty = run_cli(url, "find", "  ")
    assert empty.returncode == 2 and "Texte de recherche vide" in empty.stderr


def test_person_prefers_the_one_named_over_one_whose_reject_cites_the_name() -> None:
    named = PersonHit("1000010", 7, "MÜLLER", "Clément", "student", "c.muller.1000010", "U")
    citing = PersonHit("1000609", None, "GÉRARD", "Anaïs", "Eleve", "", "U")
    assert best_person_hits([named, citing], "muller clement") == [named]
    assert best_person_hits([named, citing], "1000609") == [citing]
    twins = PersonHit("3010218", 9, "MÜLLER", "Clément", "relative", "c.muller.3010218", "V")
    assert best_person_hits([named, twins], "Müller") == [named, twins]


def test_migration_0019_folds_the_refused_persons_name_into_their_rejects(
        database_url: str) -> None:
    """A reject written before 0019 is found by the names in its record afterwards."""
    engine = create_db_engine(database_url)
    config = alembic_config(engine)
    command.upgrade(config, "0018")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO aaf_imports (id, started_at, source, source_kind, delivery_type, mode, "
            "operator, record_count, error_count, warning_count, info_count, header, summary, "
            "unknown_attributes) VALUES (1, '2026-08-18 06:00:00', 'x', 'dossier', '', "
            "'import', '', 0, 0, 0, 0, '{}', '{}', '{}')"))
        connection.execute(text(
            "INSERT INTO aaf_rejects (id, import_id, file_name, record_id, kind, request, uai, "
            "code, severity, attribute, raw_value, message, action, raw_xml, search_folded) "
            "VALUES (1, 1, '', 'J9', 'Eleve', 'add', '0999001W', 'AAF-NAISSANCE-MANQUANTE', "
            "'erreur', '', '', 'Date absente', '', :xml, 'aaf-naissance-manquante j9 date "
            "absente')"), {"xml": REFUSED_XML})
    command.upgrade(config, "0019")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT search_folded FROM aaf_rejects")).scalar() == \
            "aaf-naissance-manquante j9 date absente beranger zoe"
    command.downgrade(config, "0018")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT search_folded FROM aaf_rejects")).scalar() == \
            "aaf-naissance-manquante j9 date absente"
    engine.dispose()


def test_the_migration_backfills_the_folded_columns(database_url: str) -> None:
    """Rows written before 0015 are found afterwards: the migration folds them."""
    engine = create_db_engine(database_url)
    config = alembic_config(engine)
    command.upgrade(config, "0013")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO people (id, kind, login, title, last_name, first_name, email, "
            "message_archive_policy, aaf_jointure) VALUES (1, 'student', 'c.noel.J1', '', "
            "'NOËL', 'Camille', '', 'school_year', 'J1')"))
        connection.execute(text(
            "INSERT INTO aaf_imports (id, started_at, source, source_kind, delivery_type, mode, "
            "operator, record_count, error_count, warning_count, info_count, header, summary, "
            "unknown_attributes) VALUES (1, '2026-08-18 06:00:00', 'x', 'dossier', '', "
            "'import', '', 0, 0, 0, 0, '{}', '{}', '{}')"))
        connection.execute(text(
            "INSERT INTO aaf_rejects (id, import_id, file_name, record_id, kind, request, uai, "
            "code, severity, attribute, raw_value, message, action, raw_xml) VALUES (1, 1, '', "
            "'J9', 'Eleve', 'add', '0999001W', 'AAF-NAISSANCE-MANQUANTE', 'erreur', '', '', "
            "'Date de naissance absente : ÉLODIE', '', '')"))
    command.upgrade(config, "0015")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT search_folded FROM people")).scalar() == \
            "noel camille camille noel"
        assert connection.execute(text("SELECT search_folded FROM aaf_rejects")).scalar() == \
            "aaf-naissance-manquante j9 date de naissance absente : elodie"
    engine.dispose()
