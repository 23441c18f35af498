"""STS-web "emploi du temps" exchange files, told apart by their root element.

- ``STS_EDT`` (``sts_emp_<UAJ>_<ANNEE>.xml``, STS-web → timetable software): identity
  (``PARAMETRES/UAJ@CODE``, ``ANNEE_SCOLAIRE@ANNEE``), subjects
  (``NOMENCLATURES/MATIERES/MATIERE@CODE``, BCN codes), staff
  (``DONNEES/INDIVIDUS/INDIVIDU@ID``), divisions and groups with their teaching
  services (``SERVICE@CODE_MATIERE`` / ``ENSEIGNANTS/ENSEIGNANT@ID``). No courses.
- ``EDT_STS`` (``emp_sts``, timetable software → STS-web): identity as text,
  alternations (``ALTERNANCE@CODE`` with ``SEMAINES/DATE_DEBUT_SEMAINE``), and the
  services with their courses (``COURS_RATTACHES/COURS``: ``CODE_ALTERNANCE``,
  ``JOUR``, ``HEURE_DEBUT`` and ``DUREE`` as ``HHMM``, ``CODE_SALLE``).

The two may be imported alone or as a pair (a folder holding both): the pair takes
names from ``STS_EDT`` and courses from ``EDT_STS``. ``GROUPE`` elements are read
anywhere under ``STRUCTURE`` (fixtures nest ``GROUPES`` inside ``DIVISIONS``).
The alternation ``H`` is every week. There is no version field. Files are streamed
(each division and group is cleared once read). Runs on the caller's thread.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from yearchange_tui.ent.school_year import school_year_bounds
from yearchange_tui.timetable.data import (
    Place,
    Problem,
    TimetableData,
    TtAlternation,
    TtClass,
    TtCourse,
    TtGroup,
    TtService,
    TtSubject,
    TtTeacher,
    add_minutes,
    iso_week,
    parse_clock,
    parse_iso_date,
)
from yearchange_tui.timetable.xmlsafe import (
    TimetableFileError,
    excerpt,
    iter_xml,
    local_name,
    text_of,
)

STS_TO_EDT = "STS_EDT"
EDT_TO_STS = "EDT_STS"
ROOTS = (STS_TO_EDT, EDT_TO_STS)
EVERY_WEEK = "H"


def _child_text(element: etree._Element, name: str) -> str:
    for child in element:
        if local_name(child.tag) == name:
            return text_of(child)
    return ""


def _child(element: etree._Element, name: str) -> etree._Element | None:
    for child in element:
        if local_name(child.tag) == name:
            return child
    return None


class _StsReader:
    def __init__(self, data: TimetableData) -> None:
        self.data = data
        self.uais: list[tuple[str, str]] = []  # (uai, file)
        self.years: list[tuple[int, str]] = []
        self.courses_seen = False

    def read(self, source: Path | bytes, file: str, expected_root: str | None = None) -> str:
        root_name = ""
        for event, element in iter_xml(source, file):
            name = local_name(element.tag)
            if event == "start":
                if element.getparent() is None:
                    root_name = name
                    if name not in ROOTS or (expected_root and name != expected_root):
                        raise TimetableFileError(
                            "EDT-FORMAT-INCONNU", file, element.sourceline, value=file,
                            detail=f"élément racine « {name} » (attendu STS_EDT ou EDT_STS)")
                continue
            parent = element.getparent()
            if parent is None:
                continue
            parent_name = local_name(parent.tag)
            if name == "PARAMETRES" and parent_name in ROOTS:
                self.parameters(element, file, root_name)
                element.clear()
            elif name == "MATIERE" and parent_name == "MATIERES":
                self.subject(element)
                element.clear()
            elif name == "INDIVIDU" and parent_name == "INDIVIDUS":
                self.individual(element, file)
                element.clear()
            elif name == "ALTERNANCE" and parent_name == "ALTERNANCES":
                self.alternation(element)
                element.clear()
            elif name == "DIVISION" and parent_name == "DIVISIONS":
                self.structure(element, file, is_group=False)
                element.clear()
            elif name == "GROUPE" and parent_name == "GROUPES":
                self.structure(element, file, is_group=True)
                element.clear()
        return root_name

    def parameters(self, element: etree._Element, file: str, root: str) -> None:
        uaj = _child(element, "UAJ")
        year = _child(element, "ANNEE_SCOLAIRE")
        if root == STS_TO_EDT:
            uai = (uaj.get("CODE") or "").strip() if uaj is not None else ""
            value = (year.get("ANNEE") or "").strip() if year is not None else ""
            if year is not None:
                self.data.first_day = self.data.first_day or parse_iso_date(
                    _child_text(year, "DATE_DEBUT"))
                self.data.last_day = self.data.last_day or parse_iso_date(
                    _child_text(year, "DATE_FIN"))
        else:
            uai = text_of(uaj)
            value = text_of(year)
        if uai:
            self.uais.append((uai.upper(), file))
        if value.isdigit():
            self.years.append((int(value), file))

    def subject(self, element: etree._Element) -> None:
        code = (element.get("CODE") or "").strip()
        label = _child_text(element, "LIBELLE_LONG") or _child_text(element, "LIBELLE_COURT")
        self.data.subjects[code] = TtSubject(code, code, label, code)

    def individual(self, element: etree._Element, file: str) -> None:
        identifier = (element.get("ID") or "").strip()
        if not identifier:
            return
        existing = self.data.teachers.get(identifier)
        last = _child_text(element, "NOM_USAGE")
        if existing is not None and not last:
            return  # EDT_STS repeats the id without names (allowances only)
        self.data.teachers[identifier] = TtTeacher(
            identifier, last, _child_text(element, "PRENOM"),
            parse_iso_date(_child_text(element, "DATE_NAISSANCE")), (identifier,),
            Place(file, element.sourceline, excerpt(element)))

    def alternation(self, element: etree._Element) -> None:
        code = (element.get("CODE") or "").strip()
        weeks = set()
        semaines = _child(element, "SEMAINES")
        if semaines is not None:
            for week in semaines:
                day = parse_iso_date(text_of(week))
                if day is not None:
                    weeks.add(iso_week(day))
        label = _child_text(element, "LIBELLE_LONG") or _child_text(element, "LIBELLE_COURT")
        self.data.alternations[code] = TtAlternation(code, label or code, frozenset(weeks))

    def structure(self, element: etree._Element, file: str, *, is_group: bool) -> None:
        code = (element.get("CODE") or "").strip()
        if not code:
            return
        data = self.data
        label = _child_text(element, "LIBELLE_LONG")
        if is_group:
            group = data.groups.get(code)
            if group is None:
                group = TtGroup(code, code, label or code,
                                place=Place(file, element.sourceline, excerpt(element)))
                data.groups[code] = group
            elif label and group.label == code:
                group.label = label
            belonging = _child(element, "DIVISIONS_APPARTENANCE")
            for division in (belonging if belonging is not None else []):
                division_code = (division.get("CODE") or "").strip()
                if division_code and division_code not in group.class_keys:
                    group.class_keys.append(division_code)
        else:
            if code not in data.classes or (label and not data.classes[code].label):
                data.classes[code] = TtClass(code, code, label)
        services = _child(element, "SERVICES")
        for service in (services if services is not None else []):
            if local_name(service.tag) == "SERVICE":
                self.service(service, file, code, is_group)

    def service(self, element: etree._Element, file: str, owner: str, is_group: bool) -> None:
        subject = (element.get("CODE_MATIERE") or "").strip()
        structure_hours = _child_text(element, "HEURES_STRUCTURE")
        teachers = _child(element, "ENSEIGNANTS")
        found_teacher = False
        for teacher in (teachers if teachers is not None else []):
            if local_name(teacher.tag) != "ENSEIGNANT":
                continue
            found_teacher = True
            identifier = (teacher.get("ID") or "").strip()
            hours = _hours(_child_text(teacher, "HEURES_AGENT") or structure_hours)
            place = Place(file, teacher.sourceline, excerpt(element))
            attached = _child(teacher, "COURS_RATTACHES")
            courses = [c for c in (attached if attached is not None else [])
                       if local_name(c.tag) == "COURS"]
            if courses:
                for course in courses:
                    self.course(course, file, subject, identifier, owner, is_group)
            else:
                self.data.services.append(TtService(
                    subject, identifier or None, None if is_group else owner,
                    owner if is_group else None, hours, place))
        if not found_teacher:
            self.data.services.append(TtService(
                subject, None, None if is_group else owner, owner if is_group else None,
                _hours(structure_hours), Place(file, element.sourceline, excerpt(element))))

    def course(self, element: etree._Element, file: str, subject: str, teacher: str,
               owner: str, is_group: bool) -> None:
        self.courses_seen = True
        place = Place(file, element.sourceline, excerpt(element))
        day_text = _child_text(element, "JOUR")
        start = parse_clock(_child_text(element, "HEURE_DEBUT"))
        duration = parse_clock(_child_text(element, "DUREE"))
        day = int(day_text) if day_text.isdigit() else 0
        ends_at = None
        if start is not None and duration is not None:
            ends_at = add_minutes(start, duration.hour * 60 + duration.minute)
        if not 1 <= day <= 7 or start is None or ends_at is None or ends_at <= start:
            self.data.problems.append(Problem(
                "EDT-COURS-HORS-GRILLE", place, "le cours", kind="COURS",
                detail=f"jour « {day_text} », début « {_child_text(element, 'HEURE_DEBUT')} », "
                       f"durée « {_child_text(element, 'DUREE')} »"))
            return
        self.data.courses.append(TtCourse(
            subject, [teacher] if teacher else [], [] if is_group else [owner],
            [owner] if is_group else [], day, start, ends_at,
            _child_text(element, "CODE_SALLE")[:50], None,
            _child_text(element, "CODE_ALTERNANCE"), place))


def _hours(text: str) -> float:
    try:
        return round(float(text.replace(",", ".")), 2)
    except ValueError:
        return 0.0


def parse_sts(files: list[tuple[Path | bytes, str]]) -> tuple[TimetableData, list[str]]:
    """Read one STS-web file or an ``STS_EDT`` + ``EDT_STS`` pair.

    Args:
        files: ``(source, name shown)`` pairs; ``STS_EDT`` first when both are given.

    Returns:
        The data and the root of each file, in order.

    Raises:
        TimetableFileError: unsafe or broken XML, a root that is not STS, two files of
            the same direction, or files about different establishments or years.
    """
    data = TimetableData("sts")
    reader = _StsReader(data)
    roots = [reader.read(source, name) for source, name in files]
    if len(roots) != len(set(roots)):
        raise TimetableFileError("EDT-FORMAT-INCONNU", files[1][1], value=files[1][1],
                                 detail="deux fichiers STS-web du même sens ; la paire attendue "
                                        "est un sts_emp (STS_EDT) et un emp_sts (EDT_STS)")
    uais = {uai for uai, _file in reader.uais}
    if len(uais) > 1:
        (first, first_file), (other, _other_file) = reader.uais[0], next(
            item for item in reader.uais if item[0] != reader.uais[0][0])
        raise TimetableFileError("EDT-UAI-INCOHERENT", first_file, value=other, expected=first,
                                 detail="les deux fichiers STS-web ne concernent pas le même "
                                        "établissement")
    years = {year for year, _file in reader.years}
    if len(years) > 1:
        raise TimetableFileError("EDT-ANNEE-INCOHERENTE", files[0][1],
                                 value=" et ".join(str(y) for y in sorted(years)),
                                 expected="une seule année (les deux fichiers diffèrent)")
    data.uai = next(iter(uais), "")
    data.school_year_start = next(iter(years), None)
    if reader.courses_seen:
        # The pair: services of STS_EDT that EDT_STS gives with courses are not repeated.
        with_courses = {(c.subject_key, tuple(c.teacher_keys), tuple(c.class_keys),
                         tuple(c.group_keys)) for c in data.courses}
        data.services = [s for s in data.services if (
            s.subject_key, (s.teacher_key,) if s.teacher_key else (),
            (s.class_key,) if s.class_key else (), (s.group_key,) if s.group_key else ())
            not in with_courses]
    if data.first_day is None and data.school_year_start is not None:
        data.first_day, data.last_day = school_year_bounds(data.school_year_start)
    return data, roots
