"""The sample académie roster: who is where in year N and in year N+1.

A deterministic, in-memory description of an académie, built from a seed. The
database filler (year N content) and the AAF and timetable writers (the N+1
delivery) all read this one roster, so the files and the database tell the same
story. Every random draw goes through a ``random.Random`` seeded per
establishment, so the same seed always gives the same roster.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from functools import cache

from yearchange_tui.ent.base import utcnow
from yearchange_tui.ent.school_year import school_year_of
from yearchange_tui.ent.uai import make_uai
from yearchange_tui.resources import sample_data_dir

COLLEGE = "college"
LYCEE = "lycee"


@dataclass(frozen=True)
class SampleSubject:
    """A subject of the académie nomenclature (AAF MatiereEducNat)."""

    code: str  # 6 digits, the AAF ENTMatJointure
    label: str
    short: str  # short code used in timetables (FRANC, MATHS…)


@dataclass(frozen=True)
class SampleMef:
    """A MEF (module élémentaire de formation) of the nomenclature (AAF MefEducNat)."""

    code: str  # 11 characters
    label: str
    level_label: str
    stat11: str


@dataclass(frozen=True)
class SampleLevel:
    """A school level of a kind of establishment (6e, 5e … or 2nde, 1re, Tle)."""

    key: str  # 6, 5, 4, 3, 2, 1, T
    label: str  # 6EME …
    mef_code: str
    age: int  # age reached in the calendar year the school year starts
    subject_codes: tuple[str, ...]


SUBJECTS: tuple[SampleSubject, ...] = (
    SampleSubject("020700", "FRANCAIS", "FRANC"),
    SampleSubject("061300", "MATHEMATIQUES", "MATHS"),
    SampleSubject("040600", "HISTOIRE-GEOGRAPHIE", "HIGEO"),
    SampleSubject("030201", "ANGLAIS LV1", "AGL1"),
    SampleSubject("030602", "ESPAGNOL LV2", "ESP2"),
    SampleSubject("030102", "ALLEMAND LV2", "ALL2"),
    SampleSubject("062900", "SCIENCES DE LA VIE ET DE LA TERRE", "SVT"),
    SampleSubject("063300", "PHYSIQUE-CHIMIE", "PHCHI"),
    SampleSubject("070800", "TECHNOLOGIE", "TECHN"),
    SampleSubject("080100", "ARTS PLASTIQUES", "A-PLA"),
    SampleSubject("081000", "EDUCATION MUSICALE", "EDMUS"),
    SampleSubject("100100", "EDUCATION PHYSIQUE ET SPORTIVE", "EPS"),
    SampleSubject("020100", "LATIN", "LCALA"),
    SampleSubject("041000", "SCIENCES ECONOMIQUES ET SOCIALES", "SES"),
    SampleSubject("042900", "PHILOSOPHIE", "PHILO"),
    SampleSubject("064000", "SCIENCES NUMERIQUES ET TECHNOLOGIE", "SNT"),
    SampleSubject("061310", "SPECIALITE MATHEMATIQUES", "SPMAT"),
    SampleSubject("063310", "SPECIALITE PHYSIQUE-CHIMIE", "SPPC"),
    SampleSubject("040610", "HIST.-GEO. GEOPOLITIQUE & SC.POLITIQUES", "SPHGG"),
    SampleSubject("999800", "VIE DE CLASSE", "VIECL"),
)
SUBJECT_BY_CODE = {subject.code: subject for subject in SUBJECTS}

_COLLEGE_CORE = ("020700", "061300", "040600", "030201", "062900", "063300", "070800",
                 "080100", "081000", "100100")
_LV2 = ("030602", "030102")
_LYCEE_CORE = ("020700", "061300", "040600", "030201", "030602", "062900", "063300",
               "100100", "041000", "064000")
_LYCEE_1 = ("020700", "040600", "030201", "030602", "100100", "061310", "063310", "040610")
_LYCEE_T = ("042900", "040600", "030201", "030602", "100100", "061310", "063310", "040610")

LEVELS: dict[str, tuple[SampleLevel, ...]] = {
    COLLEGE: (
        SampleLevel("6", "6EME", "10010012110", 11, _COLLEGE_CORE),
        SampleLevel("5", "5EME", "10110001110", 12, _COLLEGE_CORE + _LV2[:1]),
        SampleLevel("4", "4EME", "10210001110", 13, _COLLEGE_CORE + _LV2[:1]),
        SampleLevel("3", "3EME", "10310019110", 14, _COLLEGE_CORE + _LV2[:1]),
    ),
    LYCEE: (
        SampleLevel("2", "2NDE GENERALE ET TECHNO.", "20010018110", 15, _LYCEE_CORE),
        SampleLevel("1", "1ERE GENERALE", "20111010110", 16, _LYCEE_1),
        SampleLevel("T", "TERMINALE GENERALE", "20211010110", 17, _LYCEE_T),
    ),
}

MEFS: tuple[SampleMef, ...] = (
    SampleMef("10010012110", "6EME", "6EME", "10010010012"),
    SampleMef("10110001110", "5EME", "5EME", "10110010001"),
    SampleMef("10210001110", "4EME", "4EME", "10210010001"),
    SampleMef("10310019110", "3EME", "3EME", "10310010019"),
    SampleMef("20010018110", "2NDE GENERALE ET TECHNO.", "SECONDE GENERALE ET TECHNOLOGIQUE",
              "20010010018"),
    SampleMef("20111010110", "1ERE GENERALE", "PREMIERE GENERALE", "20110011010"),
    SampleMef("20211010110", "TERMINALE GENERALE", "TERMINALE GENERALE", "20210011010"),
    SampleMef("16710002110", "3EME SEGPA", "3EME SEGPA", "16710010002"),
)

# Staff functions (AAF ENTPersonFonctions field 1) other than teachers.
STAFF_FUNCTIONS: tuple[tuple[str, str, int], ...] = (
    ("DIR", "DIRECTION", 2),
    ("EDU", "EDUCATION", 2),
    ("DOC", "DOCUMENTATION", 1),
    ("AED", "ASSISTANT D'EDUCATION", 4),
    ("ADF", "PERSONNELS ADMINISTRATIFS", 2),
    ("ORI", "ORIENTATION", 1),
)

STUDENTS_PER_CLASS = 25
TEACHERS_PER_ESTABLISHMENT = 60


@dataclass
class SampleRelative:
    """A relative (PersRelEleve) of one or more students."""

    jointure: str
    title: str
    last_name: str
    first_name: str
    address: str
    postal_code: str
    town: str
    home_phone: str
    mobile: str
    email: str


@dataclass(frozen=True)
class RelativeLink:
    """One ENTElevePersRelEleve value: ``id$lien$financier$legal$contact$paiement``."""

    relative_jointure: str
    link_code: str  # 10 father, 20 mother, 50 other
    financial: bool
    legal: int  # 1 legal representative, 2 person in charge, 0 none
    contact: bool
    payment: bool


@dataclass
class SampleStudent:
    """A student, with their class in year N (None for a newcomer) and in year N+1 (None for a leaver)."""

    jointure: str
    ine: str
    sconet_id: str
    title: str
    last_name: str
    first_name: str
    other_first_names: tuple[str, ...]
    birth_date: dt.date | None
    class_code_n: str | None
    class_code_next: str | None
    level_next: str | None
    relatives: list[RelativeLink] = field(default_factory=list)
    option_group_codes_n: list[str] = field(default_factory=list)
    option_group_codes_next: list[str] = field(default_factory=list)
    regime: str = "DEMI-PENSIONNAIRE DANS L'ETABLISSEMENT"
    grant_holder: bool = False


@dataclass(frozen=True)
class SampleClass:
    """A class of one school year."""

    code: str
    label: str
    level: SampleLevel


@dataclass(frozen=True)
class SampleOptionGroup:
    """A group of students from several classes for one subject (timetable option group)."""

    code: str
    label: str
    subject_code: str
    class_codes: tuple[str, ...]


@dataclass(frozen=True)
class SampleService:
    """A teaching service: one teacher teaches one subject to a class or an option group."""

    teacher_jointure: str
    subject_code: str
    class_code: str | None
    group_code: str | None
    weekly_hours: int


@dataclass
class SamplePersonnel:
    """A member of staff (PersEducNat): a teacher or another function."""

    jointure: str
    title: str
    last_name: str
    first_name: str
    birth_date: dt.date
    function_code: str  # ENS for teachers
    function_label: str
    discipline_code: str  # subject code taught, "" for non-teachers
    is_teacher: bool
    email: str
    head_of_class_n: str | None = None
    head_of_class_next: str | None = None


@dataclass
class EstablishmentHead:
    """What identifies a sample establishment (its ``establishments`` row), without its
    people: enough for a console at national size (:func:`establishment_heads`)."""

    index: int
    uai: str
    jointure: str
    kind: str
    name: str
    town: str
    postal_code: str
    closing_date: dt.date


@dataclass
class SampleEstablishment(EstablishmentHead):
    """One collège or lycée with its people in year N and N+1 (its identity: the head)."""

    classes_n: list[SampleClass]
    classes_next: list[SampleClass]
    option_groups_n: list[SampleOptionGroup]
    option_groups_next: list[SampleOptionGroup]
    students: list[SampleStudent]
    relatives: list[SampleRelative]
    personnel: list[SamplePersonnel]
    services_n: list[SampleService]
    services_next: list[SampleService]
    # Situations the N+1 delivery carries on purpose (each becomes a known reject or warning).
    anomalies: dict[str, str] = field(default_factory=dict)

    @property
    def teachers(self) -> list[SamplePersonnel]:
        """The teaching staff."""
        return [person for person in self.personnel if person.is_teacher]


@dataclass
class SampleAcademy:
    """The whole sample académie."""

    seed: int
    year: int  # the start year of school year N (2025 for 2025-2026)
    academy_code: str
    academy_name: str
    project_code: str
    establishments: list[SampleEstablishment]

    @property
    def year_label(self) -> str:
        """School year N as ``2025-2026``."""
        return f"{self.year}-{self.year + 1}"

    @property
    def next_year_label(self) -> str:
        """School year N+1 as ``2026-2027``."""
        return f"{self.year + 1}-{self.year + 2}"

    @property
    def delivery_date(self) -> dt.date:
        """Date of the N+1 "complet d'initialisation" AAF delivery (third week of August)."""
        return dt.date(self.year + 1, 8, 18)


@cache
def _word_list(name: str) -> tuple[str, ...]:
    path = sample_data_dir() / "generator" / name
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _towns() -> list[tuple[str, str, str]]:
    return [tuple(line.split(";")) for line in _word_list("towns.txt")]  # type: ignore[misc]


def default_school_year(today: dt.date | None = None) -> int:
    """Return the start year of the school year in progress (:func:`school_year_of`)."""
    return school_year_of(today or utcnow().date())


class _People:
    """Draws French names, dates and phone numbers from one random stream."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.female = _word_list("first_names_female.txt")
        self.male = _word_list("first_names_male.txt")
        self.last = _word_list("last_names.txt")

    def person(self) -> tuple[str, str, str]:
        """Return (title, last name, first name)."""
        if self.rng.random() < 0.5:
            return "Mme", self.rng.choice(self.last), self.rng.choice(self.female)
        return "M.", self.rng.choice(self.last), self.rng.choice(self.male)

    def birth_date(self, year: int) -> dt.date:
        return dt.date(year, 1, 1) + dt.timedelta(days=self.rng.randrange(365))

    def phone(self, prefix: str) -> str:
        digits = "".join(str(self.rng.randrange(10)) for _ in range(8))
        return prefix + digits


