"""Tests of the sample académie's N+1 timetable exports (STS-web, UDT, EDT)."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from yearchange_tui.sample.roster import (
    COLLEGE,
    LYCEE,
    SUBJECT_BY_CODE,
    SampleAcademy,
    SampleEstablishment,
    build_academy,
)
from yearchange_tui.sample.timetable_writer import write_timetables

EDT_NS = "http://www.index-education.com/exportemploidutemps"
UDT_ENTRY = re.compile(r"^(UDCal_\d{2}(_\d{2})?|semaines)\.xml$")
# The files entcore's UDTImporter parses unconditionally.
UDT_REQUIRED = ("UDCal_24.xml", "UDCal_00.xml", "semaines.xml", "UDCal_03.xml", "UDCal_04.xml",
                "UDCal_05.xml", "UDCal_07.xml", "UDCal_08.xml", "UDCal_10.xml", "UDCal_19.xml",
                "UDCal_13.xml", "UDCal_21.xml", "UDCal_23.xml", "UDCal_11.xml", "UDCal_12.xml")


def parse(data: bytes) -> etree._Element:
    """Parse like the console must: no entities, no network, no DTD."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(data, parser)


@dataclass
class Written:
    """One académie written once for the whole module."""

    academy: SampleAcademy
    paths: list[Path]

    def sts(self, establishment: SampleEstablishment) -> etree._Element:
        return parse((self.paths[0].parent /
                      f"sts_emp_{establishment.uai}_{self.academy.year + 1}.xml").read_bytes())

    def udt(self, establishment: SampleEstablishment) -> zipfile.ZipFile:
        (path,) = [p for p in self.paths
                   if p.name.startswith(establishment.uai) and p.name.endswith("_UDT.zip")]
        return zipfile.ZipFile(path)

    def edt(self, establishment: SampleEstablishment) -> etree._Element:
        (path,) = [p for p in self.paths
                   if p.name.startswith("Edt_To_") and establishment.uai in p.name]
        return parse(path.read_bytes())


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    academy = build_academy(2, seed=7, year=2025)
    assert [e.kind for e in academy.establishments] == [COLLEGE, LYCEE]
    return Written(academy, write_timetables(academy, tmp_path_factory.mktemp("tt") / "timetables"))


def stale_class(establishment: SampleEstablishment) -> tuple[str, str]:
    teacher, class_code = establishment.anomalies["teacher_in_old_class"].split("$")
    assert class_code not in {c.code for c in establishment.classes_next}
    return teacher, class_code


def teacher_ids(establishment: SampleEstablishment) -> set[str]:
    return {t.jointure for t in establishment.teachers}


def popcount(value: int) -> int:
    return value.bit_count()


# --------------------------------------------------------------------------------------
# Files and determinism
# --------------------------------------------------------------------------------------


def test_same_roster_gives_identical_files(tmp_path: Path) -> None:
    academy = build_academy(2, seed=7, year=2025)
    first = write_timetables(academy, tmp_path / "a")
    second = write_timetables(build_academy(2, seed=7, year=2025), tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in second]
    for left, right in zip(first, second):
        assert left.read_bytes() == right.read_bytes(), left.name
    college, lycee = academy.establishments
    assert [p.name for p in first] == [
        f"sts_emp_{college.uai}_2026.xml",
        f"{college.uai}_20260825100000_UDT.zip",
        f"sts_emp_{lycee.uai}_2026.xml",
        f"Edt_To_ENTLYON_{lycee.uai}_Enclair.xml",
    ]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(p.name for p in first)


def test_zip_entries_have_fixed_dates(written: Written) -> None:
    with written.udt(written.academy.establishments[0]) as archive:
        assert {info.date_time for info in archive.infolist()} == {(2026, 8, 25, 10, 0, 0)}


