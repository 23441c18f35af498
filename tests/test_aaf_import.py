"""AAF import against the hand-written real-format delivery: rules, directory, Delta, safety."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from yearchange_tui.aaf.importer import import_delivery
from yearchange_tui.aaf.parser import AafFileError
from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import (
    ClassMembership,
    ClassRole,
    Establishment,
    Group,
    GroupKind,
    GroupMembership,
    HeadTeacher,
    Person,
    PersonKind,
    PersonProfile,
    Rubric,
    RubricKind,
    RubricRight,
    RubricRole,
    SchoolClass,
    StudentRelative,
    Subject,
)
from yearchange_tui.importing.models import AafImport, AafImportFile, AafReject

ROOT = Path(__file__).resolve().parents[1]
DELIVERY = ROOT / "sample_data" / "aaf" / "livraison"
REFUSED = ROOT / "sample_data" / "aaf" / "refuses"
ROW = re.compile(r"^\| (ENT_99_\S+\.xml|\(après l'import\)) \| (\S+) \| "
                 r"(AAF-[A-Z0-9-]+) \| (\w+) \|$")


def documented_rejects() -> list[tuple[str, str, str, str]]:
    """(file, record, code, severity) rows of sample_data/README.md."""
    rows = []
    for line in (ROOT / "sample_data" / "README.md").read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            file, record, code, severity = match.groups()
            rows.append(("" if file.startswith("(") else file,
                         "" if record == "(vide)" else record, code, severity))
    return rows


@pytest.fixture
def database(database_url: str) -> Database:
    db = open_database(database_url)
    yield db
    db.dispose()


def table_counts(database: Database) -> dict[str, int]:
    names = inspect(database.engine).get_table_names()
    with database.engine.connect() as connection:
        return {name: connection.exec_driver_sql(f"SELECT COUNT(*) FROM {name}").scalar()
                for name in names if name != "alembic_version"}


def person(session, jointure: str) -> Person:
    found = session.scalar(select(Person).where(Person.aaf_jointure == jointure))
    assert found is not None, jointure
    return found


def class_codes(session, jointure: str, role: ClassRole = ClassRole.STUDENT) -> set[str]:
    return set(session.scalars(
        select(SchoolClass.code).join(ClassMembership, ClassMembership.class_id == SchoolClass.id)
        .join(Person, Person.id == ClassMembership.person_id)
        .where(Person.aaf_jointure == jointure, ClassMembership.role == role)))


def test_exactly_the_documented_rejects(database: Database) -> None:
    result = import_delivery(database, [DELIVERY])
    expected = sorted(documented_rejects())
    assert len(expected) == 30
    with database.session() as session:
        found = sorted((r.file_name, r.record_id, r.code, r.severity)
                       for r in session.scalars(select(AafReject)))
    assert found == expected
    # Every record is accounted for: imported, refused or out of scope.
    records = result.records
    assert records["total"] == 82
    assert records["total"] == records["imported"] + records["refused"] + records["skipped"]
    assert records["refused"] == sum(1 for row in expected if row[3] == "erreur")


def test_rejects_carry_what_support_staff_need(database: Database) -> None:
    import_delivery(database, [DELIVERY])
    with database.session() as session:
        rejects = {(r.code, r.record_id): r for r in session.scalars(select(AafReject))}
    ine = rejects[("AAF-INE-PARTAGE", "1000308")]
    assert ine.uai == "0999001W" and ine.line and ine.attribute == "ENTEleveINE"
    assert ine.raw_value == "110000001AB"
    assert "déjà attribué à l'élève 1000101 (MARTIN Léa)" in ine.message
    assert "SIECLE" in ine.action
    assert ine.raw_xml.startswith("<addRequest>") and "<id>1000308</id>" in ine.raw_xml
    modified = rejects[("AAF-INE-MODIFIE", "1000102")]
    assert "110000002AB devient 110000099ZZ" in modified.message
    assert "<modifyRequest>" in modified.raw_xml  # raw XML found again for a late decision
    unknown = rejects[("AAF-ATTRIBUT-INCONNU", "1000310")]
    assert "ENTEleveAttributFutur" in unknown.message and "2 occurrences" in unknown.message
    orphan = rejects[("AAF-RESPONSABLE-ORPHELIN", "3000900")]  # CRLF file, decided late
    assert orphan.raw_xml.startswith("<addRequest>") and orphan.raw_xml.endswith("</addRequest>")
    assert "<id>3000900</id>" in orphan.raw_xml and "Gérard" in orphan.raw_xml
    uai = rejects[("AAF-UAI-INVALIDE", "7003")]
    assert uai.raw_value == "0999003A" and "la lettre clé devrait être Y" in uai.message
    for reject in rejects.values():
        assert reject.message and reject.action and reject.severity in (
            "erreur", "avertissement", "information")


def test_directory_after_the_delivery(database: Database) -> None:
    import_delivery(database, [DELIVERY])
    with database.session() as session:
        college = session.scalar(select(Establishment).where(Establishment.uai == "0999001W"))
        assert college is not None and college.aaf_jointure == "7001"
        # Classes exist only from students: 3C (teacher only) is not created.
        codes = set(session.scalars(select(SchoolClass.code).where(
            SchoolClass.establishment_id == college.id)))
        assert codes == {"6A", "6B", "5A", "4Z"}
        labels = dict(session.execute(select(SchoolClass.code, SchoolClass.label).where(
            SchoolClass.establishment_id == college.id)).all())
        assert labels["6A"] == "6ÈME A"
        # Class rubrics for the new classes, with the portal's rights.
        rubric = session.scalar(select(Rubric).join(SchoolClass, SchoolClass.id == Rubric.class_id)
                                .where(SchoolClass.code == "6A", Rubric.kind == RubricKind.CLASS))
        assert rubric is not None and rubric.name.startswith("Classe 6A ")
        rights = {(r.person_id, r.role) for r in session.scalars(
            select(RubricRight).where(RubricRight.rubric_id == rubric.id))}
        teacher = person(session, "2000101")
        assert (teacher.id, RubricRole.MANAGER) in rights  # head teacher
        assert (teacher.id, RubricRole.WRITER) in rights
        assert (person(session, "1000101").id, RubricRole.VISITOR) in rights
        # Students, their relatives with legal roles, teachers, head teachers.
        lea = person(session, "1000101")
        assert lea.kind is PersonKind.STUDENT and lea.first_name == "Léa"
        assert lea.ine == "110000001AB" and str(lea.birth_date) == "2014-03-02"
        links = {(session.get(Person, link.relative_id).aaf_jointure, link.link_code,
                  link.legal_responsibility)
                 for link in session.scalars(select(StudentRelative).where(
                     StudentRelative.student_id == lea.id))}
        assert links == {("3000101", "20", 1), ("3000151", "10", 1)}
        assert class_codes(session, "2000101", ClassRole.TEACHER) == {"6A", "6B"}
        heads = session.scalars(select(HeadTeacher).where(HeadTeacher.teacher_id == teacher.id))
        assert [session.get(SchoolClass, h.class_id).code for h in heads] == ["6A"]
        profiles = {p.profile.value for p in session.scalars(
            select(PersonProfile).where(PersonProfile.person_id == teacher.id))}
        assert profiles == {"National_ENS"}
        director = person(session, "2000103")
        assert director.kind is PersonKind.STAFF and director.birth_date is None
        assert {p.profile.value for p in session.scalars(select(PersonProfile).where(
            PersonProfile.person_id == director.id))} == {"National_DIR"}
        assert person(session, "2000105").establishment_id is None  # rectorat staff
        # Groups from students only, teachers attached to them.
        latin = session.scalar(select(Group).where(Group.code == "LATIN"))
        assert latin is not None and latin.kind is GroupKind.AAF and latin.name == "LATIN 2NDE"
        members = {session.get(Person, m.person_id).aaf_jointure for m in session.scalars(
            select(GroupMembership).where(GroupMembership.group_id == latin.id))}
        assert members == {"1000201", "1000202", "2000104"}
        # Encodings: HTML entity and numeric references decoded.
        anais = person(session, "1000317")
        assert (anais.last_name, anais.first_name) == ("CLÉMENT", "Anaïs")
        assert session.scalar(select(Subject.label).where(Subject.code == "061300")) == \
            "MATHÉMATIQUES"
        # Refused records are not in the directory.
        for jointure in ("1000301", "1000302", "1000303", "1000304", "1000305", "1000308",
                         "3000900", "3000116", "1000312", "1000313"):
            assert session.scalar(select(Person.id).where(Person.aaf_jointure == jointure)) is None
        # Kept with a warning: title cut to the column, no class.
        assert person(session, "1000316").title == "Mademois"
        assert class_codes(session, "1000306") == set()


def test_delta_modify_and_delete(database: Database) -> None:
    import_delivery(database, [DELIVERY])
    with database.session() as session:
        assert class_codes(session, "1000105") == {"6B"}  # modifyRequest replaced the class
        assert person(session, "1000102").ine == "110000099ZZ"
        assert person(session, "1000102").first_name == "Noé"  # untouched attributes stay
        assert class_codes(session, "1000103") == {"6A"}  # invalid operation: not applied
        deleted = person(session, "1000115")
        assert deleted.disappeared_at is not None  # flagged, not deleted
        assert person(session, "1000114").disappeared_at is None


def test_header_and_files_are_recorded(database: Database) -> None:
    result = import_delivery(database, [DELIVERY])
    with database.session() as session:
        row = session.get(AafImport, result.import_id)
        assert row is not None and row.delivery_type == "Complet+Delta"
        assert '"versionAF": "AAF-VE2407"' in row.header
        files = list(session.scalars(select(AafImportFile).order_by(AafImportFile.position)))
        assert [f.kind for f in files] == ["EtabEducNat", "MatiereEducNat", "MefEducNat", "Eleve",
                                           "PersRelEleve", "PersEducNat", "Eleve"]
        assert files[0].declared_encoding == "ISO-8859-1" and files[2].declared_encoding == ""
        assert files[-1].generated_on == "19/08/2026" and len(files[0].sha256) == 64


def test_importing_twice_changes_nothing_more(database: Database) -> None:
    import_delivery(database, [DELIVERY])
    before = table_counts(database)
    second = import_delivery(database, [DELIVERY], reimport=True)  # applied again on purpose
    after = table_counts(database)
    for table in ("people", "classes", "class_memberships", "student_relatives", "rubrics",
                  "rubric_rights", "person_profiles", "group_memberships", "head_teachers"):
        assert after[table] == before[table], table
    college = next(s for s in second.establishments if s["uai"] == "0999001W")
    assert college["created"] == 0 and college["classes_created"] == 0


def test_absent_from_a_complet_is_flagged_then_restored(database: Database, tmp_path: Path) -> None:
    folder = tmp_path / "complet"
    folder.mkdir()
    for path in DELIVERY.glob("ENT_99_Complet_*"):
        shutil.copy(path, folder)
    import_delivery(database, [folder])
    eleve = folder / "ENT_99_Complet_20260818_Eleve_0000.xml"
    original = eleve.read_bytes()
    start = original.index(b"<addRequest>", original.index(b"<id>1000110</id>") - 200)
    end = original.index(b"</addRequest>", start) + len(b"</addRequest>")
    eleve.write_bytes(original[:start] + original[end:])
    result = import_delivery(database, [folder])
    college = next(s for s in result.establishments if s["uai"] == "0999001W")
    assert college["flagged_absent"] == 1
    with database.session() as session:
        assert person(session, "1000110").disappeared_at is not None
        assert person(session, "1000109").disappeared_at is None
    eleve.write_bytes(original)
    # The first Complet again: already imported, so applied again on purpose (--reimport).
    result = import_delivery(database, [folder], reimport=True)
    college = next(s for s in result.establishments if s["uai"] == "0999001W")
    assert college["restored"] == 1
    with database.session() as session:
        assert person(session, "1000110").disappeared_at is None


def test_a_delta_never_flags_absent_people(database: Database) -> None:
    import_delivery(database, [DELIVERY])
    result = import_delivery(database, [DELIVERY / "ENT_99_Delta_20260819_Eleve_0000.xml"])
    assert all(s["flagged_absent"] == 0 for s in result.establishments if s["uai"])


@pytest.mark.parametrize("bad", ["tronque_EtabEducNat_0000.xml", "entites_internes_Eleve_0000.xml",
                                 "encodage_faux_Eleve_0000.xml"])
def test_a_broken_file_leaves_the_database_unchanged(database: Database, tmp_path: Path,
                                                     bad: str) -> None:
    import_delivery(database, [DELIVERY])
    before = table_counts(database)
    folder = tmp_path / "livraison"
    shutil.copytree(DELIVERY, folder)
    # The broken file comes last in the order: everything before it was applied, then undone.
    kind = bad.rsplit("_", 2)[-2]
    shutil.copy(REFUSED / bad, folder / f"ENT_99_Delta_20260820_{kind}_0000.xml")
    with pytest.raises(AafFileError):
        import_delivery(database, [folder])
    assert table_counts(database) == before


def test_dry_run_changes_nothing(database: Database) -> None:
    before = table_counts(database)
    result = import_delivery(database, [DELIVERY], dry_run=True)
    assert result.dry_run and result.import_id is None
    assert result.rejects_by_code["AAF-INE-PARTAGE"] == 1
    assert table_counts(database) == before


def test_relatives_of_a_refused_student_are_not_orphans(database: Database, tmp_path: Path) -> None:
    import_delivery(database, [DELIVERY])
    with database.session() as session:
        # 3000116 is refused for its empty first name: 1000116 gets no "unknown relative" warning.
        codes = {r.code for r in session.scalars(select(AafReject).where(
            AafReject.record_id == "1000116"))}
        assert codes == set()
        assert session.scalar(select(func.count()).select_from(StudentRelative).where(
            StudentRelative.student_id == person(session, "1000116").id)) == 0


def test_delta_on_staff_and_structures(database: Database, tmp_path: Path) -> None:
    import_delivery(database, [DELIVERY])
    delta = tmp_path / "ENT_99_Delta_20260821_PersEducNat_0000.xml"
    delta.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n<ficAlimMENESR>\n'
        '<modifyRequest><operationalAttributes><attr name="categoriePersonne"><value>PersEducNat'
        '</value></attr></operationalAttributes><identifier><id>2000101</id></identifier>'
        '<modifications><modification name="ENTAuxEnsClassesMatieres" operation="replace">'
        '<value>7001$6B$020700</value></modification></modifications></modifyRequest>\n'
        '</ficAlimMENESR>\n', encoding="utf-8")
    structures = tmp_path / "ENT_99_Delta_20260821_EtabEducNat_0000.xml"
    structures.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<ficAlimMENESR>\n'
        '<modifyRequest><operationalAttributes><attr name="categorieStructure"><value>EtabEducNat'
        '</value></attr></operationalAttributes><identifier><id>7000</id></identifier>'
        '<modifications><modification name="l" operation="replace"><value>NOUVELLEVILLE</value>'
        '</modification></modifications></modifyRequest>\n</ficAlimMENESR>\n', encoding="utf-8")
    result = import_delivery(database, [tmp_path])
    assert result.records == {"total": 2, "imported": 2, "refused": 0, "skipped": 0}
    with database.session() as session:
        teacher = person(session, "2000101")
        assert teacher.kind is PersonKind.TEACHER  # not carried by the modification: unchanged
        assert class_codes(session, "2000101", ClassRole.TEACHER) == {"6B"}
        assert teacher.first_name == "Claire"
        # The rectorat stays an administration: a modification does not make it a school.
        assert session.scalar(select(func.count()).select_from(Establishment)) == 2


def test_requests_on_one_person_apply_in_file_order(database: Database, tmp_path: Path) -> None:
    import_delivery(database, [DELIVERY])
    add = ('<addRequest><operationalAttributes><attr name="categoriePersonne"><value>Eleve'
           '</value></attr></operationalAttributes><identifier><id>1000500</id></identifier>'
           '<attributes><attr name="ENTPersonJointure"><value>1000500</value></attr>'
           '<attr name="sn"><value>NOUVEAU</value></attr><attr name="givenName"><value>Yann'
           '</value></attr><attr name="ENTPersonDateNaissance"><value>01/01/2014</value></attr>'
           '<attr name="ENTPersonStructRattach"><value>7001</value></attr>'
           '<attr name="ENTEleveClasses"><value>7001$6A</value></attr></attributes></addRequest>\n')
    modify = ('<modifyRequest><operationalAttributes><attr name="categoriePersonne"><value>Eleve'
              '</value></attr></operationalAttributes><identifier><id>1000500</id></identifier>'
              '<modifications><modification name="ENTEleveClasses" operation="replace">'
              '<value>7001$5A</value></modification></modifications></modifyRequest>\n')
    delete = ('<deleteRequest><operationalAttributes><attr name="categoriePersonne"><value>Eleve'
              '</value></attr></operationalAttributes><identifier><id>{id}</id></identifier>'
              '</deleteRequest>\n')
    path = tmp_path / "ENT_99_Delta_20260822_Eleve_0000.xml"
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<ficAlimMENESR>\n' + add + modify
                    + delete.format(id="1000114") + add.replace("1000500", "1000114")
                    .replace("NOUVEAU", "REVENU") + "</ficAlimMENESR>\n", encoding="utf-8")
    result = import_delivery(database, [path])
    assert result.records == {"total": 4, "imported": 4, "refused": 0, "skipped": 0}
    with database.session() as session:
        assert class_codes(session, "1000500") == {"5A"}
        back = person(session, "1000114")
        assert back.last_name == "REVENU" and back.disappeared_at is None
