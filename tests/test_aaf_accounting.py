"""What an AAF import accounts for: every person once in the summary, the warnings the seed
asks for (missing INE, year N-1 classes and groups), relatives, malformed files."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from yearchange_tui.aaf.classes_n1 import likely_previous_year_classes
from yearchange_tui.aaf.importer import import_delivery
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import (
    ClassMembership,
    ClassRole,
    Establishment,
    EstablishmentKind,
    Person,
    PersonKind,
    Project,
    SchoolClass,
    SchoolYear,
)
from yearchange_tui.importing.models import AafReject
from yearchange_tui.workflow.models import ArchiveManifest

ROOT = Path(__file__).resolve().parents[1]
DELIVERY = ROOT / "sample_data" / "aaf" / "livraison"


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    yield database
    database.dispose()


# -- seed §3.5 note: INEs must be filled -------------------------------------------------------

def test_a_student_without_ine_is_kept_with_a_warning(database: Database) -> None:
    import_delivery(database, [DELIVERY])
    with database.session() as session:
        [reject] = session.scalars(select(AafReject).where(AafReject.code == "AAF-INE-MANQUANT"))
        student = session.scalar(select(Person).where(Person.aaf_jointure == "1000311"))
    assert reject.record_id == "1000311" and reject.severity == "avertissement"
    assert reject.attribute == "ENTEleveINE"
    assert reject.message.startswith("L'élève 1000311 (FUTUR Lina) n'a pas d'INE")
    assert "SIECLE" in reject.action
    assert student is not None and student.ine is None


# -- seed §5: year N-1 classes ------------------------------------------------------------------

def _establishment_with_years(session) -> tuple[Establishment, list[SchoolYear]]:  # type: ignore[no-untyped-def]
    project = Project(code="P", name="P")
    session.add(project)
    session.flush()
    years = [SchoolYear(start_year=y, label=f"{y}-{y + 1}", starts_on=dt.date(y, 9, 1),
                        ends_on=dt.date(y + 1, 8, 31), is_current=y == 2025)
             for y in (2025, 2026)]
    session.add_all(years)
    establishment = Establishment(project_id=project.id, uai="0999001W", name="C",
                                  kind=EstablishmentKind.COLLEGE)
    session.add(establishment)
    session.flush()
    return establishment, years


def test_a_class_known_only_from_its_step_2_textbook_archive_is_recognised(
        database: Database) -> None:
    """Step 2 keys its textbook archives ``cahier-de-textes:<code>``; the N-1 report reads them."""
    with database.session() as session:
        establishment, years = _establishment_with_years(session)
        people = [Person(kind=PersonKind.STUDENT, login=f"e{i}", last_name="E",
                         first_name=str(i), establishment_id=establishment.id)
                  for i in range(16)]
        session.add_all(people)
        plan = {"4A": people[:5], "4B": people[5:10], "4C": people[10:15], "3Z": people[15:]}
        for code, members in plan.items():
            new = SchoolClass(establishment_id=establishment.id, school_year_id=years[1].id,
                              code=code)
            session.add(new)
            session.flush()
            session.add_all(ClassMembership(class_id=new.id, person_id=student.id,
                                            role=ClassRole.STUDENT) for student in members)
        # Nothing else remembers 3Z: no class, no history, no archived rubric; only the
        # manifest of its step-2 textbook archive (written exactly as step 2 writes it).
        session.add(ArchiveManifest(
            establishment_id=establishment.id, school_year_id=years[0].id,
            archive_key="cahier-de-textes:3Z", kind="cahier de textes",
            relative_path="archives/3Z.zip", size=1, sha256="0" * 64,
            created_at=dt.datetime(2026, 7, 10, tzinfo=dt.UTC)))
        session.flush()
        findings = likely_previous_year_classes(session.connection(), establishment.id,
                                                years[1].id, years[0].id)
    assert [(f.code, f.code_archived) for f in findings] == [("3Z", True)]
    assert "ce code existait l'année passée" in findings[0].reason


# -- malformed files: French, placed, all of them at once -----------------------------------

def _break_record(path: Path, occurrence: int) -> int:
    """Break the closing tag of a file's ``occurrence``-th attribute list; return its line."""
    text = path.read_bytes()
    position = -1
    for _ in range(occurrence):
        position = text.index(b"</attributes>", position + 1)
    path.write_bytes(text[:position] + b"</attribute>" + text[position + len(b"</attributes>"):])
    return text.count(b"\n", 0, position) + 1