_UAI_DRAWS = 64
"""Random draws in the establishment's department before taking the next free number."""


def _uai_for(rng: random.Random, department: str, used: set[str]) -> str:
    """A valid UAI not in ``used``, in ``department`` while it has free numbers.

    A département holds 10,000 UAIs: when random draws keep meeting used ones (a national
    ENT), the first free number is taken, from this département then the next ones.
    """
    for _ in range(_UAI_DRAWS):
        uai = make_uai(department + f"{rng.randrange(10000):04d}")
        if uai not in used:
            used.add(uai)
            return uai
    first = int(department) * 10_000
    for digits in range(first, first + 10_000_000):
        uai = make_uai(f"{digits % 10_000_000:07d}")
        if uai not in used:
            used.add(uai)
            return uai
    raise ValueError("plus aucun UAI libre")


def _classes_for(kind: str, counts: dict[str, int]) -> list[SampleClass]:
    classes: list[SampleClass] = []
    for level in LEVELS[kind]:
        for number in range(1, counts[level.key] + 1):
            if kind == COLLEGE:
                code = f"{level.key}{chr(ord('A') + number - 1)}"
                label = f"{level.label} {chr(ord('A') + number - 1)}"
            else:
                prefix = {"2": "2ND", "1": "1G", "T": "TG"}[level.key]
                code = f"{prefix}{number}"
                label = f"{level.label} {number}"
            classes.append(SampleClass(code, label, level))
    return classes


