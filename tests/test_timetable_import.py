"""Timetable import on a real database: known rejects, versions, re-import, guards, safety."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from timetable_support import (
    KEY,
    PARTNER,
    REFERENCE,
    SAMPLES,
    UAI,
    add_manual_rows,
    build_directory,
    count_rows,
    snapshot,
)

from yearchange_tui.ent.database import Database, open_database
from yearchange_tui.ent.models import (
    Alternation,
    Course,
    Group,
    GroupKind,
    GroupMembership,
    ImportReport,
    ImportSource,
    Project,
    SchoolClass,
    TeachingService,
)
from yearchange_tui.importing.models import AafImport, AafReject
from yearchange_tui.timetable.declarations import set_declaration
from yearchange_tui.timetable.drop import process_drop_folder
from yearchange_tui.timetable.importer import (
    MODE_AUTOMATIC,
    REJECT_STORE_MODE,
    TimetableUsageError,
    import_timetable,
)
from yearchange_tui.timetable.models import TimetableDeclaration, TimetableImport
from yearchange_tui.timetable.reader import PartnerKey
from yearchange_tui.timetable.rules import RULES
from yearchange_tui.timetable.xmlsafe import TimetableFileError
from yearchange_tui.workflow.guards import (
    GUARD_IMPORT_FREEZE,
    GUARD_STEP_ORDER,
    GuardRefused,
    grant_override,
)
from yearchange_tui.workflow.models import AuditEntry, Step

CLEAR = SAMPLES / "edt" / f"Edt_To_{PARTNER}_{UAI}_Enclair.xml"
UDT_ZIP = SAMPLES / "udt" / f"{UAI}_20260825100000_UDT.zip"
STS = SAMPLES / "sts"
TEST_KEY = PartnerKey(PARTNER, KEY.read_bytes(), "clé de test")
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(),
                                     reason="échantillons de référence absents")

# What each sample export gives on the sample directory (documented in sample_data/README.md).
EXPECTED = {
    "edt": (CLEAR, "EDT 2020", {
        "EDT-CLASSE-INCONNUE": ["4Z"], "EDT-ENSEIGNANT-INCONNU": ["5"],
        "EDT-MATIERE-INCONNUE": ["ASTRO"], "EDT-REFERENCE-INCONNUE": ["9"],
        "EDT-COURS-HORS-GRILLE": [""], "EDT-COURS-INCOMPLET": [""],
        "EDT-COURS-SANS-ENSEIGNANT": [""], "EDT-ELEVE-INCONNU": ["100000199ZZ"]},
        {"services": 8, "cours": 9, "groupes": 1, "membres": 2, "alternances": 2}),
    "sts": (STS, "EDT 2020", {
        "EDT-CLASSE-INCONNUE": ["4Z"], "EDT-ENSEIGNANT-INCONNU": ["2999999"],
        "EDT-MATIERE-INCONNUE": ["999999"], "EDT-ALTERNANCE-INCONNUE": ["SX"],
        "EDT-COURS-HORS-GRILLE": [""]},
        {"services": 7, "cours": 9, "groupes": 1, "membres": 2, "alternances": 2}),
    "udt": (UDT_ZIP, "26", {
        "EDT-CLASSE-INCONNUE": ["4Z"], "EDT-ENSEIGNANT-INCONNU": ["5"],
        "EDT-MATIERE-INCONNUE": ["ASTRO"], "EDT-ELEVE-INCONNU": ["7"]},
        {"services": 7, "cours": 8, "groupes": 1, "membres": 2, "alternances": 2}),
}


@pytest.fixture
def database(database_url: str) -> Database:
    db = open_database(database_url)
    yield db
    db.dispose()


def forget_declarations(database: Database) -> None:
    """Drop the establishments' declared versions (to probe the policy one version at a time)."""
    with database.session() as session:
        session.execute(delete(TimetableDeclaration))