def test_every_malformed_file_is_named_in_one_french_refusal(tmp_path: Path, capsys) -> None:
    from yearchange_tui.cli.main import main

    folder = tmp_path / "livraison"
    shutil.copytree(DELIVERY, folder)
    students = folder / "ENT_99_Complet_20260818_Eleve_0000.xml"
    staff = folder / "ENT_99_Complet_20260818_PersEducNat_0000.xml"
    # Both break after their first record: past what the prologue check reads, so the
    # import meets the first one while reading, and must still name the second.
    student_line = _break_record(students, 5)
    staff_line = _break_record(staff, 2)
    options = ["--db", f"sqlite:///{tmp_path / 'yearchange.db'}", "--storage",
               str(tmp_path / "storage")]
    assert main([*options, "db", "upgrade"]) == 0
    capsys.readouterr()
    assert main([*options, "import-aaf", str(folder)]) == 2
    captured = capsys.readouterr()
    message = captured.err
    assert "AAF-XML-MALFORME" in message and "rien n'a été importé" in message
    assert "2 fichiers de la livraison" in message
    for name, line in ((students.name, student_line), (staff.name, staff_line)):
        assert f"« {name} », ligne {line}, colonne " in message
    assert message.count("une balise fermante ne correspond pas à l'ouvrante") == 2
    # The library's English text only ever follows « détail technique : ».
    assert message.count("(détail technique : Opening and ending tag mismatch") == 2
    assert message.replace("(détail technique : Opening and ending tag mismatch", "") \
        .count("Opening and ending") == 0
    assert main([*options, "import-aaf", str(folder), "--json"]) == 2
    refusal = json.loads(capsys.readouterr().out)
    assert refusal["code"] == "AAF-XML-MALFORME"
    assert students.name in refusal["file"] and staff.name in refusal["file"]
    database = open_database(options[1])
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Person)) == 0
    database.dispose()


def test_one_malformed_file_says_where_in_french(tmp_path: Path) -> None:
    from yearchange_tui.aaf.delivery import open_delivery
    from yearchange_tui.aaf.parser import AafFileError

    broken = tmp_path / "ENT_99_Complet_20260818_Eleve_0000.xml"
    broken.write_bytes(b'<?xml version="1.0" encoding="UTF-8"?>\n<ficAlimMENESR>\n'
                       b"<addRequest><identifier><id>1</id></identifier>\n"
                       b"<attributes></attribute></addRequest></ficAlimMENESR>\n")
    with pytest.raises(AafFileError) as caught, open_delivery([broken]):
        pass
    error = caught.value
    assert error.code == "AAF-XML-MALFORME" and error.line == 4
    assert error.message.startswith(
        f"Document XML mal formé ou tronqué : « {broken.name} », ligne 4, colonne ")
    assert ": une balise fermante ne correspond pas à l'ouvrante (détail technique : " \
        "Opening and ending tag mismatch" in error.message


# -- the summary: every person once ----------------------------------------------------------

PERSON_FILE_KINDS = ("Eleve", "PersRelEleve", "PersEducNat")
OUTCOMES = ("created", "updated", "unchanged", "deleted", "refused")
REFERENCE = SHARED_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / \
    "aaf_samples" / "edificeio_entcore" / "feeder_aaf-test"


