"""Timetable readers on real-format files: EDT container and payload, UDT, STS-web, safety."""

from __future__ import annotations

import datetime as dt
import zlib
from pathlib import Path

import pytest
from timetable_support import KEY, PARTNER, REFERENCE, SAMPLES, UAI

from yearchange_tui.timetable import edt
from yearchange_tui.timetable.reader import PartnerKey, inspect_timetable
from yearchange_tui.timetable.sts import parse_sts
from yearchange_tui.timetable.udt import open_zip, parse_udt
from yearchange_tui.timetable.xmlsafe import TimetableFileError

LACLASSE = REFERENCE / "laclasse-com_service-cahiertextes"
OPEN_ENT = REFERENCE / "OPEN-ENT-NG_edt"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(),
                                     reason="échantillons de référence absents")
CLEAR = SAMPLES / "edt" / f"Edt_To_{PARTNER}_{UAI}_Enclair.xml"


def generated_key_pair() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


# -- EDT container ---------------------------------------------------------------------------


@needs_reference
def test_reference_container_header_is_read_without_key() -> None:
    path = LACLASSE / "Edt_To_LaclasseCom_0134567A.xml"
    container = edt.read_container(path, path.name)
    assert container.header() == {
        "VERSION": "1.0", "LOGICIEL": "PRONOTE Monoposte-PRONOTE 2013 - 0.5.14",
        "UAI": "0134567A", "DATEHEURE": container.created_at,
        "NOMETABLISSEMENT": "COLLEGE INDEX EDUCATION", "CODEPOSTALVILLE": "13013",
        "PARTENAIRES": ["INDEXEDUCATION", "LaclasseCom"], "COMPRESSE": True}
    assert container.created_at.startswith("2014-05-20T10:19:08")
    inspection = inspect_timetable(path)
    assert inspection.format == "edt-chiffre" and inspection.data is None
    assert inspection.refusal is not None
    # PRONOTE 2013, read in the header: refused on it before any key is asked for.
    assert inspection.refusal.code == "EDT-VERSION-TROP-ANCIENNE"


def test_a_container_built_with_a_generated_key_pair_decrypts() -> None:
    private, public = generated_key_pair()
    payload = CLEAR.read_bytes()
    sealed = edt.seal_container(payload, [("PARTENAIRE1", public), ("AUTRE", public)],
                                logiciel="EDT Monoposte-EDT 2020 - 1.2.3", uai=UAI,
                                created_at=dt.datetime(2026, 8, 25, 10, tzinfo=dt.UTC))
    container = edt.read_container(sealed, "conteneur.xml")
    assert container.partners == ["PARTENAIRE1", "AUTRE"] and container.uai == UAI
    assert edt.decrypt_container(container, private, "PARTENAIRE1") == payload
    plain = edt.seal_container(payload, [("P", public)], logiciel="EDT 2020", uai=UAI,
                               compress=False)
    assert edt.decrypt_container(edt.read_container(plain, "x"), private, "P") == payload


def test_decryption_failures_have_their_codes() -> None:
    private, public = generated_key_pair()
    other_private, _other_public = generated_key_pair()
    sealed = edt.seal_container(CLEAR.read_bytes(), [("P", public)], logiciel="EDT 2020",
                                uai=UAI)
    container = edt.read_container(sealed, "c.xml")
    cases = [(lambda: edt.decrypt_container(container, private, "ABSENT"),
              "EDT-DECHIFFREMENT-IMPOSSIBLE", "aucune clé pour le partenaire"),
             (lambda: edt.decrypt_container(container, other_private, "P"),
              "EDT-DECHIFFREMENT-IMPOSSIBLE", "ne correspond pas"),
             (lambda: edt.decrypt_container(container, b"pas une cle", "P"),
              "EDT-DECHIFFREMENT-IMPOSSIBLE", "illisible")]
    for call, code, words in cases:
        with pytest.raises(TimetableFileError) as caught:
            call()
        assert caught.value.code == code and words in caught.value.message
    altered = edt.read_container(sealed, "c.xml")
    altered._verification = "AAAA" + altered._verification[4:]
    with pytest.raises(TimetableFileError) as caught:
        edt.decrypt_container(altered, private, "P")
    assert caught.value.code == "EDT-VERIFICATION-ECHEC"
    truncated = edt.read_container(sealed, "c.xml")
    truncated._content = truncated._content[:-8]
    with pytest.raises(TimetableFileError) as caught:
        edt.decrypt_container(truncated, private, "P")
    assert caught.value.code in ("EDT-CONTENU-INVALIDE", "EDT-DECHIFFREMENT-IMPOSSIBLE")