def _spread(rng: random.Random, students: list[SampleStudent], classes: list[SampleClass],
            attribute: str) -> None:
    """Assign ``students`` round-robin (after a shuffle) to ``classes``."""
    order = list(students)
    rng.shuffle(order)
    for position, student in enumerate(order):
        setattr(student, attribute, classes[position % len(classes)].code)


def _option_groups(rng: random.Random, kind: str, classes: list[SampleClass],
                   students: list[SampleStudent], attribute: str,
                   groups_attribute: str) -> list[SampleOptionGroup]:
    """Build option groups (Latin in collège, specialities in lycée) spanning classes."""
    groups: list[SampleOptionGroup] = []
    by_class: dict[str, list[SampleStudent]] = {}
    for student in students:
        code = getattr(student, attribute)
        if code is not None:
            by_class.setdefault(code, []).append(student)
    plans = (
        [("5", "LAT5", "LATIN 5EME", "020100"), ("4", "LAT4", "LATIN 4EME", "020100"),
         ("3", "LAT3", "LATIN 3EME", "020100"), ("4", "ESP4", "ESPAGNOL 4EME GR", "030602")]
        if kind == COLLEGE else
        [("1", "SPMAT1", "SPE MATHS 1ERE", "061310"), ("1", "SPPC1", "SPE PHYS-CHI 1ERE", "063310"),
         ("T", "SPMATT", "SPE MATHS TLE", "061310"), ("T", "SPHGGT", "SPE HGGSP TLE", "040610")]
    )
    for level_key, code, label, subject_code in plans:
        level_classes = tuple(c.code for c in classes if c.level.key == level_key)
        if not level_classes:
            continue
        group = SampleOptionGroup(code, label, subject_code, level_classes)
        groups.append(group)
        for class_code in level_classes:
            for student in by_class.get(class_code, []):
                if rng.random() < 0.3:
                    getattr(student, groups_attribute).append(code)
    return groups