def rejects(database: Database, import_id: int | None) -> dict[str, list[str]]:
    with database.session() as session:
        found: dict[str, list[str]] = {}
        for row in session.scalars(select(AafReject).where(AafReject.import_id == import_id)
                                   .order_by(AafReject.id)):
            found.setdefault(row.code, []).append(row.record_id)
        return {code: sorted(ids) for code, ids in found.items()}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_sample_exports_import_with_their_known_rejects(database: Database, kind: str) -> None:
    path, version, expected_rejects, expected_created = EXPECTED[kind]
    establishment_id = build_directory(database)
    classes_before = count_rows(database, SchoolClass)
    result = import_timetable(database, path, UAI, declared_version=version)
    assert result.created == expected_created
    assert rejects(database, result.reject_import_id) == expected_rejects
    # the 4Z course, INCONNU's course, the ASTRO course, and the format's own broken courses
    errors = {"edt": 6, "sts": 4, "udt": 3}[kind]
    assert result.records_rejected == errors
    # A timetable import never creates a class: 4Z stays unknown.
    assert count_rows(database, SchoolClass) == classes_before
    with database.session() as session:
        report = session.get(ImportReport, result.import_report_id)
        assert report is not None and report.source is ImportSource.TIMETABLE
        option = session.scalar(select(Group).where(Group.kind == GroupKind.OPTION))
        assert option is not None and option.code == "LAT5"
        assert option.import_report_id == report.id  # marked as from the timetable
        assert session.scalar(select(TeachingService.id).where(
            TeachingService.group_id == option.id)) is not None
        members = set(session.scalars(select(GroupMembership.person_id).where(
            GroupMembership.group_id == option.id)))
        assert len(members) == 2
        store = session.get(AafImport, result.reject_import_id)
        assert store is not None and store.mode == REJECT_STORE_MODE
        assert store.source_kind == kind and store.error_count == errors
        for row in session.scalars(select(AafReject).where(
                AafReject.import_id == result.reject_import_id)):
            assert (row.uai, row.establishment_id) == (UAI, establishment_id)
            assert row.file_name and row.message and row.action
            assert "?" not in row.message + row.action  # every template value was given
            assert row.severity == RULES[row.code].severity.value
            if row.code not in ("EDT-VERSION-NON-DECLAREE",):
                assert row.line is not None and row.raw_xml
        unknown = session.scalar(select(AafReject).where(
            AafReject.import_id == result.reject_import_id,
            AafReject.code == "EDT-CLASSE-INCONNUE"))
        assert unknown is not None and "ne crée jamais de classe" in unknown.message
        alternations = {a.name for a in session.scalars(select(Alternation))}
        assert alternations == {"Semaine A", "Semaine B"}
        imported = session.get(TimetableImport, result.import_id)
        assert imported is not None and imported.mode == "manuel"
        assert imported.import_report_id == report.id


def test_edt_version_rows_from_the_file(database: Database) -> None:
    build_directory(database)
    outcomes = {}
    for year in (2017, 2018, 2019, 2020, 2021, 2023):
        path = SAMPLES / "edt" / f"Edt_To_{PARTNER}_{UAI}_EDT{year}.xml"
        before = snapshot(database)
        seen = []
        try:
            result = import_timetable(database, path, UAI, partner_key=TEST_KEY,
                                      declared_version="2020", on_inspected=seen.append)
        except TimetableFileError as error:
            outcomes[year] = error.code
            assert seen and seen[0].verdict is not None  # shown before anything is written
            assert snapshot(database) == before
            continue
        found = rejects(database, result.reject_import_id)
        outcomes[year] = result.inspection.verdict.outcome.value
        assert ("EDT-VERSION-DECLAREE-DIFFERENTE" in found) is (year != 2020)
        for code in ("EDT-VERSION-NON-SUPPORTEE", "EDT-VERSION-INCONNUE"):
            assert (code in found) is ({2018: "EDT-VERSION-NON-SUPPORTEE",
                                        2023: "EDT-VERSION-INCONNUE"}.get(year) == code)
    assert outcomes == {2017: "EDT-VERSION-TROP-ANCIENNE", 2018: "non-supportee",
                        2019: "supportee", 2020: "supportee",
                        2021: "EDT-VERSION-NON-ACTIVEE", 2023: "inconnue"}
    with database.session() as session:
        session.scalar(select(Project)).newest_timetable_versions_enabled = True
    result = import_timetable(database, SAMPLES / "edt" / f"Edt_To_{PARTNER}_{UAI}_EDT2021.xml",
                              UAI, partner_key=TEST_KEY)
    assert result.inspection.verdict.outcome.value == "supportee-activee"