def test_a_zlib_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    private, public = generated_key_pair()
    sealed = edt.seal_container(b"<a/>" + b" " * 200_000, [("P", public)], logiciel="EDT 2020",
                                uai=UAI)
    monkeypatch.setattr(edt, "MAX_PAYLOAD_BYTES", 100_000)
    with pytest.raises(TimetableFileError) as caught:
        edt.decrypt_container(edt.read_container(sealed, "c.xml"), private, "P")
    assert caught.value.code == "EDT-CONTENU-INVALIDE"
    assert len(zlib.compress(b" " * 200_000)) < 1000


def test_sample_containers_open_with_the_test_key() -> None:
    key = PartnerKey(PARTNER, KEY.read_bytes(), "test")
    inspection = inspect_timetable(SAMPLES / "edt" / f"Edt_To_{PARTNER}_{UAI}_EDT2020.xml",
                                   partner_key=key)
    assert inspection.refusal is None and inspection.verdict is not None
    assert inspection.verdict.version is not None
    assert (inspection.verdict.version.label, inspection.verdict.version.source) == \
        ("EDT 2020", "fichier")
    assert inspection.data is not None and len(inspection.data.courses) == 12


# -- EDT payload -----------------------------------------------------------------------------


def test_sample_payload() -> None:
    header, data = edt.parse_payload(CLEAR, CLEAR.name)
    assert (header.version, header.uai, data.school_year_start) == ("1.1", UAI, 2026)
    assert {c.code for c in data.classes.values()} == {"6A", "6B", "5A", "3A", "4Z"}
    assert data.groups["1"].class_keys == ["3"]  # LAT5: through the part of 5A
    assert {s.display for s in data.students.values() if "1" in s.group_keys} == {
        "DUPONT Jules", "ETIENNE Lina", "FANTOME Alix"}
    weeks = {c.weeks for c in data.courses if c.weeks is not None}
    assert len(weeks) == 3
    week_a, week_b = sorted((w for w in weeks if len(w) < 30), key=min)
    assert not week_a & week_b and len(week_a | week_b) == max(len(w) for w in weeks)
    monday = next(c for c in data.courses if c.weekday == 1 and c.starts_at == dt.time(10))
    assert monday.ends_at == dt.time(12)
    assert {p.code for p in data.problems} == {"EDT-REFERENCE-INCONNUE", "EDT-COURS-HORS-GRILLE",
                                               "EDT-COURS-INCOMPLET"}


@needs_reference
def test_reference_clear_payload() -> None:
    path = LACLASSE / "Edt_To_LaclasseCom_0134567A_Enclair.xml"
    header, data = edt.parse_payload(path, path.name)
    assert (header.version, header.uai, data.school_year_start) == ("1.1", "0134567A", 2013)
    assert len(data.classes) == 16 and len(data.students) == 426
    assert data.groups["4"].code == "3ABCD GREC" and len(data.groups["4"].class_keys) == 3
    assert len(data.courses) > 600 and not any(p.code == "EDT-REFERENCE-INCONNUE"
                                                for p in data.problems)
    # The mask 35132630760702, « Domaine : [1..7,10..16,19..25,28..33,36..44] » counted from
    # 2013-09-02, is these ISO weeks (holidays left out).
    documented = frozenset([*range(36, 43), *range(45, 52), *range(2, 9), *range(11, 17),
                            *range(19, 28)])
    assert documented in {c.weeks for c in data.courses}