def _import_json(options: list[str], paths: list[Path], capsys,  # type: ignore[no-untyped-def]
                 *extra: str) -> dict:
    from yearchange_tui.cli.main import main

    assert main([*options, "import-aaf", *map(str, paths), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def _assert_every_person_once(result: dict) -> dict[str, int]:  # type: ignore[type-arg]
    """Each person record of the files is in exactly one line, in one outcome."""
    lines = {outcome: sum(line[outcome] for line in result["establishments"])
             for outcome in OUTCOMES}
    by_kind = result["records_by_kind"]
    read = sum(f["records"] for f in result["files"] if f["kind"] in PERSON_FILE_KINDS)
    skipped = sum(by_kind.get(kind, {}).get("skipped", 0) for kind in PERSON_FILE_KINDS)
    imported = sum(by_kind.get(kind, {}).get("imported", 0) for kind in PERSON_FILE_KINDS)
    refused = sum(by_kind.get(kind, {}).get("refused", 0) for kind in PERSON_FILE_KINDS)
    assert lines["created"] + lines["updated"] + lines["unchanged"] + lines["deleted"] \
        == imported
    assert lines["refused"] == refused
    assert sum(lines.values()) + skipped == read
    return lines


@pytest.fixture
def cli_options(tmp_path: Path, capsys) -> list[str]:  # type: ignore[no-untyped-def]
    from yearchange_tui.cli.main import main

    options = ["--db", f"sqlite:///{tmp_path / 'yearchange.db'}", "--storage",
               str(tmp_path / "storage")]
    assert main([*options, "db", "upgrade"]) == 0
    capsys.readouterr()
    return options


def test_a_complet_then_a_delta_without_structures_account_for_every_person(
        cli_options: list[str], tmp_path: Path, capsys) -> None:
    from yearchange_tui.cli.main import main

    complet = sorted(DELIVERY.glob("*_Complet_*.xml"))
    first = _import_json(cli_options, complet, capsys)
    lines = _assert_every_person_once(first)
    assert lines["created"] > 20 and lines["refused"] > 5
    # The same Complet again (--reimport: it was already imported): the very same people,
    # now unchanged.
    again = _import_json(cli_options, complet, capsys, "--reimport")
    assert _assert_every_person_once(again)["unchanged"] == lines["created"]

    delta = tmp_path / "ENT_99_Delta_20260820_Eleve_0000.xml"
    delta.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n<ficAlimMENESR>\n'
        "<modifyRequest><operationalAttributes><attr name=\"categoriePersonne\">"
        "<value>Eleve</value></attr></operationalAttributes>"
        "<identifier><id>1000104</id></identifier><modifications>"
        '<modification name="sn" operation="replace"><value>NOUVEAUNOM</value></modification>'
        "</modifications></modifyRequest>\n"
        "<deleteRequest><operationalAttributes><attr name=\"categoriePersonne\">"
        "<value>Eleve</value></attr></operationalAttributes>"
        "<identifier><id>1000106</id></identifier></deleteRequest>\n"
        "<modifyRequest><operationalAttributes><attr name=\"categoriePersonne\">"
        "<value>Eleve</value></attr></operationalAttributes>"
        "<identifier><id>1000998</id></identifier><modifications>"
        '<modification name="sn" operation="replace"><value>X</value></modification>'
        "</modifications></modifyRequest>\n</ficAlimMENESR>\n", encoding="utf-8")
    result = _import_json(cli_options, [delta], capsys)
    lines = _assert_every_person_once(result)
    assert (lines["updated"], lines["deleted"], lines["refused"]) == (1, 1, 1)
    [line] = [line for line in result["establishments"] if line["updated"]]
    assert line["uai"] == "0999001W"
    database = open_database(cli_options[1])
    with database.session() as session:
        assert session.scalar(select(Person.last_name).where(
            Person.aaf_jointure == "1000104")) == "NOUVEAUNOM"
    database.dispose()
    # The French summary says it too, in that establishment's line (a dry run of the same
    # delivery, already imported: --reimport shows what importing it again would do).
    assert main([*cli_options, "import-aaf", str(delta), "--dry-run", "--reimport"]) == 0
    out = capsys.readouterr().out
    assert "0999001W" in out
    assert "0 créé(s), 0 mis à jour, 1 inchangé(s), 1 retiré(s) (deleteRequest), 0 refusé(s)" \
        in out


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="public AAF samples not present")
def test_a_staff_complet_without_structures_accounts_for_every_person(
        cli_options: list[str], capsys) -> None:
    files = sorted(REFERENCE.glob("FULL_*_PersEducNat_*.xml"))
    result = _import_json(cli_options, files, capsys)
    lines = _assert_every_person_once(result)
    assert lines["created"] + lines["refused"] == 701
    assert lines["created"] == result["records"]["imported"]


# -- relatives: one rule -------------------------------------------------------------------------