def test_declared_versions_for_udt_and_sts(database: Database) -> None:
    build_directory(database)
    outcomes = {}
    for declared in (None, "23", "24", "25", "26", "27", "28"):
        forget_declarations(database)
        try:
            result = import_timetable(database, UDT_ZIP, UAI, declared_version=declared)
        except TimetableFileError as error:
            outcomes[declared] = error.code
            continue
        outcomes[declared] = result.inspection.verdict.outcome.value
        codes = set(rejects(database, result.reject_import_id))
        warning = {"24": "EDT-VERSION-NON-SUPPORTEE",
                   "28": "EDT-VERSION-INCONNUE"}.get(declared)
        assert {c for c in codes if c.startswith("EDT-VERSION")} == ({warning} if warning
                                                                     else set())
    # Neither in the file nor declared: the policy cannot apply, refused (seed §2.2.3).
    assert outcomes == {None: "EDT-VERSION-A-DECLARER", "23": "EDT-VERSION-TROP-ANCIENNE",
                        "24": "non-supportee", "25": "supportee", "26": "supportee",
                        "27": "EDT-VERSION-NON-ACTIVEE", "28": "inconnue"}
    forget_declarations(database)
    sts = import_timetable(database, STS / f"sts_emp_{UAI}_2026.xml", UAI,
                           declared_version="UDT 2020")
    assert sts.inspection.verdict is not None
    forget_declarations(database)
    with pytest.raises(TimetableFileError) as caught:
        import_timetable(database, STS, UAI, declared_version="EDT 2016")
    assert caught.value.code == "EDT-VERSION-TROP-ANCIENNE"
    assert sts.inspection.verdict.label.startswith("UDT 26 (2020), déclarée — ✓")


def test_reimport_replaces_only_what_timetable_imports_created(database: Database) -> None:
    establishment_id = build_directory(database)
    manual = add_manual_rows(database, establishment_id)
    first = import_timetable(database, CLEAR, UAI, declared_version="2020")
    counts = {model.__tablename__: count_rows(database, model)
              for model in (TeachingService, Course, Group, Alternation, GroupMembership)}
    set_declaration(database, UAI, "udt", "26")  # the establishment changed software
    second = import_timetable(database, UDT_ZIP, UAI)
    assert second.replaced == {"cours": 9, "services": 8, "groupes": 1, "alternances": 2}
    third = import_timetable(database, UDT_ZIP, UAI, declared_version="26")  # agrees
    assert third.replaced == {"cours": 8, "services": 7, "groupes": 1, "alternances": 2}
    assert third.created == second.created
    with database.session() as session:
        # What was entered by hand is still there; only one set of timetable rows remains.
        assert session.get(TeachingService, manual["service"]) is not None
        assert session.get(Course, manual["course"]) is not None
        assert session.get(Group, manual["group"]) is not None
        timetable_reports = select(ImportReport.id).where(
            ImportReport.source == ImportSource.TIMETABLE)
        assert set(session.scalars(select(Course.import_report_id).where(
            Course.import_report_id.in_(timetable_reports)))) == {third.import_report_id}
        assert session.scalar(select(Group.import_report_id).where(
            Group.kind == GroupKind.OPTION)) == third.import_report_id
    assert count_rows(database, Alternation) == 2
    assert counts["groups"] == count_rows(database, Group)
    assert first.import_id != third.import_id


def test_dry_run_changes_nothing(database: Database) -> None:
    build_directory(database)
    before = snapshot(database)
    result = import_timetable(database, STS, UAI, declared_version="EDT 2020", dry_run=True)
    assert result.dry_run and result.created["services"] == 7 and result.import_id is None
    assert snapshot(database) == before


def test_hostile_and_broken_files_change_nothing(database: Database, tmp_path: Path) -> None:
    build_directory(database)
    import_timetable(database, CLEAR, UAI, declared_version="2020")
    before = snapshot(database)
    codes = {}
    for path in sorted((SAMPLES / "refuses").iterdir()):
        with pytest.raises(TimetableFileError) as caught:
            import_timetable(database, path, UAI, partner_key=TEST_KEY)
        codes[path.name] = caught.value.code
        assert caught.value.code in RULES
        assert RULES[caught.value.code].severity.value == "fichier"
    assert snapshot(database) == before
    assert codes["entites_internes.xml"] == "EDT-DTD-INTERDITE"
    assert codes["conteneur_altere.xml"] == "EDT-VERIFICATION-ECHEC"
    with database.session() as session:
        refusals = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "import-timetable", AuditEntry.outcome == "refused")).all()
        assert len(refusals) == len(codes)
    with pytest.raises(TimetableFileError) as caught:
        import_timetable(database, CLEAR, "0999002X")
    assert caught.value.code == "EDT-UAI-INCOHERENT"
    with pytest.raises(TimetableFileError) as caught:
        import_timetable(database, SAMPLES / "edt" / f"Edt_To_{PARTNER}_{UAI}_EDT2020.xml", UAI)
    assert caught.value.code == "EDT-CLE-PARTENAIRE-ABSENTE"
    anonymous = tmp_path / "export_UDT.zip"  # no UAI in the name: only --uai says which
    shutil.copy(UDT_ZIP, anonymous)
    for uai, words in (("0999001X", "invalide"), ("0999002X", "inconnu")):
        with pytest.raises(TimetableUsageError) as usage:
            import_timetable(database, anonymous, uai)
        assert words in str(usage.value)
    assert snapshot(database) == before