def test_writer_does_not_import_textual() -> None:
    code = ("import sys, yearchange_tui.sample.timetable_writer; "
            "sys.exit(1 if 'textual' in sys.modules else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------------------
# STS-web sts_emp (STS_EDT)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1])
def test_sts_emp_structure_matches_roster(written: Written, index: int) -> None:
    establishment = written.academy.establishments[index]
    root = written.sts(establishment)
    assert root.tag == "STS_EDT"
    assert root.find("PARAMETRES/UAJ").get("CODE") == establishment.uai
    year = root.find("PARAMETRES/ANNEE_SCOLAIRE")
    assert year.get("ANNEE") == "2026"
    assert (year.findtext("DATE_DEBUT"), year.findtext("DATE_FIN")) == ("2026-09-01", "2027-08-31")

    divisions = [d.get("CODE") for d in root.iterfind("DONNEES/STRUCTURE/DIVISIONS/DIVISION")]
    next_codes = [c.code for c in establishment.classes_next]
    _, stale = stale_class(establishment)
    assert divisions == next_codes + [stale]
    groups = [g.get("CODE") for g in root.iterfind("DONNEES/STRUCTURE/GROUPES/GROUPE")]
    assert groups == [g.code for g in establishment.option_groups_next]

    individuals = {i.get("ID"): i for i in root.iterfind("DONNEES/INDIVIDUS/INDIVIDU")}
    assert set(individuals) == {p.jointure for p in establishment.personnel}
    teachers = {i for i, e in individuals.items() if e.findtext("FONCTION") == "ENS"}
    assert teachers == teacher_ids(establishment)

    subjects = {m.get("CODE") for m in root.iterfind("NOMENCLATURES/MATIERES/MATIERE")}
    services = []
    for service in root.iterfind("DONNEES/STRUCTURE/*/*/SERVICES/SERVICE"):
        audience = service.getparent().getparent()
        (teacher,) = service.iterfind("ENSEIGNANTS/ENSEIGNANT")
        assert teacher.get("ID") in teachers
        assert service.get("CODE_MATIERE") in subjects
        services.append((teacher.get("ID"), service.get("CODE_MATIERE"),
                         audience.get("CODE") if audience.tag == "DIVISION" else None,
                         audience.get("CODE") if audience.tag == "GROUPE" else None,
                         float(service.findtext("HEURES_STRUCTURE"))))
    expected = [(s.teacher_jointure, s.subject_code, s.class_code, s.group_code,
                 float(s.weekly_hours)) for s in establishment.services_next]
    assert sorted(services, key=str) == sorted(expected, key=str)


def test_sts_emp_group_membership_counts(written: Written) -> None:
    establishment = written.academy.establishments[0]
    root = written.sts(establishment)
    for group in root.iterfind("DONNEES/STRUCTURE/GROUPES/GROUPE"):
        code = group.get("CODE")
        members = [s for s in establishment.students
                   if code in s.option_group_codes_next
                   and s.class_code_next in {c.code for c in establishment.classes_next}]
        assert int(group.findtext("EFFECTIF_CALCULE")) == len(members)
        per_division = {d.get("CODE"): int(d.findtext("EFFECTIF_CALCULE"))
                        for d in group.iterfind("DIVISIONS_APPARTENANCE/DIVISION_APPARTENANCE")}
        assert sum(per_division.values()) == len(members)


# --------------------------------------------------------------------------------------
# UnDeuxTemps ZIP
# --------------------------------------------------------------------------------------


def udt_files(archive: zipfile.ZipFile) -> dict[str, etree._Element]:
    return {name: parse(archive.read(name)) for name in archive.namelist()}


def test_udt_zip_holds_udcal_files(written: Written) -> None:
    establishment = written.academy.establishments[0]
    with written.udt(establishment) as archive:
        names = archive.namelist()
        files = udt_files(archive)
    assert all(UDT_ENTRY.match(name) for name in names), names
    assert names == sorted(names)
    assert set(UDT_REQUIRED) <= set(names)
    weeks = [int(w.get("num")) for w in files["semaines.xml"].iter("semaine")]
    assert len(weeks) == 36
    assert {f"UDCal_12_{week:02d}.xml" for week in weeks} == {
        name for name in names if name.startswith("UDCal_12_")}
    calendar = files["UDCal_24.xml"]
    assert calendar.findtext("annee") == "2026"
    assert calendar.findtext("debut_eleve") == "01/09/2026"
    assert files["UDCal_00.xml"].find("init").get("premiere_semaine_ISO") == str(weeks[0])


def test_udt_references_match_roster(written: Written) -> None:
    establishment = written.academy.establishments[0]
    with written.udt(establishment) as archive:
        files = udt_files(archive)
    next_codes = {c.code for c in establishment.classes_next}
    stale_teacher, stale = stale_class(establishment)
    divisions = [d.get("code") for d in files["UDCal_08.xml"].iter("div")]
    assert set(divisions) == next_codes | {stale}
    profs = {p.get("code"): p.get("epj") for p in files["UDCal_04.xml"].iter("prof")}
    assert set(profs.values()) == teacher_ids(establishment)
    subjects = {m.get("code"): m.get("code_gep1") for m in files["UDCal_05.xml"].iter("mat")}
    rooms = {s.get("code") for s in files["UDCal_03.xml"].iter("salle")}
    slots = {(d.get("code_jour"), d.get("code")) for d in files["UDCal_07.xml"].iter("demi_seq")}
    fiches = {f.get("code"): (f.get("jour"), f.get("demi_seq"))
              for f in files["UDCal_11.xml"].iter("fiche")}
    assert set(fiches.values()) <= slots
    group_divisions = {(g.get("code_div"), g.get("code"))
                       for g in files["UDCal_19.xml"].iter("gpe")}
    for name, root in files.items():
        for line in root.iter("ligfiche"):
            assert line.get("fic") in fiches, name
            assert line.get("code").startswith(line.get("fic"))
            assert profs[line.get("prof")] in teacher_ids(establishment)
            assert line.get("mat") in subjects and line.get("salle") in rooms
            assert line.get("div") in next_codes or (
                line.get("div") == stale and profs[line.get("prof")] == stale_teacher)
            if line.get("gpe"):
                assert (line.get("div"), line.get("gpe")) in group_divisions
    students = {e.get("code") for e in files["UDCal_10.xml"].iter("eleve")}
    for membership in files["UDCal_21.xml"].iter("ele_gpe"):
        assert membership.get("ele") in students
        assert membership.get("code_div") in next_codes


def test_udt_week_files_carry_services_and_alternation(written: Written) -> None:
    establishment = written.academy.establishments[0]
    with written.udt(establishment) as archive:
        files = udt_files(archive)
    profs = {p.get("code"): p.get("epj") for p in files["UDCal_04.xml"].iter("prof")}
    subjects = {m.get("code"): m.get("code_gep1") for m in files["UDCal_05.xml"].iter("mat")}
    weeks = [int(w.get("num")) for w in files["semaines.xml"].iter("semaine")]

    def half_sequences(name: str) -> Counter:
        return Counter((profs[line.get("prof")], subjects[line.get("mat")], line.get("div"),
                        line.get("gpe") or None) for line in files[name].iter("ligfiche"))

    week_a = half_sequences(f"UDCal_12_{weeks[0]:02d}.xml")
    week_b = half_sequences(f"UDCal_12_{weeks[1]:02d}.xml")
    assert week_a != week_b, "some courses alternate week A / week B"
    assert half_sequences(f"UDCal_12_{weeks[2]:02d}.xml") == week_a
    # Over a fortnight every service gets twice its weekly hours (4 half-sequences per hour).
    expected: Counter = Counter()
    groups = {g.code: g for g in establishment.option_groups_next}
    for service in establishment.services_next:
        divisions = groups[service.group_code].class_codes if service.group_code else (
            service.class_code,)
        for division in divisions:
            expected[(service.teacher_jointure, service.subject_code, division,
                      service.group_code)] += 4 * service.weekly_hours
    assert week_a + week_b == expected


# --------------------------------------------------------------------------------------
# Index Education EDT clear payload
# --------------------------------------------------------------------------------------


def edt_find(root: etree._Element, path: str) -> list[etree._Element]:
    return root.findall("/".join(f"{{{EDT_NS}}}{step}" for step in path.split("/")))


def test_edt_payload_carries_version_and_identity(written: Written) -> None:
    establishment = written.academy.establishments[1]
    root = written.edt(establishment)
    assert root.tag == f"{{{EDT_NS}}}ExportEmploiDuTemps"
    assert root.get("Version") == "1.1"
    assert root.get("UAI") == establishment.uai
    (year,) = edt_find(root, "AnneeScolaire")
    assert (year.get("DateDebut"), year.get("DateFin"), year.get("DatePremierJourSemaine1")) == (
        "2026-09-01", "2027-08-31", "2026-08-31")


def test_edt_references_match_roster(written: Written) -> None:
    establishment = written.academy.establishments[1]
    root = written.edt(establishment)
    next_codes = {c.code for c in establishment.classes_next}
    stale_teacher, stale = stale_class(establishment)
    subjects = {m.get("Ident"): m.get("Code") for m in edt_find(root, "Matieres/Matiere")}
    teachers = {p.get("Ident"): p.get("IDSTS") for p in edt_find(root, "Professeurs/Professeur")}
    assert set(teachers.values()) == teacher_ids(establishment)
    classes = {c.get("Ident"): c.get("Nom") for c in edt_find(root, "Classes/Classe")}
    assert set(classes.values()) == next_codes | {stale}
    groups = {g.get("Ident"): g.get("Nom") for g in edt_find(root, "Groupes/Groupe")}
    assert set(groups.values()) == {g.code for g in establishment.option_groups_next}
    rooms = {s.get("Ident") for s in edt_find(root, "Salles/Salle")}

    students = edt_find(root, "Eleves/Eleve")
    in_classes = [s for s in establishment.students if s.class_code_next in next_codes]
    assert len(students) == len(in_classes)
    for student in students:
        (membership,) = student.findall(f"{{{EDT_NS}}}Classe")
        assert classes[membership.get("Ident")] in next_codes
    missing = establishment.anomalies["missing_birth_date"]
    by_id = {s.get("IDSconet"): s for s in students}
    (person,) = [s for s in establishment.students if s.jointure == missing]
    if person.class_code_next in next_codes:
        assert by_id[person.sconet_id].get("DateNaissance") is None

    courses = edt_find(root, "Cours/Cours")
    assert courses
    for course in courses:
        assert subjects[course.find(f"{{{EDT_NS}}}Matiere").get("Ident")]
        (teacher,) = course.findall(f"{{{EDT_NS}}}Professeur")
        assert teachers[teacher.get("Ident")] in teacher_ids(establishment)
        for room in course.findall(f"{{{EDT_NS}}}Salle"):
            assert room.get("Ident") in rooms
        for audience in course.findall(f"{{{EDT_NS}}}Classe"):
            assert classes[audience.get("Ident")] in next_codes or (
                classes[audience.get("Ident")] == stale
                and teachers[teacher.get("Ident")] == stale_teacher)
        for audience in course.findall(f"{{{EDT_NS}}}Groupe"):
            assert audience.get("Ident") in groups
        start, places = int(course.get("NumeroPlaceDebut")), int(course.get("NombrePlaces"))
        assert 0 <= start and start + places <= 20


def test_edt_week_masks_and_hours(written: Written) -> None:
    establishment = written.academy.establishments[1]
    root = written.edt(establishment)
    subjects = {m.get("Ident"): m.get("Code") for m in edt_find(root, "Matieres/Matiere")}
    teachers = {p.get("Ident"): p.get("IDSTS") for p in edt_find(root, "Professeurs/Professeur")}
    classes = {c.get("Ident"): c.get("Nom") for c in edt_find(root, "Classes/Classe")}
    groups = {g.get("Ident"): g.get("Nom") for g in edt_find(root, "Groupes/Groupe")}
    masks: Counter = Counter()
    hours: Counter = Counter()
    booked: set[tuple[str, int, int, int]] = set()
    for course in edt_find(root, "Cours/Cours"):
        references = [ref for ref in course if isinstance(ref.tag, str)
                      and ref.get("Semaines") is not None]
        (mask,) = {int(ref.get("Semaines")) for ref in references}
        assert mask & 1 == 0 and mask < 1 << 64
        masks[mask] += 1
        teacher = teachers[course.find(f"{{{EDT_NS}}}Professeur").get("Ident")]
        subject = subjects[course.find(f"{{{EDT_NS}}}Matiere").get("Ident")]
        class_ref = course.find(f"{{{EDT_NS}}}Classe")
        group_ref = course.find(f"{{{EDT_NS}}}Groupe")
        key = (teacher, subject, classes[class_ref.get("Ident")] if class_ref is not None else None,
               groups[group_ref.get("Ident")] if group_ref is not None else None)
        places = int(course.get("NombrePlaces"))
        hours[key] += places * popcount(mask)
        start = int(course.get("NumeroPlaceDebut"))
        for ref in references:
            for place in range(start, start + places):
                for bit in range(64):
                    if mask >> bit & 1:
                        slot = (f"{ref.tag}:{ref.get('Ident')}", int(course.get("Jour")),
                                place, bit)
                        assert slot not in booked, f"double booking {slot}"
                        booked.add(slot)
    common, _ = masks.most_common(1)[0]
    others = [mask for mask in masks if mask != common]
    assert len(others) == 2, "week A and week B masks"
    week_a, week_b = others
    assert week_a & week_b == 0 and week_a | week_b == common
    assert popcount(week_a) == popcount(week_b)
    weeks = popcount(common)
    expected: Counter = Counter()
    for service in establishment.services_next:
        expected[(service.teacher_jointure, SUBJECT_BY_CODE[service.subject_code].short,
                  service.class_code, service.group_code)] += 2 * service.weekly_hours * weeks
    assert hours == expected


EDT_XSD = (Path(__file__).resolve().parents[1].parent / "shared" / "reference"
           / "timetable_samples" / "laclasse-com_service-cahiertextes" / "ExportEmploiDuTemps.xsd")


@pytest.mark.skipif(not EDT_XSD.is_file(), reason="Index Education XSD not available")
def test_edt_payload_fails_its_schema_only_on_the_planted_birth_date(written: Written) -> None:
    establishment = written.academy.establishments[1]
    schema = etree.XMLSchema(etree.parse(str(EDT_XSD), etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False)))
    root = written.edt(establishment)
    schema.validate(root)
    errors = [error.message for error in schema.error_log]
    missing = establishment.anomalies["missing_birth_date"]
    (person,) = [s for s in establishment.students if s.jointure == missing]
    if person.class_code_next in {c.code for c in establishment.classes_next}:
        assert len(errors) == 1 and "DateNaissance" in errors[0], errors
    else:
        assert errors == []