# -- UnDeuxTemps -------------------------------------------------------------------------------


def test_sample_udt() -> None:
    data = parse_udt(open_zip(SAMPLES / "udt" / f"{UAI}_20260825100000_UDT.zip"))
    assert data.school_year_start == 2026 and data.first_day == dt.date(2026, 9, 1)
    assert len(data.courses) == 11
    two_hours = [c for c in data.courses if c.ends_at == dt.time(12) and c.weekday == 1]
    assert {c.subject_key for c in two_hours} == {"MATHS", "AGL1"}
    maths, english = sorted(two_hours, key=lambda c: c.subject_key != "MATHS")
    assert maths.weeks and english.weeks and not maths.weeks & english.weeks
    latin = next(c for c in data.courses if c.group_keys)
    assert latin.group_keys == ["LAT5"] and data.groups["LAT5"].class_keys == ["5A"]
    assert data.teachers["2"].directory_ids == ("2000102",)
    assert data.students["4"].group_keys == {"LAT5"}


@pytest.mark.parametrize(("first_day", "school_year"), [("31/08/2026", 2026),
                                                        ("01/09/2026", 2026)])
def test_udt_without_a_year_takes_the_year_its_first_day_opens(first_day: str,
                                                               school_year: int) -> None:
    source = open_zip(SAMPLES / "udt" / f"{UAI}_20260825100000_UDT.zip")
    label, calendar = source.files["udcal_24.xml"]
    calendar = calendar.replace(b"<annee>2026</annee>", b"").replace(
        b"01/09/2026", first_day.encode())
    assert b"<annee>" not in calendar and first_day.encode() in calendar
    source.files["udcal_24.xml"] = (label, calendar)
    data = parse_udt(source)
    assert data.school_year_start == school_year


# -- STS-web -----------------------------------------------------------------------------------


def test_sample_sts_alone_and_as_a_pair() -> None:
    sts_emp = SAMPLES / "sts" / f"sts_emp_{UAI}_2026.xml"
    emp_sts = SAMPLES / "sts" / f"emp_sts_{UAI}_2026.xml"
    alone, roots = parse_sts([(sts_emp, sts_emp.name)])
    assert roots == ["STS_EDT"] and not alone.courses and len(alone.services) == 10
    assert (alone.first_day, alone.last_day) == (dt.date(2026, 9, 1), dt.date(2027, 8, 31))
    assert alone.teachers["2000102"].last_name == "NOËL"  # ISO-8859-15 honoured
    pair, roots = parse_sts([(sts_emp, sts_emp.name), (emp_sts, emp_sts.name)])
    assert roots == ["STS_EDT", "EDT_STS"] and len(pair.courses) == 12 and not pair.services
    assert set(pair.alternations) == {"H", "SA", "SB"}


@needs_reference
@pytest.mark.parametrize("case", [f"case{n}" for n in range(1, 9)])
def test_reference_sts_cases(case: str) -> None:
    folder = OPEN_ENT / case
    data, roots = parse_sts([(folder / "sts_emp.xml", "sts_emp.xml"),
                             (folder / "emp_sts.xml", "emp_sts.xml")])
    assert roots == ["STS_EDT", "EDT_STS"]
    assert (data.uai, data.school_year_start) == ("0771991W", 2018)
    expected_courses = {"case7": 2}.get(case, 1)
    assert len(data.courses) == expected_courses
    assert data.teachers["69881"].display == "DOE Jane"