def test_guards(database: Database) -> None:
    establishment_id = build_directory(database, steps_done=())
    before = snapshot(database)
    with pytest.raises(GuardRefused) as caught:
        import_timetable(database, CLEAR, UAI, declared_version="2020")
    assert caught.value.code == GUARD_STEP_ORDER
    with database.session() as session:
        from yearchange_tui.workflow.units import current_school_year, finish_unit, get_unit

        year = current_school_year(session)
        for step in (Step.PURGE_TRASH, Step.ARCHIVE):
            finish_unit(get_unit(session, establishment_id, year.id, step), {})
    with pytest.raises(GuardRefused) as caught:
        import_timetable(database, CLEAR, UAI, declared_version="2020")
    assert caught.value.code == GUARD_IMPORT_FREEZE
    assert "de l'étape 2" in caught.value.message
    after_refusals = snapshot(database)
    assert {k: v for k, v in after_refusals.items() if k != "step_units"} == \
        {k: v for k, v in before.items() if k != "step_units"}
    with database.session() as session:
        grant_override(session, GUARD_IMPORT_FREEZE, "correction demandée par le rectorat",
                       establishment_id)
    result = import_timetable(database, CLEAR, UAI, declared_version="2020")
    assert result.overridden and result.created["cours"] == 9
    with database.session() as session:
        done = session.scalar(select(AuditEntry).where(AuditEntry.action == "import-timetable",
                                                       AuditEntry.outcome == "done"))
        assert done is not None and done.override
        assert json.loads(done.details)["created"]["cours"] == 9


def test_manual_first_then_automatic_drop_folder(database: Database, tmp_path: Path) -> None:
    build_directory(database, automatic=False)
    with pytest.raises(TimetableFileError) as caught:
        import_timetable(database, UDT_ZIP, UAI, mode=MODE_AUTOMATIC)
    assert caught.value.code == "EDT-IMPORT-AUTO-INACTIF"
    with database.session() as session:
        session.scalar(select(Project)).automatic_timetable_import = True
    drop = tmp_path / "depot"
    drop.mkdir()
    shutil.copy(UDT_ZIP, drop / UDT_ZIP.name)
    (first,) = process_drop_folder(database, drop)
    assert (first.status, first.code, first.uai) == ("refusé", "EDT-PREMIER-IMPORT-MANUEL", UAI)
    assert Path(first.moved_to).parent.name == "refuses"
    assert Path(first.moved_to + ".refus.txt").read_text(encoding="utf-8").startswith(
        "[EDT-PREMIER-IMPORT-MANUEL]")
    import_timetable(database, UDT_ZIP, UAI, declared_version="26")  # the manual first import
    shutil.copy(UDT_ZIP, drop / ("b_" + UDT_ZIP.name))
    shutil.copy(CLEAR, drop / "a_clair.xml")
    (drop / ".cache").write_text("ignoré")
    outcomes = process_drop_folder(database, drop)
    # The manual import declared UDT 26: automatic mode applies it; an EDT export is refused.
    assert [(o.name, o.status, o.code) for o in outcomes] == [
        ("a_clair.xml", "refusé", "EDT-VERSION-DECLARATION-DIFFERENTE"),
        ("b_" + UDT_ZIP.name, "importé", "")]
    assert outcomes[0].uai == UAI  # read from the payload, the name has none
    assert sorted(p.name for p in drop.iterdir()) == [".cache", "importes", "refuses"]
    with database.session() as session:
        modes = list(session.scalars(select(TimetableImport.mode).order_by(TimetableImport.id)))
        imported = session.scalar(select(TimetableImport).order_by(TimetableImport.id.desc()))
    assert modes == ["manuel", "automatique"]
    assert imported.version_label == "UDT 26 (2020)"  # the declaration, never given by hand
    assert count_rows(database, Course) == 8