def test_a_relative_cited_only_by_a_refused_student_is_refused_like_an_uncited_one(
        database: Database, tmp_path: Path) -> None:
    folder = tmp_path / "livraison"
    folder.mkdir()
    for source in DELIVERY.glob("*_Complet_*.xml"):
        shutil.copy(source, folder / source.name)
    students = folder / "ENT_99_Complet_20260818_Eleve_0000.xml"
    text = students.read_bytes()
    start = text.index(b"<id>1000302</id>")  # refused: no birth date
    cut = text.index(b'<attr name="ENTElevePersRelEleve"><value/></attr>', start)
    students.write_bytes(text[:cut] + b'<attr name="ENTElevePersRelEleve"><value>'
                         b"3000901$10$1$1$1$0</value></attr>"
                         + text[cut + len(b'<attr name="ENTElevePersRelEleve"><value/></attr>'):])
    relatives = folder / "ENT_99_Complet_20260818_PersRelEleve_0000.xml"
    body = relatives.read_text(encoding="utf-8")
    first = body.index("<addRequest>", body.index("<id>3000900</id>") - 200)
    block = body[first:body.index("</addRequest>", first) + len("</addRequest>")]
    added = block.replace("3000900", "3000901").replace("SANSENFANT", "PARENTREFUSE")
    relatives.write_text(body.replace("</ficAlimMENESR>", added + "\n</ficAlimMENESR>"),
                         encoding="utf-8")

    import_delivery(database, [folder])
    with database.session() as session:
        rejects = {r.record_id: r for r in session.scalars(
            select(AafReject).where(AafReject.code == "AAF-RESPONSABLE-ORPHELIN"))}
        created = set(session.scalars(select(Person.aaf_jointure).where(
            Person.aaf_jointure.in_(["3000900", "3000901"]))))
    assert created == set()
    assert set(rejects) == {"3000900", "3000901"}
    uncited, cited_by_refused = rejects["3000900"], rejects["3000901"]
    assert uncited.message == (
        "Le responsable 3000900 (SANSENFANT Gérard) n'est cité par aucun élève importé : son "
        "compte n'est pas créé (un responsable n'est créé que lié à un élève importé).")
    assert cited_by_refused.message == (
        "Le responsable 3000901 (PARENTREFUSE Gérard) n'est cité par aucun élève importé "
        "(seul l'élève 1000302 le cite, et il est refusé : voir son rejet) : son compte "
        "n'est pas créé (un responsable n'est créé que lié à un élève importé).")
    # Under the establishment of the refused student, where its admins read its reject.
    assert cited_by_refused.uai == "0999001W"


# -- seed §5: year N-1 groups (« ne pas conserver les groupes dans les choix de bascule STS ») --

def test_a_group_of_last_year_coming_back_after_step_3_is_reported(database: Database) -> None:
    from yearchange_tui.aaf.classes_n1 import likely_previous_year_groups
    from yearchange_tui.aaf.directory import snapshot_class_history
    from yearchange_tui.aaf.rules import RULES
    from yearchange_tui.ent.models import Group, GroupKind, GroupMembership

    with database.session() as session:
        establishment, years = _establishment_with_years(session)
        people = [Person(kind=PersonKind.STUDENT, login=f"e{i}", last_name="E",
                         first_name=str(i), establishment_id=establishment.id)
                  for i in range(8)]
        teacher = Person(kind=PersonKind.TEACHER, login="t", last_name="T", first_name="T",
                         establishment_id=establishment.id)
        session.add_all([*people, teacher])
        session.flush()

        def group(year: SchoolYear, code: str, members: list[Person]) -> Group:
            made = Group(establishment_id=establishment.id, school_year_id=year.id,
                         kind=GroupKind.AAF, code=code, name=code)
            session.add(made)
            session.flush()
            session.add_all(GroupMembership(group_id=made.id, person_id=p.id) for p in members)
            return made

        old = group(years[0], "LATIN", people[:4])
        session.flush()
        connection = session.connection()
        # Step 3 keeps the history, then deletes the year's AAF groups.
        snapshot_class_history(connection, establishment.id, years[0].id)
        session.execute(GroupMembership.__table__.delete().where(
            GroupMembership.group_id == old.id))
        session.delete(old)
        session.flush()
        # Step 4 brings LATIN back with last year's students; ESP is a genuinely new group.
        group(years[1], "LATIN", [*people[:3], teacher])
        group(years[1], "ESP", people[4:])
        session.flush()
        findings = likely_previous_year_groups(connection, establishment.id, years[1].id,
                                               years[0].id)
    assert [(f.code, f.students, f.same_class_students) for f in findings] == [("LATIN", 3, 3)]
    assert findings[0].reason == ("même code qu'un groupe de l'année passée et 3 élève(s) sur 3 "
                                  "y étaient déjà")
    assert RULES["AAF-GROUPE-N-1-PROBABLE"].severity.value == "avertissement"