@needs_reference
def test_reference_parsing_error_case() -> None:
    with pytest.raises(TimetableFileError) as caught:
        inspect_timetable(OPEN_ENT / "parsing-error-case")
    assert (caught.value.code, caught.value.file, caught.value.line) == \
        ("EDT-XML-MALFORME", "emp_sts.xml", 82)


# -- refused files -------------------------------------------------------------------------------


REFUSED = {
    "entites_internes.xml": "EDT-DTD-INTERDITE",
    "entite_externe.xml": "EDT-DTD-INTERDITE",
    "entite_inconnue.xml": "EDT-ENTITE-INTERDITE",
    "tronque.xml": "EDT-XML-MALFORME",
    "binaire.xml": "EDT-FICHIER-BINAIRE",
    "encodage_faux.xml": "EDT-ENCODAGE-INVALIDE",
    "racine_inconnue.xml": "EDT-FORMAT-INCONNU",
    f"{UAI}_20260825100000_chemin_UDT.zip": "EDT-ARCHIVE-INVALIDE",
    f"{UAI}_20260825100000_bombe_UDT.zip": "EDT-ARCHIVE-INVALIDE",
    f"{UAI}_20260825100000_incomplet_UDT.zip": "EDT-FICHIERS-MANQUANTS",
    "pas_un_zip_UDT.zip": "EDT-FICHIER-BINAIRE",
    "conteneur_altere.xml": "EDT-VERIFICATION-ECHEC",
    "conteneur_autre_cle.xml": "EDT-DECHIFFREMENT-IMPOSSIBLE",
    "conteneur_autre_partenaire.xml": "EDT-DECHIFFREMENT-IMPOSSIBLE",
}


def test_every_refused_sample_is_documented() -> None:
    assert {p.name for p in (SAMPLES / "refuses").iterdir()} == set(REFUSED)


@pytest.mark.parametrize(("name", "code"), sorted(REFUSED.items()))
def test_refused_files(name: str, code: str) -> None:
    key = PartnerKey(PARTNER, KEY.read_bytes(), "test")
    try:
        inspection = inspect_timetable(SAMPLES / "refuses" / name, partner_key=key)
    except TimetableFileError as error:
        refusal = error
    else:
        assert inspection.refusal is not None
        refusal = inspection.refusal
    assert refusal.code == code
    assert refusal.message and refusal.action and "?" not in refusal.message


def test_missing_path_and_folders(tmp_path: Path) -> None:
    with pytest.raises(TimetableFileError) as caught:
        inspect_timetable(tmp_path / "absent.xml")
    assert caught.value.code == "EDT-FICHIER-INTROUVABLE" and "?" not in caught.value.message
    with pytest.raises(TimetableFileError) as caught:
        inspect_timetable(tmp_path)
    assert caught.value.code == "EDT-FORMAT-INCONNU"
    (tmp_path / "a.xml").write_bytes((SAMPLES / "sts" / f"sts_emp_{UAI}_2026.xml").read_bytes())
    (tmp_path / "b.xml").write_bytes((SAMPLES / "sts" / f"sts_emp_{UAI}_2026.xml").read_bytes())
    with pytest.raises(TimetableFileError) as caught:
        inspect_timetable(tmp_path)
    assert caught.value.code == "EDT-FORMAT-INCONNU" and "même sens" in caught.value.message


def test_identity_and_year_are_checked() -> None:
    inspection = inspect_timetable(CLEAR, expected_uai="0999002X")
    assert inspection.refusal is not None and inspection.refusal.code == "EDT-UAI-INCOHERENT"
    inspection = inspect_timetable(CLEAR, expected_uai=UAI, expected_year=2027)
    assert inspection.refusal is not None
    assert inspection.refusal.code == "EDT-ANNEE-INCOHERENTE"
    assert "2026-2027" in inspection.refusal.message
    udt = inspect_timetable(SAMPLES / "udt" / f"{UAI}_20260825100000_UDT.zip")
    assert (udt.uai, udt.uai_source) == (UAI, "nom du fichier")