# -- reference samples --------------------------------------------------------------------------


OPEN_ENT = REFERENCE / "OPEN-ENT-NG_edt"


@needs_reference
def test_reference_sts_cases_known_outcomes(database: Database) -> None:
    """The OPEN-ENT-NG cases on a directory with class 3A (not 3B), Jane and John DOE,
    and subjects 020700 (not 043700)."""
    import datetime as dt

    build_directory(database, year_n=2017, uai="0771991W", classes=("3A",),
                    teachers=(("69881", "DOE", "Jane", dt.date(1975, 2, 27)),
                              ("153667", "DOE", "John", dt.date(1958, 9, 17))),
                    subjects=(("020700", "FRANCAIS", "FRANC"),), students=())
    outcomes = {}
    for case in [f"case{n}" for n in range(1, 9)]:
        try:
            result = import_timetable(database, OPEN_ENT / case, "0771991W",
                                      declared_version="EDT 2020")
        except TimetableFileError as refusal:  # no course importable: nothing written
            outcomes[case] = (refusal.code, refusal.params["detail"])
            continue
        outcomes[case] = (result.created["services"], result.created["cours"],
                          sorted(c for c in result.rejects_by_code
                                 if c != "EDT-VERSION-NON-DECLAREE"))
    one = (1, 1, [])
    group_of_3b = ("EDT-AUCUN-COURS", "causes : EDT-CLASSE-INCONNUE ×1")
    assert outcomes == {"case1": one, "case2": group_of_3b, "case3": one, "case4": group_of_3b,
                        "case5": one, "case6": group_of_3b,
                        "case7": (1, 1, ["EDT-CLASSE-INCONNUE", "EDT-MATIERE-INCONNUE"]),
                        "case8": one}
    before = snapshot(database)
    with pytest.raises(TimetableFileError) as caught:
        import_timetable(database, OPEN_ENT / "parsing-error-case", "0771991W")
    assert (caught.value.code, caught.value.line) == ("EDT-XML-MALFORME", 82)
    assert snapshot(database) == before
    with database.session() as session:
        course = session.scalar(select(Course))
        assert course is not None
        assert (course.weekday, course.starts_at.isoformat(), course.room) == (4, "14:02:00", "15")


@needs_reference
def test_reference_clear_edt_export_imports(database: Database, tmp_path: Path) -> None:
    """The 2013 clear EDT export imports once its directory exists. Its UAI 0134567A fails
    the UAI check letter (0134567U), so the test imports a copy carrying the valid UAI."""
    import datetime as dt

    from yearchange_tui.timetable.edt import parse_payload

    source = REFERENCE / "laclasse-com_service-cahiertextes" / \
        "Edt_To_LaclasseCom_0134567A_Enclair.xml"
    copy = tmp_path / "Edt_To_LaclasseCom_0134567U_Enclair.xml"
    copy.write_bytes(source.read_bytes().replace(b'UAI="0134567A"', b'UAI="0134567U"', 1))
    _header, data = parse_payload(copy, copy.name)
    codes = sorted({c.code for c in data.classes.values()})
    teachers = [t for t in data.teachers.values()]
    build_directory(
        database, year_n=2012, uai="0134567U", classes=tuple(codes[:-1]),
        teachers=tuple((f"P{t.key}", t.last_name, t.first_name, t.birth_date)
                       for t in teachers),
        subjects=tuple((f"B{s.key}", s.label, s.code) for s in data.subjects.values()),
        students=tuple((f"E{s.key}", s.ine or None, s.last_name, s.first_name,
                        s.birth_date or dt.date(2000, 1, 1), "") for s in
                       data.students.values()))
    result = import_timetable(database, copy, "0134567U", declared_version="EDT 2020")
    assert result.inspection.verdict is not None
    assert result.inspection.verdict.outcome.value == "supportee"
    assert result.created["cours"] > 500 and result.created["groupes"] > 10
    found = rejects(database, result.reject_import_id)
    # 100 Cours of the export hold a subject only (no teacher, class or group).
    assert set(found) == {"EDT-CLASSE-INCONNUE", "EDT-COURS-INCOMPLET"}
    assert len(found["EDT-COURS-INCOMPLET"]) == 100
    assert set(found["EDT-CLASSE-INCONNUE"]) == {codes[-1]}  # its courses and its groups