def _services(rng: random.Random, classes: list[SampleClass], groups: list[SampleOptionGroup],
              teachers_by_subject: dict[str, list[SamplePersonnel]]) -> list[SampleService]:
    services: list[SampleService] = []
    for school_class in classes:
        for subject_code in school_class.level.subject_codes:
            candidates = teachers_by_subject.get(subject_code)
            if not candidates:
                continue
            teacher = candidates[rng.randrange(len(candidates))]
            hours = 4 if subject_code in ("020700", "061300") else rng.choice((1, 2, 3))
            services.append(SampleService(teacher.jointure, subject_code, school_class.code,
                                          None, hours))
    for group in groups:
        candidates = teachers_by_subject.get(group.subject_code)
        if candidates:
            teacher = candidates[rng.randrange(len(candidates))]
            services.append(SampleService(teacher.jointure, group.subject_code, None,
                                          group.code, 2))
    return services


def _kind_of(index: int) -> str:
    """Collèges and lycées alternate, about two collèges for one lycée."""
    return LYCEE if index % 3 == 1 else COLLEGE


def _head(rng: random.Random, year: int, index: int, kind: str, used_uais: set[str],
          used_names: set[str]) -> EstablishmentHead:
    """The establishment's identity: the first draws of its random stream."""
    postal_code, town, department = rng.choice(_towns())
    uai = _uai_for(rng, department, used_uais)
    patron_names = _word_list("establishment_names.txt")
    patron = patron_names[rng.randrange(len(patron_names))]
    prefix = "Collège" if kind == COLLEGE else "Lycée"
    name = f"{prefix} {patron}"
    if name in used_names:
        name = f"{name} ({town.title()})"
    used_names.add(name)
    closing = dt.date(year + 1, 7, 4) if kind == COLLEGE else dt.date(year + 1, 7, 11)
    return EstablishmentHead(index, uai, str(10_000 + index * 7 + 3), kind, name, town,
                             postal_code, closing)


