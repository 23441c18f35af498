"""Tests of the sample académie's N+1 AAF delivery writer (real ficAlimMENESR format)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from lxml import etree

from yearchange_tui.sample.aaf_writer import (
    DTD_FILE_NAME,
    FILE_FORMATS,
    KINDS,
    MAX_RECORDS_PER_FILE,
    write_aaf_delivery,
)
from yearchange_tui.sample.roster import LEVELS, SampleAcademy, build_academy

FILE_NAME = re.compile(
    r"^ENT_(?P<academy>\d+)_Complet_(?P<date>\d{8})_(?P<kind>EtabEducNat|MatiereEducNat|"
    r"MefEducNat|Eleve|PersRelEleve|PersEducNat)_(?P<chunk>\d{4})\.xml$")
JOINTURE_ATTRIBUTE = {
    "EtabEducNat": "ENTStructureJointure",
    "MatiereEducNat": "ENTMatJointure",
    "MefEducNat": "ENTMefJointure",
    "Eleve": "ENTPersonJointure",
    "PersRelEleve": "ENTPersonJointure",
    "PersEducNat": "ENTPersonJointure",
}
OPERATIONAL = {
    "EtabEducNat": ("categorieStructure", "EtabEducNat"),
    "MatiereEducNat": ("categorieMatiere", "MatEducNat"),
    "MefEducNat": ("categorieMef", "MefEducNat"),
    "Eleve": ("categoriePersonne", "Eleve"),
    "PersRelEleve": ("categoriePersonne", "PersRelEleve"),
    "PersEducNat": ("categoriePersonne", "PersEducNat"),
}
# Attributes whose values start with a structure jointure (``struct$…``).
STRUCT_COMPOUNDS = (
    "ENTEleveClasses", "ENTEleveGroupes", "ENTAuxEnsClasses", "ENTAuxEnsGroupes",
    "ENTAuxEnsClassesMatieres", "ENTAuxEnsGroupesMatieres", "ENTAuxEnsClassesPrincipal",
    "ENTAuxEnsMEF", "ENTAuxEnsMatiereEnseignEtab", "ENTPersonFonctions",
)
# Attributes whose values are plain structure jointures.
STRUCT_IDS = ("ENTPersonStructRattach", "ENTEnsFonctionDir", "ENTEtablissementStructRattachFctl")


@dataclass
class ParsedRecord:
    """One addRequest as read back from a file."""

    path: Path
    category: tuple[str, str]
    identifier: str
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def values(self, name: str) -> list[str]:
        """Non-empty values of an attribute."""
        return [value for value in self.attributes.get(name, []) if value]

    def first(self, name: str) -> str:
        """First value of an attribute ("" when empty)."""
        values = self.attributes.get(name) or [""]
        return values[0]


@dataclass
class Delivery:
    """A written delivery and its records read back, by kind then identifier."""

    academy: SampleAcademy
    out_dir: Path
    paths: list[Path]
    records: dict[str, dict[str, ParsedRecord]]
    comments: dict[Path, list[str]]


def read_records(path: Path) -> tuple[list[ParsedRecord], list[str], str]:
    """Stream one AAF file; return its records, its comments and its root tag."""
    records: list[ParsedRecord] = []
    comments: list[str] = []
    root_tag = ""
    for event, element in etree.iterparse(
            str(path), events=("start", "end", "comment"), resolve_entities=False,
            no_network=True, load_dtd=False, huge_tree=False):
        if event == "start":
            if not root_tag:
                root_tag = element.tag
            continue
        if event == "comment":
            comments.append(element.text or "")
            continue
        if element.tag != "addRequest":
            continue
        (category_attr,) = element.find("operationalAttributes").findall("attr")
        record = ParsedRecord(
            path,
            (category_attr.get("name"), category_attr.findtext("value") or ""),
            element.findtext("identifier/id") or "",
        )
        for attr in element.find("attributes").findall("attr"):
            record.attributes[attr.get("name")] = [value.text or "" for value in attr]
        records.append(record)
        element.clear()
    return records, comments, root_tag


def kind_of(path: Path) -> str:
    match = FILE_NAME.match(path.name)
    assert match is not None, path.name
    return match.group("kind")


@pytest.fixture(scope="module")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> Delivery:
    academy = build_academy(2, seed=7, year=2025)
    out_dir = tmp_path_factory.mktemp("aaf")
    paths = write_aaf_delivery(academy, out_dir)
    records: dict[str, dict[str, ParsedRecord]] = {kind: {} for kind in KINDS}
    comments: dict[Path, list[str]] = {}
    for path in paths:
        if path.name == DTD_FILE_NAME:
            continue
        file_records, file_comments, root_tag = read_records(path)
        assert root_tag == "ficAlimMENESR"
        comments[path] = file_comments
        for record in file_records:
            assert record.identifier not in records[kind_of(path)], record.identifier
            records[kind_of(path)][record.identifier] = record
    return Delivery(academy, out_dir, paths, records, comments)


def xml_paths(delivery: Delivery) -> list[Path]:
    return [path for path in delivery.paths if path.suffix == ".xml"]


def structure_classes(record: ParsedRecord) -> set[str]:
    return {value.split("$")[0] for value in record.values("ENTStructureClasses")}


# --- determinism, names, chunks ------------------------------------------------------------


def test_same_roster_gives_byte_identical_files(tmp_path: Path) -> None:
    first = write_aaf_delivery(build_academy(2, seed=7, year=2025), tmp_path / "a")
    second = write_aaf_delivery(build_academy(2, seed=7, year=2025), tmp_path / "b")
    assert [path.name for path in first] == [path.name for path in second]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == \
        sorted(p.name for p in (tmp_path / "b").iterdir())
    for path_a, path_b in zip(first, second, strict=True):
        assert path_a.read_bytes() == path_b.read_bytes(), path_a.name


def test_all_kinds_the_dtd_and_real_file_names(delivery: Delivery) -> None:
    on_disk = sorted(path.name for path in delivery.out_dir.iterdir())
    assert on_disk == sorted(path.name for path in delivery.paths)
    assert (delivery.out_dir / DTD_FILE_NAME).is_file()
    chunks: dict[str, list[int]] = {}
    for path in xml_paths(delivery):
        match = FILE_NAME.match(path.name)
        assert match is not None, path.name
        assert match.group("academy") == delivery.academy.academy_code
        assert match.group("date") == delivery.academy.delivery_date.strftime("%Y%m%d") \
            == "20260818"
        chunks.setdefault(match.group("kind"), []).append(int(match.group("chunk")))
    assert set(chunks) == set(KINDS)
    for kind, numbers in chunks.items():
        assert numbers == list(range(len(numbers))), kind  # 0000, 0001… with no gap
    assert len(chunks["Eleve"]) >= 2
    assert len(chunks["PersRelEleve"]) >= 2


def test_chunks_respect_the_record_limit(delivery: Delivery) -> None:
    per_file = Counter(record.path for kind in KINDS for record in delivery.records[kind].values())
    for path in xml_paths(delivery):
        assert 0 < per_file[path] <= MAX_RECORDS_PER_FILE[kind_of(path)], path.name
    # Every chunk but the last of a kind is full.
    eleve_files = [path for path in xml_paths(delivery) if kind_of(path) == "Eleve"]
    assert per_file[eleve_files[0]] == MAX_RECORDS_PER_FILE["Eleve"]


def test_dtd_declares_the_grammar_and_validates_every_file(delivery: Delivery) -> None:
    dtd_text = (delivery.out_dir / DTD_FILE_NAME).read_text(encoding="ascii")
    assert "<!ENTITY" not in dtd_text
    dtd = etree.DTD(str(delivery.out_dir / DTD_FILE_NAME))
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False)
    for path in xml_paths(delivery):
        tree = etree.parse(str(path), parser)
        assert tree.docinfo.doctype == '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">'
        assert dtd.validate(tree), (path.name, dtd.error_log.filter_from_errors())


# --- envelope and records ------------------------------------------------------------------


def test_header_comment_like_2024_exports(delivery: Delivery) -> None:
    expected = (' versionAF="AAF-VE2407" versionSDET="Annexe 4bis version 6.4" '
                'codeAcademieExport="10" degre="2D" dateGenerationExport="18/08/2026" ')
    for path in xml_paths(delivery):
        assert delivery.comments[path][0] == expected, path.name
        lines = path.read_bytes().splitlines()
        root_line = next(i for i, line in enumerate(lines) if line == b"<ficAlimMENESR>")
        assert lines[root_line + 1] == f"<!--{expected}-->".encode("ascii")


def test_operational_attribute_and_identifier_match_the_kind(delivery: Delivery) -> None:
    for kind in KINDS:
        assert delivery.records[kind], kind
        for identifier, record in delivery.records[kind].items():
            assert record.category == OPERATIONAL[kind], (record.path.name, identifier)
            assert kind_of(record.path) == kind
            assert record.attributes[JOINTURE_ATTRIBUTE[kind]] == [identifier]


def test_declared_encodings_and_line_ends(delivery: Delivery) -> None:
    for path in xml_paths(delivery):
        file_format = FILE_FORMATS[kind_of(path)]
        data = path.read_bytes()
        first_line = data.split(b"\n", 1)[0].rstrip(b"\r")
        if file_format.declared_encoding is None:
            assert first_line.startswith(b"<!DOCTYPE"), path.name
        else:
            declaration = f'<?xml version="1.0" encoding="{file_format.declared_encoding}"?>'
            assert first_line == declaration.encode("ascii"), path.name
        crlf = data.count(b"\r\n")
        if file_format.newline == "\r\n":
            assert crlf == data.count(b"\n"), path.name
        else:
            assert crlf == 0, path.name
    expectations = {"EtabEducNat": "ISO-8859-1", "Eleve": "ISO-8859-15", "PersRelEleve": None,
                    "PersEducNat": "UTF-8", "MatiereEducNat": "UTF-8", "MefEducNat": "UTF-8"}
    assert {kind: FILE_FORMATS[kind].declared_encoding for kind in KINDS} == expectations
    assert FILE_FORMATS["MatiereEducNat"].newline == FILE_FORMATS["MefEducNat"].newline == "\r\n"


def files_of(delivery: Delivery, kind: str) -> list[Path]:
    return [path for path in xml_paths(delivery) if kind_of(path) == kind]


def test_etab_file_holds_raw_latin1_bytes(delivery: Delivery) -> None:
    (path,) = files_of(delivery, "EtabEducNat")
    data = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    lycee = next(e for e in delivery.academy.establishments if e.kind == "lycee")
    assert "É" in lycee.name.upper()
    assert lycee.name.upper().encode("latin-1") in data
    assert b"&#" not in data  # accents are raw bytes here, not references
    record = delivery.records["EtabEducNat"][lycee.jointure]
    assert record.first("ENTStructureNomCourant") == \
        f"LYC${lycee.name.upper()}${lycee.town}"
    assert record.first("ENTStructureTypeStruct") == "LYCEE GENERAL ET TECHNOLOGIQUE"
    assert record.first("ENTStructureUAI") == lycee.uai


def test_eleve_files_are_ascii_with_character_references(delivery: Delivery) -> None:
    for path in files_of(delivery, "Eleve"):
        data = path.read_bytes()
        data.decode("ascii")
        assert b"&#233;" in data
    student = next(s for e in delivery.academy.establishments for s in e.students
                   if s.class_code_next is not None and "é" in s.first_name)
    assert delivery.records["Eleve"][student.jointure].first("givenName") == student.first_name


def test_accents_round_trip_in_every_encoding(delivery: Delivery) -> None:
    academy = delivery.academy
    relative = next(r for e in academy.establishments for r in e.relatives
                    if any(ch in r.first_name for ch in "éëï"))
    record = delivery.records["PersRelEleve"][relative.jointure]
    assert record.first("givenName") == relative.first_name
    rel_path = record.path
    assert relative.first_name.encode("utf-8") in rel_path.read_bytes()  # raw UTF-8, no decl
    person = next(p for e in academy.establishments for p in e.personnel
                  if any(ord(ch) > 127 for ch in p.first_name))
    staff_record = delivery.records["PersEducNat"][person.jointure]
    assert staff_record.first("givenName") == person.first_name
    assert person.first_name.encode("utf-8") in staff_record.path.read_bytes()
    establishment = academy.establishments[0]
    etab = delivery.records["EtabEducNat"][establishment.jointure]
    assert etab.first("street").endswith("rue de l'École")
    assert delivery.records["EtabEducNat"]["1000"].first("ENTStructureNomCourant") == \
        "RECTORAT$RECTORAT DE L'ACADÉMIE DE LYON$LYON"


def test_apostrophes_are_written_as_apos(delivery: Delivery) -> None:
    for kind in ("EtabEducNat", "Eleve"):
        data = files_of(delivery, kind)[0].read_bytes()
        assert b"&apos;" in data, kind
        assert b"'" not in data.split(b"-->", 1)[1], kind
    record = next(iter(delivery.records["EtabEducNat"].values()))
    assert record.first("ENTEtablissementMinistereTutelle") == \
        "MINISTERE DE L'EDUCATION NATIONALE"
    subject = delivery.records["MatiereEducNat"]["040610"]
    assert subject.first("ENTLibelleMatiere") == "HIST.-GEO. GEOPOLITIQUE & SC.POLITIQUES"


# --- content and cross references ---------------------------------------------------------


def test_records_cover_the_roster(delivery: Delivery) -> None:
    academy = delivery.academy
    structures = delivery.records["EtabEducNat"]
    assert {e.jointure for e in academy.establishments} < set(structures)
    types = {record.first("ENTStructureTypeStruct") for record in structures.values()}
    assert {"COLLEGE", "LYCEE GENERAL ET TECHNOLOGIQUE", "RECTORAT"} <= types
    delivered = {s.jointure for e in academy.establishments for s in e.students
                 if s.class_code_next is not None}
    assert set(delivery.records["Eleve"]) == delivered
    assert set(delivery.records["PersEducNat"]) == \
        {p.jointure for e in academy.establishments for p in e.personnel}
    referenced = {link.relative_jointure for e in academy.establishments for s in e.students
                  if s.class_code_next is not None for link in s.relatives}
    orphans = {e.anomalies["orphan_relative"] for e in academy.establishments}
    # The delivered students' relatives and the planted orphans; not the leavers' relatives.
    assert set(delivery.records["PersRelEleve"]) == referenced | orphans
    for establishment in academy.establishments:
        record = structures[establishment.jointure]
        assert record.values("ENTStructureClasses") == [
            f"{c.code}${c.label}${c.level.mef_code}" for c in establishment.classes_next]
        assert record.values("ENTStructureGroupes") == [
            "$".join((g.code, g.label, *g.class_codes)) for g in establishment.option_groups_next]
        assert record.first("ENTServAcAcademie") == academy.academy_name


def test_student_record_matches_the_roster(delivery: Delivery) -> None:
    establishment = delivery.academy.establishments[0]
    student = next(s for s in establishment.students
                   if s.class_code_next is not None and s.option_group_codes_next
                   and s.birth_date is not None and len(s.relatives) >= 2)
    record = delivery.records["Eleve"][student.jointure]
    struct = establishment.jointure
    assert record.first("ENTPersonDateNaissance") == student.birth_date.strftime("%d/%m/%Y")
    assert record.values("ENTEleveClasses") == [f"{struct}${student.class_code_next}"]
    assert record.values("ENTEleveGroupes") == \
        [f"{struct}${code}" for code in student.option_group_codes_next]
    assert record.values("ENTPersonStructRattach") == [struct]
    assert record.first("ENTEleveINE") == student.ine
    level = next(lv for lv in LEVELS[establishment.kind] if lv.key == student.level_next)
    assert record.first("ENTEleveMEF") == level.mef_code
    assert record.values("ENTElevePersRelEleve") == [
        f"{link.relative_jointure}${link.link_code}${int(link.financial)}${link.legal}"
        f"${int(link.contact)}${int(link.payment)}" for link in student.relatives]
    assert record.values("ENTEleveAutoriteParentale") == \
        [link.relative_jointure for link in student.relatives if link.legal == 1]
    codes = record.values("ENTEleveCodeEnseignements")
    labels = record.values("ENTEleveEnseignements")
    assert len(codes) == len(labels) and set(level.subject_codes) <= set(codes)


def test_teacher_record_matches_the_services(delivery: Delivery) -> None:
    establishment = delivery.academy.establishments[1]
    struct = establishment.jointure
    teacher = next(p for p in establishment.teachers if p.head_of_class_next)
    record = delivery.records["PersEducNat"][teacher.jointure]
    services = [s for s in establishment.services_next if s.teacher_jointure == teacher.jointure]
    assert record.values("ENTAuxEnsClassesMatieres") == [
        f"{struct}${s.class_code}${s.subject_code}" for s in services if s.class_code]
    assert record.values("ENTAuxEnsGroupesMatieres") == [
        f"{struct}${s.group_code}${s.subject_code}" for s in services if s.group_code]
    assert record.values("ENTAuxEnsClassesPrincipal") == [f"{struct}${teacher.head_of_class_next}"]
    assert record.first("ENTPersonFonctions").startswith(
        f"{struct}$ENS$ENSEIGNEMENT${teacher.discipline_code}$")
    assert record.first("ENTPersonCategorieEnseignant") == "O"
    assert record.first("PersEducNatPresenceDevantEleves") == "O"
    staff = next(p for p in establishment.personnel if not p.is_teacher)
    staff_record = delivery.records["PersEducNat"][staff.jointure]
    assert staff_record.first("ENTPersonCategorieEnseignant") == "N"
    assert staff_record.first("ENTPersonFonctions") == \
        f"{struct}${staff.function_code}${staff.function_label}$-$SANS OBJET"


def test_compound_values_reference_structure_jointures(delivery: Delivery) -> None:
    structure_ids = set(delivery.records["EtabEducNat"])
    uais = {e.uai for e in delivery.academy.establishments}
    checked: Counter[str] = Counter()
    for kind in ("Eleve", "PersEducNat", "EtabEducNat"):
        for record in delivery.records[kind].values():
            for name in STRUCT_COMPOUNDS:
                for value in record.values(name):
                    struct = value.split("$", 1)[0]
                    assert struct in structure_ids, (kind, record.identifier, name, value)
                    assert struct not in uais
                    checked[name] += 1
            for name in STRUCT_IDS:
                for value in record.values(name):
                    assert value in structure_ids, (kind, record.identifier, name, value)
                    checked[name] += 1
    assert set(checked) == set(STRUCT_COMPOUNDS) | set(STRUCT_IDS)  # each one really seen


def test_relatives_subjects_and_mefs_referenced_exist(delivery: Delivery) -> None:
    relatives = delivery.records["PersRelEleve"]
    subjects = set(delivery.records["MatiereEducNat"])
    mefs = set(delivery.records["MefEducNat"])
    for record in delivery.records["Eleve"].values():
        for value in record.values("ENTElevePersRelEleve"):
            fields = value.split("$")
            assert len(fields) == 6 and fields[0] in relatives, (record.identifier, value)
        for name in ("ENTEleveParents", "ENTEleveAutoriteParentale", "ENTEleveAdresseRel"):
            assert set(record.values(name)) <= set(relatives), (record.identifier, name)
        assert set(record.values("ENTEleveCodeEnseignements")) <= subjects
        assert record.first("ENTEleveMEF") in mefs, record.identifier
    for record in delivery.records["PersEducNat"].values():
        for value in record.values("ENTAuxEnsClassesMatieres") + \
                record.values("ENTAuxEnsGroupesMatieres"):
            assert value.split("$")[2] in subjects, value
        for value in record.values("ENTAuxEnsMEF"):
            assert value.split("$")[1] in mefs, value
    for record in delivery.records["EtabEducNat"].values():
        for value in record.values("ENTStructureClasses"):
            assert value.split("$")[2] in mefs, value
    for record in relatives.values():
        assert set(record.values("ENTAuxPersRelEleveEleve")) <= set(delivery.records["Eleve"])


# --- planted anomalies --------------------------------------------------------------------


def test_missing_birth_date_is_an_empty_value(delivery: Delivery) -> None:
    for establishment in delivery.academy.establishments:
        jointure = establishment.anomalies["missing_birth_date"]
        record = delivery.records["Eleve"][jointure]
        assert record.attributes["ENTPersonDateNaissance"] == [""]
        data = record.path.read_bytes()
        block = data[data.index(f"<id>{jointure}</id>".encode()):]
        assert b'<attr name="ENTPersonDateNaissance"><value/></attr>' in block[:600]


def test_duplicate_ine_appears_twice(delivery: Delivery) -> None:
    ines = Counter(record.first("ENTEleveINE") for record in delivery.records["Eleve"].values())
    for establishment in delivery.academy.establishments:
        jointure = establishment.anomalies["duplicate_ine"]
        ine = delivery.records["Eleve"][jointure].first("ENTEleveINE")
        assert ines[ine] == 2
    assert sum(1 for count in ines.values() if count > 1) == \
        len(delivery.academy.establishments)


def test_teacher_attached_to_a_class_that_no_longer_exists(delivery: Delivery) -> None:
    for establishment in delivery.academy.establishments:
        teacher_jointure, stale_class = establishment.anomalies["teacher_in_old_class"].split("$")
        struct = establishment.jointure
        record = delivery.records["PersEducNat"][teacher_jointure]
        assert any(value.startswith(f"{struct}${stale_class}$")
                   for value in record.values("ENTAuxEnsClassesMatieres"))
        assert stale_class not in structure_classes(delivery.records["EtabEducNat"][struct])
        student_classes = {value for r in delivery.records["Eleve"].values()
                           for value in r.values("ENTEleveClasses")}
        old_student = establishment.anomalies.get("student_in_old_class", "")
        if old_student.split("$")[-1] != stale_class:
            assert f"{struct}${stale_class}" not in student_classes


def test_leaver_left_in_a_year_n_class(delivery: Delivery) -> None:
    found = 0
    for establishment in delivery.academy.establishments:
        anomaly = establishment.anomalies.get("student_in_old_class")
        if anomaly is None:
            continue
        jointure, old_class = anomaly.split("$")
        record = delivery.records["Eleve"][jointure]
        assert record.values("ENTEleveClasses") == [f"{establishment.jointure}${old_class}"]
        assert old_class not in structure_classes(
            delivery.records["EtabEducNat"][establishment.jointure])
        assert record.first("ENTEleveMEF")  # still carries the level of that class
        found += 1
    assert found >= 1


def test_orphan_relative_is_delivered_and_referenced_by_nobody(delivery: Delivery) -> None:
    referenced = {value.split("$")[0] for record in delivery.records["Eleve"].values()
                  for value in record.values("ENTElevePersRelEleve")}
    for establishment in delivery.academy.establishments:
        orphan = establishment.anomalies["orphan_relative"]
        record = delivery.records["PersRelEleve"][orphan]
        assert record.first("sn") == "ORPHELINE"
        assert record.values("ENTAuxPersRelEleveEleve") == []
        assert orphan not in referenced
    unreferenced = {identifier for identifier in delivery.records["PersRelEleve"]
                    if identifier not in referenced}
    assert unreferenced == {e.anomalies["orphan_relative"]
                            for e in delivery.academy.establishments}


# --- housekeeping ---------------------------------------------------------------------------


def test_rewrite_replaces_an_earlier_delivery(tmp_path: Path) -> None:
    write_aaf_delivery(build_academy(2, seed=7, year=2025), tmp_path)
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("garder", encoding="utf-8")
    paths = write_aaf_delivery(build_academy(1, seed=7, year=2025), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in paths]
                                                                + ["notes.txt"])
    assert not any(p.name.endswith(".part") for p in tmp_path.iterdir())


def test_writer_does_not_import_textual() -> None:
    code = ("import sys, yearchange_tui.sample.aaf_writer; "
            "sys.exit(1 if 'textual' in sys.modules else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