def establishment_heads(establishment_count: int, seed: int,
                        year: int | None = None) -> tuple[SampleAcademy, list[EstablishmentHead]]:
    """The académie (without establishments) and the identities of the establishments
    :func:`build_academy` would build with the same arguments (same UAIs, names, kinds),
    in a fraction of its time: a console bench of 10,000 establishments needs no people."""
    if establishment_count < 1:
        raise ValueError("il faut au moins un établissement")
    year = default_school_year() if year is None else year
    used_uais: set[str] = set()
    used_names: set[str] = set()
    heads = [_head(random.Random(f"yearchange-sample:{seed}:{index}"), year, index,
                   _kind_of(index), used_uais, used_names)
             for index in range(establishment_count)]
    return _academy(seed, year, []), heads


def _academy(seed: int, year: int, establishments: list[SampleEstablishment]) -> SampleAcademy:
    return SampleAcademy(seed, year, "10", "LYON", "ENT-LYON", establishments)


def _build_establishment(seed: int, year: int, index: int, kind: str,
                         used_uais: set[str], used_names: set[str]) -> SampleEstablishment:
    rng = random.Random(f"yearchange-sample:{seed}:{index}")
    people = _People(rng)
    head = _head(rng, year, index, kind, used_uais, used_names)
    uai, name, town, postal_code = head.uai, head.name, head.town, head.postal_code
    closing = head.closing_date
    patron_names = _word_list("establishment_names.txt")

    levels = LEVELS[kind]
    counts_n = {level.key: rng.choice((5, 6, 6, 7) if kind == COLLEGE else (7, 8, 8, 9))
                for level in levels}
    classes_n = _classes_for(kind, counts_n)
    base = 1_000_000 + index * 5_000
    counter = 0

    def next_student_ids() -> tuple[str, str, str]:
        nonlocal counter
        counter += 1
        number = index * 5_000 + counter
        letters = chr(ord("A") + number % 26) + chr(ord("A") + (number // 26) % 26)
        return str(base + counter), f"{100_000_000 + number:09d}{letters}", str(800_000 + number)

    students: list[SampleStudent] = []
    for school_class in classes_n:
        for _ in range(STUDENTS_PER_CLASS + rng.randrange(-2, 3)):
            jointure, ine, sconet = next_student_ids()
            title, last, first = people.person()
            birth_year = year - school_class.level.age
            students.append(SampleStudent(
                jointure, ine, sconet, title, last, first,
                tuple(people.person()[2] for _ in range(rng.randrange(3))),
                people.birth_date(birth_year), school_class.code, None, None))

    # Year N+1: promotion, repeats, leavers, newcomers.
    level_keys = [level.key for level in levels]
    level_of_class = {c.code: c.level for c in classes_n}
    next_level_students: dict[str, list[SampleStudent]] = {key: [] for key in level_keys}
    for student in students:
        level = level_of_class[student.class_code_n]  # type: ignore[index]
        position = level_keys.index(level.key)
        draw = rng.random()
        if position == len(level_keys) - 1:
            target = level.key if draw < 0.03 else None
        elif draw < 0.03:
            target = None
        elif draw < 0.06:
            target = level.key
        else:
            target = level_keys[position + 1]
        student.level_next = target
        if target is not None:
            next_level_students[target].append(student)
    for level in levels:
        wanted = counts_n[level.key] * STUDENTS_PER_CLASS if level is levels[0] else \
            len(next_level_students[level.key]) + rng.randrange(3)
        while len(next_level_students[level.key]) < wanted:
            jointure, ine, sconet = next_student_ids()
            title, last, first = people.person()
            student = SampleStudent(jointure, ine, sconet, title, last, first, (),
                                    people.birth_date(year + 1 - level.age), None, None, level.key)
            students.append(student)
            next_level_students[level.key].append(student)
    counts_next = {key: max(1, round(len(next_level_students[key]) / STUDENTS_PER_CLASS))
                   for key in level_keys}
    classes_next = _classes_for(kind, counts_next)
    for level in levels:
        _spread(rng, next_level_students[level.key],
                [c for c in classes_next if c.level.key == level.key], "class_code_next")
    for student in students:
        student.regime = rng.choice(("DEMI-PENSIONNAIRE DANS L'ETABLISSEMENT",
                                     "DEMI-PENSIONNAIRE DANS L'ETABLISSEMENT", "EXTERNE LIBRE"))
        student.grant_holder = rng.random() < 0.15

    # Relatives: one or two legal representatives; siblings share theirs.
    relatives: list[SampleRelative] = []
    relative_counter = 0

    def new_relative(title: str, last: str, first: str) -> SampleRelative:
        nonlocal relative_counter
        relative_counter += 1
        number = rng.randrange(1, 120)
        relative = SampleRelative(
            str(3_000_000 + index * 10_000 + relative_counter), title, last, first,
            f"{number} rue {rng.choice(patron_names)}$$$", postal_code, town,
            people.phone("04"), people.phone("06"),
            f"{first.lower()}.{last.lower()}@exemple.fr".replace(" ", "-").replace("'", ""))
        relatives.append(relative)
        return relative

    previous_links: list[RelativeLink] = []
    previous_last_name = ""
    for student in students:
        if previous_links and rng.random() < 0.12:
            student.relatives = list(previous_links)  # a sibling of the previous student
            student.last_name = previous_last_name
            continue
        links: list[RelativeLink] = []
        mother = new_relative("Mme", student.last_name, people.rng.choice(people.female))
        links.append(RelativeLink(mother.jointure, "20", True, 1, True, True))
        if rng.random() < 0.8:
            father = new_relative("M.", student.last_name, people.rng.choice(people.male))
            links.append(RelativeLink(father.jointure, "10", rng.random() < 0.5, 1, True, False))
        if rng.random() < 0.05:
            title, last, first = people.person()
            other = new_relative(title, last, first)
            links.append(RelativeLink(other.jointure, "50", False, 0, True, False))
        student.relatives = links
        previous_links = links
        previous_last_name = student.last_name

    # Staff: teachers with one discipline each, then other functions.
    personnel: list[SamplePersonnel] = []
    staff_counter = 0
    level_subjects = sorted({code for level in levels for code in level.subject_codes}
                            | {"020100"} if kind == COLLEGE else
                            {code for level in levels for code in level.subject_codes})

    def new_personnel(function_code: str, function_label: str, discipline: str) -> SamplePersonnel:
        nonlocal staff_counter
        staff_counter += 1
        title, last, first = people.person()
        person = SamplePersonnel(
            str(2_000_000 + index * 1_000 + staff_counter), title, last, first,
            people.birth_date(year - rng.randrange(25, 62)), function_code, function_label,
            discipline, function_code == "ENS",
            f"{first.lower()}.{last.lower()}{staff_counter}@ac-lyon.fr"
            .replace(" ", "-").replace("'", ""))
        personnel.append(person)
        return person

    for position in range(TEACHERS_PER_ESTABLISHMENT):
        subject_code = level_subjects[position % len(level_subjects)]
        new_personnel("ENS", "ENSEIGNEMENT", subject_code)
    for function_code, function_label, count in STAFF_FUNCTIONS:
        for _ in range(count):
            new_personnel(function_code, function_label, "")

    teachers_by_subject: dict[str, list[SamplePersonnel]] = {}
    for person in personnel:
        if person.is_teacher:
            teachers_by_subject.setdefault(person.discipline_code, []).append(person)
    option_groups_n = _option_groups(rng, kind, classes_n, students, "class_code_n",
                                     "option_group_codes_n")
    option_groups_next = _option_groups(rng, kind, classes_next, students, "class_code_next",
                                        "option_group_codes_next")
    services_n = _services(rng, classes_n, option_groups_n, teachers_by_subject)
    services_next = _services(rng, classes_next, option_groups_next, teachers_by_subject)
    teachers = [p for p in personnel if p.is_teacher]
    for school_class, teacher in zip(classes_n, rng.sample(teachers, len(classes_n))):
        teacher.head_of_class_n = school_class.code
    for school_class, teacher in zip(classes_next, rng.sample(teachers, len(classes_next))):
        teacher.head_of_class_next = school_class.code

    establishment = SampleEstablishment(
        index, uai, head.jointure, kind, name, town, postal_code, closing,
        classes_n, classes_next, option_groups_n, option_groups_next, students, relatives,
        personnel, services_n, services_next)
    _plant_anomalies(rng, establishment)
    return establishment


def _plant_anomalies(rng: random.Random, establishment: SampleEstablishment) -> None:
    """Put in the N+1 data the situations real deliveries carry, each recorded by name.

    - ``missing_birth_date``: a newcomer whose birth date SIECLE left empty;
    - ``duplicate_ine``: a newcomer given the INE of a student already in the académie;
    - ``student_in_old_class``: a leaver SIECLE has not taken out of their year-N class (seed §3.2);
    - ``teacher_in_old_class``: a teacher still attached in STS to a year-N class that no
      longer exists (seed §6.4);
    - ``orphan_relative``: a relative that no student references.
    """
    newcomers = [s for s in establishment.students if s.class_code_n is None]
    continuing = [s for s in establishment.students
                  if s.class_code_n is not None and s.class_code_next is not None]
    leavers = [s for s in establishment.students if s.class_code_next is None]
    next_codes = {c.code for c in establishment.classes_next}
    old_only = [c.code for c in establishment.classes_n if c.code not in next_codes]
    if len(newcomers) >= 2:
        newcomers[0].birth_date = None
        establishment.anomalies["missing_birth_date"] = newcomers[0].jointure
        newcomers[1].ine = continuing[rng.randrange(len(continuing))].ine
        establishment.anomalies["duplicate_ine"] = newcomers[1].jointure
    # Two class codes that exist in no N+1 class: year-N classes that closed, else codes one
    # beyond the N+1 classes of the last level.
    stale_classes = list(old_only)
    extra = 0
    while len(stale_classes) < 2:
        extra += 1
        last_level = establishment.classes_next[-1].level
        counts = {level.key: sum(1 for c in establishment.classes_next if c.level is level)
                  for level in LEVELS[establishment.kind]}
        counts[last_level.key] += extra
        stale_classes.append(_classes_for(establishment.kind, counts)[-1].code)
    if leavers:
        leaver = leavers[rng.randrange(len(leavers))]
        leaver.class_code_next = stale_classes[0]
        leaver.level_next = "old"
        establishment.anomalies["student_in_old_class"] = f"{leaver.jointure}${stale_classes[0]}"
    stale_class = stale_classes[-1]
    teacher = establishment.teachers[rng.randrange(len(establishment.teachers))]
    establishment.services_next.append(
        SampleService(teacher.jointure, teacher.discipline_code, stale_class, None, 1))
    establishment.anomalies["teacher_in_old_class"] = f"{teacher.jointure}${stale_class}"
    if establishment.relatives:
        title, last, first = "Mme", "ORPHELINE", "Relative"
        orphan = SampleRelative(str(3_000_000 + establishment.index * 10_000 + 9_999), title,
                                last, first, "1 place de la Mairie$$$", establishment.postal_code,
                                establishment.town, "0400000000", "0600000000", "")
        establishment.relatives.append(orphan)
        establishment.anomalies["orphan_relative"] = orphan.jointure


def build_academy(establishment_count: int, seed: int, year: int | None = None) -> SampleAcademy:
    """Build the roster of a sample académie.

    Args:
        establishment_count: number of establishments (collèges and lycées alternate, about
            two collèges for one lycée).
        seed: the random seed; the same seed and year always give the same académie.
        year: start year of school year N; defaults to the school year in progress.

    Returns:
        The académie roster.
    """
    if establishment_count < 1:
        raise ValueError("il faut au moins un établissement")
    year = default_school_year() if year is None else year
    used_uais: set[str] = set()
    used_names: set[str] = set()
    establishments = [
        _build_establishment(seed, year, index, _kind_of(index), used_uais, used_names)
        for index in range(establishment_count)
    ]
    return _academy(seed, year, establishments)
